//! SMTP and LMTP command syntax: RFC 5321 §4.1.1 (commands), §4.1.2 (paths), §4.1.3 (address
//! literals); parameters of RFC 1870 (SIZE), RFC 6152 (BODY), RFC 6531 (SMTPUTF8), RFC 3461
//! (RET, ENVID, NOTIFY, ORCPT), RFC 3030 (BDAT).
//!
//! A parse failure is the reply to send; parsing never panics on any input.

use crate::reply::{self, Reply};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Lhlo(String),
    Mail(MailFrom),
    Rcpt(RcptTo),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Vrfy,
    Expn,
    Help,
    Quit,
    StartTls,
    /// RFC 4954 §4: `AUTH mechanism [initial-response]`; the response stays base64 (`=` is
    /// an empty one), the driver decodes it.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// Known commands facteur does not implement (TURN, ETRN, ...).
    NotImplemented(String),
}

/// A mailbox from a path. The route of a source route is dropped (RFC 5321 §4.1.1.3 and
/// Appendix C: servers SHOULD ignore it), so the final mailbox alone decides delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Unquoted local part.
    pub local: String,
    /// Domain as written (an address literal keeps its brackets); empty only for the special
    /// `<Postmaster>` recipient.
    pub domain: String,
    /// Whether the local part was a quoted string.
    pub quoted: bool,
}

impl Mailbox {
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.domain.is_empty() {
            write!(f, "{}", self.local)
        } else if self.quoted {
            write!(
                f,
                "\"{}\"@{}",
                self.local.replace('\\', "\\\\").replace('"', "\\\""),
                self.domain
            )
        } else {
            write!(f, "{}@{}", self.local, self.domain)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    #[default]
    SevenBit,
    EightBitMime,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailFrom {
    /// None is the null reverse path `<>`.
    pub sender: Option<Mailbox>,
    pub size: Option<u64>,
    pub body: BodyType,
    pub smtputf8: bool,
    /// RFC 3461 §4.3 RET=FULL (true) or HDRS (false).
    pub ret_full: Option<bool>,
    pub envid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    pub recipient: Mailbox,
    /// RFC 3461 §4.1 NOTIFY values, upper case.
    pub notify: Vec<String>,
    /// RFC 3461 §4.2 ORCPT as given (addr-type;xtext).
    pub orcpt: Option<String>,
}

/// Parses one command line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Command, Reply> {
    let line =
        std::str::from_utf8(line).map_err(|_| reply::syntax("command is not valid UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let no_args = |c: Command| {
        if rest.trim().is_empty() {
            Ok(c)
        } else {
            Err(reply::syntax("this command takes no arguments"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => domain_arg(rest).map(Command::Helo),
        "EHLO" => domain_arg(rest).map(Command::Ehlo),
        "LHLO" => domain_arg(rest).map(Command::Lhlo),
        "MAIL" => mail_from(rest).map(Command::Mail),
        "RCPT" => rcpt_to(rest).map(Command::Rcpt),
        "DATA" => no_args(Command::Data),
        "BDAT" => bdat(rest),
        "RSET" => no_args(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "HELP" => Ok(Command::Help),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => auth(rest),
        v @ ("TURN" | "ETRN" | "ATRN" | "SEND" | "SOML" | "SAML" | "BURL") => {
            Ok(Command::NotImplemented(v.into()))
        }
        _ => Err(reply::unrecognized()),
    }
}

fn auth(rest: &str) -> Result<Command, Reply> {
    let mut words = rest.split_ascii_whitespace();
    let mechanism = words.next().unwrap_or("");
    // RFC 4422 §3.1: mechanism names are 1-20 of upper-case letters, digits, `-` and `_`.
    let valid = (1..=20).contains(&mechanism.len())
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(reply::syntax("AUTH needs a mechanism name"));
    }
    let initial = words.next().map(String::from);
    if words.next().is_some() {
        return Err(reply::syntax(
            "AUTH takes a mechanism and an initial response",
        ));
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial,
    })
}

fn domain_arg(rest: &str) -> Result<String, Reply> {
    let arg = rest.trim();
    if arg.is_empty() {
        return Err(reply::syntax("a domain or address literal is required"));
    }
    // RFC 5321 §4.1.1.1 wants a domain or address literal; clients send their short name or
    // junk often enough that refusing only blank and control-laden arguments is the norm.
    if arg.chars().any(|c| c.is_control()) || arg.contains(' ') {
        return Err(reply::syntax(
            "the argument must be one domain or address literal",
        ));
    }
    Ok(arg.to_string())
}

/// `FROM:<path> [params]`; a space after the colon is tolerated, as every MTA does.
fn mail_from(rest: &str) -> Result<MailFrom, Reply> {
    let arg = strip_keyword(rest, "FROM:")
        .ok_or_else(|| reply::syntax("expected MAIL FROM:<address>"))?;
    let (path, params) = split_path(arg).map_err(reply::bad_sender_syntax)?;
    let sender = if path == "<>" {
        None
    } else {
        Some(parse_path(path).map_err(reply::bad_sender_syntax)?)
    };
    let mut mail = MailFrom {
        sender,
        ..MailFrom::default()
    };
    for (key, value) in esmtp_params(params)? {
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                mail.size = Some(
                    v.parse()
                        .map_err(|_| reply::syntax("SIZE takes a number"))?,
                );
            }
            ("BODY", Some(v)) => {
                mail.body = match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    other => return Err(reply::body_type_unsupported(other)),
                }
            }
            ("SMTPUTF8", None) => mail.smtputf8 = true,
            ("RET", Some(v)) => {
                mail.ret_full = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => true,
                    "HDRS" => false,
                    _ => return Err(reply::syntax("RET takes FULL or HDRS")),
                })
            }
            ("ENVID", Some(v)) if xtext_ok(v) && v.len() <= 100 => mail.envid = Some(v.into()),
            ("ENVID", _) => {
                return Err(reply::syntax(
                    "ENVID must be xtext of at most 100 characters",
                ));
            }
            ("AUTH", Some(_)) => {} // RFC 4954 §5: AUTH=<> from an unauthenticated client is ignored.
            (k, _) => return Err(reply::unknown_parameter(k)),
        }
    }
    Ok(mail)
}

