//! DMARC aggregate reports (RFC 7489 §7.1, §7.2 and appendix C), both ways:
//!
//! - Sending: the MX records one [`Evaluation`] per message it checked; [`aggregate`] turns
//!   those of one policy domain and period into the appendix C XML document, gzipped and
//!   named as §7.2.1.1 says; [`destinations`] reads the `rua` URIs of the record (RFC 7489
//!   §6.2, §6.3) and tells which need the §7.1 authorization record, which [`authorizes`]
//!   checks; [`message`] wraps a report into the §7.2.1.1 mail.
//! - Receiving: [`parse_report_message`] finds the report attachments of a mail sent to our
//!   own `rua` address, decompresses them with bounded work and parses them with mail-auth's
//!   parser into [`ReceivedReport`]s; [`summary`] writes what an admin wants to read: who
//!   sends as the domain, and who fails.
//!
//! The XML is written here rather than by mail-auth's generator: that one follows RFC 9990
//! (its namespace, `np`, `testing`, no `pct`), not the RFC 7489 appendix C schema, whose
//! `policy_published` requires `pct`. mail-auth's parser reads both, and is the one used
//! for received reports.
//!
//! Nothing here panics, whatever the input.

mod received;
mod zip;

pub use received::{ReceivedReport, ReceivedRow, parse_report_message, summary};

use flate2::{Compression, write::GzEncoder};
use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::mail::{BASE64_LINE, base64_len, civil_date, fold, header_text, hex, rfc5322_date};

/// The namespace of the RFC 7489 appendix C schema (its `targetNamespace`).
const XML_NAMESPACE: &str = "http://dmarc.org/dmarc-xml/0.1";
/// The largest decompressed report read from a received message (zip bombs).
pub const MAX_DECOMPRESSED: usize = 20 * 1024 * 1024;
/// Room left by [`Report::size`] for the headers and the text part of [`message`].
const MESSAGE_OVERHEAD: u64 = 2048;
/// The longest address [`Report::size`] allows for (RFC 5321 §4.5.3.1.3, a path).
const MAX_ADDRESS: u64 = 256;

/// What the MX decided for one message: the input of [`aggregate`]. It mirrors the record
/// the inbound checks store (as JSON), field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// When the message was received, in seconds since 1970-01-01 UTC.
    pub at: i64,
    /// The address of the SMTP client (RFC 7489 appendix C `source_ip`).
    pub source_ip: IpAddr,
    /// The RFC 5322 From: domain (`header_from`).
    pub header_from: String,
    /// The RFC 5321 MAIL FROM domain, or the HELO domain for a null path (`envelope_from`).
    pub envelope_from: String,
    /// The domain whose DMARC record applied (RFC 7489 §6.6.3), the report's domain.
    pub policy_domain: String,
    /// The record's `adkim` (RFC 7489 §6.3): `'r'` or `'s'`.
    pub adkim: char,
    /// The record's `aspf`: `'r'` or `'s'`.
    pub aspf: char,
    /// The record's `p`: `none`, `quarantine` or `reject`.
    pub p: String,
    /// The record's `sp` (the same as `p` when the record has none).
    pub sp: String,
    /// The record's `pct`, 0 to 100.
    pub pct: u8,
    /// The record's `rua` URIs as published, e.g. `mailto:dmarc@example.org!10m`.
    pub rua: Vec<String>,
    /// What was applied to the message: `none`, `quarantine` or `reject`.
    pub disposition: String,
    /// Whether a DKIM signature passed and was aligned with `header_from` (RFC 7489 §3.1.1).
    pub dkim_aligned: bool,
    /// Whether SPF passed and was aligned with `header_from` (RFC 7489 §3.1.2).
    pub spf_aligned: bool,
    /// Every DKIM signature checked: (`d=` domain, `s=` selector, result as in RFC 8601
    /// §2.7.1: `pass`, `fail`, `neutral`, `policy`, `temperror`, `permerror`, `none`).
    pub dkim: Vec<(String, String, String)>,
    /// The SPF check (RFC 7208): (domain, scope `mfrom` or `helo`, result `pass`, `fail`,
    /// `softfail`, `neutral`, `none`, `temperror` or `permerror`).
    pub spf: (String, String, String),
}

