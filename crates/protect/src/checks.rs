//! Connection checks on the MX, as Postfix's smtpd restrictions that administrators know
//! (postconf(5)): `reject_rbl_client` and `permit_dnswl_client` (with postscreen's weights as
//! scores), `reject_unknown_reverse_client_hostname`, `reject_invalid_helo_hostname`,
//! `reject_non_fqdn_helo_hostname`, `reject_non_fqdn_sender`, `reject_non_fqdn_recipient` and
//! `reject_unknown_sender_domain`.
//!
//! Each check is configured as a [`Rule`]: a hard rule (the SMTP reply Postfix would give, with
//! its RFC 3463 enhanced status code), a score added to the message's spam score, or off. A
//! check that is off asks nothing and reports nothing. The functions here only look and
//! report [`Finding`]s; the SMTP server decides when to send a refusal (at once, or at RCPT as
//! Postfix's `smtpd_delay_reject`) and adds the scores up.
//!
//! A temporary DNS failure never leads to a permanent refusal: at most a `450`, and for the
//! DNS lists and the reverse DNS nothing but a log line or a note.
//!
//! Findings whose rule is [`Rule::Off`] are notes: they refuse nothing and weigh nothing, and
//! exist so the log says what was seen (a reverse name that does not resolve back, a lookup
//! that failed for now, a refusal a whitelist waived).

use facteur_dns::{DnsError, MxAnswer, Resolver};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tokio::task::JoinSet;

/// What a check does when it matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Not checked: no lookup, no finding.
    Off,
    /// The hard rule: refuse with the check's SMTP reply (for a DNS whitelist: let the client
    /// pass, see [`ListZone`]).
    Reject,
    /// Add this much to the message's spam score (negative for a whitelist).
    Score(f64),
}

/// One DNS list zone (RFC 5782): a DNSBL (`zen.spamhaus.org`) or a DNSWL (`list.dnswl.org`).
///
/// For a DNSWL, [`Rule::Reject`] is the hard rule of a whitelist, Postfix's
/// `permit_dnswl_client`: a listed client is not refused by its DNSBL listings nor by its
/// missing reverse DNS (those findings stay, as notes). [`Rule::Score`] adds its (usually
/// negative) score, as postscreen's negative weights.
#[derive(Clone, Debug)]
pub struct ListZone {
    /// The zone queried, without the trailing dot.
    pub zone: String,
    pub rule: Rule,
    /// The answers that count as a listing (e.g. `127.0.0.2` to `127.0.0.11` for Spamhaus
    /// ZEN). Empty: any address of 127.0.0.0/8 (RFC 5782 §2.1) except 127.255.255.0/24.
    /// Answers in 127.255.255.0/24 are the lists' error codes (Spamhaus: 127.255.255.254, a
    /// query through a public resolver refused; .255 too many queries): logged, never a
    /// listing, whatever this list says.
    pub codes: Vec<Ipv4Addr>,
}

impl ListZone {
    /// A zone counting any 127.0.0.0/8 answer except the error codes.
    pub fn new(zone: &str, rule: Rule) -> ListZone {
        ListZone {
            zone: zone.trim().trim_end_matches('.').to_string(),
            rule,
            codes: Vec::new(),
        }
    }
}

/// Which checks run, and what each does; everything off by default.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// HELO/EHLO argument not a domain nor an address literal (RFC 5321 §4.1.1.1).
    pub helo_invalid: Rule,
    /// HELO/EHLO argument valid but not fully qualified (no dot, numeric top-level label, or
    /// an address literal).
    pub helo_non_fqdn: Rule,
    /// MAIL FROM address without a fully qualified domain.
    pub sender_non_fqdn: Rule,
    /// RCPT TO address without a fully qualified domain (bare `postmaster` excepted).
    pub recipient_non_fqdn: Rule,
    /// MAIL FROM domain with neither MX nor address, or with a null MX (RFC 7505).
    pub sender_unknown_domain: Rule,
    /// Client address without PTR record.
    pub reverse_dns_missing: Rule,
    /// DNS blocklists, queried concurrently once per connection.
    pub dnsbl: Vec<ListZone>,
    /// DNS whitelists, queried with the blocklists.
    pub dnswl: Vec<ListZone>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            helo_invalid: Rule::Off,
            helo_non_fqdn: Rule::Off,
            sender_non_fqdn: Rule::Off,
            recipient_non_fqdn: Rule::Off,
            sender_unknown_domain: Rule::Off,
            reverse_dns_missing: Rule::Off,
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
        }
    }
}

/// What one check found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// A stable upper-case name for logs and the spam report: `RCVD_IN_ZEN_SPAMHAUS_ORG`,
    /// `HELO_NOT_FQDN`, `RDNS_NONE`...
    pub name: String,
    /// What was seen, in a sentence for the log (printable ASCII).
    pub description: String,
    /// The configured rule; [`Rule::Off`] for a note.
    pub rule: Rule,
    /// For [`Rule::Reject`]: the SMTP reply to send. None otherwise.
    pub reply: Option<Refusal>,
}

