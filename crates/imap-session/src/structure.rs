//! ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2) from the metadata parsed once at delivery,
//! body sections (RFC 9051 §6.4.5) located by the stored MIME offsets, HEADER.FIELDS, and the
//! decoders BINARY needs (RFC 3516): base64 and quoted-printable.

use crate::encode;
use serde_json::Value;

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn nstr(out: &mut Vec<u8>, v: Option<&str>) {
    encode::nstring(out, v.map(str::as_bytes));
}

/// Non-ASCII display names are given back as RFC 2047 encoded-words unless the client reads
/// UTF-8.
fn name_field(out: &mut Vec<u8>, name: Option<&str>, utf8: bool) {
    match name {
        Some(n) if !n.is_ascii() && !utf8 => {
            let w = format!("=?utf-8?b?{}?=", base64_encode(n.as_bytes()));
            encode::string(out, w.as_bytes());
        }
        Some(n) => encode::string_utf8(out, n.as_bytes(), utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn address(out: &mut Vec<u8>, a: &Value, utf8: bool) {
    out.push(b'(');
    name_field(out, s(&a["name"]), utf8);
    out.push(b' ');
    nstr(out, s(&a["route"]));
    out.push(b' ');
    encode::string_utf8(out, s(&a["mailbox"]).unwrap_or("").as_bytes(), utf8);
    out.push(b' ');
    match s(&a["host"]) {
        Some(h) if !h.is_empty() => encode::string_utf8(out, h.as_bytes(), utf8),
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b')');
}

fn address_list(out: &mut Vec<u8>, v: &Value, utf8: bool) {
    let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for a in list {
        if a.get("group").is_some() {
            // RFC 9051 §7.5.2: a group is a start marker (NIL NIL "name" NIL), its members,
            // and an end marker (NIL NIL NIL NIL).
            out.extend_from_slice(b"(NIL NIL ");
            encode::string_utf8(out, s(&a["group"]).unwrap_or("").as_bytes(), utf8);
            out.extend_from_slice(b" NIL)");
            for m in a["members"].as_array().into_iter().flatten() {
                address(out, m, utf8);
            }
            out.extend_from_slice(b"(NIL NIL NIL NIL)");
        } else {
            address(out, a, utf8);
        }
    }
    out.push(b')');
}

/// Writes the ENVELOPE of a message from its stored JSON.
pub fn envelope(out: &mut Vec<u8>, env: &Value, utf8: bool) {
    out.push(b'(');
    nstr(out, s(&env["date"]));
    out.push(b' ');
    match s(&env["subject"]) {
        Some(v) => encode::string_utf8(out, v.as_bytes(), utf8),
        None => out.extend_from_slice(b"NIL"),
    }
    let from = &env["from"];
    let or_from = |v: &'_ Value| -> Value {
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            v.clone()
        } else {
            from.clone()
        }
    };
    for field in [
        from.clone(),
        or_from(&env["sender"]),
        or_from(&env["reply_to"]),
        env["to"].clone(),
        env["cc"].clone(),
        env["bcc"].clone(),
    ] {
        out.push(b' ');
        address_list(out, &field, utf8);
    }
    out.push(b' ');
    nstr(out, s(&env["in_reply_to"]));
    out.push(b' ');
    nstr(out, s(&env["message_id"]));
    out.push(b')');
}

fn params(out: &mut Vec<u8>, v: &Value) {
    let list = v.as_array().filter(|l| !l.is_empty());
    let Some(list) = list else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for (i, pair) in list.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        encode::string(
            out,
            s(&pair[0]).unwrap_or("").to_ascii_uppercase().as_bytes(),
        );
        out.push(b' ');
        encode::string(out, s(&pair[1]).unwrap_or("").as_bytes());
    }
    out.push(b')');
}