/// Who sends the reports (RFC 7489 §7.2.1.1, appendix C `report_metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// The reporting organization (`org_name`).
    pub org_name: String,
    /// The address reports come from and questions go to, e.g. `noreply-dmarc@mx.example.net`.
    pub email: String,
    /// The receiver's host name: the `Submitter:` of the subject and the first part of the
    /// file name.
    pub hostname: String,
}

/// One aggregate report, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its unique identifier (appendix C `report_id`, the subject's `Report-ID:`): the
    /// beginning of the period and a hash of the submitter, domain, period and records, so
    /// the same report gets the same identifier and any other report another one.
    pub report_id: String,
    /// The appendix C XML document.
    pub xml: Vec<u8>,
    /// The file name of the gzipped document (§7.2.1.1):
    /// `receiver!policy-domain!begin!end.xml.gz`.
    pub gzip_name: String,
    /// The gzipped document (RFC 1952).
    pub gzipped: Vec<u8>,
}

impl Report {
    /// The size of the whole message [`message`] makes of this report, at most: the base64
    /// attachment exactly, plus room for the headers and the text part with addresses of up
    /// to 256 octets. A destination's `max_size` (RFC 7489 §6.2) is compared to this.
    pub fn size(&self) -> u64 {
        let encoded = base64_len(self.gzipped.len()) as u64;
        let lines = encoded.div_ceil(BASE64_LINE as u64);
        let names = 5 * self.gzip_name.len() as u64 + 3 * self.report_id.len() as u64;
        encoded + 2 * lines + names + 2 * MAX_ADDRESS + MESSAGE_OVERHEAD
    }
}

/// Why a report could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A domain name (the policy domain or the reporter's host name) is not one.
    #[error("{0:?} is not a domain name")]
    InvalidDomain(String),
    /// The reporter's address is not an address.
    #[error("{0:?} is not an email address")]
    InvalidAddress(String),
    /// The period is negative or ends before it begins.
    #[error("invalid report period {begin}..{end}")]
    InvalidPeriod {
        /// Its beginning, seconds since 1970.
        begin: i64,
        /// Its end.
        end: i64,
    },
    /// No evaluation of the policy domain falls in the period: there is nothing to report
    /// (appendix C requires at least one `record`).
    #[error("no evaluation of {0} in the period")]
    NoEvaluations(String),
    /// Compressing failed.
    #[error("cannot compress the report: {0}")]
    Compress(String),
    /// The input is not a mail message.
    #[error("not a mail message")]
    NotAMessage,
    /// The message has no attachment that looks like a report.
    #[error("no DMARC report attached")]
    NoReport,
    /// A report decompresses to more than [`MAX_DECOMPRESSED`] bytes.
    #[error("report larger than {MAX_DECOMPRESSED} bytes once decompressed")]
    TooLarge,
    /// The attachment could not be decompressed.
    #[error("cannot decompress the report: {0}")]
    Decompress(String),
    /// The XML document is not an aggregate report.
    #[error("invalid report: {0}")]
    Xml(String),
}

