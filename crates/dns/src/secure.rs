//! Lookups whose DNSSEC status matters: the addresses of an MX host and its TLSA records, for
//! DANE (RFC 7672). facteur does not validate signatures itself: like Postfix
//! (`smtp_dns_support_level = dnssec`), it asks the configured recursive resolver, which should
//! be a validating one on the same machine (unbound, systemd-resolved with DNSSEC=yes, BIND),
//! and believes its AD bit (RFC 4035 §3.2.3, RFC 6840 §5.7-5.8). Decision 0019 says why.
//!
//! hickory-resolver without its own validator neither asks for nor reports the AD bit, so these
//! questions go out here, one datagram each: AD and EDNS(0) DO set (RFC 6840 §5.7: a resolver
//! sets AD only for clients that signal they understand it), the answer checked against the
//! question and its source address, TCP when it comes back truncated (RFC 7766 §5). Answers are
//! kept for their TTL (at most five minutes) in a small cache of their own.

use crate::{DnsError, Resolver, display, fqdn, rcode_name};
use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer and whether the resolver vouched for it (AD): "secure" in RFC 4033 §5's terms;
/// otherwise "insecure" (unsigned zone, or a resolver that does not validate). A "bogus"
/// answer never arrives: a validating resolver answers SERVFAIL, a [`DnsError::Temporary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated<T> {
    pub value: T,
    pub secure: bool,
}

/// One TLSA record (RFC 6698 §2.1), the numbers as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218).
    pub usage: u8,
    /// 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 the data itself, 1 SHA2-256, 2 SHA2-512.
    pub matching: u8,
    pub data: Vec<u8>,
}

/// EDNS(0) payload we accept over UDP (the DNS flag day 2020 value).
const PAYLOAD: u16 = 1232;
/// Longest time an answer is kept, whatever its TTL.
const MAX_TTL: Duration = Duration::from_secs(300);
/// Negative answers (NXDOMAIN, NODATA) are kept this long: no SOA minimum is read.
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; the cache is emptied when full.
const CACHE_ENTRIES: usize = 4096;

/// One answer as the cache keeps it.
#[derive(Clone)]
struct Answer {
    rcode: ResponseCode,
    secure: bool,
    records: Vec<Record>,
}

#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<(String, RecordType), (Instant, Answer)>>,
}

pub(crate) type SharedCache = Arc<Cache>;

impl Resolver {
    /// The addresses of `host` (AAAA then A) and whether every family that has addresses was
    /// authenticated (RFC 7672 §2.2.2: TLSA records are looked up only for hosts whose address
    /// records are secure). Errors as [`Resolver::ips`].
    pub async fn ips_authenticated(
        &self,
        host: &str,
    ) -> Result<Authenticated<Vec<IpAddr>>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Authenticated {
                value: vec![ip],
                secure: false,
            });
        }
        let name = fqdn(host)?;
        let (v6, v4) = tokio::join!(
            self.ask(&name, RecordType::AAAA),
            self.ask(&name, RecordType::A)
        );
        let mut ips = Vec::new();
        let mut secure = true;
        let mut failure = None;
        let mut nxdomain = false;
        for answer in [v6, v4] {
            match answer {
                Ok(a) if a.rcode == ResponseCode::NoError => {
                    let before = ips.len();
                    ips.extend(a.records.iter().filter_map(|r| match &r.data {
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    }));
                    if ips.len() > before && !a.secure {
                        secure = false;
                    }
                }
                Ok(a) if a.rcode == ResponseCode::NXDomain => nxdomain = true,
                Ok(a) => failure = Some(self.rcode_error(host, "address", a.rcode)),
                Err(e) => failure = Some(e),
            }
        }
        if !ips.is_empty() {
            return Ok(Authenticated { value: ips, secure });
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Err(DnsError::NotFound(if nxdomain {
            format!(
                "{} does not exist (the name server answered NXDOMAIN)",
                display(host)
            )
        } else {
            format!("{} has no address: no AAAA or A record", display(host))
        }))
    }

    /// The TLSA records of `_PORT._tcp.HOST` (RFC 6698 §3, RFC 7672 §2.2.3), with their DNSSEC
    /// status. No record (NXDOMAIN or NODATA) is an empty list, secure when the denial was
    /// authenticated. SERVFAIL (which a validating resolver also gives for bogus answers) and
    /// timeouts are [`DnsError::Temporary`]: RFC 7672 §2.2 makes that host unusable for now.
    pub async fn tlsa(&self, host: &str, port: u16) -> Result<Authenticated<Vec<Tlsa>>, DnsError> {
        let owner = fqdn(&format!("_{port}._tcp.{}", host.trim_end_matches('.')))?;
        let answer = self.ask(&owner, RecordType::TLSA).await?;
        match answer.rcode {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(Authenticated {
                value: answer
                    .records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TLSA(t) => Some(Tlsa {
                            usage: t.cert_usage.into(),
                            selector: t.selector.into(),
                            matching: t.matching.into(),
                            data: t.cert_data.clone(),
                        }),
                        _ => None,
                    })
                    .collect(),
                secure: answer.secure,
            }),
            code => Err(self.rcode_error(&owner.to_ascii(), "TLSA", code)),
        }
    }

    fn rcode_error(&self, name: &str, rtype: &str, code: ResponseCode) -> DnsError {
        DnsError::Temporary(format!(
            "{rtype} lookup of {}: the name server answered {} ({code})",
            display(name.trim_end_matches('.')),
            rcode_name(code)
        ))
    }

    /// One question, from the cache or from the name servers in turn.
    async fn ask(&self, name: &Name, rtype: RecordType) -> Result<Answer, DnsError> {
        let key = (name.to_ascii().to_ascii_lowercase(), rtype);
        if let Some(answer) = self.cache.get(&key) {
            return Ok(answer);
        }
        let mut last = None;
        for server in self.nameservers.iter() {
            for _ in 0..self.attempts {
                match exchange(*server, name, rtype, self.timeout).await {
                    Ok(answer) => {
                        self.cache.put(key, &answer);
                        return Ok(answer);
                    }
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(DnsError::Temporary(format!(
            "{rtype} lookup of {}: {}",
            display(name.to_ascii().trim_end_matches('.')),
            last.unwrap_or_else(|| "no name server is configured".into())
        )))
    }
}

impl Cache {
    fn get(&self, key: &(String, RecordType)) -> Option<Answer> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((until, answer)) if *until > Instant::now() => Some(answer.clone()),
            _ => None,
        }
    }

    fn put(&self, key: (String, RecordType), answer: &Answer) {
        let ttl = answer
            .records
            .iter()
            .map(|r| Duration::from_secs(r.ttl.into()))
            .min()
            .unwrap_or(NEGATIVE_TTL)
            .min(MAX_TTL);
        if ttl.is_zero() || !matches!(answer.rcode, ResponseCode::NoError | ResponseCode::NXDomain)
        {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now() + ttl, answer.clone()));
    }
}

