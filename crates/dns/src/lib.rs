//! DNS lookups for outbound mail: MX with priorities (RFC 5321 §5.1), null MX (RFC 7505),
//! the addresses of a mail host (AAAA then A) and TXT records (MTA-STS, later SPF and DMARC).
//!
//! A thin layer over hickory-resolver (docs/decisions/0017): it asks the recursive name servers
//! of `[dns]` (or of `/etc/resolv.conf`), turns answers into the few shapes the queue needs, and
//! sorts every failure into permanent ([`DnsError::NotFound`]) or temporary
//! ([`DnsError::Temporary`]) with a sentence an administrator can read. Nothing here panics on
//! an answer, whatever a server sends. No cache beyond the resolver's own (TTL-bound).
#![forbid(unsafe_code)]

mod secure;
pub use secure::{Authenticated, Tlsa};

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver as HickoryResolver, TokioResolver};
use rand::seq::SliceRandom;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How to resolve: the configuration's `[dns]` section, converted by the caller (the layering
/// checked by crates/testkit/tests/dependency_rules.rs keeps this crate below facteur-config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverOptions {
    /// Recursive name servers; empty: those of `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Wait for one answer (at least one second is used).
    pub timeout: Duration,
    /// Tries per name server, the first included (at least 1).
    pub attempts: u32,
}

impl Default for ResolverOptions {
    /// `[dns]`'s defaults, as resolv.conf(5)'s: the system's servers, 5 s, 2 tries.
    fn default() -> Self {
        ResolverOptions {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

/// The MX answer for a domain, ready for RFC 5321 §5.1 routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// Mail hosts, lowest preference first; hosts of equal preference in random order
    /// (RFC 5321 §5.1: "randomize them to spread the load").
    Records(Vec<Mx>),
    /// The domain publishes a null MX, `0 .` (RFC 7505 §3): it accepts no mail.
    NullMx,
    /// The domain exists but has no MX record: the domain itself is the implicit MX
    /// (RFC 5321 §5.1), so callers look up its addresses.
    NoMx,
}

/// One MX record (RFC 1035 §3.3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail host's name in ASCII (A-labels for IDNs), without the trailing dot.
    pub exchange: String,
}

/// Why a lookup gave no usable answer. The text says what happened, for logs and DSNs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Permanent: the name does not exist (NXDOMAIN, RFC 1035 §4.1.1 RCODE 3; RFC 8020: nothing
    /// below it exists either), or it cannot be a domain name at all, or (for [`Resolver::ips`])
    /// the host exists with no address.
    #[error("{0}")]
    NotFound(String),
    /// Try again later: no answer in time, SERVFAIL, REFUSED, a network error, a malformed
    /// answer.
    #[error("{0}")]
    Temporary(String),
}

impl DnsError {
    /// True for [`DnsError::NotFound`]: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DnsError::NotFound(_))
    }
}

/// The resolver could not be set up (for instance `/etc/resolv.conf` is unreadable and no
/// `dns.nameservers` are configured).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct SetupError(String);