/// An SMTP refusal: reply code (RFC 5321 §4.2), enhanced status code (RFC 3463) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub status: (u8, u16, u16),
    /// Printable ASCII, no line break; short enough for a 512-octet reply line
    /// (RFC 5321 §4.5.3.1.5).
    pub text: String,
}

impl fmt::Display for Refusal {
    /// The reply line without CRLF: `554 5.7.1 Service unavailable; ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (class, subject, detail) = self.status;
        write!(f, "{} {class}.{subject}.{detail} {}", self.code, self.text)
    }
}

/// The connection-time checks' result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientChecks {
    /// DNS list listings and reverse DNS findings, DNSBL zones in configured order first.
    pub findings: Vec<Finding>,
    /// The client is listed in a DNSWL (any rule but [`Rule::Off`]).
    pub whitelisted: bool,
    /// The client's name from its PTR records: the first that resolves back to the client,
    /// else the first that is a host name at all. None without usable PTR record. Looked up
    /// whatever `reverse_dns_missing` says, for the Received header (RFC 5321 §4.4).
    pub reverse_name: Option<String>,
    /// `reverse_name` resolves back to the client's address ("forward-confirmed reverse DNS",
    /// Postfix's verified `client_name`).
    pub forward_confirmed: bool,
}

/// Longest TXT reason quoted from a DNS list, in characters.
const MAX_REASON: usize = 200;
/// Longest name or address quoted back in a reply, in characters.
const MAX_QUOTED: usize = 256;
/// PTR names checked for forward confirmation at most (a client may publish dozens).
const MAX_PTR_NAMES: usize = 4;

// ---------------------------------------------------------------------------------------------
// Connection: DNS lists and reverse DNS.

/// Once per connection: the DNSBL and DNSWL lookups, all zones concurrently (RFC 5782 §2.1:
/// the reversed octets, or nibbles for IPv6 per §2.4, under the zone, an A query; the TXT
/// record at the same name for the reason), and the reverse DNS (PTR) with its forward
/// confirmation. Every lookup is bounded by the resolver's timeouts
/// ([`Resolver::max_wait`]). A list lookup that fails or times out is no listing: it is
/// logged and the connection goes on. Addresses that cannot be on a public list (loopback,
/// private, link-local, unique local) are not sent to the lists.
pub async fn client(resolver: &Resolver, ip: IpAddr, options: &CheckOptions) -> ClientChecks {
    let ip = ip.to_canonical();
    let mut lists = JoinSet::new();
    if listable(ip) {
        let zones = options
            .dnsbl
            .iter()
            .map(|z| (ListKind::Block, z))
            .chain(options.dnswl.iter().map(|z| (ListKind::White, z)));
        for (index, (kind, zone)) in zones.enumerate() {
            if zone.rule == Rule::Off || zone.zone.is_empty() {
                continue;
            }
            let (resolver, zone) = (resolver.clone(), zone.clone());
            lists.spawn(async move {
                let hit = query_list(&resolver, ip, &zone).await;
                (index, kind, zone, hit)
            });
        }
    }
    let collect_lists = async {
        let mut hits = Vec::new();
        while let Some(joined) = lists.join_next().await {
            match joined {
                Ok((index, kind, zone, Some(hit))) => hits.push((index, kind, zone, hit)),
                Ok((_, _, _, None)) => {}
                Err(e) => tracing::warn!(error = %e, "a DNS list lookup task failed"),
            }
        }
        hits.sort_by_key(|(index, ..)| *index);
        hits
    };
    let (hits, reverse) = tokio::join!(collect_lists, reverse(resolver, ip));

    let mut result = ClientChecks::default();
    let mut permitted_by = None;
    let mut block = Vec::new();
    let mut white = Vec::new();
    for (_, kind, zone, hit) in hits {
        let name = list_finding_name(&zone.zone);
        let codes = join_ips(&hit.listed);
        match kind {
            ListKind::Block => {
                let reason = hit.reason.clone().unwrap_or_else(|| "listed".to_string());
                let description = format!(
                    "client {ip} is listed in the DNSBL {} ({codes}): {reason}",
                    zone.zone
                );
                block.extend(finding(&name, description, zone.rule, || Refusal {
                    code: 554,
                    status: (5, 7, 1),
                    text: format!(
                        "Service unavailable; Client host [{ip}] blocked using {}; {reason}",
                        zone.zone
                    ),
                }));
            }
            ListKind::White => {
                result.whitelisted = true;
                let reason = hit
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let description = format!(
                    "client {ip} is listed in the DNSWL {} ({codes}){reason}",
                    zone.zone
                );
                match zone.rule {
                    Rule::Score(_) => white.push(Finding {
                        name,
                        description,
                        rule: zone.rule,
                        reply: None,
                    }),
                    _ => {
                        permitted_by.get_or_insert_with(|| zone.zone.clone());
                        white.push(note(
                            &name,
                            format!(
                                "{description}; the DNS list and reverse DNS refusals are waived"
                            ),
                        ));
                    }
                }
            }
        }
    }

    result.reverse_name = reverse.name.clone();
    result.forward_confirmed = reverse.confirmed;
    let rdns = reverse_finding(ip, &reverse, options.reverse_dns_missing);

    result.findings = block.into_iter().chain(rdns).chain(white).collect();
    if let Some(zone) = permitted_by {
        for f in result.findings.iter_mut().filter(|f| f.reply.is_some()) {
            f.rule = Rule::Off;
            f.reply = None;
            f.description
                .push_str(&format!("; not refused: the client is on the DNSWL {zone}"));
        }
    }
    result
}

