//! The Authentication-Results header field (RFC 8601 §2.2): writing ours, removing forged ones.

/// Lines are folded before they pass this many characters (RFC 5322 §2.1.1), where a token
/// boundary allows.
const LINE: usize = 78;
/// Text taken from the message or the envelope is cut to this many characters.
const MAX_VALUE: usize = 256;
/// Comments are cut to this many characters.
const MAX_COMMENT: usize = 160;

/// One result (RFC 8601 `resinfo`): its tokens in order ("dkim=pass", "(comment)",
/// "header.d=example.com", ...). A token is never folded inside.
pub(crate) type ResInfo = Vec<String>;

/// The whole field: `Authentication-Results: host;` then each result on its own line, folded
/// at token boundaries before [`LINE`] characters, ending with CRLF.
pub(crate) fn render(authserv_id: &str, results: &[ResInfo]) -> String {
    let mut out = String::with_capacity(96 * (results.len() + 1));
    out.push_str("Authentication-Results: ");
    out.push_str(authserv_id);
    if results.is_empty() {
        // RFC 8601 §2.2: "none" when no method was applied.
        out.push_str("; none\r\n");
        return out;
    }
    out.push(';');
    for (i, tokens) in results.iter().enumerate() {
        let last_result = i + 1 == results.len();
        out.push_str("\r\n\t");
        let mut column = 1;
        for (j, token) in tokens.iter().enumerate() {
            let width = token.chars().count() + usize::from(j + 1 == tokens.len() && !last_result);
            if j > 0 {
                if column + 1 + width > LINE {
                    out.push_str("\r\n\t  ");
                    column = 3;
                } else {
                    out.push(' ');
                    column += 1;
                }
            }
            out.push_str(token);
            column += token.chars().count();
        }
        if !last_result {
            out.push(';');
        }
    }
    out.push_str("\r\n");
    out
}

/// `name=value` with the value as an RFC 8601 `pvalue`: bare when it is a token (RFC 2045
/// §5.1) or `local-part@domain` of plain characters, else a quoted-string. Control characters
/// are dropped and the value is cut to [`MAX_VALUE`] characters, whatever the sender wrote.
pub(crate) fn property(name: &str, value: &str) -> String {
    format!("{name}={}", pvalue(value))
}

