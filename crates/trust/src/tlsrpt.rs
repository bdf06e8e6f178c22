//! SMTP TLS Reporting (RFC 8460), the sending side: the outbound queue records how TLS went
//! with each recipient domain's mail hosts; once a day these observations become the JSON
//! aggregate report the domain asks for in its `_smtp._tls` TXT record.
//!
//! - [`classify`] turns the failure text of a delivery attempt into an RFC 8460 §4.3.2
//!   result type, or None for failures that are not about TLS (those are not reported).
//! - [`aggregate`] builds the §4 JSON report of one policy domain and period from the
//!   [`Observation`]s, gzips it and names it as §5.1 says.
//! - [`rua`] reads the `_smtp._tls` TXT record (§3) into its report URIs; [`mailto_address`]
//!   takes the address out of a `mailto:` one.
//! - [`message`] wraps a report into the §5.3 mail (`multipart/report; report-type="tlsrpt"`).
//!   §5.3 also requires a DKIM signature by the reporting domain, covering (SHOULD) the
//!   `TLS-Report-Domain` and `TLS-Report-Submitter` fields: that is the sender's job.
//!
//! The JSON is written with serde types of this module rather than mail-auth's: those write
//! every absent optional field as `null` (`sending-mta-ip`, `receiving-mx-helo`,
//! `additional-information`, ...), which the §4.4 JSON schema does not allow (strings), an
//! `mx-host` array for every policy type, and counts as 32-bit integers. mail-auth's parser
//! reads these reports back (the tests check it).
//!
//! Nothing here panics, whatever the input.

use crate::report::normalize_domain;
use flate2::{Compression, write::GzEncoder};
use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::mail::{civil_date, fold, header_text, hex, rfc5322_date};

/// The longest `failure-reason-code` written, in bytes (longer details are cut).
const MAX_REASON: usize = 1000;

/// The policy that applied to a delivery attempt (RFC 8460 §4.3 `policy-type`): its JSON
/// form is the RFC's, `sts`, `tlsa` or `no-policy-found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyType {
    /// An MTA-STS policy (RFC 8461).
    Sts,
    /// DANE TLSA records (RFC 7672).
    Tlsa,
    /// Neither: opportunistic TLS (RFC 8460 §4.3 `no-policy-found`).
    NoPolicyFound,
}

impl PolicyType {
    /// The RFC 8460 §4.3 name: `sts`, `tlsa` or `no-policy-found`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
        }
    }
}

/// The outcome of a TLS session: RFC 8460 §4.3.2 result types (the `result-type` of
/// `failure-details`, named as there in JSON: `starttls-not-supported`, ...), plus
/// `Success` for the sessions counted in `total-successful-session-count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultType {
    /// The TLS session was established as the policy requires (counted, not detailed).
    Success,
    /// §4.3.2.1: the receiving MX does not support STARTTLS.
    StarttlsNotSupported,
    /// §4.3.2.1: the certificate does not match the host name.
    CertificateHostMismatch,
    /// §4.3.2.1: the certificate has expired.
    CertificateExpired,
    /// §4.3.2.1: the certificate is not trusted (self-signed, unknown issuer, bad chain).
    CertificateNotTrusted,
    /// §4.3.2.1, §4.3.2.3: any other negotiation failure.
    ValidationFailure,
    /// §4.3.2.2.1: no TLSA record of the MX matches its certificate.
    TlsaInvalid,
    /// §4.3.2.2.1: no valid (DNSSEC-validated) records came back from the resolver.
    DnssecInvalid,
    /// §4.3.2.2.1: DANE is required for the destination but the MX has no DNSSEC-validated
    /// TLSA records.
    DaneRequired,
    /// §4.3.2.2.2: the MTA-STS policy could not be retrieved.
    StsPolicyFetchError,
    /// §4.3.2.2.2: the MTA-STS policy is not valid.
    StsPolicyInvalid,
    /// §4.3.2.2.2: the MTA-STS policy server failed PKIX (WebPKI) authentication.
    StsWebpkiInvalid,
}