#[derive(Clone, Copy, Debug)]
enum ListKind {
    Block,
    White,
}

/// A listing: the answers that count and the TXT reason, if any.
#[derive(Debug)]
struct ListHit {
    listed: Vec<Ipv4Addr>,
    reason: Option<String>,
}

/// Asks `zone` about `ip`: None when not listed or when the answer cannot be used (logged).
async fn query_list(resolver: &Resolver, ip: IpAddr, zone: &ListZone) -> Option<ListHit> {
    let query = list_query(ip, &zone.zone);
    let answers = match bounded(resolver, &query, resolver.a_records(&query)).await {
        Ok(answers) => answers,
        // RFC 5782 §2.1: NXDOMAIN is "not listed".
        Err(DnsError::NotFound(_)) => return None,
        Err(DnsError::Temporary(why)) => {
            tracing::warn!(zone = %zone.zone, client = %ip, error = %why,
                "DNS list lookup failed; not counted as a listing");
            return None;
        }
    };
    let verdict = evaluate(&answers, &zone.codes);
    if !verdict.errors.is_empty() {
        tracing::warn!(zone = %zone.zone, client = %ip, answer = %join_ips(&verdict.errors),
            "the DNS list answered with an error code (127.255.255.0/24: for Spamhaus, \
             127.255.255.254 means queries through a public resolver are refused and \
             127.255.255.255 too many queries; use a recursive resolver of your own); \
             not counted as a listing");
    }
    if !verdict.foreign.is_empty() {
        tracing::warn!(zone = %zone.zone, client = %ip, answer = %join_ips(&verdict.foreign),
            "the DNS list answered outside 127.0.0.0/8 (RFC 5782 §2.1): the list is \
             misconfigured or no longer exists; not counted as a listing");
    }
    if verdict.listed.is_empty() {
        return None;
    }
    // RFC 5782 §2.1: the TXT record at the same name says why; a missing one is no error.
    let reason = match bounded(resolver, &query, resolver.txt(&query)).await {
        Ok(texts) => {
            let joined = texts
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            (!joined.is_empty()).then(|| printable(&joined, MAX_REASON))
        }
        Err(_) => None,
    };
    Some(ListHit {
        listed: verdict.listed,
        reason,
    })
}

/// A DNS list's answers, sorted.
#[derive(Debug, Default, PartialEq)]
struct Verdict {
    /// Answers that are a listing.
    listed: Vec<Ipv4Addr>,
    /// 127.255.255.0/24: the list's error codes.
    errors: Vec<Ipv4Addr>,
    /// Outside 127.0.0.0/8: not a list answer at all (a wildcard, an expired list's domain).
    foreign: Vec<Ipv4Addr>,
}

/// Sorts `answers` by RFC 5782 §2.1 (listings are in 127.0.0.0/8) and the lists' error codes;
/// with `codes`, only those count.
fn evaluate(answers: &[Ipv4Addr], codes: &[Ipv4Addr]) -> Verdict {
    let mut verdict = Verdict::default();
    for &a in answers {
        let [first, second, third, _] = a.octets();
        if first != 127 {
            verdict.foreign.push(a);
        } else if second == 255 && third == 255 {
            verdict.errors.push(a);
        } else if codes.is_empty() || codes.contains(&a) {
            verdict.listed.push(a);
        }
    }
    verdict
}

/// The name asked of a DNS list (RFC 5782 §2.1, §2.4): `2.0.0.127.zone` for 127.0.0.2;
/// for IPv6 the 32 nibbles, least significant first.
fn list_query(ip: IpAddr, zone: &str) -> String {
    format!("{}.{}", reversed(ip), zone.trim_end_matches('.'))
}

/// The address's labels in reverse order: octets for IPv4, nibbles for IPv6
/// (RFC 1035 §3.5, RFC 3596 §2.5, RFC 5782 §2.4).
fn reversed(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut labels = Vec::with_capacity(32);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.join(".")
        }
    }
}

