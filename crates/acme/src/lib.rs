//! ACME (RFC 8555) with instant-acme: obtain a certificate for the server's names, renew it
//! before it expires, put it in service through [`facteur_net::Certificates`] without restart.
//!
//! Challenges: HTTP-01 (RFC 8555 §8.3), answered by the `http` role from [`Challenges`], or
//! TLS-ALPN-01 (RFC 8737), answered by [`serve_tls_alpn`] with a certificate the resolver
//! hands to handshakes offering `acme-tls/1`. Files, under `data_dir/tls/acme/`:
//! `account.json` (the account key, mode 0600), `NAME.crt` and `NAME.key` (0600).
#![forbid(unsafe_code)]

use facteur_config::{AcmeChallenge, Config};
use facteur_net::tls::write_private;
use facteur_net::{CertSource, CertSpec, CertStatus, Certificates, TlsError};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Between two renewal checks when all is well ("check twice a day").
pub const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Other(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AcmeError + '_ {
    move |source| AcmeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// HTTP-01 answers in progress (RFC 8555 §8.3), shared with the `http` role: cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<RwLock<HashMap<String, String>>>);

impl Challenges {
    pub fn new() -> Challenges {
        Challenges::default()
    }

    /// The body to answer `GET /.well-known/acme-challenge/TOKEN` with (the key
    /// authorization, RFC 8555 §8.3; content type `application/octet-stream`), or None:
    /// answer 404.
    pub fn response(&self, token: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    /// Publishes the key authorization for `token` until [`Challenges::remove`].
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }
}

/// What the ACME client needs, from `[acme]` and `data_dir`.
#[derive(Debug, Clone)]
pub struct Options {
    pub directory: String,
    pub contact: Vec<String>,
    pub hostnames: Vec<String>,
    pub renew_before_days: u32,
    pub ca_file: Option<PathBuf>,
    pub challenge: AcmeChallenge,
    /// `data_dir/tls/acme`.
    pub dir: PathBuf,
    /// How long to wait for the CA to validate and to issue.
    pub poll: RetryPolicy,
}

impl Options {
    /// None when the configuration has no `[acme]` section.
    pub fn from_config(config: &Config) -> Option<Options> {
        let acme = config.acme.as_ref()?;
        Some(Options {
            directory: acme.directory.clone(),
            contact: acme.contact.clone(),
            hostnames: config.acme_hostnames(),
            renew_before_days: acme.renew_before_days,
            ca_file: acme.ca_file.clone(),
            challenge: acme.challenge,
            dir: config.data_dir.join("tls").join("acme"),
            poll: RetryPolicy::new()
                .initial_delay(Duration::from_millis(500))
                .backoff(1.5)
                .timeout(Duration::from_secs(180)),
        })
    }

    /// The files of the certificate for these names.
    pub fn spec(&self) -> CertSpec {
        let stem = self.hostnames.first().map_or("acme", String::as_str);
        CertSpec {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
            hostnames: self.hostnames.clone(),
            source: CertSource::Acme,
        }
    }

    /// Why a new certificate is needed now, or None.
    pub fn due(&self, now: SystemTime) -> Option<String> {
        let spec = self.spec();
        let status = match facteur_net::certs::read_status(&spec) {
            Ok(s) => s,
            Err(_) if !spec.cert.exists() => return Some("no certificate yet".into()),
            Err(e) => return Some(format!("the stored certificate does not load ({e})")),
        };
        let mut missing = self
            .hostnames
            .iter()
            .filter(|n| !status.info.dns_names.contains(&n.to_ascii_lowercase()));
        if let Some(name) = missing.next() {
            return Some(format!("{name} is not on the stored certificate"));
        }
        let days = status.info.days_left(now);
        (days < i64::from(self.renew_before_days)).then(|| {
            format!(
                "{days} days left, renewing under {} (renew_before_days)",
                self.renew_before_days
            )
        })
    }
}

/// Obtains and renews the certificate; cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Options,
    certs: Certificates,
    challenges: Challenges,
    account: tokio::sync::Mutex<Option<Account>>,
    /// Wakes `run` for a check before its timer (SIGHUP).
    wake: tokio::sync::Notify,
}