/// Asks the configured recursive name servers. Cheap to clone: clones share connections and
/// the resolver's cache.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    /// For error messages: where the questions went, how long each wait was, how many tries.
    servers: String,
    timeout: Duration,
    attempts: usize,
    /// The same servers, for the lookups whose AD bit matters (secure.rs).
    nameservers: std::sync::Arc<Vec<SocketAddr>>,
    cache: secure::SharedCache,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("servers", &self.servers)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl Resolver {
    /// A resolver asking `nameservers` over UDP (TCP when an answer is truncated, RFC 7766 §5),
    /// or those of `/etc/resolv.conf` when the list is empty. `timeout` and `attempts` apply in
    /// both cases. Needs no runtime; lookups need a tokio one.
    pub fn new(options: &ResolverOptions) -> Result<Resolver, SetupError> {
        let provider = TokioRuntimeProvider::default();
        let mut nameservers = options.nameservers.clone();
        let (mut builder, servers) = if options.nameservers.is_empty() {
            let (config, system_options) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| SetupError(format!("reading /etc/resolv.conf: {e}")))?;
            for ns in config.name_servers() {
                if let Some(port) = ns
                    .connections
                    .iter()
                    .find(|c| matches!(c.protocol, ProtocolConfig::Udp))
                    .map(|c| c.port)
                {
                    nameservers.push(SocketAddr::new(ns.ip, port));
                }
            }
            let mut builder = HickoryResolver::builder_with_config(config, provider);
            *builder.options_mut() = system_options;
            (builder, "the name servers of /etc/resolv.conf".to_string())
        } else {
            let name_servers = options
                .nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    // Trust NXDOMAIN and empty answers: they are the recursive server's verdict.
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            let listed: Vec<String> = options.nameservers.iter().map(|a| a.to_string()).collect();
            (
                HickoryResolver::builder_with_config(
                    ResolverConfig::from_name_servers(name_servers),
                    provider,
                ),
                listed.join(", "),
            )
        };
        let timeout = options.timeout.max(Duration::from_secs(1));
        let attempts = (options.attempts.max(1)) as usize;
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        // hickory counts retries after the first try; `dns.attempts` counts tries.
        opts.attempts = attempts - 1;
        // Mail routing follows DNS only (as Postfix's smtp_host_lookup = dns): no /etc/hosts.
        opts.use_hosts_file = ResolveHosts::Never;
        let inner = builder.build().map_err(|e| SetupError(e.to_string()))?;
        Ok(Resolver {
            inner,
            servers,
            timeout,
            attempts,
            nameservers: std::sync::Arc::new(nameservers),
            cache: Default::default(),
        })
    }

    /// The MX records of `domain` (RFC 5321 §5.1): sorted by preference, equal preferences
    /// shuffled; [`MxAnswer::NullMx`] for RFC 7505's `0 .`; [`MxAnswer::NoMx`] when the domain
    /// exists without MX (implicit MX). NXDOMAIN is [`DnsError::NotFound`]: a domain that does
    /// not exist has no implicit MX either.
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let name = fqdn(domain)?;
        let lookup = match self.inner.lookup(name, RecordType::MX).await {
            Ok(lookup) => lookup,
            Err(e) => {
                return match self.classify(domain, "MX", &e) {
                    Absent::NoRecords => Ok(MxAnswer::NoMx),
                    Absent::Error(e) => Err(e),
                };
            }
        };
        let records: Vec<(u16, &Name)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, &mx.exchange)),
                _ => None,
            })
            .collect();
        Ok(sort_mx(records))
    }

    /// The addresses of `host`: AAAA then A (RFC 5321 §5.1 leaves the order to the client;
    /// RFC 6724 §6 prefers IPv6), each family in the server's order. An IP address is returned
    /// as is. The two lookups run together; one family failing temporarily is ignored when the
    /// other has addresses. Never `Ok` with an empty list: a host with neither record is
    /// [`DnsError::NotFound`].
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = fqdn(host)?;
        let (v6, v4) = tokio::join!(
            self.inner.lookup(name.clone(), RecordType::AAAA),
            self.inner.lookup(name, RecordType::A)
        );
        let mut ips = Vec::new();
        let mut failures = Vec::new();
        for (result, rtype) in [(v6, "AAAA"), (v4, "A")] {
            match result {
                Ok(lookup) => ips.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })),
                Err(e) => failures.push(self.classify(host, rtype, &e)),
            }
        }
        if !ips.is_empty() {
            return Ok(ips);
        }
        // Nothing found: a temporary failure wins (the address may be there next time), then
        // NXDOMAIN, then "exists without addresses".
        let mut not_found = None;
        for failure in failures {
            match failure {
                Absent::Error(e @ DnsError::Temporary(_)) => return Err(e),
                Absent::Error(e) => not_found = Some(e),
                Absent::NoRecords => {}
            }
        }
        Err(not_found.unwrap_or_else(|| {
            DnsError::NotFound(format!(
                "{} has no address: no AAAA or A record",
                display(host)
            ))
        }))
    }

    /// The TXT records at `name`, each record's character-strings concatenated (RFC 7208 §3.3,
    /// RFC 8461 §3.1 read them so), invalid UTF-8 replaced. Empty when the name exists without
    /// TXT; NXDOMAIN is [`DnsError::NotFound`].
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fq = fqdn(name)?;
        match self.inner.lookup(fq, RecordType::TXT).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(String::from_utf8_lossy(&txt.txt_data.concat()).into()),
                    _ => None,
                })
                .collect()),
            Err(e) => match self.classify(name, "TXT", &e) {
                Absent::NoRecords => Ok(Vec::new()),
                Absent::Error(e) => Err(e),
            },
        }
    }

    /// The IPv4 addresses (A records, RFC 1035 §3.4.1) at `name`, in the server's order, as a
    /// DNS list answers them (RFC 5782 §2.1: a listed entry has an A record, usually in
    /// 127.0.0.0/8). Empty when the name exists without A record (NODATA); NXDOMAIN, the usual
    /// "not listed", is [`DnsError::NotFound`].
    pub async fn a_records(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let fq = fqdn(name)?;
        match self.inner.lookup(fq, RecordType::A).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect()),
            Err(e) => match self.classify(name, "A", &e) {
                Absent::NoRecords => Ok(Vec::new()),
                Absent::Error(e) => Err(e),
            },
        }
    }

    /// The names the PTR records of `ip` give (RFC 1035 §3.5 `in-addr.arpa`, RFC 3596 §2.5
    /// `ip6.arpa`), in ASCII (A-labels) without the trailing dot, in the server's order. An
    /// IPv4-mapped IPv6 address is looked up as the IPv4 address it carries. Empty when the
    /// reverse name exists without PTR (NODATA); NXDOMAIN is [`DnsError::NotFound`]. The names
    /// are as published: nothing here checks that they are host names or point back to `ip`.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let ip = ip.to_canonical();
        let mut owner = Name::from(ip);
        owner.set_fqdn(true);
        let shown = owner.to_ascii();
        match self.inner.lookup(owner, RecordType::PTR).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::PTR(ptr) => Some(ptr.0.to_ascii().trim_end_matches('.').to_string()),
                    _ => None,
                })
                .filter(|name| !name.is_empty())
                .collect()),
            Err(e) => match self.classify(&shown, "PTR", &e) {
                Absent::NoRecords => Ok(Vec::new()),
                Absent::Error(e) => Err(e),
            },
        }
    }

    /// The longest one lookup may take: every try of every name server waited out
    /// (`timeout` × `attempts` × servers), plus a second. Callers that start several lookups
    /// can bound them all with it, as a backstop to the resolver's own timeouts.
    pub fn max_wait(&self) -> Duration {
        let servers = u32::try_from(self.nameservers.len().max(1)).unwrap_or(u32::MAX);
        let tries = u32::try_from(self.attempts).unwrap_or(u32::MAX);
        self.timeout
            .saturating_mul(tries.saturating_mul(servers))
            .saturating_add(Duration::from_secs(1))
    }

    /// Sorts a resolver error: an empty NOERROR answer, NXDOMAIN (permanent), or temporary.
    fn classify(&self, name: &str, rtype: &str, e: &NetError) -> Absent {
        let name = display(name);
        match e {
            NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => match nr.response_code {
                // RFC 2308 §2.1: NXDOMAIN, the name does not exist.
                ResponseCode::NXDomain => Absent::Error(DnsError::NotFound(format!(
                    "{name} does not exist (the name server answered NXDOMAIN)"
                ))),
                // RFC 2308 §2.2: NODATA, the name exists without this type.
                _ => Absent::NoRecords,
            },
            NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
                Absent::Error(DnsError::Temporary(format!(
                    "{rtype} lookup of {name}: the name server answered {} ({})",
                    rcode_name(*code),
                    code
                )))
            }
            NetError::Timeout => Absent::Error(DnsError::Temporary(format!(
                "{rtype} lookup of {name}: no answer from {} within {} s ({} {})",
                self.servers,
                self.timeout.as_secs(),
                self.attempts,
                if self.attempts == 1 { "try" } else { "tries" }
            ))),
            NetError::NoConnections => Absent::Error(DnsError::Temporary(format!(
                "{rtype} lookup of {name}: no name server could be reached ({})",
                self.servers
            ))),
            other => Absent::Error(DnsError::Temporary(format!(
                "{rtype} lookup of {name} through {}: {other}",
                self.servers
            ))),
        }
    }
}