impl ResultType {
    /// The RFC 8460 §4.3.2 name (`starttls-not-supported`, ...; `success` for
    /// [`ResultType::Success`], which never appears in a report).
    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::Success => "success",
            ResultType::StarttlsNotSupported => "starttls-not-supported",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::DaneRequired => "dane-required",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }
}

/// Observed outcomes of delivery attempts to one policy domain, as the queue records them:
/// `count` sessions that went alike (the caller aggregates). The input of [`aggregate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The recipient domain, the Policy Domain of RFC 8460 §4.3 `policy-domain`.
    pub policy_domain: String,
    /// The policy in force (§4.3 `policy-type`).
    pub policy_type: PolicyType,
    /// The policy as §4.3 `policy-string` encodes it: the MTA-STS policy lines
    /// (`version: STSv1`, `mode: enforce`, `mx: mx.example.com`, `max_age: 86400`), or the
    /// TLSA records in presentation format (`3 1 1 ab12...`, RFC 6698 §2.3); may be empty
    /// (always, for `no-policy-found`). For MTA-STS, its `mx:` lines also give `mx-host`.
    pub policy_strings: Vec<String>,
    /// The MX host name the session was with (§4.3 `receiving-mx-hostname`).
    pub mx_host: Option<String>,
    /// The address the session was with (§4.3 `receiving-ip`).
    pub receiving_ip: Option<IpAddr>,
    /// How the sessions went.
    pub result: ResultType,
    /// How many sessions went so; 0 counts for nothing.
    pub count: u64,
    /// Free text for the failure (§4.3 `failure-reason-code`: "a TLS-related error code or
    /// error message"), e.g. the TLS error; may be empty. Ignored for successes.
    pub detail: String,
}

