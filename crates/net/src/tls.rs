//! TLS server settings (rustls, ring provider): certificate files from the configuration, or
//! a self-signed certificate for the host name, made once and kept in `data_dir/tls/`.
//! Choosing among several certificates and reloading them: [`crate::certs`].

use crate::certs::{CertSource, CertSpec, Certificates};
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

/// One certificate for every name (the tests' and simple callers' path); the server uses
/// [`crate::Certificates`] for several certificates, reloading and ACME.
pub fn load_tls(settings: TlsSettings<'_>) -> Result<LoadedTls, TlsError> {
    let (spec, source) = match settings {
        TlsSettings::Files { cert, key } => (
            CertSpec {
                cert: cert.to_owned(),
                key: key.to_owned(),
                hostnames: Vec::new(),
                source: CertSource::File,
            },
            format!("certificate {}", cert.display()),
        ),
        TlsSettings::SelfSigned { hostname, dir } => {
            let (cert, key) = self_signed(hostname, dir)?;
            let source = format!(
                "self-signed certificate for {hostname} in {} (set [tls] cert and key for a real one)",
                cert.display()
            );
            (
                CertSpec {
                    cert,
                    key,
                    hostnames: Vec::new(),
                    source: CertSource::SelfSigned,
                },
                source,
            )
        }
    };
    let certificates = Certificates::load(vec![spec])?;
    Ok(LoadedTls {
        acceptor: certificates.acceptor(),
        source,
    })
}

/// Returns the self-signed certificate and key paths, creating them on first use.
pub fn self_signed(hostname: &str, dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
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
pub fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
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

/// A TLS client that accepts any server certificate (the handshake's signatures are still
/// checked): opportunistic TLS between MTAs (RFC 7435), and tests that look at which
/// certificate they were given rather than whether it chains to a root.
pub fn any_certificate_client() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("rustls default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    // The handshake signatures are still checked: the peer holds the key of the certificate
    // it showed, whatever that certificate is.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
