//! facteur's spam scoring: built-in header and body rules (GTUBE included), a Bayesian
//! classifier, and the SpamAssassin-compatible header fields that report the result.
//!
//! - [`rules`]: the built-in rules, evaluated on the raw message.
//! - [`bayes`]: the tokenizer and Robinson's chi-square classifier; the caller keeps the
//!   learned counts (per account, in its database) and passes them in.
//! - [`check`]: rules plus the caller's own hits (authentication results, DNSBL listings,
//!   the Bayes hit) into a [`Report`]; [`headers`] writes it as `X-Spam-*` fields.
//! - [`extra`]: the hits the server adds from its other checks, with their usual scores.
//!
//! The crate is pure: no I/O, no clock but the one [`check`] reads (and [`check_at`] takes).
//! Every input is bounded: the rules and the tokenizer read at most a few hundred kilobytes
//! of decoded text and a bounded number of MIME parts, so a hostile message costs time
//! linear in its size.
#![forbid(unsafe_code)]

pub mod bayes;
pub mod extra;
mod html;
mod message;
mod phrases;
pub mod rules;
mod text;

pub use bayes::{BayesMemory, Learned, TokenCounts, bayes_hit, probability, tokens};
pub use rules::GTUBE;

/// The usual threshold: a message scoring this much or more is spam (SpamAssassin's
/// `required_score` default).
pub const DEFAULT_THRESHOLD: f64 = 5.0;

/// One test that fired, with the score it adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The test's name, upper case with underscores (`MISSING_DATE`, `SPF_FAIL`).
    pub name: String,
    /// The score added; negative for signs of legitimate mail.
    pub score: f64,
    /// One line telling what was found.
    pub description: String,
}

/// A hit from anything: the server's own checks, a local rule.
pub fn hit(name: &str, score: f64, description: &str) -> Hit {
    Hit {
        name: name.to_string(),
        score,
        description: description.to_string(),
    }
}

/// The result of scoring a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The sum of the scores of the hits.
    pub score: f64,
    /// The tests that fired: the built-in rules first, then the caller's.
    pub hits: Vec<Hit>,
}

impl Report {
    /// Builds a report from hits, summing their scores (non-finite scores count zero).
    pub fn from_hits(hits: Vec<Hit>) -> Self {
        let score = hits.iter().map(|h| h.score).filter(|s| s.is_finite()).sum();
        Report { score, hits }
    }

    /// Whether the message is spam at this threshold. Score and threshold are compared
    /// rounded to one decimal, as `X-Spam-Status` shows them, so that the flag never
    /// contradicts the numbers written beside it.
    pub fn is_spam(&self, threshold: f64) -> bool {
        tenths(self.score) >= tenths(threshold)
    }
}

fn tenths(x: f64) -> i64 {
    if x.is_finite() {
        (x * 10.0).round() as i64
    } else {
        0
    }
}

/// Scores a raw message (header and body as received, CRLF line ends) with the built-in
/// rules and the caller's `extra` hits, at the current time.
pub fn check(message: &[u8], extra: Vec<Hit>) -> Report {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    check_at(message, extra, now)
}

/// [`check`] at a given Unix time (for the Date tests): for tests and re-scoring.
pub fn check_at(message: &[u8], extra: Vec<Hit>, now: i64) -> Report {
    let mut hits = rules::evaluate(message, now);
    hits.extend(extra);
    Report::from_hits(hits)
}

/// A number as SpamAssassin writes scores: one decimal, never `-0.0`.
fn one_decimal(x: f64) -> String {
    let t = tenths(x);
    let sign = if t < 0 { "-" } else { "" };
    format!("{sign}{}.{}", t.abs() / 10, t.abs() % 10)
}

/// A test name safe in a header field: A–Z, 0–9 and `_`, at most 64 characters.
fn header_safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if cleaned.is_empty() {
        "UNNAMED".to_string()
    } else {
        cleaned
    }
}