/// Builds the aggregate report of `policy_domain` for the period `begin..=end` (seconds
/// since 1970, both included) from the evaluations of that policy domain within it; the
/// others are left out.
///
/// Messages are counted in one `record` per (source IP, disposition, aligned DKIM and SPF
/// results, `header_from`, `envelope_from`, DKIM and SPF results); `policy_published` is
/// the policy of the most recent evaluation. A message that failed DMARC but was handled
/// less strictly than the policy asks gets an override `reason` (appendix C
/// `PolicyOverrideType`): `sampled_out` when the policy's `pct` is below 100, else
/// `local_policy`.
pub fn aggregate(
    reporter: &Reporter,
    policy_domain: &str,
    begin: i64,
    end: i64,
    evaluations: &[Evaluation],
) -> Result<Report, ReportError> {
    let domain = normalize_domain(policy_domain)
        .ok_or_else(|| ReportError::InvalidDomain(policy_domain.to_string()))?;
    let hostname = normalize_domain(&reporter.hostname)
        .ok_or_else(|| ReportError::InvalidDomain(reporter.hostname.clone()))?;
    let email = normalize_address(&reporter.email)
        .ok_or_else(|| ReportError::InvalidAddress(reporter.email.clone()))?;
    if begin < 0 || end < begin {
        return Err(ReportError::InvalidPeriod { begin, end });
    }

    let mut latest: Option<&Evaluation> = None;
    let mut rows: BTreeMap<RowKey, u64> = BTreeMap::new();
    for evaluation in evaluations {
        if evaluation.at < begin
            || evaluation.at > end
            || normalize_domain(&evaluation.policy_domain).as_deref() != Some(domain.as_str())
        {
            continue;
        }
        if latest.is_none_or(|latest| evaluation.at >= latest.at) {
            latest = Some(evaluation);
        }
        *rows.entry(RowKey::new(evaluation, &domain)).or_default() += 1;
    }
    let Some(latest) = latest else {
        return Err(ReportError::NoEvaluations(domain));
    };

    // The identifier hashes everything the report says.
    let mut records = String::new();
    for (key, count) in &rows {
        key.write_xml(*count, &mut records);
    }
    let policy = Policy::of(latest, &domain);
    let mut hash = digest::Context::new(&digest::SHA256);
    for part in [
        hostname.as_str(),
        domain.as_str(),
        &policy.to_xml(),
        &records,
    ] {
        hash.update(part.as_bytes());
        hash.update(b"\0");
    }
    hash.update(&begin.to_be_bytes());
    hash.update(&end.to_be_bytes());
    let report_id = format!("{begin}.{}", hex(&hash.finish().as_ref()[..10]));

    let mut xml = String::with_capacity(512 + records.len());
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(xml, "<feedback xmlns=\"{XML_NAMESPACE}\">");
    xml.push_str("  <version>1.0</version>\n");
    xml.push_str("  <report_metadata>\n");
    let _ = writeln!(
        xml,
        "    <org_name>{}</org_name>",
        escape_xml(&reporter.org_name)
    );
    let _ = writeln!(xml, "    <email>{}</email>", escape_xml(&email));
    let _ = writeln!(xml, "    <report_id>{}</report_id>", escape_xml(&report_id));
    let _ = writeln!(
        xml,
        "    <date_range>\n      <begin>{begin}</begin>\n      <end>{end}</end>\n    </date_range>"
    );
    xml.push_str("  </report_metadata>\n");
    xml.push_str(&policy.to_xml());
    xml.push_str(&records);
    xml.push_str("</feedback>\n");
    let xml = xml.into_bytes();

    let mut encoder = GzEncoder::new(Vec::with_capacity(xml.len() / 4), Compression::best());
    encoder
        .write_all(&xml)
        .map_err(|err| ReportError::Compress(err.to_string()))?;
    let gzipped = encoder
        .finish()
        .map_err(|err| ReportError::Compress(err.to_string()))?;

    Ok(Report {
        gzip_name: format!("{hostname}!{domain}!{begin}!{end}.xml.gz"),
        report_id,
        xml,
        gzipped,
    })
}

/// The `policy_published` element (appendix C `PolicyPublishedType`).
struct Policy {
    domain: String,
    adkim: &'static str,
    aspf: &'static str,
    p: &'static str,
    sp: &'static str,
    pct: u8,
}

impl Policy {
    fn of(evaluation: &Evaluation, domain: &str) -> Self {
        let p = disposition(&evaluation.p);
        Self {
            domain: domain.to_string(),
            adkim: alignment(evaluation.adkim),
            aspf: alignment(evaluation.aspf),
            p,
            sp: if evaluation.sp.trim().is_empty() {
                p
            } else {
                disposition(&evaluation.sp)
            },
            pct: evaluation.pct.min(100),
        }
    }

