//! Certificates that manage themselves: one per host name, chosen by SNI, swapped atomically
//! when their files change (polled), on `reload()` (SIGHUP) or when ACME installs a new one.
//!
//! Readers (every handshake) take a snapshot `Arc` under a read lock; writers build a whole new
//! snapshot and swap it in. A handshake keeps the `CertifiedKey` it resolved, so connections
//! already up keep their certificate; the next handshake sees the new one. A file that fails to
//! load never replaces a working certificate: the error names the file and the old one stays.

use crate::tls::TlsError;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Below this many days left, the log warns (at start, then daily).
pub const WARN_DAYS: i64 = 14;

/// Where a certificate comes from, for the log and `facteur tls status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    /// Files named in the configuration.
    File,
    /// Made by facteur for `hostname` when no certificate is configured.
    SelfSigned,
    /// Obtained and renewed by facteur's ACME client.
    Acme,
}

impl fmt::Display for CertSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertSource::File => "file",
            CertSource::SelfSigned => "self-signed",
            CertSource::Acme => "acme",
        })
    }
}

/// One certificate to serve: its files and the names it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); may be the same file as `cert`.
    pub key: PathBuf,
    /// SNI names this certificate answers (`*.example.com` matches one label). Empty: the
    /// certificate's own subjectAltName dNSNames.
    pub hostnames: Vec<String>,
    pub source: CertSource,
}

/// What the leaf certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// subjectAltName dNSNames (RFC 5280 §4.2.1.6), lowercase.
    pub dns_names: Vec<String>,
    /// notAfter as Unix seconds (RFC 5280 §4.1.2.5).
    pub not_after: i64,
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    pub issuer: String,
}

impl CertInfo {
    /// Reads the fields facteur needs from a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                    dns_names.push(n.to_ascii_lowercase());
                }
            }
        }
        Ok(CertInfo {
            dns_names,
            not_after: cert.validity().not_after.timestamp(),
            serial: cert
                .raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            issuer: cert.issuer().to_string(),
        })
    }

    /// Whole days left before notAfter (rounded down); negative once expired.
    pub fn days_left(&self, now: SystemTime) -> i64 {
        days_left(self.not_after, unix(now))
    }

    pub fn expired(&self, now: SystemTime) -> bool {
        self.not_after <= unix(now)
    }

    /// notAfter as `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn not_after_text(&self) -> String {
        format_utc(self.not_after)
    }
}

/// Whole days between `now` and `not_after` (Unix seconds), rounded down: 13.9 days left is
/// 13, one second past expiry is -1.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A certificate as served: its files, its names and its leaf's facts.
#[derive(Debug, Clone)]
pub struct CertStatus {
    pub spec: CertSpec,
    pub info: CertInfo,
}

impl CertStatus {
    /// The names SNI matches against: the configured ones, else the certificate's own.
    pub fn hostnames(&self) -> &[String] {
        if self.spec.hostnames.is_empty() {
            &self.info.dns_names
        } else {
            &self.spec.hostnames
        }
    }

    /// A plain sentence saying what, if anything, to do.
    pub fn hint(&self, now: SystemTime) -> String {
        let days = self.info.days_left(now);
        let expired = self.info.expired(now);
        match self.spec.source {
            _ if expired && self.spec.source == CertSource::Acme => {
                "EXPIRED: facteur renews it itself; read the log for the ACME error".into()
            }
            _ if expired => format!(
                "EXPIRED: clients refuse it; replace {} and {} (reloaded within reload_check_secs, or send SIGHUP)",
                self.spec.cert.display(),
                self.spec.key.display()
            ),
            CertSource::Acme if days < WARN_DAYS => {
                "expires soon although facteur renews it: read the log for the ACME error".into()
            }
            CertSource::Acme => "renewed automatically by facteur".into(),
            CertSource::SelfSigned => {
                "self-signed: clients warn or refuse; set [tls] cert and key, or [acme]".into()
            }
            CertSource::File if days < WARN_DAYS => format!(
                "expires soon: put a renewed certificate in {} (facteur picks it up by itself)",
                self.spec.cert.display()
            ),
            CertSource::File => "ok".into(),
        }
    }
}

/// Reads a certificate's status from its files (the key is not read): for `facteur tls
/// status`, with or without a running server.
pub fn read_status(spec: &CertSpec) -> Result<CertStatus, TlsError> {
    let chain = read_chain(&spec.cert)?;
    let info = CertInfo::parse(&chain[0]).map_err(|message| TlsError::File {
        path: spec.cert.clone(),
        message,
    })?;
    Ok(CertStatus {
        spec: spec.clone(),
        info,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            path: path.to_owned(),
            message: "no certificate in the file".into(),
        });
    }
    Ok(chain)
}

/// A loaded certificate.
#[derive(Debug, Clone)]
struct Entry {
    status: CertStatus,
    key: Arc<CertifiedKey>,
}

