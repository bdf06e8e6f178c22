//! Aggregate reports other receivers send to our `rua` address: reading them out of their
//! mail (RFC 7489 §7.2.1.1) and summing them up for the admin.

use super::{MAX_DECOMPRESSED, ReportError, utc_date, zip};
use flate2::read::GzDecoder;
use mail_auth::report::{ActionDisposition, Disposition, DmarcResult, Report};
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;

/// Attachments looked at in one message, at most.
const MAX_ATTACHMENTS: usize = 16;
/// Files read from one zip archive, at most.
const MAX_ZIP_ENTRIES: usize = 16;
/// How deep attached messages (`message/rfc822`, a forwarded report) are searched.
const MAX_DEPTH: usize = 2;
/// Text taken from a report into the summary, at most, per field.
const MAX_FIELD: usize = 120;

/// One aggregate report we received (RFC 7489 appendix C), as far as the admin cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedReport {
    /// The reporting organization (`org_name`).
    pub org_name: String,
    /// Its contact address (`email`).
    pub email: String,
    /// Its identifier of the report (`report_id`).
    pub report_id: String,
    /// The policy domain reported on (`policy_published/domain`).
    pub domain: String,
    /// The period covered, seconds since 1970 (`date_range`).
    pub begin: i64,
    /// Its end.
    pub end: i64,
    /// The policy the reporter saw published (`p`): `none`, `quarantine`, `reject`, or empty
    /// when the report does not say.
    pub policy: String,
    /// Its `record`s.
    pub rows: Vec<ReceivedRow>,
}

/// One `record` of a received report: messages from one source with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedRow {
    /// The sending address (`source_ip`), empty when the report has none.
    pub source_ip: String,
    /// How many messages (`count`).
    pub count: u64,
    /// What the reporter did with them (`policy_evaluated/disposition`): `none`,
    /// `quarantine`, `reject`, `pass` (RFC 9990 reports), or empty when not said.
    pub disposition: String,
    /// The DMARC-aligned DKIM result (`policy_evaluated/dkim`): `pass` or `fail` (a missing
    /// value counts as `fail`).
    pub dkim: String,
    /// The DMARC-aligned SPF result (`policy_evaluated/spf`): `pass` or `fail`.
    pub spf: String,
    /// The From: domain of the messages (`identifiers/header_from`).
    pub header_from: String,
}

impl ReceivedReport {
    /// How many messages the report counts.
    pub fn messages(&self) -> u64 {
        self.rows
            .iter()
            .fold(0, |sum, row| sum.saturating_add(row.count))
    }

    /// How many of them passed DMARC: aligned DKIM or aligned SPF passed (RFC 7489 §4.2).
    pub fn passed(&self) -> u64 {
        self.rows
            .iter()
            .filter(|row| row.passed())
            .fold(0, |sum, row| sum.saturating_add(row.count))
    }

    fn from_report(report: &Report) -> Self {
        Self {
            org_name: report.org_name().to_string(),
            email: report.email().to_string(),
            report_id: report.report_id().to_string(),
            domain: report.domain().to_string(),
            begin: i64::try_from(report.date_range_begin()).unwrap_or(i64::MAX),
            end: i64::try_from(report.date_range_end()).unwrap_or(i64::MAX),
            policy: match report.p() {
                Disposition::None => "none",
                Disposition::Quarantine => "quarantine",
                Disposition::Reject => "reject",
                Disposition::Unspecified => "",
            }
            .to_string(),
            rows: report
                .records()
                .iter()
                .map(|record| ReceivedRow {
                    source_ip: record
                        .source_ip()
                        .map(|ip| ip.to_string())
                        .unwrap_or_default(),
                    count: u64::from(record.count()),
                    disposition: match record.action_disposition() {
                        ActionDisposition::None => "none",
                        ActionDisposition::Pass => "pass",
                        ActionDisposition::Quarantine => "quarantine",
                        ActionDisposition::Reject => "reject",
                        ActionDisposition::Unspecified => "",
                    }
                    .to_string(),
                    dkim: pass_fail(record.dmarc_dkim_result()),
                    spf: pass_fail(record.dmarc_spf_result()),
                    header_from: record.header_from().to_string(),
                })
                .collect(),
        }
    }
}

impl ReceivedRow {
    fn passed(&self) -> bool {
        self.dkim == "pass" || self.spf == "pass"
    }
}

fn pass_fail(result: DmarcResult) -> String {
    if result == DmarcResult::Pass {
        "pass"
    } else {
        "fail"
    }
    .to_string()
}