/// Tells what kind of RFC 8460 §4.3.2 failure the SMTP client's failure text `failure`
/// describes, given the policy in force. None for failures unrelated to TLS, which are not
/// reported: connection refused or timed out, DNS errors, SMTP replies other than to
/// STARTTLS; and for transient network errors during the handshake (timeouts, resets:
/// §4.3.2.4 does not require them).
///
/// Matched without regard to case, in this order:
///
/// - MTA-STS (text mentioning `MTA-STS`): MX hosts outside the policy (`... matches its
///   policy`, `not in the domain's policy`) are `validation-failure` (§4.3.2 has no type of
///   its own for them); otherwise the policy fetch: a TLS or certificate error with the
///   policy host (`TLS with mta-sts.DOMAIN: ...`) is `sts-webpki-invalid`, a policy that
///   does not parse (`the policy has no mode`, `unknown mode`, ...) `sts-policy-invalid`,
///   anything else (HTTP status, connection, DNS, timeout) `sts-policy-fetch-error`.
/// - STARTTLS not offered (`STARTTLS is required for this route and the server does not
///   offer it`) or refused (`454 ... (STARTTLS refused)`): `starttls-not-supported`.
/// - DANE: TLSA records that cannot be read (`TLSA records of X cannot be read`) or DNSSEC
///   errors: `dnssec-invalid`; DANE required but absent: `dane-required`; a certificate
///   matching none of the TLSA records (`DANE: the certificate of X matches none of its ...`):
///   `tlsa-invalid`.
/// - The handshake: a fatal alert from the server, an incompatible or misbehaving peer:
///   `validation-failure`. A certificate the client refused (rustls 0.23 `invalid peer
///   certificate: ...`): under a TLSA policy `tlsa-invalid` (the records alone decide,
///   RFC 7672 §3); else `Expired`/`certificate expired` is `certificate-expired`,
///   `NotValidForName`/`certificate not valid for name` `certificate-host-mismatch`,
///   `UnknownIssuer` `certificate-not-trusted`, anything else (not yet valid, revoked, bad
///   signature or encoding, wrong purpose) `validation-failure`. Other handshake failures
///   (`TLS handshake failed: ...`) are `validation-failure`, except network errors.
pub fn classify(policy: PolicyType, failure: &str) -> Option<ResultType> {
    let text = failure.to_ascii_lowercase();
    let has = |needle: &str| text.contains(needle);

    // MTA-STS (RFC 8461): the MX hosts the policy allows, and the policy's retrieval.
    if has("mta-sts") {
        if has("matches its policy") || has("not in the domain's policy") || has("not allowed by") {
            return Some(ResultType::ValidationFailure);
        }
        if has("fetch") || has("policy") || has("mta-sts.") || has("retriev") {
            return Some(sts_fetch(&text));
        }
    }

    // An SMTP reply to a command other than STARTTLS (`550 ... (RCPT refused)`).
    if text.ends_with(" refused)") && !has("(starttls refused)") {
        return None;
    }

    if has("starttls is required")
        || has("does not offer starttls")
        || has("starttls refused")
        || has("starttls not supported")
        || has("starttls is not supported")
        || has("starttls not offered")
        || has("starttls is not offered")
    {
        return Some(ResultType::StarttlsNotSupported);
    }

    // DANE (RFC 7672).
    if (has("tlsa") && (has("cannot be read") || has("bogus") || has("servfail")))
        || (has("dnssec") && (has("bogus") || has("invalid") || has("fail")))
    {
        return Some(ResultType::DnssecInvalid);
    }
    if has("dane is required") || has("dane required") || has("requires dane") {
        return Some(ResultType::DaneRequired);
    }
    if has("dane") && (has("matches none of") || (has("tlsa") && has("invalid"))) {
        return Some(ResultType::TlsaInvalid);
    }

    // Network errors in the middle of the handshake are transient (§4.3.2.4).
    let handshake = has("tls handshake");
    if handshake && is_network_error(&text) {
        return None;
    }

    // The server's fatal alert (about our side, or the negotiation): rustls `Error` Display
    // `received fatal alert: ...`, `peer is incompatible: ...`, `peer misbehaved: ...`.
    let certificate = has("invalid peer certificate")
        || has("certificate expired")
        || has("certificate not valid for name")
        || has("certificate not valid yet")
        || has("peer sent no certificates");
    if !certificate
        && (has("received fatal alert")
            || has("peer is incompatible")
            || has("peer misbehaved")
            || has("received corrupt message")
            || has("received unexpected"))
    {
        return Some(ResultType::ValidationFailure);
    }
    if certificate {
        if policy == PolicyType::Tlsa {
            return Some(ResultType::TlsaInvalid);
        }
        return Some(certificate_failure(&text));
    }
    if handshake {
        return Some(ResultType::ValidationFailure);
    }
    None
}

/// A failure to get the MTA-STS policy (RFC 8460 §4.3.2.2.2), `text` in lowercase.
fn sts_fetch(text: &str) -> ResultType {
    let has = |needle: &str| text.contains(needle);
    if has("certificate") || has("tls with") || has("tls handshake") || has("webpki") {
        return ResultType::StsWebpkiInvalid;
    }
    // The errors of the queue's policy parser (RFC 8461 §3.2), and usual wordings.
    if has("version: stsv1")
        || has("has no mode")
        || has("unknown mode")
        || has("max_age")
        || has("names no mx")
        || has("not utf-8")
        || has("policy is invalid")
        || has("invalid policy")
        || has("malformed")
        || has("syntax")
    {
        return ResultType::StsPolicyInvalid;
    }
    ResultType::StsPolicyFetchError
}