/// Folds a header field at 78 columns (RFC 5322 §2.1.1 and §2.2.3): `pieces` are kept
/// whole; a piece starting with a space may have that space replaced by the fold, other
/// pieces are folded before with a tab, as SpamAssassin folds its test list.
fn folded_field(name: &str, pieces: &[String]) -> String {
    const WIDTH: usize = 78;
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for piece in pieces {
        if line_len + piece.len() > WIDTH && line_len > name.len() + 1 {
            out.push_str("\r\n\t");
            let piece = piece.strip_prefix(' ').unwrap_or(piece);
            out.push_str(piece);
            line_len = 1 + piece.len();
        } else {
            out.push_str(piece);
            line_len += piece.len();
        }
    }
    out.push_str("\r\n");
    out
}

/// The header fields reporting a result, in SpamAssassin's format, each line ending CRLF:
///
/// ```text
/// X-Spam-Checker-Version: facteur 0.1.0 on mx.example.com
/// X-Spam-Flag: YES                  (only when spam)
/// X-Spam-Level: *******             (one star a point, when at least one)
/// X-Spam-Score: 7.3
/// X-Spam-Status: Yes, score=7.3 required=5.0 tests=A,B,C
/// ```
///
/// Test names are listed once each, sorted, `none` when there are none; the Status field is
/// folded at 78 columns. Names and host name are cleaned of anything that could break the
/// header section.
pub fn headers(report: &Report, threshold: f64, hostname: &str) -> String {
    let spam = report.is_spam(threshold);
    let host: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
        .take(253)
        .collect();
    let host = if host.is_empty() { "localhost" } else { &host };
    let mut out = format!(
        "X-Spam-Checker-Version: facteur {} on {host}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if spam {
        out.push_str("X-Spam-Flag: YES\r\n");
    }
    let stars = tenths(report.score).clamp(0, 500) / 10;
    if stars > 0 {
        out.push_str(&format!("X-Spam-Level: {}\r\n", "*".repeat(stars as usize)));
    }
    let score = one_decimal(report.score);
    out.push_str(&format!("X-Spam-Score: {score}\r\n"));

    let mut names: Vec<String> = report
        .hits
        .iter()
        .map(|h| header_safe_name(&h.name))
        .collect();
    names.sort();
    names.dedup();
    let mut pieces = vec![
        format!(" {},", if spam { "Yes" } else { "No" }),
        format!(" score={score}"),
        format!(" required={}", one_decimal(threshold)),
    ];
    if names.is_empty() {
        pieces.push(" tests=none".to_string());
    } else {
        let last = names.len() - 1;
        for (i, n) in names.into_iter().enumerate() {
            let comma = if i < last { "," } else { "" };
            if i == 0 {
                pieces.push(format!(" tests={n}{comma}"));
            } else {
                pieces.push(format!("{n}{comma}"));
            }
        }
    }
    out.push_str(&folded_field("X-Spam-Status", &pieces));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(names: &[(&str, f64)]) -> Report {
        Report::from_hits(names.iter().map(|(n, s)| hit(n, *s, "d")).collect())
    }

    #[test]
    fn spam_headers() {
        let r = report(&[("MISSING_DATE", 1.0), ("BAYES_99", 3.5), ("SPF_FAIL", 2.8)]);
        let h = headers(&r, 5.0, "mx.example.com");
        assert_eq!(
            h,
            format!(
                "X-Spam-Checker-Version: facteur {} on mx.example.com\r\n\
                 X-Spam-Flag: YES\r\n\
                 X-Spam-Level: *******\r\n\
                 X-Spam-Score: 7.3\r\n\
                 X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99,MISSING_DATE,\r\n\
                 \tSPF_FAIL\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn ham_headers() {
        let h = headers(&report(&[]), 5.0, "mx.example.com");
        assert!(!h.contains("X-Spam-Flag"));
        assert!(!h.contains("X-Spam-Level"));
        assert!(h.contains("X-Spam-Score: 0.0\r\n"));
        assert!(h.ends_with("X-Spam-Status: No, score=0.0 required=5.0 tests=none\r\n"));
        let negative = headers(&report(&[("BAYES_00", -2.5), ("X", 0.04)]), 5.0, "h");
        assert!(negative.contains("score=-2.5 "), "{negative}");
        let tiny = headers(&report(&[("X", -0.04)]), 5.0, "h");
        assert!(tiny.contains("score=0.0 "), "{tiny}");
    }

    #[test]
    fn threshold_is_compared_as_shown() {
        assert!(report(&[("A", 4.96)]).is_spam(5.0));
        assert!(!report(&[("A", 4.94)]).is_spam(5.0));
        assert!(report(&[("A", 5.0)]).is_spam(5.0));
        assert!(!report(&[("A", f64::NAN)]).is_spam(5.0));
        assert_eq!(report(&[("A", f64::INFINITY), ("B", 1.0)]).score, 1.0);
    }

    #[test]
    fn folding_keeps_lines_within_78_columns() {
        let hits: Vec<(String, f64)> = (0..40)
            .map(|i| (format!("SOME_LONGISH_RULE_NAME_{i:02}"), 0.5))
            .collect();
        let r = Report::from_hits(hits.iter().map(|(n, s)| hit(n, *s, "d")).collect());
        let h = headers(&r, 5.0, "mx.example.com");
        let status = &h[h.find("X-Spam-Status").unwrap()..];
        assert!(status.ends_with("\r\n"));
        let lines: Vec<&str> = status.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 5);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= 78, "{line:?} is {} long", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'));
            if i > 0 {
                assert!(line.starts_with('\t'), "{line:?}");
            }
        }
        // Unfolding (RFC 5322 §2.2.3) gives every name back.
        let unfolded = status.replace("\r\n", "");
        let tests = unfolded.split("tests=").nth(1).unwrap();
        let names: Vec<&str> = tests.split(',').map(str::trim).collect();
        assert_eq!(names.len(), 40);
        assert_eq!(names[0], "SOME_LONGISH_RULE_NAME_00");
        // Every line ends in CRLF; nothing else in the output has a bare CR or LF.
        assert_eq!(h.matches('\n').count(), h.matches("\r\n").count());
    }

    #[test]
    fn names_and_host_cannot_inject_fields() {
        let r = report(&[
            ("EVIL\r\nX-Injected: yes", 6.0),
            ("dnsbl.example-zone", 0.1),
        ]);
        let h = headers(&r, 5.0, "mx\r\nX-Bad: 1");
        for line in h.split("\r\n") {
            assert!(
                !line.starts_with("X-Injected") && !line.starts_with("X-Bad"),
                "{h}"
            );
        }
        assert!(h.contains("EVIL__X_INJECTED__YES"));
        assert!(h.contains("DNSBL_EXAMPLE_ZONE"));
        assert!(h.contains(" on mxX-Bad:1\r\n"), "{h}");
        assert_eq!(h.matches('\n').count(), h.matches("\r\n").count());
    }

    #[test]
    fn check_adds_extra_hits() {
        let message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\
            Date: Mon, 2 Jun 2025 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nhello\r\n";
        let now = 1_748_865_600;
        let r = check_at(
            message,
            vec![extra::spf_fail(), bayes_hit(0.999).unwrap()],
            now,
        );
        let names: Vec<&str> = r.hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["SPF_FAIL", "BAYES_99"]);
        assert!((r.score - (extra::spf_fail().score + 5.0)).abs() < 1e-9);
        let gtube = format!("Subject: test\r\n\r\n{GTUBE}\r\n");
        assert!(check(gtube.as_bytes(), Vec::new()).is_spam(DEFAULT_THRESHOLD));
    }
}