pub(crate) fn pvalue(value: &str) -> String {
    let value: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_VALUE)
        .collect();
    if !value.is_empty() && is_plain(&value) {
        return value;
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// A comment (RFC 5322 §3.2.2) holding `text`, without characters that would end or nest it.
pub(crate) fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_COMMENT) + 2);
    out.push('(');
    for c in text
        .chars()
        .filter(|c| !c.is_control() && *c != '\\')
        .take(MAX_COMMENT)
    {
        out.push(match c {
            '(' => '[',
            ')' => ']',
            c => c,
        });
    }
    out.push(')');
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`{|}~".contains(c)
}

fn is_plain(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !domain.is_empty()
                && local.chars().all(is_token_char)
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
        None => value.chars().all(is_token_char),
    }
}

/// RFC 8601 §5: an Authentication-Results field whose authserv-id is ours, arriving from
/// outside, is a forgery (or a leftover) that a reader would trust as ours; it must go before
/// the message is delivered. Returns the message without such fields, or None when there is
/// none (the caller keeps its buffer).
///
/// Only the header section (up to the first empty line) is looked at. A field's continuation
/// lines (starting with a space or a tab, RFC 5322 §2.2.3) go with it. The authserv-id is the
/// first value of the field after comments and white space, a token or a quoted-string,
/// compared with `hostname` without case and without a trailing dot (RFC 8601 §2.5). Fields
/// of other ADMDs, and ARC-Authentication-Results (part of ARC sets, RFC 8617 §4.1.1), are
/// kept. CRLF and bare LF line ends are both understood; nothing else of the message changes.
pub fn remove_forged_results(message: &[u8], hostname: &str) -> Option<Vec<u8>> {
    let ours = hostname.trim().trim_end_matches('.');
    if ours.is_empty() {
        return None;
    }
    let end = header_section_end(message);
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    while pos < end {
        let line_end = message[pos..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| pos + i + 1);
        let continuation = matches!(message[pos], b' ' | b'\t');
        match fields.last_mut() {
            Some(field) if continuation => field.1 = line_end,
            _ => fields.push((pos, line_end)),
        }
        pos = line_end;
    }
    let forged: Vec<(usize, usize)> = fields
        .into_iter()
        .filter(|&(start, stop)| claims(&message[start..stop], ours))
        .collect();
    if forged.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(message.len());
    let mut copied = 0;
    for (start, stop) in forged {
        out.extend_from_slice(&message[copied..start]);
        copied = stop;
    }
    out.extend_from_slice(&message[copied..]);
    Some(out)
}

/// Where the header section ends: the start of the first empty line, or the end of the
/// message when there is none.
fn header_section_end(message: &[u8]) -> usize {
    let mut pos = 0;
    while pos < message.len() {
        if message[pos..].starts_with(b"\r\n") || message[pos] == b'\n' {
            return pos;
        }
        match message[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => pos += i + 1,
            None => return message.len(),
        }
    }
    message.len()
}

/// True when `field` is an Authentication-Results field with authserv-id `ours`.
fn claims(field: &[u8], ours: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = field[..colon].trim_ascii();
    if !name.eq_ignore_ascii_case(b"Authentication-Results") {
        return false;
    }
    let value = &field[colon + 1..];
    let mut i = skip_cfws(value, 0);
    let mut id = Vec::new();
    if value.get(i) == Some(&b'"') {
        i += 1;
        while let Some(&b) = value.get(i) {
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(&next) = value.get(i + 1) {
                        id.push(next);
                    }
                    i += 2;
                }
                b'\r' | b'\n' => i += 1,
                _ => {
                    id.push(b);
                    i += 1;
                }
            }
        }
    } else {
        while let Some(&b) = value.get(i) {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(') {
                break;
            }
            id.push(b);
            i += 1;
        }
    }
    let id = id.trim_ascii();
    let id = id.strip_suffix(b".").unwrap_or(id);
    !id.is_empty() && id.eq_ignore_ascii_case(ours.as_bytes())
}

/// Skips folding white space and comments (nested, with quoted pairs; RFC 5322 §3.2.2).
fn skip_cfws(value: &[u8], mut i: usize) -> usize {
    loop {
        match value.get(i) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => i += 1,
            Some(b'(') => {
                let mut depth = 0usize;
                while let Some(&b) = value.get(i) {
                    match b {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        b'\\' => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => return i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(pvalue("example.com"), "example.com");
        assert_eq!(pvalue("jo.doe+tag@example.com"), "jo.doe+tag@example.com");
        assert_eq!(pvalue("2001:db8::1"), "\"2001:db8::1\"");
        assert_eq!(pvalue("a/b=="), "\"a/b==\"");
        assert_eq!(pvalue("a b@example.com"), "\"a b@example.com\"");
        assert_eq!(pvalue("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(pvalue("evil\r\nX-Injected: 1"), "\"evilX-Injected: 1\"");
        assert_eq!(pvalue(""), "\"\"");
        assert_eq!(comment("a (b) \\ c\r\n"), "(a [b]  c)");
    }

    #[test]
    fn long_results_are_folded_between_tokens() {
        let results = vec![
            vec![
                "dkim=pass".to_string(),
                property("header.d", &"d".repeat(40)),
                property("header.s", &"s".repeat(30)),
                property("header.b", "AbCdEfGh"),
            ],
            vec!["arc=none".to_string()],
        ];
        let header = render("mx.example.net", &results);
        assert!(header.ends_with("\r\n"));
        for line in header.trim_end().split("\r\n") {
            assert!(line.len() <= LINE, "{line:?}");
        }
        let unfolded = header.replace("\r\n", "");
        assert!(unfolded.contains("header.s="), "{unfolded}");
        assert!(unfolded.trim_end().ends_with("\tarc=none"), "{unfolded}");
    }

    #[test]
    fn forged_fields_are_found_by_authserv_id() {
        assert!(claims(
            b"Authentication-Results: MX.example.net; spf=pass\r\n",
            "mx.example.net"
        ));
        assert!(claims(
            b"authentication-results:\r\n (c (nested)) \"mx.example.net.\" 1; none\r\n",
            "mx.example.net"
        ));
        assert!(!claims(
            b"Authentication-Results: other.example; spf=pass\r\n",
            "mx.example.net"
        ));
        assert!(!claims(
            b"ARC-Authentication-Results: i=1; mx.example.net; spf=pass\r\n",
            "mx.example.net"
        ));
        assert!(!claims(
            b"Authentication-Results: mx.example.net.evil; none\r\n",
            "mx.example.net"
        ));
    }

    #[test]
    fn headerless_and_odd_messages_do_not_panic() {
        for message in [
            &b""[..],
            b"\r\n",
            b"\n\n",
            b" leading continuation\r\n\r\nbody",
            b"Authentication-Results",
            b"Authentication-Results: (unclosed",
            b"Authentication-Results: \"unclosed",
            b"Authentication-Results: mx.example.net",
        ] {
            let _ = remove_forged_results(message, "mx.example.net");
        }
        assert_eq!(
            remove_forged_results(b"Authentication-Results: mx.example.net", "mx.example.net"),
            Some(Vec::new())
        );
    }
}