/// Whether `ip` may be on a public DNS list: not loopback, private (RFC 1918), shared
/// (RFC 6598), link-local, unique local (RFC 4193), unspecified or broadcast. Asking a public
/// list about those would only tell it about the internal network.
fn listable(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// `RCVD_IN_` and the zone in upper case, other characters as `_` (SpamAssassin's style).
fn list_finding_name(zone: &str) -> String {
    let tail: String = zone
        .trim_end_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("RCVD_IN_{tail}")
}

/// What the reverse DNS says about the client.
#[derive(Debug, Default)]
struct Reverse {
    name: Option<String>,
    confirmed: bool,
    /// Why there is no usable name (permanent), or why the lookup failed (temporary).
    missing: Option<String>,
    temporary: Option<String>,
    /// Why no name resolves back to the client, when some name exists.
    unconfirmed: Option<String>,
}

/// The PTR names of `ip` and whether one of them resolves back to it (forward-confirmed
/// reverse DNS, as Postfix's `client_name` verification).
async fn reverse(resolver: &Resolver, ip: IpAddr) -> Reverse {
    let names = match bounded(resolver, "the reverse DNS", resolver.ptr(ip)).await {
        Ok(names) => names,
        Err(DnsError::NotFound(why)) => {
            return Reverse {
                missing: Some(printable(&why, MAX_REASON)),
                ..Reverse::default()
            };
        }
        Err(DnsError::Temporary(why)) => {
            return Reverse {
                temporary: Some(printable(&why, MAX_REASON)),
                ..Reverse::default()
            };
        }
    };
    if names.is_empty() {
        return Reverse {
            missing: Some("the reverse name exists without PTR record".to_string()),
            ..Reverse::default()
        };
    }
    // Postfix (smtpd_peer.c) takes a PTR name that is no host name, or that is an address,
    // for no name at all.
    let valid: Vec<String> = names
        .iter()
        .filter(|n| domain_syntax(n).is_ok() && n.parse::<IpAddr>().is_err())
        .take(MAX_PTR_NAMES)
        .cloned()
        .collect();
    if valid.is_empty() {
        return Reverse {
            missing: Some(format!(
                "the PTR records name no host: {}",
                printable(&names.join(", "), MAX_REASON)
            )),
            ..Reverse::default()
        };
    }
    let mut forward = JoinSet::new();
    for (index, name) in valid.iter().enumerate() {
        let (resolver, name) = (resolver.clone(), name.clone());
        forward.spawn(async move {
            let ips = bounded(&resolver, &name, resolver.ips(&name)).await;
            (index, ips)
        });
    }
    let mut confirmed: Option<usize> = None;
    let mut why = Vec::new();
    while let Some(joined) = forward.join_next().await {
        let Ok((index, ips)) = joined else { continue };
        match ips {
            Ok(ips) if ips.iter().any(|a| a.to_canonical() == ip) => {
                confirmed = Some(confirmed.map_or(index, |c| c.min(index)));
            }
            Ok(_) => why.push((index, format!("{} has other addresses", valid[index]))),
            Err(e) => why.push((index, printable(&e.to_string(), MAX_REASON))),
        }
    }
    match confirmed {
        Some(index) => Reverse {
            name: Some(valid[index].clone()),
            confirmed: true,
            ..Reverse::default()
        },
        None => {
            why.sort_by_key(|(index, _)| *index);
            let why: Vec<String> = why.into_iter().map(|(_, w)| w).collect();
            Reverse {
                name: valid.first().cloned(),
                unconfirmed: Some(why.join("; ")),
                ..Reverse::default()
            }
        }
    }
}

/// The reverse DNS findings under `rule` (Postfix `reject_unknown_reverse_client_hostname`:
/// no PTR at all; a temporary failure is never held against the client).
fn reverse_finding(ip: IpAddr, reverse: &Reverse, rule: Rule) -> Option<Finding> {
    if rule == Rule::Off {
        return None;
    }
    if let Some(why) = &reverse.missing {
        return finding(
            "RDNS_NONE",
            format!("client {ip} has no reverse DNS: {why}"),
            rule,
            || Refusal {
                code: 450,
                status: (4, 7, 1),
                text: format!("Client host rejected: cannot find your reverse hostname, [{ip}]"),
            },
        );
    }
    if let Some(why) = &reverse.temporary {
        return Some(note(
            "RDNS_TEMPFAIL",
            format!(
                "the reverse DNS of client {ip} could not be looked up for now ({why}); \
                 not held against it"
            ),
        ));
    }
    match (&reverse.name, &reverse.unconfirmed) {
        (Some(name), Some(why)) => Some(note(
            "RDNS_NOT_CONFIRMED",
            format!(
                "client {ip} has the reverse name {name}, not forward-confirmed: \
                 no PTR name resolves back to it ({why})"
            ),
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// HELO.

/// The HELO/EHLO argument's checks: its syntax (RFC 5321 §4.1.1.1: a Domain or an
/// address-literal; U-labels accepted, RFC 6531 §3.3; one trailing dot tolerated) and whether
/// it is fully qualified (a dot, a top-level label not all digits, not an address literal).
/// An invalid name is not also reported as not fully qualified; with the syntax check off, it
/// counts as not fully qualified.
pub fn helo(name: &str, options: &CheckOptions) -> Vec<Finding> {
    let shown = printable(name.trim(), MAX_QUOTED);
    let syntax = helo_syntax(name.trim());
    if let Err(why) = &syntax
        && options.helo_invalid != Rule::Off
    {
        return finding(
            "HELO_INVALID",
            format!("HELO name <{shown}> is invalid: {why}"),
            options.helo_invalid,
            || Refusal {
                code: 501,
                status: (5, 5, 2),
                text: format!("<{shown}>: Helo command rejected: Invalid name"),
            },
        )
        .into_iter()
        .collect();
    }
    if options.helo_non_fqdn == Rule::Off {
        return Vec::new();
    }
    let fqdn = match syntax {
        Ok(HeloKind::Domain) => domain_is_fqdn(name.trim()),
        Ok(HeloKind::Literal) => false,
        // Postfix's reject_non_fqdn_helo_hostname too wants a valid host name.
        Err(_) => false,
    };
    if fqdn {
        return Vec::new();
    }
    finding(
        "HELO_NOT_FQDN",
        format!("HELO name <{shown}> is not a fully qualified host name"),
        options.helo_non_fqdn,
        || Refusal {
            code: 504,
            status: (5, 5, 2),
            text: format!("<{shown}>: Helo command rejected: need fully-qualified hostname"),
        },
    )
    .into_iter()
    .collect()
}

#[derive(Debug, PartialEq)]
enum HeloKind {
    Domain,
    Literal,
}

/// RFC 5321 §4.1.2 `Domain / address-literal`.
fn helo_syntax(name: &str) -> Result<HeloKind, String> {
    if name.starts_with('[') {
        address_literal(name).map(|()| HeloKind::Literal)
    } else {
        domain_syntax(name).map(|()| HeloKind::Domain)
    }
}

/// RFC 5321 §4.1.3: `[` IPv4-address-literal / IPv6-address-literal `]`. A
/// General-address-literal needs a standardized tag, and `IPv6` is the only one registered.
fn address_literal(text: &str) -> Result<(), String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| "an address literal is enclosed in [ and ]".to_string())?;
    // ABNF literal strings are case-insensitive (RFC 5234 §2.3).
    if inner.len() > 5 && inner.is_char_boundary(5) && inner[..5].eq_ignore_ascii_case("IPv6:") {
        return inner[5..]
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| "not an IPv6 address after IPv6:".to_string());
    }
    if inner.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if inner.contains(':') {
        return Err("an address literal other than IPv4 or [IPv6:...]".to_string());
    }
    Err("not an IPv4 address between [ and ]".to_string())
}

/// RFC 5321 §4.1.2 `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]`,
/// with U-labels (RFC 6531 §3.3), label and name lengths of RFC 1035 §2.3.4, and one trailing
/// dot tolerated.
fn domain_syntax(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty name".to_string());
    }
    if name.len() > 253 {
        return Err("longer than 253 octets".to_string());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)".to_string());
        }
        if label.len() > 63 {
            return Err("a label longer than 63 octets".to_string());
        }
        let let_dig = |c: char| c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphanumeric());
        if let Some(bad) = label.chars().find(|&c| !(let_dig(c) || c == '-')) {
            return Err(format!(
                "the character {} is not allowed in a host name",
                printable(&bad.escape_debug().to_string(), 16)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label begins or ends with a hyphen".to_string());
        }
    }
    Ok(())
}

