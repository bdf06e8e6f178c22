//! The plain-English explanation of a remote server's reply, for admins of small installations:
//! what it means, whose side the problem is on, whether the queue retries it, and the likely fix.
//!
//! Data, not code: a table of enhanced status codes (every class.subject.detail of RFC 3463 and
//! the IANA registry, RFC 4954, 5248, 6531, 6710, 7293, 7372, 7505, 8617, 8689), a table of basic
//! reply codes (RFC 5321 §4.2, RFC 4954, RFC 7504), keyword refinements that sharpen a generic
//! status with what the reply's text says ("spamhaus", "greylisted", "DMARC"…), and the
//! connection-level outcomes the queue records without any code ("connection refused", "no MX"…).
//!
//! Lookup order for a reply with a code: the exact enhanced status (class-specific rows first),
//! then its class and subject (X.7.606 reads as X.7.0), then the basic code, then the class
//! alone. When the row found is generic (X.Y.0, X.7.1, a basic code), the first refinement whose
//! keywords occur in the text replaces it. Whether the failure is permanent follows the basic
//! code when there is one (it is what an SMTP client acts on), else the status class.

mod table;

use table::*;

/// What a remote reply means. `summary` is one line; `detail` a few sentences ending with where
/// the problem is; `fix` what to do, when anything can be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub summary: String,
    pub detail: String,
    pub fix: Option<String>,
    /// A final failure: not retried (5xx, or a 5.X.X status, or a connection outcome such as a
    /// domain that does not exist).
    pub permanent: bool,
    /// The basic reply code (RFC 5321), when the reply has one.
    pub code: Option<u16>,
    /// The enhanced status code (RFC 3463) as `(class, subject, detail)`: the one the reply
    /// carries, or for a connection-level outcome without any code, the one RFC 3463 gives that
    /// situation (4.4.1 for no answer, 5.1.2 for a domain that does not exist…), so a DSN always
    /// has one to report.
    pub status: Option<(u8, u16, u16)>,
}

/// Explains a reply: `"550 5.7.26 text"`, a multi-line `"550-5.7.26 …"` reply (lines joined), a
/// bare `"5.1.1"` or `"421"`, or text without a code such as `"connection refused"`. Never
/// panics, whatever the input.
pub fn explain(reply: &str) -> Explanation {
    let parsed = parse(reply);
    let words = Words::new(&parsed.text);
    let (code, status) = (parsed.code, parsed.status);
    let success = match (code, status) {
        (Some(c), _) => c < 400,
        (None, Some((class, _, _))) => class == 2,
        (None, None) => false,
    };
    if success {
        return build(&SUCCESS, false, code, status);
    }
    if code.is_none() && status.is_none() {
        if let Some(o) = OUTCOMES.iter().find(|o| words.any(o.words)) {
            return build(&o.info, o.permanent, None, Some(o.status));
        }
        let info = if words.is_empty() {
            &EMPTY
        } else {
            refine(&words, true, None, false).unwrap_or(&UNRECOGNISED)
        };
        return build(info, false, None, None);
    }
    let permanent = match (code, status) {
        (Some(c), _) => c >= 500,
        (None, Some((class, _, _))) => class == 5,
        (None, None) => false,
    };
    let (info, refinable) = base(code, status);
    let exact = status.map(|(_, s, d)| (s, d));
    let info = refine(&words, refinable, exact, permanent).unwrap_or(info);
    build(info, permanent, code, status)
}

