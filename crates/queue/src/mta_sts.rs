//! MTA-STS (RFC 8461): a domain that publishes `_mta-sts.DOMAIN` TXT `v=STSv1; id=...` and a
//! policy at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` asks senders to deliver only to
//! the MX hosts the policy names, over TLS with a certificate valid for the MX name. In
//! `enforce` mode facteur does exactly that (a mismatch defers the message, never falls back to
//! clear text); in `testing` mode it logs what would have failed and delivers as usual.
//!
//! Policies are cached in memory for their `max_age` (at most a day here, RFC 8461 §3.2 allows
//! up to a year) and fetched again when the TXT record's id changes (§5.1).

use facteur_dns::Resolver;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// RFC 8461 §3.3: "policy bodies ... MUST NOT exceed 64 KiB".
const MAX_POLICY: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_CACHE: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: String,
    pub mode: Mode,
    /// MX patterns: a host name, or `*.` and one label's worth of wildcard (§4.1).
    pub mx: Vec<String>,
    pub max_age: u64,
}

impl Policy {
    /// Whether `host` (an MX name) is allowed by the policy (RFC 8461 §4.1).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| {
            let p = p.to_ascii_lowercase();
            match p.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => p == host,
            }
        })
    }
}

/// The id of a `_mta-sts` TXT record set (RFC 8461 §3.1): exactly one record starting with
/// `v=STSv1`, with an `id` of 1-32 alphanumerics.
pub fn txt_id(records: &[String]) -> Option<String> {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| r.starts_with("v=STSv1"))
        .collect();
    let [record] = sts.as_slice() else {
        return None;
    };
    record.split(';').find_map(|field| {
        let (k, v) = field.trim().split_once('=')?;
        let v = v.trim();
        (k.trim() == "id"
            && (1..=32).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| v.to_string())
    })
}

/// Parses a policy body (RFC 8461 §3.2): `version: STSv1`, `mode`, `mx` (repeated), `max_age`.
pub fn parse_policy(id: &str, body: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut mx = Vec::new();
    let mut max_age = None;
    for line in body.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "version" => version = Some(v.to_string()),
            "mode" => {
                mode = Some(match v {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => return Err(format!("unknown mode `{other}`")),
                })
            }
            "mx" => mx.push(v.to_string()),
            "max_age" => max_age = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("the policy has no `version: STSv1`".into());
    }
    let mode = mode.ok_or("the policy has no mode")?;
    let max_age = max_age.ok_or("the policy has no valid max_age")?;
    if mode != Mode::None && mx.is_empty() {
        return Err("the policy names no mx".into());
    }
    Ok(Policy {
        id: id.to_string(),
        mode,
        mx,
        max_age,
    })
}

/// Looks policies up and keeps them.
pub struct MtaSts {
    pub resolver: Resolver,
    /// Verifies the policy server's certificate (system roots, plus any configured CA).
    pub verified: Arc<rustls::ClientConfig>,
    /// 443; another only in tests.
    pub port: u16,
    cache: Mutex<HashMap<String, (Policy, Instant)>>,
}

impl MtaSts {
    pub fn new(resolver: Resolver, verified: Arc<rustls::ClientConfig>, port: u16) -> MtaSts {
        MtaSts {
            resolver,
            verified,
            port,
            cache: Mutex::default(),
        }
    }

    /// The domain's policy, if it publishes one (None also when the lookup or fetch fails and
    /// nothing is cached: RFC 8461 §5: then deliver as without a policy).
    pub async fn policy(&self, domain: &str) -> Option<Policy> {
        let domain = domain.to_ascii_lowercase();
        let id = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => txt_id(&records),
            Err(_) => None,
        };
        let cached = self
            .cache
            .lock()
            .expect("MTA-STS cache")
            .get(&domain)
            .filter(|(p, until)| {
                Instant::now() < *until && id.as_ref().is_none_or(|id| *id == p.id)
            })
            .map(|(p, _)| p.clone());
        if cached.is_some() {
            return cached;
        }
        let id = id?;
        match self.fetch(&domain, &id).await {
            Ok(policy) => {
                tracing::info!(%domain, mode = ?policy.mode, mx = %policy.mx.join(","), "MTA-STS policy loaded");
                let keep = Duration::from_secs(policy.max_age).min(MAX_CACHE);
                self.cache
                    .lock()
                    .expect("MTA-STS cache")
                    .insert(domain, (policy.clone(), Instant::now() + keep));
                Some(policy)
            }
            Err(e) => {
                tracing::warn!(%domain, "MTA-STS policy announced but not fetched: {e}");
                None
            }
        }
    }

    /// GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.3): verified TLS, no
    /// redirects, 200 only, bounded size and time.
    async fn fetch(&self, domain: &str, id: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        let ips = self.resolver.ips(&host).await.map_err(|e| e.to_string())?;
        let ip = *ips.first().ok_or("no address")?;
        let work = async {
            let tcp = tokio::net::TcpStream::connect((ip, self.port))
                .await
                .map_err(|e| format!("connect to {host}: {e}"))?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| format!("{host} is not a TLS name"))?;
            let tls = tokio_rustls::TlsConnector::from(self.verified.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let request = hyper::Request::get("/.well-known/mta-sts.txt")
                .header("host", &host)
                .header("user-agent", concat!("facteur/", env!("CARGO_PKG_VERSION")))
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            if response.status() != 200 {
                return Err(format!("HTTP status {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_POLICY)
                .collect()
                .await
                .map_err(|e| format!("reading the policy: {e}"))?
                .to_bytes();
            let text = String::from_utf8(body.to_vec()).map_err(|_| "the policy is not UTF-8")?;
            parse_policy(id, &text)
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| "no answer within 30 s".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records_and_policies() {
        assert_eq!(
            txt_id(&["v=STSv1; id=20160831085700Z;".into()]).as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(
            txt_id(&["v=STSv1; id=a".into(), "v=STSv1; id=b".into()]),
            None,
            "two records"
        );
        assert_eq!(txt_id(&["v=spf1 -all".into()]), None);
        assert_eq!(txt_id(&["v=STSv1; id=bad-id!".into()]), None);
        let p = parse_policy(
            "1",
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.allows("mail.example.com") && p.allows("MAIL.example.com."));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("a.b.example.net"), "one label only (§4.1)");
        assert!(!p.allows("example.net") && !p.allows("evil.example.com"));
        assert!(parse_policy("1", "mode: enforce\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("1", "version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(parse_policy("1", "version: STSv1\nmode: sometimes\nmx: a\nmax_age: 1\n").is_err());
    }
}
