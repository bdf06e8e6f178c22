//! Response encoding: strings as atoms, quoted strings or literals (RFC 9051 §4.3), NIL.

fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends `s` as a quoted string when it can be one, else as a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 1024
        && s.iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && b < 0x80)
    {
        quoted(out, s);
    } else {
        literal(out, s);
    }
}

/// Like `string`, but UTF-8 may stay quoted (clients that enabled UTF8=ACCEPT or IMAP4rev2).
pub fn string_utf8(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if utf8
        && s.len() < 1024
        && std::str::from_utf8(s).is_ok()
        && !s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
    {
        quoted(out, s);
    } else {
        string(out, s);
    }
}

pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// `literal8` of BINARY (RFC 3516 §4.3).
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name as an astring: quoted unless it is a plain atom.
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    let wire = if utf8 {
        name.to_string()
    } else {
        crate::mutf7::encode(name)
    };
    // A plain atom goes as is, as most servers write `INBOX`.
    if !wire.is_empty()
        && wire
            .bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\".contains(&b))
    {
        out.extend_from_slice(wire.as_bytes());
        return;
    }
    string_utf8(out, wire.as_bytes(), utf8);
}

/// A sequence set from sorted numbers, compressed into ranges: `1:3,7`.
pub fn seq_set(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sets() {
        assert_eq!(seq_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        let mut out = Vec::new();
        string(&mut out, b"a \"b\"");
        assert_eq!(out, b"\"a \\\"b\\\"\"");
        out.clear();
        string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
    }
}