    fn to_xml(&self) -> String {
        format!(
            concat!(
                "  <policy_published>\n",
                "    <domain>{}</domain>\n",
                "    <adkim>{}</adkim>\n",
                "    <aspf>{}</aspf>\n",
                "    <p>{}</p>\n",
                "    <sp>{}</sp>\n",
                "    <pct>{}</pct>\n",
                "  </policy_published>\n"
            ),
            escape_xml(&self.domain),
            self.adkim,
            self.aspf,
            self.p,
            self.sp,
            self.pct
        )
    }
}

/// What makes two messages fall in the same `record`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    source_ip: IpAddr,
    disposition: &'static str,
    dkim_aligned: bool,
    spf_aligned: bool,
    reason: Option<&'static str>,
    header_from: String,
    envelope_from: String,
    /// (domain, selector, result).
    dkim: Vec<(String, String, &'static str)>,
    /// (domain, scope, result).
    spf: (String, &'static str, &'static str),
}

impl RowKey {
    fn new(evaluation: &Evaluation, policy_domain: &str) -> Self {
        let header_from = normalize_domain(&evaluation.header_from)
            .unwrap_or_else(|| evaluation.header_from.trim().to_ascii_lowercase());
        let envelope_from = normalize_domain(&evaluation.envelope_from)
            .unwrap_or_else(|| evaluation.envelope_from.trim().to_ascii_lowercase());
        let applied = disposition(&evaluation.disposition);
        let passed = evaluation.dkim_aligned || evaluation.spf_aligned;
        // The policy asked for: `p` for the policy domain itself, `sp` for its subdomains
        // (RFC 7489 §6.3, §6.6.3).
        let requested = if header_from == policy_domain || evaluation.sp.trim().is_empty() {
            disposition(&evaluation.p)
        } else {
            disposition(&evaluation.sp)
        };
        let reason = (!passed && strictness(applied) < strictness(requested)).then_some(
            if evaluation.pct < 100 {
                "sampled_out"
            } else {
                "local_policy"
            },
        );
        let spf_domain = if evaluation.spf.0.trim().is_empty() {
            envelope_from.clone()
        } else {
            normalize_domain(&evaluation.spf.0)
                .unwrap_or_else(|| evaluation.spf.0.trim().to_ascii_lowercase())
        };
        Self {
            source_ip: evaluation.source_ip,
            disposition: applied,
            dkim_aligned: evaluation.dkim_aligned,
            spf_aligned: evaluation.spf_aligned,
            reason,
            header_from,
            envelope_from,
            dkim: evaluation
                .dkim
                .iter()
                .map(|(domain, selector, result)| {
                    (
                        normalize_domain(domain)
                            .unwrap_or_else(|| domain.trim().to_ascii_lowercase()),
                        selector.trim().to_string(),
                        dkim_result(result),
                    )
                })
                .collect(),
            spf: (
                spf_domain,
                spf_scope(&evaluation.spf.1),
                spf_result(&evaluation.spf.2),
            ),
        }
    }

    /// Appends the `record` element (appendix C `RecordType`).
    fn write_xml(&self, count: u64, xml: &mut String) {
        let pass_fail = |pass: bool| if pass { "pass" } else { "fail" };
        xml.push_str("  <record>\n    <row>\n");
        let _ = writeln!(xml, "      <source_ip>{}</source_ip>", self.source_ip);
        let _ = writeln!(xml, "      <count>{count}</count>");
        xml.push_str("      <policy_evaluated>\n");
        let _ = writeln!(
            xml,
            "        <disposition>{}</disposition>",
            self.disposition
        );
        let _ = writeln!(xml, "        <dkim>{}</dkim>", pass_fail(self.dkim_aligned));
        let _ = writeln!(xml, "        <spf>{}</spf>", pass_fail(self.spf_aligned));
        if let Some(reason) = self.reason {
            let _ = writeln!(
                xml,
                "        <reason>\n          <type>{reason}</type>\n        </reason>"
            );
        }
        xml.push_str("      </policy_evaluated>\n    </row>\n    <identifiers>\n");
        let _ = writeln!(
            xml,
            "      <envelope_from>{}</envelope_from>",
            escape_xml(&self.envelope_from)
        );
        let _ = writeln!(
            xml,
            "      <header_from>{}</header_from>",
            escape_xml(&self.header_from)
        );
        xml.push_str("    </identifiers>\n    <auth_results>\n");
        for (domain, selector, result) in &self.dkim {
            xml.push_str("      <dkim>\n");
            let _ = writeln!(xml, "        <domain>{}</domain>", escape_xml(domain));
            if !selector.is_empty() {
                let _ = writeln!(xml, "        <selector>{}</selector>", escape_xml(selector));
            }
            let _ = writeln!(xml, "        <result>{result}</result>");
            xml.push_str("      </dkim>\n");
        }
        let (domain, scope, result) = &self.spf;
        let _ = writeln!(
            xml,
            concat!(
                "      <spf>\n        <domain>{}</domain>\n        <scope>{}</scope>\n",
                "        <result>{}</result>\n      </spf>"
            ),
            escape_xml(domain),
            scope,
            result
        );
        xml.push_str("    </auth_results>\n  </record>\n");
    }
}