/// The aggregate reports attached to a report mail (RFC 7489 §7.2.1.1): every part typed
/// `application/gzip` (or `x-gzip`), `application/zip` (or `x-zip-compressed`), `text/xml`
/// or `application/xml`, or named `*.gz`, `*.zip` or `*.xml`, also inside an attached
/// message. The content decides the format when it starts like gzip or zip, whatever its
/// label says. Each attachment may decompress to [`MAX_DECOMPRESSED`] bytes at most; at most
/// 16 attachments and 16 files per zip archive are read. The XML is parsed by mail-auth.
///
/// The reports that could be read are returned; when none could, the error of the first
/// attachment that failed, or [`ReportError::NoReport`].
pub fn parse_report_message(message: &[u8]) -> Result<Vec<ReceivedReport>, ReportError> {
    let parsed = MessageParser::new()
        .parse(message)
        .ok_or(ReportError::NotAMessage)?;
    let mut search = Search::default();
    search.message(&parsed, 0);
    match (search.reports.is_empty(), search.error) {
        (false, _) => Ok(search.reports),
        (true, Some(error)) => Err(error),
        (true, None) => Err(ReportError::NoReport),
    }
}

#[derive(Default)]
struct Search {
    reports: Vec<ReceivedReport>,
    error: Option<ReportError>,
    attachments: usize,
}

#[derive(Clone, Copy)]
enum Format {
    Gzip,
    Zip,
    Xml,
}

impl Search {
    fn message(&mut self, message: &Message<'_>, depth: usize) {
        for part in &message.parts {
            if self.attachments >= MAX_ATTACHMENTS {
                return;
            }
            match &part.body {
                PartType::Message(nested) => {
                    if depth < MAX_DEPTH {
                        self.message(nested, depth + 1);
                    }
                }
                PartType::Multipart(_) => {}
                _ => {
                    let Some(declared) = declared_format(part) else {
                        continue;
                    };
                    self.attachments += 1;
                    let contents = part.contents();
                    let format = if contents.starts_with(&[0x1f, 0x8b]) {
                        Format::Gzip
                    } else if contents.starts_with(b"PK\x03\x04") {
                        Format::Zip
                    } else {
                        declared
                    };
                    match documents(format, contents) {
                        Ok(documents) => {
                            for document in documents {
                                self.parse(&document);
                            }
                        }
                        Err(error) => {
                            self.error.get_or_insert(error);
                        }
                    }
                }
            }
        }
    }

    fn parse(&mut self, document: &[u8]) {
        match Report::parse_xml(document) {
            Ok(report) => self.reports.push(ReceivedReport::from_report(&report)),
            Err(error) => {
                self.error.get_or_insert(ReportError::Xml(error));
            }
        }
    }
}

/// The format a part's type or file name announces, if it looks like a report.
fn declared_format(part: &MessagePart<'_>) -> Option<Format> {
    let content_type = part.content_type().map(|content_type| {
        format!(
            "{}/{}",
            content_type.ctype(),
            content_type.subtype().unwrap_or_default()
        )
        .to_ascii_lowercase()
    });
    let by_type = match content_type.as_deref() {
        Some(
            "application/gzip"
            | "application/x-gzip"
            | "application/gzip-compressed"
            | "application/x-gzip-compressed",
        ) => Some(Format::Gzip),
        Some("application/zip" | "application/x-zip-compressed" | "application/x-zip") => {
            Some(Format::Zip)
        }
        Some("text/xml" | "application/xml") => Some(Format::Xml),
        _ => None,
    };
    by_type.or_else(|| {
        let name = part.attachment_name()?.trim().to_ascii_lowercase();
        if name.ends_with(".gz") || name.ends_with(".gzip") {
            Some(Format::Gzip)
        } else if name.ends_with(".zip") {
            Some(Format::Zip)
        } else if name.ends_with(".xml") {
            Some(Format::Xml)
        } else {
            None
        }
    })
}