fn disposition(out: &mut Vec<u8>, node: &Value) {
    match s(&node["disposition"]) {
        Some(d) => {
            out.push(b'(');
            encode::string(out, d.to_ascii_uppercase().as_bytes());
            out.push(b' ');
            params(out, &node["disposition_params"]);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

fn language(out: &mut Vec<u8>, node: &Value) {
    match node["language"].as_array().filter(|l| !l.is_empty()) {
        None => out.extend_from_slice(b"NIL"),
        Some(l) if l.len() == 1 => encode::string(out, s(&l[0]).unwrap_or("").as_bytes()),
        Some(l) => {
            out.push(b'(');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                encode::string(out, s(x).unwrap_or("").as_bytes());
            }
            out.push(b')');
        }
    }
}

/// A MIME token (type, subtype, encoding) in upper case, as servers conventionally write it.
fn upper(out: &mut Vec<u8>, v: &Value, default: &str) {
    encode::string(out, s(v).unwrap_or(default).to_ascii_uppercase().as_bytes());
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn is_message(node: &Value) -> bool {
    node["message"].is_object()
        && s(&node["type"]) == Some("message")
        && matches!(s(&node["subtype"]), Some("rfc822" | "global"))
}

/// Writes BODYSTRUCTURE (`extended`) or BODY (not extended) of a structure node.
pub fn body_structure(out: &mut Vec<u8>, node: &Value, extended: bool, utf8: bool) {
    out.push(b'(');
    if let Some(parts) = node["parts"].as_array() {
        if parts.is_empty() {
            // A multipart without parts: RFC 9051 needs at least one body; show an empty text.
            out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        }
        for p in parts {
            body_structure(out, p, extended, utf8);
        }
        out.push(b' ');
        upper(out, &node["subtype"], "mixed");
        if extended {
            out.push(b' ');
            params(out, &node["params"]);
            out.push(b' ');
            disposition(out, node);
            out.push(b' ');
            language(out, node);
            out.push(b' ');
            nstr(out, s(&node["location"]));
        }
        out.push(b')');
        return;
    }
    let ty = s(&node["type"]).unwrap_or("text").to_ascii_uppercase();
    encode::string(out, ty.as_bytes());
    out.push(b' ');
    upper(out, &node["subtype"], "plain");
    out.push(b' ');
    if ty == "TEXT" && node["params"].as_array().is_none_or(|p| p.is_empty()) {
        out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")");
    } else {
        params(out, &node["params"]);
    }
    out.push(b' ');
    nstr(out, s(&node["id"]));
    out.push(b' ');
    nstr(out, s(&node["description"]));
    out.push(b' ');
    upper(out, &node["encoding"], "7bit");
    out.push(b' ');
    let size = num(&node["end"]).saturating_sub(num(&node["body_start"]));
    out.extend_from_slice(size.to_string().as_bytes());
    if is_message(node) {
        out.push(b' ');
        envelope(out, &node["message"]["envelope"], utf8);
        out.push(b' ');
        body_structure(out, &node["message"]["structure"], extended, utf8);
        out.push(b' ');
        out.extend_from_slice(num(&node["lines"]).to_string().as_bytes());
    } else if ty == "TEXT" {
        out.push(b' ');
        out.extend_from_slice(num(&node["lines"]).to_string().as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL ");
        disposition(out, node);
        out.push(b' ');
        language(out, node);
        out.push(b' ');
        nstr(out, s(&node["location"]));
    }
    out.push(b')');
}

/// The node a part number names (RFC 9051 §6.4.5), from the message's root structure.
pub fn find_part<'a>(root: &'a Value, path: &[u32]) -> Option<&'a Value> {
    let mut level = root;
    let mut node = root;
    for (i, &n) in path.iter().enumerate() {
        node = match level["parts"].as_array() {
            Some(parts) => parts.get(n as usize - 1)?,
            None if n == 1 => level,
            None => return None,
        };
        if i + 1 < path.len() {
            level = if is_message(node) {
                &node["message"]["structure"]
            } else if node["parts"].is_array() {
                node
            } else {
                return None;
            };
        }
    }
    Some(node)
}

/// Byte ranges of a message's content (the copy's prefix, then the blob): the structure's
/// offsets count from the blob, so each is shifted by the prefix length.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub prefix: usize,
    pub total: usize,
}

impl Layout {
    fn at(&self, v: &Value) -> usize {
        (num(v) as usize + self.prefix).min(self.total)
    }
    pub fn header(&self, node: &Value) -> (usize, usize) {
        let start = if num(&node["header_start"]) == 0 {
            0
        } else {
            self.at(&node["header_start"])
        };
        (start, self.at(&node["body_start"]).max(start))
    }
    pub fn body(&self, node: &Value) -> (usize, usize) {
        let start = self.at(&node["body_start"]);
        (start, self.at(&node["end"]).max(start))
    }
    /// TEXT of a message: from its body to the end of what holds it (the whole content for
    /// the root, the message/rfc822 part's body for an encapsulated one, epilogue included).
    pub fn text(&self, message: &Value, holder: Option<&Value>) -> (usize, usize) {
        let start = self.at(&message["body_start"]);
        let end = match holder {
            None => self.total,
            Some(part) => self.body(part).1,
        };
        (start, end.max(start))
    }
}

/// The message (root, or a message/rfc822 part's inner message) whose HEADER/TEXT a section
/// with this part path names, with the part that holds it (None for the root); None when the
/// part is not a message.
pub fn message_of<'a>(root: &'a Value, path: &[u32]) -> Option<(&'a Value, Option<&'a Value>)> {
    if path.is_empty() {
        return Some((root, None));
    }
    let node = find_part(root, path)?;
    is_message(node).then(|| (&node["message"]["structure"], Some(node)))
}