/// `adkim`/`aspf` as appendix C `AlignmentType`.
fn alignment(mode: char) -> &'static str {
    if mode.eq_ignore_ascii_case(&'s') {
        "s"
    } else {
        "r"
    }
}

/// A policy or disposition as appendix C `DispositionType`; anything else is `none`.
fn disposition(value: &str) -> &'static str {
    let value = value.trim();
    if value.eq_ignore_ascii_case("reject") {
        "reject"
    } else if value.eq_ignore_ascii_case("quarantine") {
        "quarantine"
    } else {
        "none"
    }
}

fn strictness(disposition: &str) -> u8 {
    match disposition {
        "reject" => 2,
        "quarantine" => 1,
        _ => 0,
    }
}

/// A DKIM result as appendix C `DKIMResultType`; anything else is `none`.
fn dkim_result(value: &str) -> &'static str {
    const RESULTS: [&str; 7] = [
        "pass",
        "fail",
        "neutral",
        "policy",
        "temperror",
        "permerror",
        "none",
    ];
    let value = value.trim();
    RESULTS
        .into_iter()
        .find(|result| value.eq_ignore_ascii_case(result))
        .unwrap_or("none")
}

/// An SPF result as appendix C `SPFResultType`; anything else is `none`.
fn spf_result(value: &str) -> &'static str {
    const RESULTS: [&str; 7] = [
        "pass",
        "fail",
        "softfail",
        "neutral",
        "temperror",
        "permerror",
        "none",
    ];
    let value = value.trim();
    RESULTS
        .into_iter()
        .find(|result| value.eq_ignore_ascii_case(result))
        .unwrap_or("none")
}

/// An SPF scope as appendix C `SPFDomainScope`; anything but `helo` is `mfrom`.
fn spf_scope(value: &str) -> &'static str {
    if value.trim().eq_ignore_ascii_case("helo") {
        "helo"
    } else {
        "mfrom"
    }
}

/// Where to send a domain's aggregate reports: one `mailto:` URI of its `rua` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The address, its domain in lowercase A-labels.
    pub address: String,
    /// The size limit of the URI (RFC 7489 §6.2 `!10m`), in bytes: `k`, `m`, `g` and `t`
    /// are powers of two (2^10 …). A report whose [`Report::size`] exceeds it is not sent.
    pub max_size: Option<u64>,
    /// When the address is outside the policy domain, the name to query for a TXT record
    /// starting with `v=DMARC1` (RFC 7489 §7.1) before sending, e.g.
    /// `policy.example._report._dmarc.reports.example`; see [`authorizes`].
    pub needs_authorization: Option<String>,
}

impl Destination {
    /// Whether `report` fits within the size limit.
    pub fn fits(&self, report: &Report) -> bool {
        self.max_size.is_none_or(|max| report.size() <= max)
    }
}