/// A failed lookup: no record of the type (not an error for the caller), or an error.
enum Absent {
    NoRecords,
    Error(DnsError),
}

/// RFC 5321 §5.1 ordering and RFC 7505 §3/§4.3 null MX.
fn sort_mx(records: Vec<(u16, &Name)>) -> MxAnswer {
    if records.is_empty() {
        // NOERROR with only other types (a CNAME chain ending without MX): implicit MX.
        return MxAnswer::NoMx;
    }
    // RFC 7505 §3: a null MX is the only MX of its domain. A "." beside real MX records is a
    // misconfiguration; it names no host, so it is dropped and the real ones are used.
    let mut mx: Vec<Mx> = records
        .iter()
        .filter(|(_, exchange)| !exchange.is_root())
        .map(|(preference, exchange)| Mx {
            preference: *preference,
            exchange: exchange.to_ascii().trim_end_matches('.').to_string(),
        })
        .filter(|m| !m.exchange.is_empty())
        .collect();
    if mx.is_empty() {
        return MxAnswer::NullMx;
    }
    // Shuffle, then a stable sort: equal preferences stay in random order (RFC 5321 §5.1).
    mx.shuffle(&mut rand::rng());
    mx.sort_by_key(|m| m.preference);
    MxAnswer::Records(mx)
}

