//! What the report modules share to write messages: header values made safe, folding,
//! dates, base64 in MIME lines (RFC 2045 §6.8), hex.

use std::fmt::Write as _;

/// Longest base64 line (RFC 2045 §6.8).
pub(crate) const BASE64_LINE: usize = 76;
/// Header lines are folded before this length where a space allows (RFC 5322 §2.1.1).
pub(crate) const HEADER_LINE: usize = 78;

/// Removes what a header field value must not hold: line ends and other controls.
pub(crate) fn header_text(value: &str) -> String {
    value.trim().chars().filter(|c| !c.is_control()).collect()
}

/// Folds a header field (RFC 5322 §2.2.3) at spaces so lines stay within 78 characters
/// where a space allows it; ends it with CRLF.
pub(crate) fn fold(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 8);
    let mut line = 0;
    for (index, word) in field.split(' ').enumerate() {
        if index > 0 {
            if line + 1 + word.chars().count() > HEADER_LINE && line > 0 {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
        }
        out.push_str(word);
        line += word.chars().count();
    }
    out.push_str("\r\n");
    out
}

/// `Mon, 15 Jan 2024 10:00:00 +0000` (RFC 5322 §3.3) of a Unix time.
pub(crate) fn rfc5322_date(seconds: u64) -> String {
    facteur_model::calendar::rfc5322_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
}

/// The (year, month, day) of a count of days since 1970-01-01 (proleptic Gregorian).
pub(crate) fn civil_date(days: i64) -> (i64, u32, u32) {
    facteur_model::calendar::civil_from_days(days)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// Base64 (RFC 4648 §4) in lines of 76 characters ending in CRLF (RFC 2045 §6.8).
pub(crate) fn base64_lines(data: &[u8], out: &mut String) {
    let mut line = 0;
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(BASE64[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
        line += 4;
        if line == BASE64_LINE {
            out.push_str("\r\n");
            line = 0;
        }
    }
    if line > 0 {
        out.push_str("\r\n");
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// The two parts of a report message after its header: `text` (7bit or 8bit as it needs) and
/// `data` as a base64 attachment of type `content_type` named `file_name`, then the closing
/// boundary (RFC 2046 §5.1.1).
pub(crate) fn text_and_attachment(
    out: &mut String,
    boundary: &str,
    text: &str,
    content_type: &str,
    file_name: &str,
    data: &[u8],
) {
    let (charset, encoding) = if text.is_ascii() {
        ("us-ascii", "7bit")
    } else {
        ("utf-8", "8bit")
    };
    let _ = write!(
        out,
        "--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n\
         Content-Transfer-Encoding: {encoding}\r\n\r\n{text}\r\n--{boundary}\r\n"
    );
    out.push_str(&fold(&format!(
        "Content-Type: {content_type}; name=\"{file_name}\""
    )));
    out.push_str("Content-Transfer-Encoding: base64\r\n");
    out.push_str(&fold(&format!(
        "Content-Disposition: attachment; filename=\"{file_name}\""
    )));
    out.push_str("\r\n");
    base64_lines(data, out);
    let _ = write!(out, "--{boundary}--\r\n");
}