/// Whether a handshake failure `text` (lowercase) is an I/O error of the connection rather
/// than a TLS one.
fn is_network_error(text: &str) -> bool {
    [
        "timed out",
        "timeout",
        "os error",
        "connection reset",
        "broken pipe",
        "connection aborted",
        "network is unreachable",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The §4.3.2.1 type of a certificate the client refused: rustls 0.23 `CertificateError`
/// Display texts (variants without context print their name: `Expired`, `NotValidForName`,
/// `UnknownIssuer`; the `...Context` ones a sentence), `text` in lowercase.
fn certificate_failure(text: &str) -> ResultType {
    let has = |needle: &str| text.contains(needle);
    if has("notvalidforname") || has("not valid for name") || has("hostname mismatch") {
        ResultType::CertificateHostMismatch
    } else if has("expired") && !has("revocation") {
        ResultType::CertificateExpired
    } else if has("unknownissuer") || has("unknown issuer") || has("self-signed") {
        ResultType::CertificateNotTrusted
    } else {
        ResultType::ValidationFailure
    }
}

/// Who sends the reports (RFC 8460 §4.3 `organization-name`, `contact-info`; §5.3
/// `TLS-Report-Submitter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// The reporting organization (`organization-name`).
    pub org_name: String,
    /// Where to reach the party responsible for the reports, an address (`mailto:` allowed):
    /// the report's `contact-info` and the From: of [`message`]. §5.1 and §5.3 want its
    /// domain to be the submitter, so it is best an address at [`Reporter::hostname`].
    pub contact: String,
    /// The domain name of the sending MTA: the submitter (§5.3 `TLS-Report-Submitter`, the
    /// subject's `Submitter:`), the first part of the file name (§5.1), the right-hand side
    /// of the report identifier.
    pub hostname: String,
}

/// One report, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its unique identifier (§4.3 `report-id`, the subject's `Report-ID:`), in the
    /// `id-left@id-right` form the §5.3 subject asks for: a hash of the submitter, domain,
    /// period and content, `@`, the submitter. The same report gets the same identifier
    /// (§5.3: so that duplicates can be recognized), any other another one.
    pub report_id: String,
    /// The §4 JSON document.
    pub json: Vec<u8>,
    /// The JSON gzipped (RFC 1952), the `application/tlsrpt+gzip` attachment.
    pub gzipped: Vec<u8>,
    /// The file name of the gzipped report (§5.1):
    /// `submitter!policy-domain!begin!end!unique-id.json.gz`, times in seconds since 1970.
    pub filename: String,
}

/// Why a report could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsRptError {
    /// A domain name (the policy domain or the reporter's host name) is not one.
    #[error("{0:?} is not a domain name")]
    InvalidDomain(String),
    /// The reporter's contact is not an email address.
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
    /// No session with the policy domain was observed: nothing to report.
    #[error("no TLS session with {0} observed")]
    NoObservations(String),
    /// Writing the JSON or compressing it failed.
    #[error("cannot write the report: {0}")]
    Write(String),
}