fn rcpt_to(rest: &str) -> Result<RcptTo, Reply> {
    let arg =
        strip_keyword(rest, "TO:").ok_or_else(|| reply::syntax("expected RCPT TO:<address>"))?;
    let (path, params) = split_path(arg).map_err(reply::bad_recipient_syntax)?;
    // RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
    let recipient = if path.eq_ignore_ascii_case("<postmaster>") {
        Mailbox {
            local: "postmaster".into(),
            domain: String::new(),
            quoted: false,
        }
    } else {
        parse_path(path).map_err(reply::bad_recipient_syntax)?
    };
    let mut rcpt = RcptTo {
        recipient,
        notify: Vec::new(),
        orcpt: None,
    };
    for (key, value) in esmtp_params(params)? {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => {
                let values: Vec<String> = v.split(',').map(|s| s.to_ascii_uppercase()).collect();
                let known = values
                    .iter()
                    .all(|s| matches!(s.as_str(), "NEVER" | "SUCCESS" | "FAILURE" | "DELAY"));
                // RFC 3461 §4.1: NEVER stands alone.
                if !known || (values.len() > 1 && values.iter().any(|s| s == "NEVER")) {
                    return Err(reply::syntax(
                        "NOTIFY takes NEVER or a list of SUCCESS, FAILURE, DELAY",
                    ));
                }
                rcpt.notify = values;
            }
            ("ORCPT", Some(v)) if v.contains(';') && xtext_ok(v) => rcpt.orcpt = Some(v.into()),
            ("ORCPT", _) => return Err(reply::syntax("ORCPT takes addr-type;xtext")),
            (k, _) => return Err(reply::unknown_parameter(k)),
        }
    }
    Ok(rcpt)
}

fn bdat(rest: &str) -> Result<Command, Reply> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let size = words
        .next()
        .and_then(|w| {
            if w.bytes().all(|b| b.is_ascii_digit()) && w.len() <= 18 {
                w.parse().ok()
            } else {
                None
            }
        })
        .ok_or_else(|| reply::syntax("BDAT takes a chunk size"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(reply::syntax("BDAT <size> [LAST]")),
    };
    if words.next().is_some() {
        return Err(reply::syntax("BDAT <size> [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let head = rest.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| rest[keyword.len()..].trim_start())
}

/// Splits `<path> params` at the closing bracket, honouring quoted local parts.
fn split_path(arg: &str) -> Result<(&str, &str), &'static str> {
    if !arg.starts_with('<') {
        return Err("the address must be in angle brackets");
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in arg.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let params = &arg[i + 1..];
                if !params.is_empty() && !params.starts_with(' ') {
                    return Err("expected a space after the address");
                }
                return Ok((&arg[..=i], params.trim()));
            }
            _ => {}
        }
    }
    Err("missing closing angle bracket")
}

/// `<[@route,@route:]local@domain>` → the mailbox.
fn parse_path(path: &str) -> Result<Mailbox, &'static str> {
    let inner = &path[1..path.len() - 1];
    let inner = if inner.starts_with('@') {
        // A-d-l: source route, dropped after checking it is a list of @domains.
        let (route, rest) = inner.split_once(':').ok_or("malformed source route")?;
        if !route
            .split(',')
            .all(|hop| hop.strip_prefix('@').is_some_and(is_domain))
        {
            return Err("malformed source route");
        }
        rest
    } else {
        inner
    };
    let (local, quoted, domain) = if let Some(q) = inner.strip_prefix('"') {
        let (local, after) = quoted_string(q)?;
        let domain = after
            .strip_prefix('@')
            .ok_or("expected @ after the quoted local part")?;
        (local, true, domain)
    } else {
        let (local, domain) = inner.rsplit_once('@').ok_or("the address has no domain")?;
        if !is_dot_string(local) {
            return Err("invalid local part");
        }
        (local.to_string(), false, domain)
    };
    if local.len() > 64 {
        return Err("local part longer than 64 octets (RFC 5321 §4.5.3.1.1)");
    }
    if !(is_domain(domain) || is_address_literal(domain)) {
        return Err("invalid domain");
    }
    Ok(Mailbox {
        local,
        domain: domain.to_string(),
        quoted,
    })
}