fn load_entry(spec: &CertSpec) -> Result<Entry, TlsError> {
    let chain = read_chain(&spec.cert)?;
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.to_owned(),
        message,
    };
    let key_der = PrivateKeyDer::from_pem_file(&spec.key)
        .map_err(|e| file_error(&spec.key, e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| file_error(&spec.key, e.to_string()))?;
    let info = CertInfo::parse(&chain[0]).map_err(|m| file_error(&spec.cert, m))?;
    let key = CertifiedKey::new(chain, signing);
    match key.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(file_error(
                &spec.cert,
                format!("does not match the key in {}: {e}", spec.key.display()),
            ));
        }
    }
    Ok(Entry {
        status: CertStatus {
            spec: spec.clone(),
            info,
        },
        key: Arc::new(key),
    })
}

/// The certificates in force, in priority order.
#[derive(Debug, Default)]
struct Snapshot {
    entries: Vec<Entry>,
}

impl Snapshot {
    /// The default: the first certificate that is not self-signed, else the first one.
    fn default_entry(&self) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.status.spec.source != CertSource::SelfSigned)
            .or_else(|| self.entries.first())
    }

    /// The entries, self-signed ones last: a real certificate for a name wins over the
    /// stopgap made for it.
    fn ordered(&self) -> impl Iterator<Item = &Entry> {
        let real = |e: &&Entry| e.status.spec.source != CertSource::SelfSigned;
        let stopgap = |e: &&Entry| e.status.spec.source == CertSource::SelfSigned;
        self.entries
            .iter()
            .filter(real)
            .chain(self.entries.iter().filter(stopgap))
    }

    /// An exact name wins over a wildcard, a wildcard over the default.
    fn select(&self, sni: Option<&str>) -> Option<&Entry> {
        if let Some(sni) = sni {
            let sni = sni.trim_end_matches('.').to_ascii_lowercase();
            let names = |e: &&Entry| {
                e.status
                    .hostnames()
                    .iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect::<Vec<_>>()
            };
            if let Some(e) = self.ordered().find(|e| names(e).contains(&sni)) {
                return Some(e);
            }
            if let Some(e) = self
                .ordered()
                .find(|e| names(e).iter().any(|n| wildcard_matches(n, &sni)))
            {
                return Some(e);
            }
        }
        self.default_entry()
    }
}

/// `*.example.com` matches exactly one more label: `a.example.com`, not `example.com` nor
/// `a.b.example.com` (RFC 6125 §6.4.3).
pub fn wildcard_matches(pattern: &str, name: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    match name.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
        None => false,
    }
}

#[derive(Debug, Default)]
struct State {
    current: RwLock<Arc<Snapshot>>,
    /// TLS-ALPN-01 validation certificates by host name (RFC 8737 §3).
    alpn_challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// Serializes writers (reload, install): each builds on the latest snapshot.
    writer: Mutex<()>,
}

impl State {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn swap(&self, next: Snapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }
}

/// The rustls hook: picks a certificate for each ClientHello.
#[derive(Debug)]
struct Resolver(Arc<State>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if offers_acme {
            // RFC 8737 §3: a validation handshake gets the acmeIdentifier certificate for the
            // SNI name, or no handshake at all.
            let name = hello
                .server_name()?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let challenges = self
                .0
                .alpn_challenges
                .read()
                .unwrap_or_else(|p| p.into_inner());
            return challenges.get(&name).cloned();
        }
        let snapshot = self.0.snapshot();
        snapshot.select(hello.server_name()).map(|e| e.key.clone())
    }
}

/// The server's certificates: cheap to clone, shared by every role and the ACME client.
#[derive(Clone)]
pub struct Certificates {
    state: Arc<State>,
    acceptor: tokio_rustls::TlsAcceptor,
    alpn_challenge_acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// rustls with ring, TLS 1.3 and 1.2 only, rustls's default (AEAD, forward-secret) suites.
fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: Vec<Vec<u8>>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn;
    Ok(config)
}

