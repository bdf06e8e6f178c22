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

/// IMAP date-time (RFC 9051 §9 `date-time`), in UTC.
pub fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "\"{:2}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        d,
        MON[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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
        assert_eq!(date_time(1_704_099_600), "\" 1-Jan-2024 09:00:00 +0000\"");
        assert_eq!(seq_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        let mut out = Vec::new();
        string(&mut out, b"a \"b\"");
        assert_eq!(out, b"\"a \\\"b\\\"\"");
        out.clear();
        string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
    }
}
