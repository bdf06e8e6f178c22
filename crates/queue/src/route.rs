//! Where a domain's mail goes (RFC 5321 §5.1): the smarthost when one is set, else a fixed
//! transport for the domain, else its MX hosts by preference (equal preferences in random
//! order), the domain itself when it has no MX (implicit MX), nowhere when it publishes a null
//! MX (RFC 7505). Each host's addresses are tried in turn, IPv6 first.

use crate::client::TlsMode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// One address to try.
#[derive(Clone)]
pub struct Target {
    /// The host name (SNI, certificate checks, logs).
    pub name: String,
    pub addr: SocketAddr,
    pub tls: TlsMode,
    /// A certificate verifier for this target (a smarthost's own CA).
    pub verified: Option<Arc<rustls::ClientConfig>>,
    /// AUTH PLAIN credentials (smarthost).
    pub auth: Option<(String, String)>,
}

impl Target {
    pub fn shown(&self) -> String {
        format!("{} [{}]:{}", self.name, self.addr.ip(), self.addr.port())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The domain cannot receive mail (does not exist, null MX): bounce.
    Permanent(String),
    /// DNS failure or the like: retry later.
    Temporary(String),
}

/// A relay for everything.
#[derive(Clone)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub verified: Option<Arc<rustls::ClientConfig>>,
    pub auth: Option<(String, String)>,
}

#[derive(Clone)]
pub struct Route {
    pub smarthost: Option<Smarthost>,
    /// domain -> (host, port)
    pub transports: BTreeMap<String, (String, u16)>,
    pub resolver: Option<facteur_dns::Resolver>,
    /// The port MX hosts are reached on (25).
    pub mx_port: u16,
    /// MTA-STS policies (RFC 8461), when enabled.
    pub mta_sts: Option<Arc<crate::mta_sts::MtaSts>>,
}

impl Default for Route {
    fn default() -> Route {
        Route {
            smarthost: None,
            transports: BTreeMap::new(),
            resolver: None,
            mx_port: 25,
            mta_sts: None,
        }
    }
}

impl Route {
    /// The route from `[queue]`; `password` is the smarthost's, read by the caller (before
    /// privileges are dropped).
    pub fn from_config(
        q: &facteur_config::Queue,
        password: Option<String>,
        resolver: Option<facteur_dns::Resolver>,
    ) -> Result<Route, String> {
        let host_port = |key: &str, raw: &str| -> Result<(String, u16), String> {
            let (host, port) = raw
                .rsplit_once(':')
                .ok_or_else(|| format!("key `{key}`: `{raw}` is not host:port"))?;
            let port = port
                .parse()
                .map_err(|_| format!("key `{key}`: `{port}` is not a port"))?;
            Ok((host.trim_matches(['[', ']']).to_string(), port))
        };
        let mut transports = BTreeMap::new();
        for (domain, target) in &q.transports {
            transports.insert(
                domain.to_ascii_lowercase(),
                host_port("queue.transports", target)?,
            );
        }
        let smarthost = match &q.smarthost {
            None => None,
            Some(s) => {
                let (host, port) = host_port("queue.smarthost.host", &s.host)?;
                let tls = match s.tls.as_str() {
                    "starttls" => TlsMode::Required,
                    "implicit" => TlsMode::Implicit,
                    other => {
                        return Err(format!(
                            "key `queue.smarthost.tls`: `{other}`: use \"starttls\" or \"implicit\""
                        ));
                    }
                };
                let verified = crate::client::verified_tls(s.ca_file.as_deref())
                    .map_err(|e| format!("key `queue.smarthost.ca_file`: {e}"))?;
                let auth = (!s.username.is_empty())
                    .then(|| (s.username.clone(), password.clone().unwrap_or_default()));
                Some(Smarthost {
                    host,
                    port,
                    tls,
                    verified: Some(verified),
                    auth,
                })
            }
        };
        Ok(Route {
            smarthost,
            transports,
            resolver,
            mx_port: q.smtp_port,
            mta_sts: None,
        })
    }