/// The §4.4 report document.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JsonReport<'a> {
    organization_name: &'a str,
    date_range: JsonDateRange,
    contact_info: &'a str,
    report_id: &'a str,
    policies: &'a [JsonPolicy],
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JsonDateRange {
    start_datetime: String,
    end_datetime: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JsonPolicy {
    policy: JsonPolicyDetails,
    summary: JsonSummary,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failure_details: Vec<JsonFailure>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JsonPolicyDetails {
    policy_type: PolicyType,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    policy_string: Vec<String>,
    policy_domain: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mx_host: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JsonSummary {
    total_successful_session_count: u64,
    total_failure_session_count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JsonFailure {
    result_type: ResultType,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiving_mx_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiving_ip: Option<IpAddr>,
    failed_session_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason_code: Option<String>,
}

/// What makes two failures one `failure-details` entry: result type, MX host, address,
/// reason.
type FailureKey = (&'static str, Option<String>, Option<IpAddr>, Option<String>);

/// The sessions of one policy.
#[derive(Default)]
struct PolicyCounts {
    successes: u64,
    failures: u64,
    details: BTreeMap<FailureKey, (ResultType, u64)>,
}

/// Builds the RFC 8460 §4 report of `policy_domain` for the period `begin..=end` (seconds
/// since 1970; the JSON `date-range` in RFC 3339 date-times such as `2026-11-22T00:00:00Z`;
/// §4.1 recommends a full UTC day) from the observations of that domain; the others are
/// left out, and so are observations counting 0 sessions.
///
/// One `policies` entry per policy (type and strings), with its `policy-domain`, its
/// `policy-string` when known and, for MTA-STS, its `mx-host` patterns (the policy's `mx:`
/// lines); a `summary` of the successful and failed sessions; and `failure-details`, one per
/// result type, MX host name, address and reason, with `failed-session-count` summed.
/// `sending-mta-ip` is left out (optional in §4.4). Names are written in lowercase A-labels
/// (§4.3). The report is gzipped and named as §5.1 says, with a unique-id.
pub fn aggregate(
    reporter: &Reporter,
    policy_domain: &str,
    begin: i64,
    end: i64,
    observations: &[Observation],
) -> Result<Report, TlsRptError> {
    let domain = normalize_domain(policy_domain)
        .ok_or_else(|| TlsRptError::InvalidDomain(policy_domain.to_string()))?;
    let hostname = normalize_domain(&reporter.hostname)
        .ok_or_else(|| TlsRptError::InvalidDomain(reporter.hostname.clone()))?;
    let contact = contact_address(&reporter.contact)
        .ok_or_else(|| TlsRptError::InvalidAddress(reporter.contact.clone()))?;
    if begin < 0 || end < begin {
        return Err(TlsRptError::InvalidPeriod { begin, end });
    }

    let mut policies: BTreeMap<(&'static str, Vec<String>), (PolicyType, PolicyCounts)> =
        BTreeMap::new();
    for observation in observations {
        if observation.count == 0
            || normalize_domain(&observation.policy_domain).as_deref() != Some(domain.as_str())
        {
            continue;
        }
        let key = (
            observation.policy_type.as_str(),
            observation.policy_strings.clone(),
        );
        let (_, counts) = policies
            .entry(key)
            .or_insert_with(|| (observation.policy_type, PolicyCounts::default()));
        if observation.result == ResultType::Success {
            counts.successes = counts.successes.saturating_add(observation.count);
            continue;
        }
        counts.failures = counts.failures.saturating_add(observation.count);
        let mx = observation
            .mx_host
            .as_deref()
            .map(host_name)
            .filter(|mx| !mx.is_empty());
        let key = (
            observation.result.as_str(),
            mx,
            observation.receiving_ip,
            reason(&observation.detail),
        );
        let entry = counts.details.entry(key).or_insert((observation.result, 0));
        entry.1 = entry.1.saturating_add(observation.count);
    }
    if policies.is_empty() {
        return Err(TlsRptError::NoObservations(domain));
    }

    let policies: Vec<JsonPolicy> = policies
        .into_iter()
        .map(|((_, strings), (policy_type, counts))| {
            let mx_host = if policy_type == PolicyType::Sts {
                mx_patterns(&strings)
            } else {
                Vec::new()
            };
            JsonPolicy {
                policy: JsonPolicyDetails {
                    policy_type,
                    policy_string: strings,
                    policy_domain: domain.clone(),
                    mx_host,
                },
                summary: JsonSummary {
                    total_successful_session_count: counts.successes,
                    total_failure_session_count: counts.failures,
                },
                failure_details: counts
                    .details
                    .into_iter()
                    .map(|((_, mx, ip, reason), (result_type, count))| JsonFailure {
                        result_type,
                        receiving_mx_hostname: mx,
                        receiving_ip: ip,
                        failed_session_count: count,
                        failure_reason_code: reason,
                    })
                    .collect(),
            }
        })
        .collect();

    // The identifier hashes everything the report says.
    let body = serde_json::to_vec(&policies).map_err(|err| TlsRptError::Write(err.to_string()))?;
    let mut hash = digest::Context::new(&digest::SHA256);
    for part in [
        hostname.as_bytes(),
        domain.as_bytes(),
        reporter.org_name.as_bytes(),
        contact.as_bytes(),
        &body,
    ] {
        hash.update(part);
        hash.update(b"\0");
    }
    hash.update(&begin.to_be_bytes());
    hash.update(&end.to_be_bytes());
    let unique = hex(&hash.finish().as_ref()[..16]);
    let report_id = format!("{unique}@{hostname}");

    let json = serde_json::to_vec(&JsonReport {
        organization_name: &reporter.org_name,
        date_range: JsonDateRange {
            start_datetime: rfc3339(begin),
            end_datetime: rfc3339(end),
        },
        contact_info: &contact,
        report_id: &report_id,
        policies: &policies,
    })
    .map_err(|err| TlsRptError::Write(err.to_string()))?;

    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::best());
    encoder
        .write_all(&json)
        .map_err(|err| TlsRptError::Write(err.to_string()))?;
    let gzipped = encoder
        .finish()
        .map_err(|err| TlsRptError::Write(err.to_string()))?;

    Ok(Report {
        filename: format!("{hostname}!{domain}!{begin}!{end}!{unique}.json.gz"),
        report_id,
        json,
        gzipped,
    })
}

/// The `mx:` patterns of MTA-STS policy lines (RFC 8461 §3.2), for `mx-host` (RFC 8460
/// §4.3), in lowercase A-labels when they are names.
fn mx_patterns(lines: &[String]) -> Vec<String> {
    let mut patterns: Vec<String> = Vec::new();
    for line in lines {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() != "mx" {
            continue;
        }
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let pattern = match value.strip_prefix("*.") {
            Some(rest) => normalize_domain(rest).map(|rest| format!("*.{rest}")),
            None => normalize_domain(value),
        }
        .unwrap_or_else(|| value.to_string());
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    patterns
}

/// A host name as reported: lowercase A-labels without a final dot when it is one, else
/// (an address literal, say) the text trimmed.
fn host_name(host: &str) -> String {
    normalize_domain(host).unwrap_or_else(|| host.trim().to_string())
}

/// The `failure-reason-code` of a detail: the text on one line, at most [`MAX_REASON`]
/// bytes; None when empty.
fn reason(detail: &str) -> Option<String> {
    let line: String = detail
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut end = line.len().min(MAX_REASON);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let line = line[..end].trim_end();
    (!line.is_empty()).then(|| line.to_string())
}

/// `2026-11-22T00:00:00Z` (RFC 3339 §5.6 `date-time`, UTC).
fn rfc3339(seconds: i64) -> String {
    let (year, month, day) = civil_date(seconds.div_euclid(86_400));
    let time = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// The report URIs of a `_smtp._tls.DOMAIN` TXT record set (RFC 8460 §3), `mailto:` and
/// `https:` ones, as published, each once. `records` are all the TXT records at that name,
/// each with its strings already joined without spaces (§3).
///
/// Records not starting with `v=TLSRPTv1` followed by `;` are discarded; unless exactly one
/// remains, the domain does not use TLSRPT (§3): None. The record must follow the §3 grammar
/// (fields separated by `;` and optional spaces, names and values as the ABNF has them, one
/// `rua` with URIs separated by commas); unknown fields are ignored. None also when the
/// record is malformed or names no `mailto:` or `https:` URI (the only schemes §3 defines).
pub fn rua(records: &[String]) -> Option<Vec<String>> {
    let tlsrpt: Vec<&str> = records
        .iter()
        .map(|record| record.trim_matches(is_wsp))
        .filter(|record| {
            record
                .strip_prefix("v=TLSRPTv1")
                .is_some_and(|rest| rest.trim_start_matches(is_wsp).starts_with(';'))
        })
        .collect();
    let [record] = tlsrpt.as_slice() else {
        return None;
    };
    let mut found: Option<Vec<String>> = None;
    // The version, then the fields; a last `;` is allowed.
    let mut fields = record.split(';').map(|field| field.trim_matches(is_wsp));
    fields.next();
    let fields: Vec<&str> = fields.collect();
    for (index, field) in fields.iter().enumerate() {
        if field.is_empty() && index + 1 == fields.len() {
            break;
        }
        let (name, value) = field.split_once('=')?;
        let (name, value) = (name.trim_matches(is_wsp), value.trim_matches(is_wsp));
        if name == "rua" {
            if found.is_some() {
                return None;
            }
            let mut uris = Vec::new();
            for uri in value.split(',') {
                let uri = uri.trim_matches(is_wsp);
                if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
                    return None;
                }
                if usable_uri(uri) && !uris.iter().any(|known: &String| known == uri) {
                    uris.push(uri.to_string());
                }
            }
            found = Some(uris);
        } else if !extension_name(name)
            || value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'=' && b != b';')
        {
            return None;
        }
    }
    found.filter(|uris| !uris.is_empty())
}

/// `WSP` (RFC 5234): space or tab.
fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `tlsrpt-ext-name` (§3): a letter or digit, then up to 31 letters, digits, `_`, `-`, `.`.
fn extension_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.len() <= 32
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether a `rua` URI is one a report can go to: `mailto:` with an address, or `https:`
/// with a host (§3).
fn usable_uri(uri: &str) -> bool {
    if uri
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
    {
        return mailto_address(uri).is_some();
    }
    if uri
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        let rest = &uri[8..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        return !host.is_empty() && !host.starts_with(':');
    }
    false
}

/// The address of a `mailto:` URI (RFC 6068): percent-decoded, without `?` header fields,
/// its domain in lowercase A-labels. None for another scheme, several addresses or
/// anything but a plain address (see [`rua`]).
pub fn mailto_address(uri: &str) -> Option<String> {
    let uri = uri.trim();
    if !uri.get(..7)?.eq_ignore_ascii_case("mailto:") {
        return None;
    }
    let target = &uri[7..];
    let target = target.split_once('?').map_or(target, |(to, _)| to);
    normalize_address(&percent_decode(target)?)
}

/// The reporter's contact as a bare address: `mailto:` URIs decoded.
fn contact_address(contact: &str) -> Option<String> {
    let contact = contact.trim();
    if contact
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
    {
        mailto_address(contact)
    } else {
        normalize_address(contact)
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = (*bytes.get(i + 1)? as char).to_digit(16)?;
            let lo = (*bytes.get(i + 2)? as char).to_digit(16)?;
            out.push((hi << 4 | lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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

/// The mail carrying `report` about `policy_domain` to `to` (RFC 8460 §5.3): From: the
/// reporter's contact address; To:, Date:, Message-ID:; the subject `Report Domain: DOMAIN
/// Submitter: HOSTNAME Report-ID: <ID>`; the `TLS-Report-Domain` and `TLS-Report-Submitter`
/// fields; `Auto-Submitted: auto-generated` (RFC 3834 §5); a `multipart/report;
/// report-type="tlsrpt"` body (RFC 6522) with a short `text/plain` part and the gzipped
/// report as an `application/tlsrpt+gzip` attachment in base64 named [`Report::filename`].
///
/// Lines end in CRLF; header fields are folded to 78 characters where they have room to,
/// base64 lines are 76. Domain names are written as lowercase A-labels, or reduced to the
/// characters of host names when they are not names; other values lose their control
/// characters: nothing a caller passes can add a header field or a MIME part. `to` may be a
/// `mailto:` URI. The message still needs the DKIM signature §5.3 requires.
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
    let hostname = domain_text(&reporter.hostname);
    let domain = domain_text(policy_domain);
    let report_id = header_text(&report.report_id).replace(['<', '>', ' '], "");
    let from = contact_address(&reporter.contact)
        .unwrap_or_else(|| header_text(&reporter.contact).replace(['<', '>', ',', ' '], ""));
    let to = if to
        .trim()
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
    {
        mailto_address(to).unwrap_or_else(|| header_text(&to.trim()[7..]))
    } else {
        header_text(to)
    };
    let org = header_text(&reporter.org_name);

    let mut hash = digest::Context::new(&digest::SHA256);
    for part in [report_id.as_str(), to.as_str(), hostname.as_str()] {
        hash.update(part.as_bytes());
        hash.update(b"\0");
    }
    hash.update(&seconds.to_be_bytes());
    let unique = hex(&hash.finish().as_ref()[..8]);
    let boundary = format!("=_tlsrpt_{unique}");
    let id_left: String = report_id
        .split('@')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let id_host = if hostname.is_empty() {
        "localhost"
    } else {
        hostname.as_str()
    };
    let filename: String = report
        .filename
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';'))
        .collect();

    let mut out = String::with_capacity(report.gzipped.len() * 4 / 3 + 2048);
    out.push_str(&fold(&format!("From: {from}")));
    out.push_str(&fold(&format!("To: {to}")));
    out.push_str(&fold(&format!("Date: {}", rfc5322_date(seconds))));
    out.push_str(&fold(&format!(
        "Message-ID: <{id_left}.{unique}@{id_host}>"
    )));
    out.push_str(&fold(&format!(
        "Subject: Report Domain: {domain} Submitter: {hostname} Report-ID: <{report_id}>"
    )));
    out.push_str(&fold(&format!("TLS-Report-Domain: {domain}")));
    out.push_str(&fold(&format!("TLS-Report-Submitter: {hostname}")));
    out.push_str("MIME-Version: 1.0\r\n");
    // An automatic message (RFC 3834 §5): no auto-replies to it.
    out.push_str("Auto-Submitted: auto-generated\r\n");
    let _ = write!(
        out,
        "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n boundary=\"{boundary}\"\r\n\r\n"
    );
    out.push_str("This is an SMTP TLS report in MIME format.\r\n\r\n");
    let text = format!(
        concat!(
            "This is an aggregate TLS report (RFC 8460) from {org} about the TLS\r\n",
            "connections to the mail servers of {domain}.\r\n\r\n",
            "Report Domain: {domain}\r\n",
            "Submitter: {hostname}\r\n",
            "Report-ID: <{report_id}>\r\n",
        ),
        org = if org.is_empty() {
            hostname.as_str()
        } else {
            &org
        },
        domain = domain,
        hostname = hostname,
        report_id = report_id,
    );
    crate::mail::text_and_attachment(
        &mut out,
        &boundary,
        &text,
        "application/tlsrpt+gzip",
        &filename,
        &report.gzipped,
    );
    out.into_bytes()
}

/// A domain name for a header field: lowercase A-labels when it is one, else only the
/// characters a host name may have.
fn domain_text(domain: &str) -> String {
    normalize_domain(domain).unwrap_or_else(|| {
        domain
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_305_600), "2026-11-22T00:00:00Z");
        assert_eq!(rfc3339(1_795_391_999), "2026-11-22T23:59:59Z");
        assert_eq!(
            rfc5322_date(1_795_305_600),
            "Sun, 22 Nov 2026 00:00:00 +0000"
        );
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(reason("  \r\n "), None);
        assert_eq!(reason("a\r\nb").as_deref(), Some("a  b"));
        let long = "é".repeat(MAX_REASON);
        let cut = reason(&long).unwrap();
        assert!(cut.len() <= MAX_REASON && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn mx_patterns_of_a_policy() {
        let lines = [
            "version: STSv1",
            "mode: enforce",
            "mx: MX1.Example.com.",
            "mx: *.mail.example.com",
            "mx: mx1.example.com",
            "max_age: 86400",
        ]
        .map(String::from);
        assert_eq!(
            mx_patterns(&lines),
            ["mx1.example.com", "*.mail.example.com"]
        );
    }
}