/// The XML documents in an attachment, each at most [`MAX_DECOMPRESSED`] bytes.
fn documents(format: Format, contents: &[u8]) -> Result<Vec<Vec<u8>>, ReportError> {
    match format {
        Format::Xml => {
            if contents.len() > MAX_DECOMPRESSED {
                return Err(ReportError::TooLarge);
            }
            Ok(vec![contents.to_vec()])
        }
        Format::Gzip => {
            let mut document = Vec::with_capacity(contents.len().saturating_mul(8).min(1 << 20));
            GzDecoder::new(contents)
                .take(MAX_DECOMPRESSED as u64 + 1)
                .read_to_end(&mut document)
                .map_err(|err| ReportError::Decompress(format!("gzip: {err}")))?;
            if document.len() > MAX_DECOMPRESSED {
                return Err(ReportError::TooLarge);
            }
            Ok(vec![document])
        }
        Format::Zip => Ok(zip::extract(contents, MAX_DECOMPRESSED, MAX_ZIP_ENTRIES)?
            .into_iter()
            .map(|(_, document)| document)
            .collect()),
    }
}

/// A text for the admin: for each domain, its messages and how many passed DMARC; each
/// reporter with its period (UTC dates), messages and passes; and the source IPs whose
/// messages failed DMARC, most failures first, with the reporters that saw them.
pub fn summary(reports: &[ReceivedReport]) -> String {
    if reports.is_empty() {
        return "No DMARC aggregate reports.\n".to_string();
    }

    #[derive(Default)]
    struct Reporter {
        reports: usize,
        begin: i64,
        end: i64,
        messages: u64,
        passed: u64,
    }
    #[derive(Default)]
    struct Domain {
        messages: u64,
        passed: u64,
        reporters: BTreeMap<String, Reporter>,
        /// Source IP -> (failed messages, reporters).
        failing: BTreeMap<String, (u64, BTreeSet<String>)>,
    }

    let mut domains: BTreeMap<String, Domain> = BTreeMap::new();
    for report in reports {
        let domain = domains
            .entry(clean(&report.domain).to_ascii_lowercase())
            .or_default();
        let (messages, passed) = (report.messages(), report.passed());
        domain.messages = domain.messages.saturating_add(messages);
        domain.passed = domain.passed.saturating_add(passed);
        let name = if report.email.is_empty() {
            clean(&report.org_name)
        } else {
            format!("{} <{}>", clean(&report.org_name), clean(&report.email))
        };
        let reporter = domain.reporters.entry(name).or_insert_with(|| Reporter {
            begin: report.begin,
            end: report.end,
            ..Reporter::default()
        });
        reporter.reports += 1;
        reporter.begin = reporter.begin.min(report.begin);
        reporter.end = reporter.end.max(report.end);
        reporter.messages = reporter.messages.saturating_add(messages);
        reporter.passed = reporter.passed.saturating_add(passed);
        for row in report.rows.iter().filter(|row| !row.passed()) {
            let ip = if row.source_ip.is_empty() {
                "(unknown)".to_string()
            } else {
                clean(&row.source_ip)
            };
            let entry = domain.failing.entry(ip).or_default();
            entry.0 = entry.0.saturating_add(row.count);
            entry.1.insert(clean(&report.org_name));
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "DMARC aggregate reports: {} report{} on {} domain{}.",
        reports.len(),
        plural(reports.len() as u64),
        domains.len(),
        plural(domains.len() as u64)
    );
    for (name, domain) in &domains {
        let _ = writeln!(
            out,
            "\n{name}: {} message{}, {} passed DMARC, {} failed",
            domain.messages,
            plural(domain.messages),
            domain.passed,
            domain.messages.saturating_sub(domain.passed)
        );
        for (reporter_name, reporter) in &domain.reporters {
            let (begin, end) = (utc_date(reporter.begin), utc_date(reporter.end));
            let period = if begin == end {
                begin
            } else {
                format!("{begin} to {end}")
            };
            let _ = writeln!(
                out,
                "  {reporter_name}, {period} (UTC), {} report{}: {} message{}, {} passed",
                reporter.reports,
                plural(reporter.reports as u64),
                reporter.messages,
                plural(reporter.messages),
                reporter.passed
            );
        }
        if domain.failing.is_empty() {
            out.push_str("  No source failed DMARC.\n");
            continue;
        }
        out.push_str("  Sources failing DMARC (messages, seen by):\n");
        let mut failing: Vec<_> = domain.failing.iter().collect();
        failing.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
        for (ip, (count, seen_by)) in failing {
            let seen_by: Vec<&str> = seen_by.iter().map(String::as_str).collect();
            let _ = writeln!(out, "    {ip}: {count} ({})", seen_by.join(", "));
        }
    }
    out
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Report text as it may be shown: controls replaced, length bounded.
fn clean(text: &str) -> String {
    text.trim()
        .chars()
        .take(MAX_FIELD)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
