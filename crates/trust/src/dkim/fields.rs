//! Which header fields a signature covers (RFC 6376 §5.4): the recommended ones present in
//! the message (§5.4.1), each name once, then From once more (§5.4.2, §8.15).
//!
//! mail-auth signs every instance of a listed name and lists, after them, each listed name it
//! did not meet: the final "From" never matches a field (the first "From" takes them all), so
//! it is written once more than the message has From fields, and a From added later breaks
//! the signature ("over-signing").

/// Header fields RFC 6376 §5.4.1 (and RFC 4871 §5.5 before it) recommends signing; the
/// `Resent-` and `List-` families (RFC 5322 §3.6.6, RFC 2369, RFC 2919) are matched by prefix.
const RECOMMENDED: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
];

/// Name prefixes of the field families signed as a whole.
const FAMILIES: &[&str] = &["Resent-", "List-"];

/// The h= template for `message`: the recommended names present, in the order first met,
/// then "From" (the over-signing entry). Reads only the header section (up to the first empty
/// line, CRLF or bare LF); never panics.
pub(super) fn names_to_sign(message: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in header_lines(message) {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue; // folded continuation (RFC 5322 §2.2.3)
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue; // not a field: mail-auth skips it too
        };
        let Some(name) = wanted(&line[..colon]) else {
            continue;
        };
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            names.push(name);
        }
    }
    names.push("From".to_string());
    names
}

/// The lines of the header section, without their line ends.
fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = message;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(lf) => (&rest[..lf], &rest[lf + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            rest = &[];
            return None; // end of the header section (RFC 5322 §2.1)
        }
        Some(line)
    })
}

/// The name to list in h= when `raw` (a field name as written) is one to sign: the
/// recommended spelling, or for a family member its own name (letters, digits and hyphens
/// only, so nothing in it can disturb the tag list of RFC 6376 §3.2).
fn wanted(raw: &[u8]) -> Option<String> {
    if let Some(known) = RECOMMENDED
        .iter()
        .find(|n| n.as_bytes().eq_ignore_ascii_case(raw))
    {
        return Some((*known).to_string());
    }
    let family = FAMILIES.iter().any(|prefix| {
        raw.len() > prefix.len()
            && raw
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    });
    if family && raw.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        // ASCII only: the conversion cannot fail.
        return std::str::from_utf8(raw).ok().map(str::to_string);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_recommended_fields_and_from_once_more() {
        let message = b"Received: x\r\nfrom: a@example.org\r\nSubject: hi\r\n \
                        folded: not a field\r\nList-Id: <l.example.org>\r\nX-Other: y\r\n\
                        Resent-From: b@example.org\r\nSubject: again\r\n\r\nTo: body@x\r\n";
        assert_eq!(
            names_to_sign(message),
            ["From", "Subject", "List-Id", "Resent-From", "From"]
        );
    }

    #[test]
    fn odd_messages() {
        assert_eq!(names_to_sign(b""), ["From"]);
        assert_eq!(names_to_sign(b"just a body"), ["From"]);
        assert_eq!(names_to_sign(b"\r\nFrom: x\r\n"), ["From"]);
        assert_eq!(
            names_to_sign(b"To: a\nFrom: b\n\nCc: c\n"),
            ["To", "From", "From"]
        );
        assert_eq!(names_to_sign(b"List-Bad;name: x\r\nList-: y\r\n"), ["From"]);
        assert_eq!(names_to_sign(b"\xff\xfe: x\r\nDate: d"), ["Date", "From"]);
    }
}