/// Reads a quoted string's content (after the opening quote); returns it unescaped and the rest.
fn quoted_string(s: &str) -> Result<(String, &str), &'static str> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e)) if (' '..='~').contains(&e) => out.push(e),
                _ => return Err("invalid escape in quoted local part"),
            },
            c if c.is_control() => return Err("control character in quoted local part"),
            c => out.push(c),
        }
    }
    Err("unterminated quoted local part")
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// RFC 5321 §4.1.2 Domain, with UTF-8 labels (RFC 6531) and one trailing root dot tolerated.
fn is_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

fn is_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    match inner.strip_prefix("IPv6:") {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => inner.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// RFC 3461 §4: xtext is printable ASCII other than '+' and '=', with +XX escapes.
fn xtext_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(|c| c.is_ascii_hexdigit()));
                if !hex {
                    return false;
                }
                i += 3;
            }
            b'!'..=b'~' if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// `KEY[=VALUE] ...`, keys upper-cased; duplicates refused.
fn esmtp_params(params: &str) -> Result<Vec<(String, Option<&str>)>, Reply> {
    let mut out: Vec<(String, Option<&str>)> = Vec::new();
    for p in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(reply::syntax("malformed parameter"));
        }
        let key = key.to_ascii_uppercase();
        if out.iter().any(|(k, _)| *k == key) {
            return Err(reply::syntax("duplicate parameter"));
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(line: &str) -> Mailbox {
        match parse(line.as_bytes()).unwrap() {
            Command::Rcpt(r) => r.recipient,
            Command::Mail(m) => m.sender.unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_parse_with_routes_quotes_and_literals() {
        let m = mailbox("RCPT TO:<@relay.example,@b.example:user@Example.COM>");
        assert_eq!(
            (m.local.as_str(), m.domain.as_str()),
            ("user", "Example.COM")
        );
        let m = mailbox("RCPT TO:<\"user@remote.example\"@example.com>");
        assert_eq!((m.local.as_str(), m.quoted), ("user@remote.example", true));
        let m = mailbox("MAIL FROM: <a.b+c@[192.0.2.1]>");
        assert_eq!(m.domain, "[192.0.2.1]");
        assert_eq!(
            mailbox("RCPT TO:<user@example.com.>").domain,
            "example.com."
        );
        assert_eq!(mailbox("rcpt to:<josé@exämple.org>").local, "josé");
    }

    #[test]
    fn malformed_paths_get_address_syntax_codes() {
        for line in [
            "RCPT TO:user@example.com",
            "RCPT TO:<user>",
            "RCPT TO:<a..b@example.com>",
            "RCPT TO:<a@b@c>",
            "RCPT TO:<a@-x.com>",
            "RCPT TO:<@x:>",
        ] {
            let r = parse(line.as_bytes()).unwrap_err();
            assert!(r.code == 501, "{line}: {r:?}");
        }
        assert_eq!(
            parse(b"MAIL FROM:<a b@c>").unwrap_err().status,
            Some(crate::reply::Status(5, 1, 7))
        );
    }

    #[test]
    fn mail_parameters() {
        let Command::Mail(m) =
            parse(b"MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+2Bb").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (m.sender, m.size, m.body, m.smtputf8, m.ret_full),
            (None, Some(100), BodyType::EightBitMime, true, Some(false))
        );
        assert_eq!(parse(b"MAIL FROM:<> FOO=1").unwrap_err().code, 555);
        assert_eq!(
            parse(b"MAIL FROM:<> BODY=BINARYMIME").unwrap_err().code,
            504
        );
        assert_eq!(parse(b"MAIL FROM:<> SIZE=x").unwrap_err().code, 501);
        assert_eq!(
            parse(b"RCPT TO:<a@b.c> NOTIFY=NEVER,SUCCESS")
                .unwrap_err()
                .code,
            501
        );
        let Command::Rcpt(r) =
            parse(b"RCPT TO:<Postmaster> NOTIFY=success,delay ORCPT=rfc822;a@b.c").unwrap()
        else {
            panic!()
        };
        assert_eq!((r.recipient.domain.as_str(), r.notify.len()), ("", 2));
    }

    #[test]
    fn verbs() {
        assert_eq!(
            parse(b"bdat 10 last").unwrap(),
            Command::Bdat {
                size: 10,
                last: true
            }
        );
        assert_eq!(parse(b"BDAT x").unwrap_err().code, 501);
        assert_eq!(parse(b"FOO").unwrap_err().code, 500);
        assert_eq!(parse(b"DATA x").unwrap_err().code, 501);
        assert_eq!(
            parse(b"ETRN x").unwrap(),
            Command::NotImplemented("ETRN".into())
        );
        assert_eq!(parse(b"EHLO").unwrap_err().code, 501);
        assert_eq!(parse(&[0xff, 0xfe]).unwrap_err().code, 501);
    }
}