    /// The addresses to try for `domain`, in order.
    pub async fn targets(&self, domain: &str) -> Result<Vec<Target>, RouteError> {
        if let Some(s) = &self.smarthost {
            let mut out = Vec::new();
            for addr in self.addresses(&s.host, s.port).await? {
                out.push(Target {
                    name: s.host.clone(),
                    addr,
                    tls: s.tls,
                    verified: s.verified.clone(),
                    auth: s.auth.clone(),
                });
            }
            return Ok(out);
        }
        if let Some((host, port)) = self.transports.get(domain) {
            return self.plain_targets(std::slice::from_ref(host), *port).await;
        }
        let Some(resolver) = &self.resolver else {
            return Err(RouteError::Temporary("no DNS resolver".into()));
        };
        use facteur_dns::{DnsError, MxAnswer};
        let hosts = match resolver.mx(domain).await {
            Ok(MxAnswer::Records(mx)) => mx.into_iter().map(|m| m.exchange).collect::<Vec<_>>(),
            // RFC 5321 §5.1: no MX, the domain itself is the implicit MX.
            Ok(MxAnswer::NoMx) => vec![domain.to_string()],
            // RFC 7505 §3: a null MX means the domain accepts no mail.
            Ok(MxAnswer::NullMx) => {
                return Err(RouteError::Permanent(format!(
                    "556 5.1.10 {domain} publishes a null MX: it accepts no mail (RFC 7505)"
                )));
            }
            Err(DnsError::NotFound(why)) => {
                return Err(RouteError::Permanent(format!(
                    "550 5.1.2 the domain {domain} does not exist ({why})"
                )));
            }
            Err(e) => {
                return Err(RouteError::Temporary(format!(
                    "DNS lookup of the MX of {domain} failed: {e}"
                )));
            }
        };
        let mut hosts = hosts;
        let policy = match &self.mta_sts {
            Some(sts) => sts.policy(domain).await,
            None => None,
        };
        let enforce = policy
            .as_ref()
            .is_some_and(|p| p.mode == crate::mta_sts::Mode::Enforce);
        if let Some(p) = &policy
            && p.mode != crate::mta_sts::Mode::None
        {
            let (allowed, refused): (Vec<String>, Vec<String>) =
                hosts.into_iter().partition(|h| p.allows(h));
            if !refused.is_empty() {
                tracing::warn!(%domain, mode = ?p.mode, hosts = %refused.join(","),
                    "MTA-STS: MX hosts not in the domain's policy{}",
                    if enforce { "; skipped" } else { " (testing mode: used anyway)" });
            }
            hosts = if enforce {
                allowed
            } else {
                allowed.into_iter().chain(refused).collect()
            };
            if hosts.is_empty() {
                return Err(RouteError::Temporary(format!(
                    "MTA-STS: no MX host of {domain} matches its policy ({}); not delivering elsewhere",
                    p.mx.join(", ")
                )));
            }
        }
        let mut targets = self.plain_targets(&hosts, self.mx_port).await?;
        if enforce {
            // RFC 8461 §4.2: TLS with a certificate valid for the MX name, or no delivery.
            for t in &mut targets {
                t.tls = TlsMode::Required;
                t.verified = self.mta_sts.as_ref().map(|s| s.verified.clone());
            }
        }
        if targets.is_empty() {
            return Err(RouteError::Temporary(format!(
                "no address for the mail hosts of {domain} ({})",
                hosts.join(", ")
            )));
        }
        Ok(targets)
    }

    async fn plain_targets(&self, hosts: &[String], port: u16) -> Result<Vec<Target>, RouteError> {
        let mut out = Vec::new();
        let mut last = None;
        for host in hosts {
            match self.addresses(host, port).await {
                Ok(addrs) => out.extend(addrs.into_iter().map(|addr| Target {
                    name: host.trim_end_matches('.').to_string(),
                    addr,
                    tls: TlsMode::Opportunistic,
                    verified: None,
                    auth: None,
                })),
                Err(e) => last = Some(e),
            }
        }
        match (out.is_empty(), last) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// A host's addresses: an IP literal as is; a name through the configured resolver, or the
    /// system's when none is configured.
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, RouteError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if let Some(resolver) = &self.resolver {
            return match resolver.ips(host).await {
                Ok(ips) => Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect()),
                Err(facteur_dns::DnsError::NotFound(why)) => Err(RouteError::Temporary(format!(
                    "the mail host {host} has no address ({why})"
                ))),
                Err(e) => Err(RouteError::Temporary(format!(
                    "DNS lookup of {host} failed: {e}"
                ))),
            };
        }
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(RouteError::Temporary(format!("cannot resolve {host}: {e}"))),
        }
    }
}
