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
    /// Which rule set `tls` and `verified`.
    pub policy: Policy,
}

/// Why a target's TLS is what it is; shown with every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Opportunistic STARTTLS (RFC 7435), or the smarthost's configured TLS.
    Default,
    /// The destination's MTA-STS policy in enforce mode (RFC 8461 §4.2).
    MtaSts,
    /// Authenticated by the host's TLSA records (RFC 7672 §2.2).
    Dane,
    /// The host's TLSA records are all unusable: TLS required, not authenticated (RFC 7672 §2.2).
    DaneUnusable,
}

impl Policy {
    /// How an attempt's TLS is described, given whether TLS was used.
    pub fn describe(self, tls: TlsMode, encrypted: bool) -> &'static str {
        match (encrypted, self, tls) {
            (false, _, _) => "no TLS",
            (true, Policy::Dane, _) => "TLS, DANE-authenticated",
            (true, Policy::DaneUnusable, _) => "TLS, unauthenticated: no usable TLSA record",
            (true, Policy::MtaSts, _) => "TLS, MTA-STS-verified",
            (true, Policy::Default, TlsMode::Opportunistic) => "TLS",
            (true, Policy::Default, _) => "TLS, verified",
        }
    }
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
    /// DANE (RFC 7672) for MX hosts and transports, when the resolver vouches for them.
    pub dane: bool,
}

impl Default for Route {
    fn default() -> Route {
        Route {
            smarthost: None,
            transports: BTreeMap::new(),
            resolver: None,
            mx_port: 25,
            mta_sts: None,
            dane: false,
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
            dane: q.dane,
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
                    policy: Policy::Default,
                });
            }
            return Ok(out);
        }
        if let Some((host, port)) = self.transports.get(domain) {
            return self
                .plain_targets(domain, std::slice::from_ref(host), *port)
                .await;
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
        let mut targets = self.plain_targets(domain, &hosts, self.mx_port).await?;
        if enforce {
            // RFC 8461 §4.2: TLS with a certificate valid for the MX name, or no delivery.
            // A host DANE applies to keeps DANE (RFC 8461 §2: DANE takes precedence).
            for t in targets.iter_mut().filter(|t| t.policy == Policy::Default) {
                t.tls = TlsMode::Required;
                t.verified = self.mta_sts.as_ref().map(|s| s.verified.clone());
                t.policy = Policy::MtaSts;
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

    /// The addresses of `hosts` (the mail hosts of `domain`), with DANE applied per host.
    async fn plain_targets(
        &self,
        domain: &str,
        hosts: &[String],
        port: u16,
    ) -> Result<Vec<Target>, RouteError> {
        let mut out = Vec::new();
        let mut last = None;
        for host in hosts {
            let found = if self.dane {
                self.dane_addresses(domain, host, port).await
            } else {
                self.addresses(host, port)
                    .await
                    .map(|addrs| (addrs, TlsMode::Opportunistic, None, Policy::Default))
            };
            match found {
                Ok((addrs, tls, verified, policy)) => {
                    out.extend(addrs.into_iter().map(|addr| Target {
                        name: host.trim_end_matches('.').to_string(),
                        addr,
                        tls,
                        verified: verified.clone(),
                        auth: None,
                        policy,
                    }))
                }
                Err(e) => last = Some(e),
            }
        }
        match (out.is_empty(), last) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// A host's addresses and its TLS under RFC 7672 §2.2: when the resolver vouches for the
    /// addresses, the TLSA records at `_PORT._tcp.HOST` decide. Secure and usable: TLS required
    /// and authenticated by them; secure but none usable: TLS required, unauthenticated; none
    /// or insecure: opportunistic TLS as before. A failed TLSA lookup makes the host unusable
    /// for now (a temporary error: the next host is tried, then the message waits).
    async fn dane_addresses(
        &self,
        domain: &str,
        host: &str,
        port: u16,
    ) -> Result<
        (
            Vec<SocketAddr>,
            TlsMode,
            Option<Arc<rustls::ClientConfig>>,
            Policy,
        ),
        RouteError,
    > {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let Some(resolver) = self
            .resolver
            .as_ref()
            .filter(|_| bare.parse::<std::net::IpAddr>().is_err())
        else {
            let addrs = self.addresses(host, port).await?;
            return Ok((addrs, TlsMode::Opportunistic, None, Policy::Default));
        };
        let ips = match resolver.ips_authenticated(host).await {
            Ok(ips) => ips,
            Err(e) => return Err(address_error(host, e)),
        };
        let addrs = ips
            .value
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if !ips.secure {
            return Ok((addrs, TlsMode::Opportunistic, None, Policy::Default));
        }
        let tlsa = resolver.tlsa(host, port).await.map_err(|e| {
            RouteError::Temporary(format!(
                "DANE: the TLSA records of {host} cannot be read, so it is not used for now: {e}"
            ))
        })?;
        if !tlsa.secure || tlsa.value.is_empty() {
            return Ok((addrs, TlsMode::Opportunistic, None, Policy::Default));
        }
        let usable = crate::dane::usable(&tlsa.value);
        if usable.is_empty() {
            tracing::info!(%host, records = tlsa.value.len(),
                "DANE: no usable TLSA record (PKIX usages or unknown types); TLS required without authentication");
            return Ok((
                addrs,
                TlsMode::Required,
                Some(crate::client::opportunistic_tls()),
                Policy::DaneUnusable,
            ));
        }
        let config = crate::dane::client_config(host, domain, usable);
        Ok((addrs, TlsMode::Required, Some(config), Policy::Dane))
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
                Err(e) => Err(address_error(host, e)),
            };
        }
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(RouteError::Temporary(format!("cannot resolve {host}: {e}"))),
        }
    }
}

fn address_error(host: &str, e: facteur_dns::DnsError) -> RouteError {
    match e {
        facteur_dns::DnsError::NotFound(why) => {
            RouteError::Temporary(format!("the mail host {host} has no address ({why})"))
        }
        e => RouteError::Temporary(format!("DNS lookup of {host} failed: {e}")),
    }
}