/// Asks `server` once: over UDP, then over TCP when the answer is truncated.
async fn exchange(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Answer, String> {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    // RFC 6840 §5.7: AD in a query asks for AD in the answer.
    query.metadata.authentic_data = true;
    let mut edns = Edns::new();
    edns.set_max_payload(PAYLOAD);
    // RFC 3225: DO, for resolvers that set AD only for DNSSEC-aware clients.
    edns.set_dnssec_ok(true);
    query.edns = Some(edns);
    query.add_query(Query::query(name.clone(), rtype));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(timeout, udp(server, &bytes))
        .await
        .map_err(|_| format!("no answer from {server} within {} s", timeout.as_secs()))??;
    let reply = if reply.metadata.truncation {
        tokio::time::timeout(timeout, tcp(server, &bytes))
            .await
            .map_err(|_| {
                format!(
                    "no answer from {server} over TCP within {} s",
                    timeout.as_secs()
                )
            })??
    } else {
        reply
    };
    check(&query, &reply).map_err(|why| format!("{server}: {why}"))?;
    let secure = reply.metadata.authentic_data;
    Ok(Answer {
        rcode: reply.metadata.response_code,
        secure,
        // The records of the asked type, at the name or at the end of its CNAME chain (the
        // resolver follows it); RRSIGs and the CNAMEs themselves are dropped.
        records: reply
            .answers
            .into_iter()
            .filter(|r| r.record_type() == rtype)
            .collect(),
    })
}

/// The reply answers this query: same id, a response, the same question (RFC 5452 §4.3).
fn check(query: &Message, reply: &Message) -> Result<(), String> {
    if reply.metadata.id != query.metadata.id
        || reply.metadata.message_type != MessageType::Response
    {
        return Err("an answer to another question".into());
    }
    if reply.queries != query.queries {
        return Err("an answer naming another question".into());
    }
    Ok(())
}

async fn udp(server: SocketAddr, bytes: &[u8]) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .send_to(bytes, server)
        .await
        .map_err(|e| format!("cannot send to {server}: {e}"))?;
    let mut buf = vec![0u8; PAYLOAD as usize];
    loop {
        let (len, from) = socket
            .recv_from(&mut buf)
            .await
            .map_err(|e| format!("receiving from {server}: {e}"))?;
        // Datagrams from anywhere else are ignored (RFC 5452 §4.3).
        if from != server {
            continue;
        }
        match Message::from_vec(&buf[..len]) {
            Ok(m) => return Ok(m),
            Err(e) => return Err(format!("{server} sent a malformed answer: {e}")),
        }
    }
}

/// RFC 1035 §4.2.2: two octets of length, then the message.
async fn tcp(server: SocketAddr, bytes: &[u8]) -> Result<Message, String> {
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| format!("cannot connect to {server} over TCP: {e}"))?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| format!("writing to {server}: {e}"))?;
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| format!("reading from {server}: {e}"))?;
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| format!("reading from {server}: {e}"))?;
    Message::from_vec(&reply).map_err(|e| format!("{server} sent a malformed answer: {e}"))
}