/// A dot, and a top-level label that is not all digits (a bare IPv4 address, `host.123`).
/// Assumes [`domain_syntax`] passed.
fn domain_is_fqdn(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    match name.rsplit_once('.') {
        Some((_, tld)) => !tld.is_empty() && !tld.chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// MAIL FROM and RCPT TO.

/// An address as the checks need it.
#[derive(Debug, PartialEq)]
struct Address<'a> {
    /// Without angle brackets nor source route, for replies and logs.
    bare: &'a str,
    /// After the last `@`; None without `@`.
    domain: Option<&'a str>,
}

/// `<local@domain>` or `local@domain`; a source route (`@a,@b:`, RFC 5321 §4.1.2 A-d-l,
/// accepted and ignored per §C) is dropped. None for the null path `<>`.
fn parse_address(text: &str) -> Option<Address<'_>> {
    let mut bare = text.trim();
    if let Some(inner) = bare.strip_prefix('<') {
        bare = inner.strip_suffix('>').unwrap_or(inner).trim();
    }
    if bare.starts_with('@')
        && let Some((_, rest)) = bare.split_once(':')
    {
        bare = rest;
    }
    if bare.is_empty() {
        return None;
    }
    // The local part may be quoted and hold an `@`; the domain follows the last one.
    let domain = bare.rsplit_once('@').map(|(_, d)| d);
    Some(Address { bare, domain })
}

/// The address's domain is a fully qualified domain name or an address literal.
fn address_is_fqdn(address: &Address<'_>) -> bool {
    match address.domain {
        Some(d) if d.starts_with('[') => address_literal(d).is_ok(),
        Some(d) => domain_syntax(d).is_ok() && domain_is_fqdn(d),
        None => false,
    }
}