/// The usable destinations of a `rua` tag (RFC 7489 §6.2, §6.3): its `mailto:` URIs
/// (RFC 6068), each with its size limit, once each; other schemes and malformed URIs are
/// dropped. An element may also hold several URIs separated by commas.
///
/// An address needs the §7.1 authorization unless its domain is the policy domain or a
/// subdomain of it: the rule mail-auth's `verify_dmarc_report_address` applies. RFC 7489
/// compares Organizational Domains, which needs the public suffix list (mail-auth has none:
/// it finds Organizational Domains by the RFC 9989 DNS tree walk); this rule never skips a
/// needed check, and asks for an authorization record in the cases it cannot tell, such as
/// a subdomain's policy sending to its parent domain.
pub fn destinations(policy_domain: &str, rua: &[String]) -> Vec<Destination> {
    let policy = normalize_domain(policy_domain);
    let mut found: Vec<Destination> = Vec::new();
    for uri in rua.iter().flat_map(|element| element.split(',')) {
        let Some((address, max_size)) = parse_mailto(uri) else {
            continue;
        };
        if found.iter().any(|known| known.address == address) {
            continue;
        }
        let domain = address.rsplit_once('@').map_or("", |(_, domain)| domain);
        let internal = policy.as_deref().is_some_and(|policy| {
            domain == policy
                || domain
                    .strip_suffix(policy)
                    .is_some_and(|prefix| prefix.ends_with('.'))
        });
        let needs_authorization = (!internal).then(|| {
            format!(
                "{}._report._dmarc.{domain}",
                policy.as_deref().unwrap_or(policy_domain.trim())
            )
        });
        found.push(Destination {
            address,
            max_size,
            needs_authorization,
        });
    }
    found
}

/// Parses `mailto:address[?hfields][!size]`.
fn parse_mailto(uri: &str) -> Option<(String, Option<u64>)> {
    let uri = uri.trim();
    let scheme = uri.get(..7)?;
    if !scheme.eq_ignore_ascii_case("mailto:") {
        return None;
    }
    let rest = uri.get(7..)?;
    // "!" in the URI itself must be %-encoded (RFC 7489 §6.2), so the first one is the limit.
    let (target, size) = match rest.split_once('!') {
        Some((target, size)) => (target, Some(parse_size(size)?)),
        None => (rest, None),
    };
    let target = target.split_once('?').map_or(target, |(to, _)| to);
    let decoded = percent_decode(target)?;
    Some((normalize_address(&decoded)?, size))
}