/// Withdraws the challenge answers of an order however it ends.
struct Published {
    challenges: Challenges,
    certs: Certificates,
    tokens: Vec<String>,
    names: Vec<String>,
}

impl Drop for Published {
    fn drop(&mut self) {
        for t in &self.tokens {
            self.challenges.remove(t);
        }
        for n in &self.names {
            self.certs.clear_alpn_challenge(n);
        }
    }
}

impl Manager {
    pub fn new(opts: Options, certs: Certificates, challenges: Challenges) -> Manager {
        Manager {
            inner: Arc::new(Inner {
                opts,
                certs,
                challenges,
                account: tokio::sync::Mutex::new(None),
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Makes `run` check now whether a certificate is due (the server calls it on SIGHUP),
    /// instead of at its next timer.
    pub fn check_now(&self) {
        self.inner.wake.notify_one();
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Puts the stored certificate in service, if there is one (at start).
    pub fn install_stored(&self) -> Result<Option<CertStatus>, AcmeError> {
        let spec = self.inner.opts.spec();
        if !spec.cert.exists() {
            return Ok(None);
        }
        Ok(Some(self.inner.certs.install(spec)?))
    }

    /// Obtains a new certificate now, whatever the stored one's age, and puts it in service.
    pub async fn obtain(&self) -> Result<CertStatus, AcmeError> {
        let opts = &self.inner.opts;
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = opts
            .hostnames
            .iter()
            .map(|n| Identifier::Dns(n.clone()))
            .collect();
        // RFC 8555 §7.4: newOrder.
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let names = opts.hostnames.join(",");
        tracing::info!(hostnames = %names, order = %order.url(), "ACME order created");
        let mut published = Published {
            challenges: self.inner.challenges.clone(),
            certs: self.inner.certs.clone(),
            tokens: Vec::new(),
            names: Vec::new(),
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            let name = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => {
                    tracing::info!(hostname = %name, "ACME authorization already valid");
                    continue;
                }
                other => {
                    return Err(AcmeError::Other(format!(
                        "ACME authorization for {name} is {other:?}"
                    )));
                }
            }
            let (kind, label) = match opts.challenge {
                AcmeChallenge::Http01 => (ChallengeType::Http01, "http-01"),
                AcmeChallenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, "tls-alpn-01"),
            };
            let mut challenge = authz.challenge(kind).ok_or_else(|| {
                AcmeError::Other(format!("the CA offers no {label} challenge for {name}"))
            })?;
            let key_authorization = challenge.key_authorization();
            match opts.challenge {
                AcmeChallenge::Http01 => {
                    // RFC 8555 §8.3: the body is the key authorization.
                    self.inner
                        .challenges
                        .insert(&challenge.token, key_authorization.as_str());
                    published.tokens.push(challenge.token.clone());
                }
                AcmeChallenge::TlsAlpn01 => {
                    let key = alpn_certificate(&name, key_authorization.digest().as_ref())?;
                    self.inner.certs.set_alpn_challenge(&name, key);
                    published.names.push(name.clone());
                }
            }
            // RFC 8555 §7.5.1: tell the CA to validate.
            challenge.set_ready().await?;
            tracing::info!(hostname = %name, challenge = label, "ACME challenge ready");
        }
        let status = order.poll_ready(&opts.poll).await?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Other(format!(
                "ACME order for {names} is {status:?}: {}",
                self.failure_reasons(&mut order).await
            )));
        }
        tracing::info!(hostnames = %names, "ACME authorizations valid; finalizing");
        drop(published);
        // RFC 8555 §7.4: finalize with a CSR for a fresh key (P-256).
        let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Other(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(opts.hostnames.clone())
            .map_err(|e| AcmeError::Other(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| AcmeError::Other(e.to_string()))?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&opts.poll).await?;
        let spec = opts.spec();
        std::fs::create_dir_all(&opts.dir).map_err(io_error(&opts.dir))?;
        replace_file(&spec.key, key.serialize_pem().as_bytes())?;
        replace_file(&spec.cert, chain.as_bytes())?;
        let installed = self.inner.certs.install(spec)?;
        tracing::info!(
            hostnames = %names,
            cert = %installed.spec.cert.display(),
            serial = %installed.info.serial,
            issuer = %installed.info.issuer,
            "ACME certificate installed; expires on {} ({} days)",
            installed.info.not_after_text(),
            installed.info.days_left(SystemTime::now())
        );
        Ok(installed)
    }

    /// The CA's reasons, from the authorizations' challenges (RFC 8555 §7.1.5 `error`).
    async fn failure_reasons(&self, order: &mut instant_acme::Order) -> String {
        let mut reasons = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(Ok(authz)) = authorizations.next().await {
            for c in &authz.challenges {
                if let Some(e) = &c.error {
                    reasons.push(format!("{}: {e}", authz.identifier()));
                }
            }
        }
        if reasons.is_empty() {
            "no reason given".into()
        } else {
            reasons.join("; ")
        }
    }

    /// The account, loaded from `account.json` or registered (RFC 8555 §7.3) and stored.
    async fn account(&self) -> Result<Account, AcmeError> {
        let opts = &self.inner.opts;
        let mut slot = self.inner.account.lock().await;
        if let Some(a) = &*slot {
            return Ok(a.clone());
        }
        let builder = || match &opts.ca_file {
            Some(f) => Account::builder_with_root(f)
                .map_err(|e| AcmeError::Other(format!("{} (acme.ca_file): {e}", f.display()))),
            None => Ok(Account::builder()?),
        };
        let path = opts.dir.join("account.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let stored: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| AcmeError::Other(format!("{}: {e}", path.display())))?;
            if stored["directory"].as_str() == Some(opts.directory.as_str()) {
                let credentials = serde_json::from_value(stored["credentials"].clone())
                    .map_err(|e| AcmeError::Other(format!("{}: {e}", path.display())))?;
                let account = builder()?.from_credentials(credentials).await?;
                tracing::info!(account = %account.id(), "ACME account loaded from {}", path.display());
                *slot = Some(account.clone());
                return Ok(account);
            }
            tracing::info!(
                "{} is for another directory; registering with {}",
                path.display(),
                opts.directory
            );
        }
        let contact: Vec<String> = opts.contact.iter().map(|c| format!("mailto:{c}")).collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                opts.directory.clone(),
                None,
            )
            .await?;
        let stored = serde_json::json!({
            "directory": opts.directory,
            "credentials": credentials,
        });
        std::fs::create_dir_all(&opts.dir).map_err(io_error(&opts.dir))?;
        let text = serde_json::to_string_pretty(&stored).expect("JSON");
        replace_file(&path, text.as_bytes())?;
        tracing::info!(account = %account.id(), directory = %opts.directory, "ACME account registered; key in {}", path.display());
        *slot = Some(account.clone());
        Ok(account)
    }

    /// Obtains when due, checks again twice a day or at `check_now`; after a failure waits 5
    /// minutes, doubling up to 12 hours (a `check_now` cuts the wait short). Never returns.
    pub async fn run(self) {
        let mut failures: u32 = 0;
        loop {
            let wait = match self.inner.opts.due(SystemTime::now()) {
                None => CHECK_EVERY,
                Some(reason) => {
                    tracing::info!(hostnames = %self.inner.opts.hostnames.join(","), "ACME: requesting a certificate: {reason}");
                    match self.obtain().await {
                        Ok(_) => {
                            failures = 0;
                            CHECK_EVERY
                        }
                        Err(e) => {
                            failures += 1;
                            let pause = backoff(failures);
                            tracing::error!(
                                "{e}; keeping the current certificate, next attempt in {} minutes",
                                pause.as_secs() / 60
                            );
                            pause
                        }
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified() => {
                    tracing::info!("ACME: checking the certificate now (SIGHUP)");
                }
            }
        }
    }
}

/// 5 minutes after the first failure, doubling, at most 12 hours.
pub fn backoff(failures: u32) -> Duration {
    let minutes = 5u64.saturating_mul(1 << failures.saturating_sub(1).min(10));
    Duration::from_secs(minutes.min(12 * 60) * 60)
}

/// Writes `path` (mode 0600) through a temporary file and a rename: a reader sees the old
/// file or the new one, never half of one.
fn replace_file(path: &Path, content: &[u8]) -> Result<(), AcmeError> {
    let tmp = path.with_extension("tmp");
    write_private(&tmp, content).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// The TLS-ALPN-01 validation certificate for `name` (RFC 8737 §3): self-signed, the name as
/// its only subjectAltName, the critical acmeIdentifier extension holding the SHA-256 digest
/// of the key authorization.
pub fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let other = |e: rcgen::Error| AcmeError::Other(format!("TLS-ALPN-01 certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(other)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(other)?;
    let cert = params.self_signed(&key).map_err(other)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| AcmeError::Other(format!("TLS-ALPN-01 key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// Answers TLS-ALPN-01 validation on `listener` (RFC 8737 §3: the CA connects to port 443,
/// completes the handshake with `acme-tls/1`, and closes). Never returns.
pub async fn serve_tls_alpn(listener: tokio::net::TcpListener, certs: Certificates) {
    let acceptor = certs.alpn_challenge_acceptor();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "tls-alpn-01 listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(mut tls)) => {
                    tracing::info!(%peer, "tls-alpn-01 validation handshake answered");
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls-alpn-01 handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls-alpn-01 handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_twelve_hours() {
        assert_eq!(backoff(1), Duration::from_secs(300));
        assert_eq!(backoff(2), Duration::from_secs(600));
        assert_eq!(backoff(4), Duration::from_secs(2400));
        assert_eq!(backoff(30), Duration::from_secs(12 * 3600));
    }

    #[test]
    fn challenges_answer_published_tokens_only() {
        let c = Challenges::new();
        let shared = c.clone();
        c.insert("tok", "tok.thumb");
        assert_eq!(shared.response("tok").as_deref(), Some("tok.thumb"));
        assert_eq!(shared.response("other"), None);
        c.remove("tok");
        assert_eq!(shared.response("tok"), None);
    }

    #[test]
    fn due_without_a_certificate_and_when_names_change() {
        let dir = std::env::temp_dir().join(format!("facteur-acme-due-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut opts = Options {
            directory: "https://127.0.0.1:1/dir".into(),
            contact: Vec::new(),
            hostnames: vec!["mx.example.com".into()],
            renew_before_days: 30,
            ca_file: None,
            challenge: AcmeChallenge::Http01,
            dir: dir.clone(),
            poll: RetryPolicy::new(),
        };
        let now = SystemTime::now();
        assert_eq!(opts.due(now).as_deref(), Some("no certificate yet"));
        let mut params = rcgen::CertificateParams::new(vec!["mx.example.com".into()]).unwrap();
        let in_days = |d: u64| {
            let t = now + Duration::from_secs(d * 86_400 + 3600);
            let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(secs as u64)
        };
        params.not_after = in_days(60);
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(
            opts.spec().cert,
            params.clone().self_signed(&key).unwrap().pem(),
        )
        .unwrap();
        assert_eq!(opts.due(now), None);
        params.not_after = in_days(29);
        std::fs::write(
            opts.spec().cert,
            params.clone().self_signed(&key).unwrap().pem(),
        )
        .unwrap();
        assert!(opts.due(now).unwrap().starts_with("29 days left"));
        opts.hostnames.push("imap.example.com".into());
        // The file name follows the first name, so the same file is checked.
        assert!(opts.due(now).unwrap().contains("imap.example.com"));
    }
}