/// MAIL FROM's checks: a fully qualified domain (Postfix `reject_non_fqdn_sender`), and a
/// domain that can receive mail (Postfix `reject_unknown_sender_domain`): an MX, or, without
/// MX, an address (RFC 5321 §5.1 implicit MX); a null MX is refused with RFC 7505 §4.2's
/// `550 5.7.27`. A temporary DNS failure gives `450 4.1.8`, never a permanent refusal. The
/// null sender `<>` passes (RFC 5321 §4.5.5); so do address literals (nothing to look up).
pub async fn sender(resolver: &Resolver, sender: &str, options: &CheckOptions) -> Vec<Finding> {
    let Some(address) = parse_address(sender) else {
        return Vec::new();
    };
    let shown = printable(address.bare, MAX_QUOTED);
    let mut findings = Vec::new();
    if options.sender_non_fqdn != Rule::Off && !address_is_fqdn(&address) {
        findings.extend(finding(
            "SENDER_NOT_FQDN",
            format!("sender <{shown}> has no fully qualified domain"),
            options.sender_non_fqdn,
            || Refusal {
                code: 504,
                status: (5, 5, 2),
                text: format!("<{shown}>: Sender address rejected: need fully-qualified address"),
            },
        ));
    }
    let rule = options.sender_unknown_domain;
    let Some(domain) = address.domain.filter(|_| rule != Rule::Off) else {
        return findings;
    };
    if domain.starts_with('[') {
        return findings;
    }
    let domain_shown = printable(domain, MAX_QUOTED);
    let unknown = |why: String| {
        finding(
            "SENDER_DOMAIN_UNKNOWN",
            format!("sender <{shown}>: the domain {domain_shown} cannot receive mail: {why}"),
            rule,
            || Refusal {
                code: 550,
                status: (5, 1, 8),
                text: format!("<{shown}>: Sender address rejected: Domain not found"),
            },
        )
    };
    if let Err(why) = domain_syntax(domain) {
        findings.extend(unknown(format!("not a domain name ({why})")));
        return findings;
    }
    match sender_domain(resolver, domain).await {
        DomainStatus::Known => {}
        DomainStatus::Unknown(why) => findings.extend(unknown(why)),
        DomainStatus::NullMx => findings.extend(finding(
            "SENDER_DOMAIN_NULL_MX",
            format!(
                "sender <{shown}>: the domain {domain_shown} publishes a null MX (RFC 7505): \
                 it sends and receives no mail"
            ),
            rule,
            || Refusal {
                code: 550,
                status: (5, 7, 27),
                text: format!(
                    "<{shown}>: Sender address rejected: Domain {domain_shown} does not accept \
                     mail (null MX)"
                ),
            },
        )),
        DomainStatus::Temporary(why) => {
            let description = format!(
                "sender <{shown}>: the domain {domain_shown} could not be looked up for now: {why}"
            );
            findings.push(match rule {
                Rule::Reject => Finding {
                    name: "SENDER_DOMAIN_TEMPFAIL".to_string(),
                    description,
                    rule,
                    reply: Some(Refusal {
                        code: 450,
                        status: (4, 1, 8),
                        text: format!("<{shown}>: Sender address rejected: Domain not found"),
                    }),
                },
                // A score is not added on a failure that says nothing about the sender.
                _ => note(
                    "SENDER_DOMAIN_TEMPFAIL",
                    format!("{description}; not scored"),
                ),
            });
        }
    }
    findings
}

/// Whether a sender domain can receive mail.
#[derive(Debug)]
enum DomainStatus {
    Known,
    NullMx,
    Unknown(String),
    Temporary(String),
}

/// MX first; without MX the domain's own addresses (RFC 5321 §5.1).
async fn sender_domain(resolver: &Resolver, domain: &str) -> DomainStatus {
    let text = |e: DnsError| printable(&e.to_string(), MAX_REASON);
    match bounded(resolver, domain, resolver.mx(domain)).await {
        Ok(MxAnswer::Records(_)) => DomainStatus::Known,
        Ok(MxAnswer::NullMx) => DomainStatus::NullMx,
        Ok(MxAnswer::NoMx) => match bounded(resolver, domain, resolver.ips(domain)).await {
            Ok(_) => DomainStatus::Known,
            Err(e @ DnsError::NotFound(_)) => {
                DomainStatus::Unknown(format!("no MX record, and {}", text(e)))
            }
            Err(e @ DnsError::Temporary(_)) => DomainStatus::Temporary(text(e)),
        },
        Err(e @ DnsError::NotFound(_)) => DomainStatus::Unknown(text(e)),
        Err(e @ DnsError::Temporary(_)) => DomainStatus::Temporary(text(e)),
    }
}