impl Certificates {
    /// Loads every certificate; at start a file that does not load is an error.
    pub fn load(specs: Vec<CertSpec>) -> Result<Certificates, TlsError> {
        let entries = specs
            .iter()
            .map(load_entry)
            .collect::<Result<Vec<_>, _>>()?;
        let state = Arc::new(State::default());
        state.swap(Snapshot { entries });
        let resolver = Arc::new(Resolver(state.clone()));
        // Mail roles negotiate no ALPN: rustls would refuse a client offering only protocols
        // not listed (RFC 7301 §3.2), so `acme-tls/1` lives on its own acceptor.
        let acceptor = server_config(resolver.clone(), Vec::new())?;
        let challenge = server_config(resolver, vec![ACME_TLS_ALPN.to_vec()])?;
        Ok(Certificates {
            state,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(acceptor)),
            alpn_challenge_acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(challenge)),
        })
    }

    /// The acceptor of every mail role (no ALPN).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }

    /// The acceptor of the TLS-ALPN-01 listener: negotiates `acme-tls/1` (RFC 8737 §3).
    pub fn alpn_challenge_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.alpn_challenge_acceptor.clone()
    }

    /// The certificate resolver, for a server configuration of one's own.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        Arc::new(Resolver(self.state.clone()))
    }

    /// Every certificate in force, in priority order (the default is the first that is not
    /// self-signed).
    pub fn status(&self) -> Vec<CertStatus> {
        self.state
            .snapshot()
            .entries
            .iter()
            .map(|e| e.status.clone())
            .collect()
    }

    /// The certificate a handshake with this SNI would get (None: no SNI).
    pub fn select(&self, sni: Option<&str>) -> Option<CertStatus> {
        self.state.snapshot().select(sni).map(|e| e.status.clone())
    }

    /// Re-reads every certificate file and swaps the new set in at once. A file that fails
    /// keeps its old certificate; each failure is logged naming the file and returned.
    pub fn reload(&self) -> Vec<TlsError> {
        let _writer = self.state.writer.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.state.snapshot();
        let mut errors = Vec::new();
        let mut entries = Vec::with_capacity(old.entries.len());
        for e in &old.entries {
            match load_entry(&e.status.spec) {
                Ok(new) => {
                    if new.status.info.serial != e.status.info.serial {
                        tracing::info!(
                            cert = %e.status.spec.cert.display(),
                            serial = %new.status.info.serial,
                            expires = %new.status.info.not_after_text(),
                            "certificate reloaded"
                        );
                    }
                    entries.push(new);
                }
                Err(err) => {
                    tracing::error!("{err}; keeping the certificate loaded before");
                    errors.push(err);
                    entries.push(e.clone());
                }
            }
        }
        self.state.swap(Snapshot { entries });
        errors
    }

    /// Loads `spec` and puts it in force: it replaces the certificate with the same `cert`
    /// path, or is added last. On error nothing changes.
    pub fn install(&self, spec: CertSpec) -> Result<CertStatus, TlsError> {
        let entry = load_entry(&spec)?;
        let status = entry.status.clone();
        let _writer = self.state.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut entries = self.state.snapshot().entries.clone();
        match entries.iter_mut().find(|e| e.status.spec.cert == spec.cert) {
            Some(slot) => *slot = entry,
            None => entries.push(entry),
        }
        self.state.swap(Snapshot { entries });
        Ok(status)
    }

    /// Answers TLS-ALPN-01 validation for `hostname` with `key` (RFC 8737 §3).
    pub fn set_alpn_challenge(&self, hostname: &str, key: Arc<CertifiedKey>) {
        self.state
            .alpn_challenges
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hostname.to_ascii_lowercase(), key);
    }

    pub fn clear_alpn_challenge(&self, hostname: &str) {
        self.state
            .alpn_challenges
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hostname.to_ascii_lowercase());
    }

    /// Size and modification time of every certificate and key file.
    fn stamps(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        let mut out = Vec::new();
        for e in &self.state.snapshot().entries {
            for path in [&e.status.spec.cert, &e.status.spec.key] {
                let stamp = std::fs::metadata(path)
                    .ok()
                    .map(|m| (m.modified().unwrap_or(UNIX_EPOCH), m.len()));
                out.push((path.clone(), stamp));
            }
        }
        out
    }

    /// Polls the files every `every` and reloads when one changed since this call. The
    /// future runs forever.
    pub fn watch_files(self, every: Duration) -> impl Future<Output = ()> + Send + 'static {
        let mut seen = self.stamps();
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = self.stamps();
                if now != seen {
                    tracing::info!("a certificate file changed; reloading");
                    self.reload();
                    seen = self.stamps();
                }
            }
        }
    }

    /// Logs every certificate's expiry: `info` when `all`, `warn` under 14 days, `error` once
    /// expired.
    pub fn log_expiry(&self, all: bool) {
        let now = SystemTime::now();
        for s in self.status() {
            let days = s.info.days_left(now);
            let names = s.hostnames().join(",");
            let cert = s.spec.cert.display();
            let expires = s.info.not_after_text();
            if s.info.expired(now) {
                tracing::error!(%cert, hostnames = %names, %expires, "certificate EXPIRED: {}", s.hint(now));
            } else if days < WARN_DAYS {
                tracing::warn!(%cert, hostnames = %names, %expires, days_left = days, "certificate expires soon: {}", s.hint(now));
            } else if all {
                tracing::info!(%cert, hostnames = %names, source = %s.spec.source, %expires, days_left = days, "certificate");
            }
        }
    }

    /// Logs expiry now (every certificate) and then daily (only those under 14 days).
    pub async fn watch_expiry(self) {
        self.log_expiry(true);
        loop {
            tokio::time::sleep(Duration::from_secs(86_400)).await;
            self.log_expiry(false);
        }
    }

    /// Reloads on every SIGHUP. Runs forever.
    pub async fn reload_on_sighup(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading certificates");
            self.reload();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