impl Explanation {
    /// The text `facteur explain` prints: the summary with the codes, the detail, whether it is
    /// retried, the fix, and what the codes are called in their standards.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let prefix = match (self.code, self.status) {
            (Some(c), Some((x, y, z))) => format!("{c} {x}.{y}.{z}: "),
            (Some(c), None) => format!("{c}: "),
            (None, Some((x, y, z))) => format!("{x}.{y}.{z}: "),
            (None, None) => String::new(),
        };
        out.push_str(&wrap(&format!("{prefix}{}", self.summary), ""));
        out.push('\n');
        // The detail ends with the side sentence (`Side::sentence`): on its own line.
        match self.detail.rsplit_once(" Where the problem is: ") {
            Some((meaning, side)) => {
                out.push_str(&wrap(meaning, ""));
                out.push('\n');
                out.push_str(&wrap(&format!("Where the problem is: {side}"), "  "));
            }
            None => {
                out.push_str(&wrap(&self.detail, ""));
                out.push('\n');
            }
        }
        out.push_str(&wrap(&format!("Retried: {}", self.retry_sentence()), "  "));
        if let Some(fix) = &self.fix {
            out.push_str(&wrap(&format!("Fix: {fix}"), "  "));
        }
        let mut refs = String::new();
        if let Some(c) = self.code {
            refs.push_str(&wrap(&format!("Code {c}: {}", code_title(c)), "  "));
        }
        if let Some((x, y, z)) = self.status {
            refs.push_str(&wrap(
                &format!("Status {x}.{y}.{z}: {}", status_title(x, y, z)),
                "  ",
            ));
        }
        if !refs.is_empty() {
            out.push('\n');
            out.push_str(&refs);
        }
        out
    }

    fn retry_sentence(&self) -> String {
        let class = self.code.map(|c| c / 100);
        let success = match (self.code, self.status) {
            (Some(c), _) => c < 400,
            (None, Some((x, _, _))) => x == 2,
            (None, None) => false,
        };
        if success {
            return "not needed: this is a success reply, not an error.".into();
        }
        let what = match class {
            Some(c) if self.permanent => format!("a {c}xx reply is final"),
            Some(c) => format!("a {c}xx reply is temporary"),
            None if self.permanent => "this failure is final".into(),
            None => "this is treated as temporary".into(),
        };
        if self.permanent {
            format!(
                "no, {what}. facteur does not try again; the sender receives a bounce (a \
                 non-delivery report) quoting the reply."
            )
        } else {
            format!(
                "yes, {what}. The message stays in facteur's queue and is tried again later; \
                 the sender gets a bounce only if it still fails when the queue gives up."
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parsed {
    code: Option<u16>,
    status: Option<(u8, u16, u16)>,
    text: String,
}

fn parse(reply: &str) -> Parsed {
    let (mut code, mut status) = (None, None);
    let mut parts = Vec::new();
    for line in reply.lines() {
        let mut rest = line.trim();
        if let Some((c, after)) = split_code(rest) {
            code.get_or_insert(c);
            rest = after.trim_start();
        }
        if let Some((s, after)) = split_status(rest) {
            status.get_or_insert(s);
            rest = after;
        }
        let rest = rest.trim();
        if !rest.is_empty() {
            parts.push(rest);
        }
    }
    let text = parts.join(" ");
    if code.is_none() && status.is_none() {
        // A reply quoted inside other text: "host mx.example.com said: 550 5.1.1 …",
        // "… (#5.1.1)". Only statuses with a registered subject, to skip version numbers.
        let tokens: Vec<&str> = text.split_whitespace().collect();
        for (i, token) in tokens.iter().enumerate() {
            let token = token.trim_start_matches(['(', '[', '#', '<']);
            let token = token.trim_end_matches([')', ']', '>', ':', ',', ';', '.']);
            if let Some(s) = parse_status(token).filter(|s| s.1 <= 7) {
                status = Some(s);
                code = i
                    .checked_sub(1)
                    .and_then(|j| split_code(tokens[j]))
                    .filter(|(c, rest)| rest.is_empty() && c / 100 == u16::from(s.0))
                    .map(|(c, _)| c);
                break;
            }
        }
    }
    Parsed { code, status, text }
}

/// A basic reply code at the start of a line: three digits, the first 2 to 5, then a space, a
/// hyphen (continuation) or the end.
fn split_code(line: &str) -> Option<(u16, &str)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !(b'2'..=b'5').contains(&b[0]) {
        return None;
    }
    let rest = match b.get(3) {
        None => "",
        Some(b' ' | b'-' | b'\t') => &line[4..],
        Some(_) => return None,
    };
    let code = u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    Some((code, rest))
}

/// An enhanced status code at the start of the text, followed by whitespace or the end.
fn split_status(text: &str) -> Option<((u8, u16, u16), &str)> {
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let status = parse_status(&text[..end])?;
    Some((status, &text[end..]))
}

/// `class.subject.detail`: class 2, 4 or 5; subject and detail of one to three digits.
fn parse_status(token: &str) -> Option<(u8, u16, u16)> {
    let mut parts = token.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str, max_len: usize| -> Option<u16> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let class = u8::try_from(number(class, 1)?).ok()?;
    if !matches!(class, 2 | 4 | 5) {
        return None;
    }
    Some((class, number(subject, 3)?, number(detail, 3)?))
}

/// The text in lower case, every run of other characters than letters and digits made one
/// space, with a space at each end: keywords match at the start of a word.
struct Words(String);

impl Words {
    fn new(text: &str) -> Words {
        let mut s = String::from(" ");
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() {
                s.push(c);
            } else if !s.ends_with(' ') {
                s.push(' ');
            }
        }
        if !s.ends_with(' ') {
            s.push(' ');
        }
        Words(s)
    }

    fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Whether one of the keywords (lower case, words separated by one space) begins a word.
    fn any(&self, keywords: &[&str]) -> bool {
        keywords.iter().any(|k| {
            self.0
                .match_indices(k)
                .any(|(i, _)| self.0[..i].ends_with(' '))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Lookup

fn base(code: Option<u16>, status: Option<(u8, u16, u16)>) -> (&'static Info, bool) {
    if let Some((class, subject, detail)) = status
        && subject != 0
    {
        if let Some(e) = status_entry(class, subject, detail) {
            return (&e.info, e.refinable);
        }
        if let Some(e) = status_entry(class, subject, 0) {
            return (&e.info, true);
        }
    }
    if let Some(e) = code.and_then(|c| CODES.iter().find(|e| e.code == c)) {
        return (&e.info, e.refinable);
    }
    if let Some((class, 0, detail)) = status
        && let Some(e) = status_entry(class, 0, detail).or_else(|| status_entry(class, 0, 0))
    {
        return (&e.info, true);
    }
    let class = code.map_or_else(|| status.map_or(0, |s| s.0), |c| (c / 100) as u8);
    (if class == 5 { &CLASS_5 } else { &CLASS_4 }, true)
}

fn status_entry(class: u8, subject: u16, detail: u16) -> Option<&'static StatusEntry> {
    let find = |c: u8| {
        STATUSES
            .iter()
            .find(|e| e.class == c && e.subject == subject && e.detail == detail)
    };
    find(class).or_else(|| find(ANY))
}

fn refine(
    words: &Words,
    refinable: bool,
    exact: Option<(u16, u16)>,
    permanent: bool,
) -> Option<&'static Info> {
    REFINEMENTS
        .iter()
        .filter(|r| refinable || exact.is_some_and(|k| r.also.contains(&k)))
        .filter(|r| !(r.temporary_only && permanent))
        .find(|r| words.any(r.words))
        .map(|r| &r.info)
}

fn build(
    info: &Info,
    permanent: bool,
    code: Option<u16>,
    status: Option<(u8, u16, u16)>,
) -> Explanation {
    Explanation {
        summary: info.summary.to_string(),
        detail: format!("{} {}", info.detail, info.side.sentence()),
        fix: (!info.fix.is_empty()).then(|| info.fix.to_string()),
        permanent,
        code,
        status,
    }
}

fn code_title(code: u16) -> String {
    if let Some(e) = CODES.iter().find(|e| e.code == code) {
        return e.title.to_string();
    }
    let class = match code / 100 {
        2 => "success",
        3 => "intermediate (the server waits for more)",
        4 => "a temporary failure",
        _ => "a permanent failure",
    };
    format!(
        "not a standard reply code; its first digit {} means {class} (RFC 5321)",
        code / 100
    )
}

fn status_title(class: u8, subject: u16, detail: u16) -> String {
    if let Some(e) = status_entry(ANY, subject, detail) {
        return e.title.to_string();
    }
    let subject_name = match subject {
        0 => "other or undefined status",
        1 => "addressing status",
        2 => "mailbox status",
        3 => "mail system status",
        4 => "network and routing status",
        5 => "mail delivery protocol status",
        6 => "message content or media status",
        7 => "security or policy status",
        _ => "an unknown subject",
    };
    let class_name = match class {
        2 => "success",
        4 => "persistent transient failure",
        _ => "permanent failure",
    };
    format!(
        "not a registered status; read as {class}.{subject}.x, {class_name}, {subject_name} \
         (RFC 3463)"
    )
}

/// Word-wraps one paragraph at 78 columns, continuation lines indented; ends with a newline.
fn wrap(text: &str, indent: &str) -> String {
    const WIDTH: usize = 78;
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.to_string();
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_5_1_1_user_unknown() {
        let e = explain("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown");
        assert_eq!((e.code, e.status), (Some(550), Some((5, 1, 1))));
        assert!(e.permanent);
        assert!(e.summary.contains("does not exist"), "{e:?}");
        assert!(e.fix.unwrap().contains("typos"));
        assert!(e.detail.contains("with the sender"));
    }

    #[test]
    fn seed_5_2_2_mailbox_full() {
        let e = explain("552 5.2.2 Mailbox full");
        assert_eq!(e.status, Some((5, 2, 2)));
        assert!(
            e.permanent && e.summary.contains("mailbox is full"),
            "{e:?}"
        );
        assert!(e.detail.contains("recipient's side"));
        let e = explain("452 4.2.2 The email account that you tried to reach is over quota.");
        assert!(
            !e.permanent && e.summary.contains("mailbox is full"),
            "{e:?}"
        );
    }

    #[test]
    fn seed_5_7_1_relaying_denied() {
        let e = explain("550 5.7.1 Relaying denied");
        assert!(e.permanent);
        assert!(e.summary.starts_with("Relaying denied"), "{e:?}");
        assert!(e.fix.unwrap().contains("SMTP authentication"));
        // Without a telling word, 5.7.1 keeps its generic meaning.
        let e = explain("550 5.7.1 Message rejected");
        assert!(e.summary.contains("refuses"), "{e:?}");
    }

    #[test]
    fn seed_5_7_23_spf() {
        let e = explain(
            "550 5.7.23 The message was rejected because of Sender Policy Framework violation",
        );
        assert_eq!(e.status, Some((5, 7, 23)));
        assert!(e.summary.contains("SPF"), "{e:?}");
        assert!(e.fix.unwrap().contains("v=spf1"));
        assert!(e.detail.contains("DNS and configuration"));
    }

    #[test]
    fn seed_5_7_26_dmarc() {
        let e = explain(
            "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's \
             DMARC policy",
        );
        assert_eq!((e.code, e.status), (Some(550), Some((5, 7, 26))));
        assert!(e.permanent);
        assert!(e.summary.contains("DMARC"), "{e:?}");
        assert!(e.fix.unwrap().contains("_dmarc."));
        let e = explain(
            "550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail \
             requires all senders to authenticate with either SPF or DKIM.",
        );
        assert!(e.summary.contains("neither SPF nor DKIM"), "{e:?}");
        assert!(explain("5.7.26").summary.contains("SPF, DKIM, DMARC"));
    }

    #[test]
    fn seed_4_7_0_greylisting() {
        let e = explain("450 4.7.0 Greylisted, please try again in 5 minutes");
        assert!(!e.permanent);
        assert!(e.summary.starts_with("Greylisted"), "{e:?}");
        let e = explain("4.7.0");
        assert!(!e.permanent && e.summary.contains("greylisting"), "{e:?}");
        assert!(e.fix.unwrap().contains("5 to 15 minutes"));
        let e = explain("451 4.7.1 Please try again later");
        assert!(e.summary.starts_with("Deferred"), "{e:?}");
    }

    #[test]
    fn seed_421() {
        let e = explain("421");
        assert_eq!((e.code, e.status, e.permanent), (Some(421), None, false));
        assert!(e.summary.contains("temporarily unavailable"), "{e:?}");
        let e = explain("421 Too many connections from your IP");
        assert!(e.summary.starts_with("Rate limited"), "{e:?}");
    }

    #[test]
    fn basic_codes_of_the_seed_table() {
        for (reply, word) in [
            ("450", "greylisting"),
            ("451", "temporary problem"),
            ("452", "cannot take more"),
            ("550", "mailbox unavailable"),
            ("551", "not hosted"),
            ("552", "full"),
            ("553", "not allowed"),
            ("554", "spam filter"),
        ] {
            let e = explain(reply);
            assert!(e.summary.contains(word), "{reply}: {e:?}");
            assert_eq!(e.permanent, reply.starts_with('5'), "{reply}");
        }
    }

    #[test]
    fn multi_line_replies_are_joined() {
        let reply = "550-5.7.26 Unauthenticated email from example.com is not accepted due\r\n\
                     550-5.7.26 to domain's DMARC policy. Please contact the administrator of\r\n\
                     550 5.7.26 example.com domain if this was a legitimate mail.";
        let e = explain(reply);
        assert_eq!((e.code, e.status), (Some(550), Some((5, 7, 26))));
        assert!(e.summary.contains("DMARC"));
        assert_eq!(parse(reply).text.matches("5.7.26").count(), 0);
        let e = explain(
            "421-4.7.0 [203.0.113.5] Our system has detected an unusual rate of\n\
             421-4.7.0 unsolicited mail originating from your IP address. To protect our\n\
             421 4.7.0 users from spam, mail sent from your IP address has been temporarily\n",
        );
        assert!(
            !e.permanent && e.summary.starts_with("Rate limited"),
            "{e:?}"
        );
    }

    #[test]
    fn provider_phrasings() {
        let e = explain(
            "550 5.7.606 Access denied, banned sending IP [203.0.113.5]. To request removal \
             from this list please visit https://sender.office.com/",
        );
        assert_eq!(e.status, Some((5, 7, 606)));
        assert!(e.summary.contains("blocklist"), "{e:?}");
        let e = explain(
            "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using \
             zen.spamhaus.org",
        );
        assert!(e.summary.contains("blocklist") && e.detail.contains("your side"));
        let e = explain(
            "550-5.7.1 [203.0.113.5] Our system has detected that this message is likely \
             unsolicited mail. To reduce the amount of spam sent to Gmail, this message has \
             been blocked.",
        );
        assert!(e.summary.contains("spam"), "{e:?}");
        let e = explain(
            "451 4.7.650 The mail server [203.0.113.5] has been temporarily rate limited due to IP reputation.",
        );
        assert!(
            !e.permanent && e.summary.starts_with("Rate limited"),
            "{e:?}"
        );
        let e = explain(
            "550 5.7.25 The IP address sending this message does not have a PTR record setup",
        );
        assert!(e.summary.contains("reverse DNS"), "{e:?}");
        let e = explain("450 4.7.1 Client host rejected: cannot find your hostname");
        assert!(e.summary.contains("reverse DNS"), "{e:?}");
        let e = explain("552 Requested mail action aborted: exceeded storage allocation");
        assert!(e.summary.contains("mailbox is full"), "{e:?}");
        let e =
            explain("550 Requested action not taken: mailbox unavailable (user does not exist)");
        assert!(e.summary.contains("does not exist"), "{e:?}");
    }

    #[test]
    fn a_reply_without_enhanced_code_falls_back_on_the_basic_code() {
        let e = explain("554 Transaction failed");
        assert_eq!((e.code, e.status), (Some(554), None));
        assert!(e.permanent && e.summary.contains("spam filter"), "{e:?}");
        let e = explain("550 5.0.0 Requested action not taken");
        assert!(e.summary.contains("mailbox unavailable"), "{e:?}");
    }

    #[test]
    fn unknown_status_falls_back_on_class_and_subject() {
        let e = explain("550 5.1.99 something odd");
        assert!(e.summary.contains("address"), "{e:?}");
        let e = explain("450 4.2.77 something odd");
        assert!(!e.permanent && e.summary.contains("mailbox"), "{e:?}");
        let e = explain("5.9.9");
        assert!(
            e.permanent && e.summary.starts_with("Permanent failure"),
            "{e:?}"
        );
        let e = explain("599 whatever");
        assert!(
            e.permanent && e.summary.starts_with("Permanent failure"),
            "{e:?}"
        );
        let e = explain("499 whatever");
        assert!(
            !e.permanent && e.summary.starts_with("Temporary failure"),
            "{e:?}"
        );
        let text = explain("550 5.7.606 x").to_text();
        assert!(
            text.contains("not a registered status; read as 5.7.x"),
            "{text}"
        );
    }

    #[test]
    fn permanent_follows_the_basic_code_then_the_class() {
        assert!(explain("550 5.2.2 full").permanent);
        assert!(!explain("452 4.2.2 full").permanent);
        assert!(!explain("450 5.2.2 inconsistent, the code wins").permanent);
        assert!(explain("5.2.2").permanent);
        assert!(!explain("4.2.2").permanent);
        assert!(!explain("250 2.0.0 OK").permanent);
        assert!(explain("250 2.0.0 OK").summary.starts_with("Success"));
    }

    #[test]
    fn connection_outcomes() {
        for (text, status, permanent, word) in [
            ("connection refused", (4, 4, 1), false, "refused"),
            (
                "connect to mx.example.com[192.0.2.1]:25: Connection timed out",
                (4, 4, 1),
                false,
                "answer",
            ),
            ("no route to host", (4, 4, 1), false, "cannot reach"),
            (
                "TLS handshake failed: invalid peer certificate",
                (4, 7, 5),
                false,
                "TLS",
            ),
            (
                "mx.example.com [192.0.2.1]:25: TLS handshake failed: DANE: the certificate \
                 of mx.example.com matches none of its 1 usable TLSA record",
                (4, 7, 5),
                false,
                "TLSA (DANE)",
            ),
            (
                "MTA-STS: no MX host of example.com matches its policy (mx.example.net)",
                (4, 7, 5),
                false,
                "MTA-STS policy",
            ),
            (
                "no MX for example.invalid",
                (5, 4, 4),
                true,
                "no mail server",
            ),
            (
                "domain not found (NXDOMAIN)",
                (5, 1, 2),
                true,
                "does not exist",
            ),
            ("null MX", (5, 1, 10), true, "receives no mail"),
            (
                "port 25 blocked: every MX timed out",
                (4, 4, 1),
                false,
                "port 25",
            ),
            ("connection reset by peer", (4, 4, 2), false, "broke"),
        ] {
            let e = explain(text);
            assert_eq!(e.code, None, "{text}");
            assert_eq!(e.status, Some(status), "{text}");
            assert_eq!(e.permanent, permanent, "{text}");
            assert!(e.summary.contains(word), "{text}: {e:?}");
            assert!(e.fix.is_some(), "{text}");
        }
        assert!(
            explain("all MX hosts timed out")
                .fix
                .unwrap()
                .contains("smarthost")
        );
    }

    #[test]
    fn a_reply_quoted_in_other_text() {
        let e = explain("host mx.example.com[192.0.2.1] said: 550 5.1.1 <bob@example.com>: no");
        assert_eq!((e.code, e.status), (Some(550), Some((5, 1, 1))));
        let e = explain("Sorry, no mailbox here by that name. (#5.1.1)");
        assert_eq!((e.code, e.status), (None, Some((5, 1, 1))));
        // A version number is not a status.
        assert_eq!(
            explain("Exim 4.96.1 connection refused").status,
            Some((4, 4, 1))
        );
    }

    #[test]
    fn every_registered_status_has_its_row() {
        let registered = [(0, 0..=0), (1, 0..=10), (2, 0..=4), (3, 0..=6), (4, 0..=7)]
            .into_iter()
            .chain([(5, 0..=6), (6, 0..=10), (7, 0..=30)]);
        for (subject, details) in registered {
            for detail in details {
                let e = status_entry(ANY, subject, detail)
                    .unwrap_or_else(|| panic!("no row for X.{subject}.{detail}"));
                assert!(e.title.contains("RFC") || e.title.contains("IANA"));
                assert!(!e.info.summary.is_empty() && !e.info.detail.is_empty());
                assert!(
                    !e.info.fix.is_empty() || e.info.side == Side::Nobody,
                    "X.{subject}.{detail} has no fix"
                );
            }
        }
        for c in [
            421, 450, 451, 452, 500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555,
        ] {
            assert!(CODES.iter().any(|e| e.code == c), "{c}");
        }
    }

    #[test]
    fn tables_are_well_formed() {
        let keywords = REFINEMENTS
            .iter()
            .flat_map(|r| r.words)
            .chain(OUTCOMES.iter().flat_map(|o| o.words));
        for k in keywords {
            assert_eq!(
                Words::new(k).0,
                format!(" {k} "),
                "keyword {k:?} is not normalised"
            );
        }
        let infos = STATUSES
            .iter()
            .map(|e| &e.info)
            .chain(CODES.iter().map(|e| &e.info))
            .chain(REFINEMENTS.iter().map(|r| &r.info))
            .chain(OUTCOMES.iter().map(|o| &o.info));
        for info in infos {
            assert!(!info.summary.contains('\n') && info.summary.ends_with('.'));
            // Fits one 78-column line after the longest prefix, "550 5.7.606: ".
            assert!(info.summary.chars().count() <= 64, "{}", info.summary);
            assert!(info.detail.ends_with('.'), "{}", info.detail);
            assert!(
                info.fix.is_empty() || info.fix.ends_with('.'),
                "{}",
                info.fix
            );
            assert!(!info.detail.contains("  ") && !info.fix.contains("  "));
        }
    }

    #[test]
    fn to_text_shape() {
        let text = explain("550 5.1.1 User unknown").to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("550 5.1.1: The recipient's address does not exist."));
        assert!(
            text.contains("\n\nWhere the problem is: with the sender"),
            "{text}"
        );
        assert!(text.contains("\nRetried: no, a 5xx reply is final."));
        assert!(text.contains("\nFix: Check the address"));
        assert!(text.contains("\nCode 550: Requested action not taken"));
        assert!(text.contains("\nStatus 5.1.1: Bad destination mailbox address (RFC 3463)"));
        assert!(lines.iter().all(|l| l.chars().count() <= 78), "{text}");
        let text = explain("451 4.7.1 try again later").to_text();
        assert!(text.contains("Retried: yes, a 4xx reply is temporary."));
        assert!(explain("250 OK").to_text().contains("Retried: not needed"));
        assert!(
            explain("connection refused")
                .to_text()
                .starts_with("4.4.1: ")
        );
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: Vec<char> = "0123455.55.-- \n\r\tabcxyzSPFdmarc#()[]:é€\u{0}ı\u{130}"
            .chars()
            .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let e = explain(&s);
            assert!(!e.summary.is_empty() && !e.summary.contains('\n'));
            assert!(!e.to_text().is_empty());
        }
        for s in [
            "",
            " ",
            "\n\n",
            "5",
            "55",
            "5.",
            "5.1",
            "5.1.",
            "..",
            "5.1.1.1",
            "5.1111.1",
            "5.99999999999999999999.1",
            "999",
            "0000",
            "550-",
            "550\u{301}",
            "5\u{301}50 x",
            "ℌ550",
        ] {
            let _ = explain(s).to_text();
        }
    }
}