/// RCPT TO's check: a fully qualified domain (Postfix `reject_non_fqdn_recipient`). The bare
/// `postmaster` is accepted (RFC 5321 §4.5.1: it must be, without domain). An empty path is
/// left to the SMTP syntax check.
pub fn recipient(rcpt: &str, options: &CheckOptions) -> Vec<Finding> {
    if options.recipient_non_fqdn == Rule::Off {
        return Vec::new();
    }
    let Some(address) = parse_address(rcpt) else {
        return Vec::new();
    };
    if address.domain.is_none() && address.bare.eq_ignore_ascii_case("postmaster") {
        return Vec::new();
    }
    if address_is_fqdn(&address) {
        return Vec::new();
    }
    let shown = printable(address.bare, MAX_QUOTED);
    finding(
        "RECIPIENT_NOT_FQDN",
        format!("recipient <{shown}> has no fully qualified domain"),
        options.recipient_non_fqdn,
        || Refusal {
            code: 504,
            status: (5, 5, 2),
            text: format!("<{shown}>: Recipient address rejected: need fully-qualified address"),
        },
    )
    .into_iter()
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The finding of a check that matched under `rule`: nothing when off, the reply when hard.
fn finding(
    name: &str,
    description: String,
    rule: Rule,
    reply: impl FnOnce() -> Refusal,
) -> Option<Finding> {
    let reply = match rule {
        Rule::Off => return None,
        Rule::Reject => Some(reply()),
        Rule::Score(_) => None,
    };
    Some(Finding {
        name: name.to_string(),
        description,
        rule,
        reply,
    })
}

/// A finding that refuses nothing and weighs nothing.
fn note(name: &str, description: String) -> Finding {
    Finding {
        name: name.to_string(),
        description,
        rule: Rule::Off,
        reply: None,
    }
}

/// A lookup bounded by the resolver's longest wait, as a backstop to its own timeouts.
async fn bounded<T>(
    resolver: &Resolver,
    what: &str,
    lookup: impl Future<Output = Result<T, DnsError>>,
) -> Result<T, DnsError> {
    let limit = resolver.max_wait();
    tokio::time::timeout(limit, lookup)
        .await
        .unwrap_or_else(|_| {
            Err(DnsError::Temporary(format!(
                "lookup of {}: no answer within {} s",
                printable(what, MAX_QUOTED),
                limit.as_secs()
            )))
        })
}

/// `text` for a reply or a log line: printable ASCII only (others become `?`; RFC 5321
/// §4.2 reply text, no CR or LF), at most `max` characters (then `...`).
fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push_str("...");
            break;
        }
        out.push(if c == ' ' || c.is_ascii_graphic() {
            c
        } else {
            '?'
        });
    }
    out
}

