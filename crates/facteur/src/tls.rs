//! Certificates from the configuration: `[tls]` files, a self-signed fallback, `[acme]`;
//! the tasks that keep them fresh (file polling, SIGHUP, expiry warnings, ACME renewal).

use anyhow::Context as _;
use facteur_acme::{Challenges, Manager, Options as AcmeOptions};
use facteur_config::{AcmeChallenge, Config};
use facteur_net::{CertSource, CertSpec, Certificates};
use std::sync::Mutex;
use std::time::Duration;

/// The server's certificates and what keeps them current.
pub struct Tls {
    /// The acceptor of every mail role.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// A description for the startup log.
    pub source: String,
    pub certificates: Certificates,
    /// HTTP-01 answers, for the `http` role (`GET /.well-known/acme-challenge/TOKEN`).
    #[allow(dead_code)] // read by the http role
    pub challenges: Challenges,
    acme: Option<Manager>,
    alpn_listeners: Mutex<Vec<std::net::TcpListener>>,
    reload_check_secs: u64,
}

/// The configured certificate files, default first; the self-signed one (made by `load`,
/// perhaps not yet on disk) when no file is configured.
pub fn specs(config: &Config) -> Vec<CertSpec> {
    let mut specs = Vec::new();
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        specs.push(CertSpec {
            cert: cert.clone(),
            key: key.clone(),
            hostnames: Vec::new(),
            source: CertSource::File,
        });
    }
    for c in &config.tls.certificates {
        specs.push(CertSpec {
            cert: c.cert.clone(),
            key: c.key.clone(),
            hostnames: c.hostnames.clone(),
            source: CertSource::File,
        });
    }
    if specs.is_empty() {
        let dir = config.data_dir.join("tls");
        specs.push(CertSpec {
            cert: dir.join("self-signed.crt"),
            key: dir.join("self-signed.key"),
            hostnames: Vec::new(),
            source: CertSource::SelfSigned,
        });
    }
    specs
}

/// Loads every certificate (making the self-signed one if needed) and binds the TLS-ALPN-01
/// listener: both may need root, so this runs before privileges are dropped.
pub fn load(config: &Config) -> anyhow::Result<Tls> {
    let specs = specs(config);
    if specs[0].source == CertSource::SelfSigned {
        facteur_net::tls::self_signed(&config.hostname, &config.data_dir.join("tls"))?;
    }
    let certificates = Certificates::load(specs.clone()).context("key `tls`")?;
    let challenges = Challenges::new();
    let acme = AcmeOptions::from_config(config)
        .map(|opts| Manager::new(opts, certificates.clone(), challenges.clone()));
    if let Some(m) = &acme {
        match m.install_stored() {
            Ok(Some(s)) => tracing::info!(cert = %s.spec.cert.display(), "ACME certificate loaded"),
            Ok(None) => {}
            Err(e) => tracing::error!("{e}; a new ACME certificate will be requested"),
        }
    }
    let mut alpn_listeners = Vec::new();
    if let Some(a) = config
        .acme
        .as_ref()
        .filter(|a| a.challenge == AcmeChallenge::TlsAlpn01)
    {
        for addr in &a.tls_alpn_listen {
            alpn_listeners.push(
                facteur_net::bind("acme tls-alpn-01", addr.0)
                    .context("key `acme.tls_alpn_listen`")?,
            );
        }
    }
    let mut source: Vec<String> = certificates
        .status()
        .iter()
        .map(|s| {
            format!(
                "{} {} ({})",
                s.spec.source,
                s.spec.cert.display(),
                s.hostnames().join(",")
            )
        })
        .collect();
    if acme.is_some()
        && !certificates
            .status()
            .iter()
            .any(|s| s.spec.source == CertSource::Acme)
    {
        source.push(format!(
            "acme for {} (not obtained yet)",
            config.acme_hostnames().join(",")
        ));
    }
    Ok(Tls {
        acceptor: certificates.acceptor(),
        source: source.join("; "),
        certificates,
        challenges,
        acme,
        alpn_listeners: Mutex::new(alpn_listeners),
        reload_check_secs: config.tls.reload_check_secs,
    })
}

impl Tls {
    /// Starts the tasks: file polling, SIGHUP reload, expiry log, ACME, TLS-ALPN-01 listener.
    /// Call inside the runtime.
    pub fn spawn(&self) -> anyhow::Result<()> {
        let certs = &self.certificates;
        if self.reload_check_secs > 0 {
            tokio::spawn(
                certs
                    .clone()
                    .watch_files(Duration::from_secs(self.reload_check_secs)),
            );
        }
        let hup = certs.clone();
        tokio::spawn(async move {
            if let Err(e) = hup.reload_on_sighup().await {
                tracing::error!(error = %e, "cannot listen for SIGHUP; certificates reload by polling only");
            }
        });
        tokio::spawn(certs.clone().watch_expiry());
        let listeners = std::mem::take(
            &mut *self
                .alpn_listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for l in listeners {
            let listener = tokio::net::TcpListener::from_std(l)?;
            tokio::spawn(facteur_acme::serve_tls_alpn(listener, certs.clone()));
        }
        if let Some(m) = &self.acme {
            tokio::spawn(m.clone().run());
            // SIGHUP also asks the ACME client to check now (renewing what is due).
            let manager = m.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hup.recv().await.is_some() {
                    manager.check_now();
                }
            });
        }
        Ok(())
    }
}