/// `1*DIGIT [ "k" / "m" / "g" / "t" ]` (RFC 7489 §6.2), units powers of two.
fn parse_size(size: &str) -> Option<u64> {
    let size = size.trim();
    let (digits, shift) = match size.as_bytes().last()?.to_ascii_lowercase() {
        b'k' => (&size[..size.len() - 1], 10),
        b'm' => (&size[..size.len() - 1], 20),
        b'g' => (&size[..size.len() - 1], 30),
        b't' => (&size[..size.len() - 1], 40),
        _ => (size, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(value.saturating_mul(1 << shift))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

/// Whether the TXT records found at a destination's `needs_authorization` name authorize
/// it: one of them starts with `v=DMARC1` (RFC 7489 §7.1; spaces around `=` and the case of
/// `v` as the §6.4 grammar allows, `DMARC1` in capitals, followed by the end, `;` or a
/// space).
pub fn authorizes(txt_records: &[String]) -> bool {
    txt_records.iter().any(|record| {
        let record = record.trim_start_matches([' ', '\t']);
        let Some(rest) = record.strip_prefix(['v', 'V']) else {
            return false;
        };
        let Some(rest) = rest.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            return false;
        };
        let Some(rest) = rest.trim_start_matches([' ', '\t']).strip_prefix("DMARC1") else {
            return false;
        };
        rest.is_empty() || rest.starts_with([';', ' ', '\t'])
    })
}

/// The mail carrying `report` to `to` (RFC 7489 §7.2.1.1): From: the reporter's address,
/// the subject `Report Domain: POLICY Submitter: HOSTNAME Report-ID: <ID>`, a
/// `multipart/mixed` body with a short `text/plain` part and the gzipped report as an
/// `application/gzip` attachment in base64 named [`Report::gzip_name`]. Lines end in CRLF;
/// header fields are folded to 78 characters where they have room to, base64 lines are 76.
/// Characters that could break a header field (controls, line ends) are removed from the
/// values.
pub fn message(
    reporter: &Reporter,
    policy_domain: &str,
    report: &Report,
    to: &str,
    date: SystemTime,
) -> Vec<u8> {
    let seconds = date
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let hostname = header_text(
        &normalize_domain(&reporter.hostname).unwrap_or_else(|| reporter.hostname.clone()),
    );
    let domain =
        header_text(&normalize_domain(policy_domain).unwrap_or_else(|| policy_domain.to_string()));
    let report_id = header_text(&report.report_id);
    let from = header_text(&reporter.email);
    let to = header_text(to);

    let mut hash = digest::Context::new(&digest::SHA256);
    for part in [report_id.as_str(), to.as_str(), hostname.as_str()] {
        hash.update(part.as_bytes());
        hash.update(b"\0");
    }
    hash.update(&seconds.to_be_bytes());
    let unique = hex(&hash.finish().as_ref()[..8]);
    let boundary = format!("=_dmarc_{unique}");
    let id_host: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let id_left: String = report_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let file_name = header_text(&report.gzip_name).replace(['"', '\\'], "_");

    let mut out = String::with_capacity(report.size() as usize);
    out.push_str(&fold(&format!("From: {from}")));
    out.push_str(&fold(&format!("To: {to}")));
    out.push_str(&fold(&format!("Date: {}", rfc5322_date(seconds))));
    out.push_str(&fold(&format!(
        "Message-ID: <{id_left}.{unique}@{}>",
        if id_host.is_empty() {
            "localhost"
        } else {
            &id_host
        }
    )));
    out.push_str(&fold(&format!(
        "Subject: Report Domain: {domain} Submitter: {hostname} Report-ID: <{report_id}>"
    )));
    out.push_str("MIME-Version: 1.0\r\n");
    // An automatic message (RFC 3834 §5): no auto-replies to it.
    out.push_str("Auto-Submitted: auto-generated\r\n");
    let _ = write!(
        out,
        "Content-Type: multipart/mixed;\r\n boundary=\"{boundary}\"\r\n\r\n"
    );
    out.push_str("This is a DMARC aggregate report in MIME format.\r\n\r\n");
    let text = format!(
        concat!(
            "This is a DMARC aggregate report (RFC 7489) for {domain}.\r\n\r\n",
            "Report Domain: {domain}\r\n",
            "Submitter: {hostname}\r\n",
            "Report-ID: {report_id}\r\n",
        ),
        domain = domain,
        hostname = hostname,
        report_id = report_id,
    );
    crate::mail::text_and_attachment(
        &mut out,
        &boundary,
        &text,
        "application/gzip",
        &file_name,
        &report.gzipped,
    );
    out.into_bytes()
}

/// `YYYY-MM-DD` of a Unix time, UTC.
pub(crate) fn utc_date(seconds: i64) -> String {
    let (year, month, day) = civil_date(seconds.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Escapes text for an XML element's content (XML 1.0 §2.4: `&`, `<`, and `>`; quotes need
/// none there), and replaces the characters XML 1.0 cannot hold (§2.2: controls other than
/// tab and line ends) with U+FFFD.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A domain name in lowercase A-labels (RFC 5890) without a trailing dot, when it is one:
/// labels of 1 to 63 letters, digits, hyphens or underscores, 253 octets at most.
pub(crate) fn normalize_domain(domain: &str) -> Option<String> {
    let domain = domain.trim().trim_end_matches('.');
    if domain.is_empty() {
        return None;
    }
    let domain = mail_auth::common::to_a_label(domain).to_ascii_lowercase();
    let valid = domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(domain)
}

/// `local@domain` with its domain normalized, when it is a plain address: a local part of
/// printable ASCII without spaces, quotes, angle brackets, commas or semicolons.
fn normalize_address(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let plain = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"<>(),;:[]\\@".contains(&b));
    let domain = normalize_domain(domain)?;
    plain.then(|| format!("{local}@{domain}"))
}
