//! 8-bit to 7-bit conversion for servers without 8BITMIME (RFC 6152 §3: "the SMTP client
//! ... MUST either downgrade the message to 7 bits ... or return a non-delivery notification").
//! Each MIME leaf part whose body holds 8-bit octets is re-encoded: text in quoted-printable
//! (RFC 2045 §6.7), anything else in base64 (§6.8), and its Content-Transfer-Encoding field
//! replaced. A message without MIME fields becomes a text/plain UTF-8 one. Header fields are
//! left as they are (8-bit there needs SMTPUTF8, which is checked separately).

use mail_parser::{HeaderName, MessageParser, PartType};

/// The message in 7 bits, or None when its bodies already are.
pub fn to_seven_bit(raw: &[u8]) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let is_mime = message
        .root_part()
        .headers
        .iter()
        .any(|h| matches!(h.name, HeaderName::MimeVersion | HeaderName::ContentType));
    // (start, end, replacement), applied from the end.
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for (i, part) in message.parts.iter().enumerate() {
        let text = match &part.body {
            PartType::Text(_) | PartType::Html(_) => true,
            PartType::Binary(_) | PartType::InlineBinary(_) => false,
            // Containers: their children are parts of their own; a nested message keeps its
            // encoding (RFC 2045 §6.4 allows only 7bit, 8bit or binary there).
            PartType::Multipart(_) | PartType::Message(_) => continue,
        };
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        let Some(body) = raw.get(start..end) else {
            continue;
        };
        if body.is_ascii() {
            continue;
        }
        let encoded = if text {
            quoted_printable(body)
        } else {
            base64_lines(body)
        };
        edits.push((start, end, encoded));
        let cte = part
            .headers
            .iter()
            .find(|h| h.name == HeaderName::ContentTransferEncoding);
        let field = format!(
            "Content-Transfer-Encoding: {}\r\n",
            if text { "quoted-printable" } else { "base64" }
        );
        match cte {
            Some(h) => {
                let (fs, fe) = (h.offset_field as usize, h.offset_end as usize);
                edits.push((fs, fe, field.into_bytes()));
            }
            None => {
                let mut added = field;
                if i == 0 && !is_mime {
                    added = format!(
                        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{added}"
                    );
                }
                let at = part.offset_header as usize;
                edits.push((at, at, added.into_bytes()));
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = raw.to_vec();
    for (start, end, replacement) in edits {
        out.splice(start..end, replacement);
    }
    Some(out)
}

/// RFC 2045 §6.7: printable ASCII as is, the rest as =XX, lines at most 76 characters with
/// soft breaks, whitespace before a line break encoded, CRLF kept as hard breaks.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 3 / 2);
    let mut col = 0;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\r' && body.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 2;
            continue;
        }
        let at_line_end = matches!(body.get(i + 1), None | Some(b'\r'));
        let literal =
            (b == b' ' || b == b'\t') && !at_line_end || (33..=126).contains(&b) && b != b'=';
        let width = if literal { 1 } else { 3 };
        if col + width > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
        }
        col += width;
        i += 1;
    }
    out
}

/// RFC 2045 §6.8: base64 in lines of 76 characters.
fn base64_lines(body: &[u8]) -> Vec<u8> {
    let encoded = facteur_directory::sasl::encode_base64(body);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded_text(raw: &[u8]) -> String {
        let m = MessageParser::default().parse(raw).unwrap();
        m.body_text(0).unwrap().into_owned()
    }

    #[test]
    fn plain_message_becomes_mime_quoted_printable() {
        let raw = "Subject: caf\u{e9}s\r\nFrom: a@b.c\r\n\r\nDeux caf\u{e9}s, s'il vous pla\u{ee}t = 4 \u{20ac}\r\nfin \r\n".as_bytes();
        let out = to_seven_bit(raw).unwrap();
        let body_start = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            out[body_start..].is_ascii(),
            "{}",
            String::from_utf8_lossy(&out)
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"), "{text}");
        assert!(
            text.contains("caf=C3=A9s") && text.contains("=3D 4 =E2=82=AC"),
            "{text}"
        );
        assert!(
            text.contains("fin=20\r\n"),
            "trailing space encoded: {text}"
        );
        assert_eq!(
            decoded_text(&out),
            "Deux caf\u{e9}s, s'il vous pla\u{ee}t = 4 \u{20ac}\r\nfin \r\n"
        );
        assert!(to_seven_bit(b"Subject: x\r\n\r\nascii only\r\n").is_none());
    }

    #[test]
    fn multipart_parts_are_converted_one_by_one() {
        let raw = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
            Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\u{e9}t\u{e9}\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nascii part\r\n\
            --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\u{ff}\u{fe}\r\n--b--\r\n";
        let out = to_seven_bit(raw.as_bytes()).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.is_ascii(), "{text}");
        assert!(
            text.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9t=C3=A9"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain\r\n\r\nascii part"),
            "untouched: {text}"
        );
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n"),
            "{text}"
        );
        assert!(!text.contains("8bit") && !text.contains("binary"), "{text}");
        let m = MessageParser::default().parse(&out).unwrap();
        assert_eq!(m.body_text(0).unwrap().trim_end(), "\u{e9}t\u{e9}");
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let line = "\u{e9}".repeat(60);
        let raw = format!("Subject: x\r\n\r\n{line}\r\n");
        let out = to_seven_bit(raw.as_bytes()).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        assert_eq!(decoded_text(&out).trim_end(), line);
    }
}