fn join_ips(ips: &[Ipv4Addr]) -> String {
    ips.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn list_queries_reverse_octets_and_nibbles() {
        // RFC 5782 §2.1 and §2.4's own examples.
        assert_eq!(
            list_query(ip("192.168.2.1"), "dnsbl.example.net"),
            "1.2.168.192.dnsbl.example.net"
        );
        assert_eq!(
            list_query(ip("2001:db8:1:2:3:4:567:89ab"), "ugly.example.com."),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
        // An IPv4-mapped IPv6 client is its IPv4 address.
        assert_eq!(
            list_query(ip("::ffff:192.0.2.99"), "zen.example.org"),
            "99.2.0.192.zen.example.org"
        );
    }

    #[test]
    fn answers_are_sorted_by_rfc_5782_and_error_codes() {
        let listed = evaluate(&[v4("127.0.0.2"), v4("127.0.0.10")], &[]);
        assert_eq!(listed.listed, [v4("127.0.0.2"), v4("127.0.0.10")]);
        let refused = evaluate(&[v4("127.255.255.254")], &[]);
        assert!(refused.listed.is_empty());
        assert_eq!(refused.errors, [v4("127.255.255.254")]);
        // Error codes never list, even when configured as codes.
        let refused = evaluate(&[v4("127.255.255.255")], &[v4("127.255.255.255")]);
        assert!(refused.listed.is_empty());
        let wildcard = evaluate(&[v4("192.0.2.80")], &[]);
        assert!(wildcard.listed.is_empty());
        assert_eq!(wildcard.foreign, [v4("192.0.2.80")]);
        // With codes, only those count.
        let only = evaluate(
            &[v4("127.0.0.2"), v4("127.0.0.4")],
            &[v4("127.0.0.4"), v4("127.0.0.9")],
        );
        assert_eq!(only.listed, [v4("127.0.0.4")]);
        assert_eq!(
            evaluate(&[v4("127.0.0.2")], &[v4("127.0.0.3")]),
            Verdict::default()
        );
    }

    #[test]
    fn finding_names_follow_the_zone() {
        assert_eq!(
            list_finding_name("zen.spamhaus.org"),
            "RCVD_IN_ZEN_SPAMHAUS_ORG"
        );
        assert_eq!(
            list_finding_name("b.barracudacentral.org."),
            "RCVD_IN_B_BARRACUDACENTRAL_ORG"
        );
        assert_eq!(
            list_finding_name("list-dnswl.example"),
            "RCVD_IN_LIST_DNSWL_EXAMPLE"
        );
    }

    #[test]
    fn only_public_addresses_are_listable() {
        for public in ["192.0.2.1", "8.8.8.8", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(listable(ip(public)), "{public}");
        }
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!listable(ip(internal)), "{internal}");
        }
    }

    #[test]
    fn helo_syntax_per_rfc_5321() {
        for good in [
            "mail.example.com",
            "mail.example.com.",
            "localhost",
            "a",
            "x-1.example",
            "192.0.2.1",
            "bücher.example",
            "xn--bcher-kva.example",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "[ipv6:::1]",
        ] {
            assert!(helo_syntax(good).is_ok(), "{good}");
        }
        assert_eq!(helo_syntax("[192.0.2.1]"), Ok(HeloKind::Literal));
        for bad in [
            "",
            ".",
            "mail..example.com",
            ".example.com",
            "-mail.example.com",
            "mail-.example.com",
            "mail_server.example.com",
            "mail example.com",
            "mail.example.com\r\n",
            "a..",
            "[192.0.2.1",
            "[192.0.2.256]",
            "[2001:db8::1]",
            "[IPv6:192.0.2.1]",
            "[X-tag:whatever]",
            "[]",
            "[IPv6:",
            "[IPv6:\u{e9}]",
        ] {
            assert!(helo_syntax(bad).is_err(), "{bad:?}");
        }
        assert!(domain_syntax(&format!("{}.example", "a".repeat(64))).is_err());
        assert!(domain_syntax(&format!("{}.example", "a".repeat(63))).is_ok());
        assert!(domain_syntax(&["abcdefghi"; 26].join(".")).is_err());
    }

    #[test]
    fn fully_qualified_means_a_dot_and_a_non_numeric_tld() {
        assert!(domain_is_fqdn("mail.example.com"));
        assert!(domain_is_fqdn("mail.example.com."));
        assert!(!domain_is_fqdn("localhost"));
        assert!(!domain_is_fqdn("localhost."));
        assert!(!domain_is_fqdn("192.0.2.1"));
        assert!(!domain_is_fqdn("host.123"));
        assert!(domain_is_fqdn("host.x123"));
    }

    #[test]
    fn addresses_are_parsed_without_brackets_and_route() {
        assert_eq!(parse_address("<>"), None);
        assert_eq!(parse_address(""), None);
        assert_eq!(parse_address(" < > "), None);
        assert_eq!(
            parse_address("<user@example.com>"),
            Some(Address {
                bare: "user@example.com",
                domain: Some("example.com")
            })
        );
        assert_eq!(
            parse_address("<@relay.example,@b.example:user@example.com>"),
            Some(Address {
                bare: "user@example.com",
                domain: Some("example.com")
            })
        );
        assert_eq!(
            parse_address("\"a@b\"@example.org").and_then(|a| a.domain),
            Some("example.org")
        );
        assert_eq!(parse_address("<user>").and_then(|a| a.domain), None);
        let literal = parse_address("user@[192.0.2.1]").unwrap();
        assert!(address_is_fqdn(&literal));
        assert!(!address_is_fqdn(&parse_address("user@[nonsense]").unwrap()));
        assert!(!address_is_fqdn(&parse_address("user@localhost").unwrap()));
        assert!(!address_is_fqdn(&parse_address("user@").unwrap()));
        assert!(address_is_fqdn(&parse_address("user@example.com").unwrap()));
    }

    #[test]
    fn quoted_text_is_printable_and_bounded() {
        assert_eq!(printable("a\r\nb\u{e9}c", 100), "a??b?c");
        assert_eq!(printable("abcdef", 3), "abc...");
        assert_eq!(printable("abc", 3), "abc");
        assert_eq!(
            printable(&"x".repeat(100_000), MAX_QUOTED).len(),
            MAX_QUOTED + 3
        );
    }

    #[test]
    fn rules_decide_the_finding() {
        let reply = || Refusal {
            code: 554,
            status: (5, 7, 1),
            text: "no".into(),
        };
        assert_eq!(finding("X", "d".into(), Rule::Off, reply), None);
        let hard = finding("X", "d".into(), Rule::Reject, reply).unwrap();
        assert_eq!(hard.reply.unwrap().to_string(), "554 5.7.1 no");
        let scored = finding("X", "d".into(), Rule::Score(2.5), reply).unwrap();
        assert_eq!((scored.rule, scored.reply), (Rule::Score(2.5), None));
    }

    #[test]
    fn helo_findings_without_dns() {
        let options = CheckOptions {
            helo_invalid: Rule::Reject,
            helo_non_fqdn: Rule::Reject,
            ..CheckOptions::default()
        };
        assert!(helo("mail.example.com", &options).is_empty());
        let f = helo("bad\u{1}name\r\n", &options);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].reply.as_ref().unwrap().to_string(),
            "501 5.5.2 <bad?name>: Helo command rejected: Invalid name"
        );
        // With the syntax check off, the same name is still not fully qualified.
        let lenient = CheckOptions {
            helo_invalid: Rule::Off,
            ..options.clone()
        };
        assert_eq!(helo("mail_1.example.com", &lenient).len(), 1);
        assert_eq!(
            helo("mail_1.example.com", &lenient)[0].name,
            "HELO_NOT_FQDN"
        );
        assert!(helo("anything at all", &CheckOptions::default()).is_empty());
    }
}
