//! TLS server settings (rustls, ring provider): certificate files from the configuration, or
//! a self-signed certificate for the host name, made once and kept in `data_dir/tls/`.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("making the self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the certificate comes from.
pub enum TlsSettings<'a> {
    Files { cert: &'a Path, key: &'a Path },
    SelfSigned { hostname: &'a str, dir: &'a Path },
}

/// The loaded acceptor and a description for the startup log.
pub struct LoadedTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub source: String,
}

pub fn load_tls(settings: TlsSettings<'_>) -> Result<LoadedTls, TlsError> {
    let (cert, key, source) = match settings {
        TlsSettings::Files { cert, key } => (
            cert.to_owned(),
            key.to_owned(),
            format!("certificate {}", cert.display()),
        ),
        TlsSettings::SelfSigned { hostname, dir } => {
            let (cert, key) = self_signed(hostname, dir)?;
            let source = format!(
                "self-signed certificate for {hostname} in {} (set [tls] cert and key for a real one)",
                cert.display()
            );
            (cert, key, source)
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| file_error(&cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: cert,
            message: "no certificate in the file".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| file_error(&key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols.clear();
    Ok(LoadedTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        source,
    })
}

fn file_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Returns the self-signed certificate and key paths, creating them on first use.
fn self_signed(hostname: &str, dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |e: std::io::Error| TlsError::File {
            path,
            message: e.to_string(),
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let made = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key, made.key_pair.serialize_pem().as_bytes()).map_err(io(&key))?;
    std::fs::write(&cert, made.cert.pem()).map_err(io(&cert))?;
    tracing::info!(hostname, path = %cert.display(), "made a self-signed certificate");
    Ok((cert, key))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content)?;
    f.sync_all()
}