/// `name` as a fully qualified DNS name: IDNA for U-labels (RFC 5890), a trailing dot so no
/// search domain is ever appended (RFC 5321 §5.1 names are fully qualified). A name that
/// cannot be encoded cannot exist: [`DnsError::NotFound`].
fn fqdn(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(DnsError::NotFound(format!(
            "`{}` is not a domain name",
            display(name)
        )));
    }
    let mut parsed = Name::from_utf8(trimmed).map_err(|e| {
        DnsError::NotFound(format!("`{}` is not a domain name: {e}", display(name)))
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// The name as given, without the trailing dot, control characters escaped (it goes into
/// logs and DSNs).
fn display(name: &str) -> String {
    name.trim_end_matches('.').escape_debug().to_string()
}

/// RFC 1035 §4.1.1 and RFC 6895 §2.3 mnemonics.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn null_mx_alone_and_beside_real_records() {
        let root = Name::root();
        assert_eq!(sort_mx(vec![(0, &root)]), MxAnswer::NullMx);
        let mx = n("mx.example.com.");
        let MxAnswer::Records(r) = sort_mx(vec![(0, &root), (10, &mx)]) else {
            panic!("real MX beside a null one");
        };
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].exchange, "mx.example.com");
        assert_eq!(sort_mx(vec![]), MxAnswer::NoMx);
    }

    #[test]
    fn names_are_fully_qualified_and_idna_encoded() {
        assert_eq!(fqdn("example.com").unwrap().to_ascii(), "example.com.");
        assert_eq!(fqdn("example.com.").unwrap().to_ascii(), "example.com.");
        assert_eq!(
            fqdn("bücher.example").unwrap().to_ascii(),
            "xn--bcher-kva.example."
        );
        assert!(fqdn("").unwrap_err().is_permanent());
        assert!(fqdn(&"a".repeat(64)).unwrap_err().is_permanent());
        assert!(fqdn("a..b").is_err());
    }

    #[test]
    fn builds_without_a_runtime() {
        let resolver = Resolver::new(&ResolverOptions {
            nameservers: vec!["127.0.0.1:53".parse().unwrap()],
            timeout: Duration::from_millis(10),
            attempts: 0,
        })
        .unwrap();
        assert_eq!(resolver.timeout, Duration::from_secs(1));
        assert_eq!(resolver.attempts, 1);
        assert_eq!(resolver.servers, "127.0.0.1:53");
    }

    #[test]
    fn rcodes_have_their_mnemonics() {
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::Unknown(3841)), "RCODE 3841");
    }
}