/// The header fields of a header block named (or not named) in `fields`, with the final
/// blank line (RFC 9051 §6.4.5 HEADER.FIELDS).
pub fn header_fields(header: &[u8], fields: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < header.len() {
        let mut end = i;
        // A field runs to the next line that does not start with whitespace.
        loop {
            match header[end..].iter().position(|&b| b == b'\n') {
                Some(p) => end += p + 1,
                None => {
                    end = header.len();
                    break;
                }
            }
            if end >= header.len() || !matches!(header[end], b' ' | b'\t') {
                break;
            }
        }
        let field = &header[i..end];
        i = end;
        if field == b"\r\n" || field == b"\n" {
            break;
        }
        let name = field
            .iter()
            .position(|&b| b == b':')
            .map(|c| field[..c].trim_ascii())
            .unwrap_or(b"");
        let named = fields
            .iter()
            .any(|f| f.as_bytes().eq_ignore_ascii_case(name));
        if named != not && !name.is_empty() {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 decoding that skips line breaks and stops at padding; None on other garbage.
pub fn base64_decode(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc = 0u32;
    let mut n = 0;
    for &b in data {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    Some(out)
}

/// Quoted-printable body decoding (RFC 2045 §6.7): trailing whitespace on a line is transport
/// padding and goes; `=` at the end of a line (whitespace may follow it) is a soft break; line
/// breaks are CRLF.
pub fn qp_decode_body(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut lines = data.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let line = &line[..end];
        match line.strip_suffix(b"=") {
            Some(soft) => out.extend_from_slice(&qp_decode(soft, false)),
            None => {
                out.extend_from_slice(&qp_decode(line, false));
                if !last {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    out
}

pub fn qp_decode(data: &[u8], underscore_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'=' => {
                if data.get(i + 1) == Some(&b'\r') && data.get(i + 2) == Some(&b'\n') {
                    i += 3;
                } else if data.get(i + 1) == Some(&b'\n') {
                    i += 2;
                } else if let (Some(h), Some(l)) = (
                    data.get(i + 1).and_then(|&b| hex(b)),
                    data.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b'_' if underscore_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes a part body per its Content-Transfer-Encoding; None for an unknown encoding.
pub fn decode_body(encoding: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        None | Some("7bit" | "8bit" | "binary") => Some(body.to_vec()),
        Some("base64") => base64_decode(body),
        Some("quoted-printable") => Some(qp_decode_body(body)),
        _ => None,
    }
}

fn charset_decode(charset: &str, bytes: &[u8]) -> String {
    match charset.to_ascii_lowercase().as_str() {
        "iso-8859-1" | "latin1" | "windows-1252" | "iso-8859-15" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes RFC 2047 encoded-words in an unstructured header value (SEARCH and SORT compare
/// decoded text).
pub fn decode_words(v: &str) -> String {
    if !v.contains("=?") {
        return v.to_string();
    }
    let mut out = String::new();
    let mut rest = v;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let word = &rest[start + 2..];
        let parsed = (|| {
            let (charset, after) = word.split_once('?')?;
            let (enc, after) = after.split_once('?')?;
            let end = after.find("?=")?;
            let text = &after[..end];
            let bytes = match enc {
                "b" | "B" => base64_decode(text.as_bytes())?,
                "q" | "Q" => qp_decode(text.as_bytes(), true),
                _ => return None,
            };
            let charset = charset.split('*').next().unwrap_or(charset);
            Some((
                charset_decode(charset, &bytes),
                start + 2 + word.len() - after.len() + end + 2,
            ))
        })();
        match parsed {
            Some((text, consumed)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[consumed..];
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decoders() {
        assert_eq!(base64_decode(b"aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(qp_decode(b"caf=C3=A9=\r\n!", false), "café!".as_bytes());
        assert_eq!(
            qp_decode_body(
                b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar"
            ),
            b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar"
        );
        assert_eq!(
            decode_words("=?utf-8?q?caf=C3=A9?= =?UTF-8?B?IG5vaXI=?= x"),
            "café noir x"
        );
        assert_eq!(decode_words("=?iso-8859-1?q?d=E9j=E0?="), "déjà");
    }

    #[test]
    fn header_fields_keep_folded_lines() {
        let h = b"Subject: a\r\n b\r\nFrom: x\r\nTo: y\r\n\r\n";
        assert_eq!(
            header_fields(h, &["subject".into(), "to".into()], false),
            b"Subject: a\r\n b\r\nTo: y\r\n\r\n"
        );
        assert_eq!(
            header_fields(h, &["Subject".into()], true),
            b"From: x\r\nTo: y\r\n\r\n"
        );
    }

    #[test]
    fn parts_are_found_through_nested_messages() {
        let inner = json!({"type":"multipart","subtype":"alternative","parts":[
            {"type":"text","subtype":"plain","n":"inner1"},{"type":"text","subtype":"html","n":"inner2"}]});
        let root = json!({"type":"multipart","subtype":"mixed","parts":[
            {"type":"text","subtype":"plain","n":"one"},
            {"type":"message","subtype":"rfc822","n":"two","message":{"envelope":{},"structure":inner}}]});
        assert_eq!(find_part(&root, &[1]).unwrap()["n"], "one");
        assert_eq!(find_part(&root, &[2]).unwrap()["n"], "two");
        assert_eq!(find_part(&root, &[2, 2]).unwrap()["n"], "inner2");
        assert!(find_part(&root, &[3]).is_none());
        assert!(find_part(&root, &[1, 1]).is_none());
        let single = json!({"type":"text","subtype":"plain","n":"only"});
        assert_eq!(find_part(&single, &[1]).unwrap()["n"], "only");
    }
}
