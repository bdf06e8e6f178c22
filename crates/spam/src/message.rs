//! What the rules and the tokenizer read of a message, taken once from mail-parser's parse:
//! header fields, the decoded text and HTML bodies (RFC 2045 §6 transfer encodings and the
//! charsets of RFC 2046 §4.1.2, both decoded by mail-parser), the MIME structure and the
//! attachments. Every list and text is bounded, so the work is too.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{Encoding, Message, MessageParser, MimeHeaders, PartType};

use crate::html::{self, Html};
use crate::text::{Url, find_urls, truncate};

/// The most decoded plain text kept from a message, all parts together, in bytes.
pub(crate) const MAX_TEXT: usize = 256 * 1024;
/// The most MIME parts looked at.
const MAX_PARTS: usize = 256;
/// How deep attached messages (`message/rfc822`) are followed for their attachments.
const MAX_NESTING: usize = 3;
/// The most top-level header fields kept.
const MAX_HEADERS: usize = 256;
/// The most URLs kept from the plain text.
const MAX_TEXT_URLS: usize = 500;
/// The most file names read from one archive.
const MAX_ARCHIVE_NAMES: usize = 1000;

/// An attachment: a part that is not one of the bodies shown to the reader.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attachment {
    /// The file name (RFC 2183 `filename`, or the `name` of Content-Type), lower case.
    pub name: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// For a ZIP archive, the names of the files inside, lower case.
    pub archive_names: Vec<String>,
    /// An HTML page with a password field or a form, or an SVG image with a script: what
    /// phishing attachments carry (a login form that works offline, a redirect).
    pub active_content: bool,
}

/// A leaf MIME part (not multipart).
#[derive(Debug, Clone, Default)]
pub(crate) struct Part {
    /// `type/subtype`, lower case; `text/plain` when absent (RFC 2045 §5.2).
    pub content_type: String,
    /// The `charset` parameter, lower case.
    pub charset: Option<String>,
    /// Whether the part is one of the bodies shown to the reader.
    pub is_body: bool,
    /// A text part sent in base64 whose decoded text is plain 7-bit ASCII.
    pub base64_ascii_text: bool,
}

/// What was read of a message.
#[derive(Debug, Default)]
pub(crate) struct Content<'a> {
    /// The message as text, invalid UTF-8 replaced (borrowed when valid).
    pub raw_text: Cow<'a, str>,
    /// Whether mail-parser found a header section at all.
    pub parsed: bool,
    /// Top-level header fields: name as written, raw value (unfolding left to the reader).
    pub headers: Vec<(String, String)>,
    /// The Subject, RFC 2047 encoded words decoded.
    pub subject: Option<String>,
    /// The display name of the first From address.
    pub from_name: Option<String>,
    /// The first From address, lower case.
    pub from_address: Option<String>,
    /// The Reply-To addresses, lower case.
    pub reply_to: Vec<String>,
    /// The Date field as a Unix time, when it could be read.
    pub date: Option<i64>,
    /// X-Mailer, or User-Agent when there is no X-Mailer.
    pub mailer: Option<String>,
    /// The decoded text/plain bodies, at most [`MAX_TEXT`] bytes together.
    pub plain: Vec<String>,
    /// The HTML bodies, read.
    pub html: Vec<Html>,
    /// The attachments, those of attached messages included.
    pub attachments: Vec<Attachment>,
    /// The leaf parts of the top-level message.
    pub parts: Vec<Part>,
    /// A multipart part without a usable boundary (RFC 2046 §5.1.1: the boundary parameter
    /// is required and must occur in the body).
    pub boundary_missing: bool,
    /// A multipart part whose close delimiter (`--boundary--`, RFC 2046 §5.1.1) is absent.
    pub boundary_unterminated: bool,
    /// The URLs of the plain text bodies.
    pub text_urls: Vec<Url>,
}

impl<'a> Content<'a> {
    /// Reads a message. Never fails: what cannot be read is left empty.
    pub fn read(raw: &'a [u8]) -> Self {
        let mut content = Content {
            raw_text: String::from_utf8_lossy(raw),
            ..Content::default()
        };
        // mail-parser documents that it never panics; a panic on some input would still be
        // a bug of the parser that must not take the server down with it, hence the catch.
        let parsed = catch_unwind(AssertUnwindSafe(|| MessageParser::new().parse(raw)));
        if let Ok(Some(message)) = parsed {
            content.parsed = true;
            content.read_headers(&message);
            content.read_parts(&message);
        }
        content
    }

    /// The raw value of the first top-level header field of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first top-level header field of that name, unfolded (RFC 5322 §2.2.3) and trimmed.
    pub fn header_unfolded(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| v.split(['\r', '\n']).collect::<String>().trim().to_string())
    }

    /// All the visible text: the plain bodies, then the text of the HTML bodies.
    pub fn body_texts(&self) -> impl Iterator<Item = &str> {
        self.plain
            .iter()
            .map(String::as_str)
            .chain(self.html.iter().map(|h| h.visible.as_str()))
    }

    /// Every URL of the message: links, images, and those written in the plain text.
    pub fn urls(&self) -> impl Iterator<Item = Url> + '_ {
        let html = self.html.iter().flat_map(|h| {
            h.links
                .iter()
                .map(|l| l.href.as_str())
                .chain(h.images.iter().map(String::as_str))
                .filter_map(crate::text::parse_url)
        });
        self.text_urls.iter().cloned().chain(html)
    }

    fn read_headers(&mut self, message: &Message<'_>) {
        self.headers = message
            .headers_raw()
            .take(MAX_HEADERS)
            .map(|(n, v)| (n.to_string(), truncate(v, 8192).to_string()))
            .collect();
        self.subject = message.subject().map(|s| truncate(s, 4096).to_string());
        if let Some(from) = message.from().and_then(|a| a.first()) {
            self.from_name = from
                .name
                .as_ref()
                .map(|n| truncate(n, 1024).trim().to_string())
                .filter(|n| !n.is_empty());
            self.from_address = from.address.as_ref().map(|a| a.to_lowercase());
        }
        if let Some(reply_to) = message.reply_to() {
            self.reply_to = reply_to
                .iter()
                .take(16)
                .filter_map(|a| a.address.as_ref().map(|a| a.to_lowercase()))
                .collect();
        }
        self.date = message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp());
        self.mailer = self
            .header_unfolded("X-Mailer")
            .or_else(|| self.header_unfolded("User-Agent"))
            .map(|m| truncate(&m, 256).to_string());
    }

    fn read_parts(&mut self, message: &Message<'_>) {
        let mut text_len = 0;
        for (id, part) in message.parts.iter().enumerate().take(MAX_PARTS) {
            let id = id as u32;
            let is_body = message.text_body.contains(&id) || message.html_body.contains(&id);
            let content_type = content_type(part);
            match &part.body {
                PartType::Multipart(_) => {
                    let boundary = part
                        .content_type()
                        .and_then(|ct| ct.attribute("boundary"))
                        .unwrap_or("");
                    let close = format!("--{boundary}--");
                    if !boundary.is_empty() && !self.raw_text.contains(close.as_str()) {
                        self.boundary_unterminated = true;
                    }
                    continue;
                }
                _ if content_type.starts_with("multipart/") => {
                    // mail-parser reads a multipart whose boundary it cannot find as text.
                    self.boundary_missing = true;
                }
                _ => {}
            }
            let charset = part
                .content_type()
                .and_then(|ct| ct.attribute("charset"))
                .map(str::to_ascii_lowercase);
            let mut info = Part {
                content_type: content_type.clone(),
                charset,
                is_body,
                base64_ascii_text: false,
            };
            match &part.body {
                PartType::Text(text) if is_body => {
                    info.base64_ascii_text = part.encoding == Encoding::Base64 && text.is_ascii();
                    if text_len < MAX_TEXT {
                        let kept = truncate(text, MAX_TEXT - text_len);
                        text_len += kept.len();
                        find_urls(kept, MAX_TEXT_URLS, &mut self.text_urls);
                        self.plain.push(kept.to_string());
                    }
                }
                PartType::Html(text) if is_body => {
                    info.base64_ascii_text = part.encoding == Encoding::Base64 && text.is_ascii();
                    if self.html.len() < 8 {
                        self.html.push(html::analyze(text));
                    }
                }
                PartType::Message(nested) => {
                    self.attachments
                        .push(attachment(part, content_type.clone()));
                    self.nested_attachments(nested, 1);
                }
                _ => {
                    self.attachments
                        .push(attachment(part, content_type.clone()));
                }
            }
            self.parts.push(info);
        }
    }

    fn nested_attachments(&mut self, message: &Message<'_>, depth: usize) {
        if depth > MAX_NESTING {
            return;
        }
        for (id, part) in message.parts.iter().enumerate().take(MAX_PARTS) {
            let id = id as u32;
            if message.text_body.contains(&id) || message.html_body.contains(&id) {
                continue;
            }
            match &part.body {
                PartType::Multipart(_) => {}
                PartType::Message(nested) => {
                    self.attachments.push(attachment(part, content_type(part)));
                    self.nested_attachments(nested, depth + 1);
                }
                _ => self.attachments.push(attachment(part, content_type(part))),
            }
            if self.attachments.len() >= MAX_PARTS {
                return;
            }
        }
    }
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        },
        None => "text/plain".to_string(),
    }
}

fn attachment(part: &mail_parser::MessagePart<'_>, content_type: String) -> Attachment {
    let name = part
        .attachment_name()
        .map(|n| truncate(n.trim(), 1024).to_lowercase())
        .unwrap_or_default();
    let data = part.contents();
    let is_zip = name.ends_with(".zip")
        || matches!(
            content_type.as_str(),
            "application/zip" | "application/x-zip-compressed" | "application/x-zip"
        );
    let is_html = content_type == "text/html"
        || [".htm", ".html", ".shtml", ".xhtml"]
            .iter()
            .any(|e| name.ends_with(e));
    let is_svg = content_type == "image/svg+xml" || name.ends_with(".svg");
    Attachment {
        active_content: (is_html || is_svg) && has_active_content(data, is_svg),
        archive_names: if is_zip { zip_names(data) } else { Vec::new() },
        name,
        content_type,
    }
}

/// Whether an HTML or SVG attachment holds a password field or a form (HTML), or a script
/// (SVG: the image format allows `<script>` and event attributes, SVG 2 §15).
fn has_active_content(data: &[u8], is_svg: bool) -> bool {
    let head = &data[..data.len().min(256 * 1024)];
    let text: String = String::from_utf8_lossy(head)
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if is_svg {
        [
            "<script",
            "javascript:",
            "onload=",
            "onerror=",
            "<foreignobject",
        ]
        .iter()
        .any(|p| text.contains(p))
    } else {
        [
            "type=\"password\"",
            "type='password'",
            "type=password",
            "<form",
        ]
        .iter()
        .any(|p| text.contains(p))
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]) as usize)
}

fn u32_at(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The file names of a ZIP archive, from its central directory (PKWARE APPNOTE.TXT 6.3.10,
/// §4.3.12 central directory header and §4.3.16 end of central directory record). Nothing is
/// decompressed; a damaged archive gives the names read before the damage.
pub(crate) fn zip_names(data: &[u8]) -> Vec<String> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const CENTRAL: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    let mut names = Vec::new();
    // The end record is 22 bytes plus a comment of at most 65,535 bytes (§4.3.16).
    let search_from = data.len().saturating_sub(22 + 65_535);
    let Some(eocd) = data[search_from..]
        .windows(4)
        .rposition(|w| w == EOCD)
        .map(|p| search_from + p)
    else {
        return names;
    };
    let (Some(count), Some(mut at)) = (u16_at(data, eocd + 10), u32_at(data, eocd + 16)) else {
        return names;
    };
    for _ in 0..count.min(MAX_ARCHIVE_NAMES) {
        if data.get(at..at.saturating_add(4)) != Some(&CENTRAL[..]) {
            break;
        }
        let (Some(name_len), Some(extra_len), Some(comment_len)) = (
            u16_at(data, at + 28),
            u16_at(data, at + 30),
            u16_at(data, at + 32),
        ) else {
            break;
        };
        let start = at.saturating_add(46);
        let Some(name) = data.get(start..start.saturating_add(name_len)) else {
            break;
        };
        names.push(String::from_utf8_lossy(name).to_lowercase());
        at = start
            .saturating_add(name_len)
            .saturating_add(extra_len)
            .saturating_add(comment_len);
    }
    names
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored (uncompressed) ZIP archive of the given files, as APPNOTE.TXT §4.3 lays it out.
    pub(crate) fn make_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in files {
            let offset = out.len() as u32;
            let mut local = vec![0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            local.extend_from_slice(&[0; 4]); // CRC-32, not checked here
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(name.len() as u16).to_le_bytes());
            local.extend_from_slice(&[0, 0]);
            local.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&local);
            out.extend_from_slice(data);
            let mut c = vec![0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            c.extend_from_slice(&[0; 4]);
            c.extend_from_slice(&(data.len() as u32).to_le_bytes());
            c.extend_from_slice(&(data.len() as u32).to_le_bytes());
            c.extend_from_slice(&(name.len() as u16).to_le_bytes());
            c.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            c.extend_from_slice(&offset.to_le_bytes());
            c.extend_from_slice(name.as_bytes());
            central.extend_from_slice(&c);
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn zip_central_directory_names() {
        let zip = make_zip(&[("Facture.PDF.exe", b"MZ"), ("lisez-moi.txt", b"hello")]);
        assert_eq!(zip_names(&zip), ["facture.pdf.exe", "lisez-moi.txt"]);
        // Damaged archives give what could be read, and never panic.
        for cut in 0..zip.len() {
            let _ = zip_names(&zip[..cut]);
        }
        assert!(zip_names(b"PK\x05\x06").is_empty());
        assert!(zip_names(b"").is_empty());
    }

    #[test]
    fn reads_headers_bodies_and_attachments() {
        let raw = b"From: =?utf-8?q?Caf=C3=A9?= <Bob@Example.COM>\r\n\
            Reply-To: other@example.net\r\n\
            Subject: =?utf-8?b?w6l0w6k=?=\r\n\
            Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n\
            X-Mailer: Mailer 1.0\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
            \r\n\
            --b1\r\n\
            Content-Type: text/plain; charset=iso-8859-1\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\
            \r\n\
            Voil=E0 http://www.example.org/x\r\n\
            --b1\r\n\
            Content-Type: application/octet-stream; name=\"a.exe\"\r\n\
            Content-Disposition: attachment; filename=\"A.EXE\"\r\n\
            Content-Transfer-Encoding: base64\r\n\
            \r\n\
            TVo=\r\n\
            --b1--\r\n";
        let c = Content::read(raw);
        assert!(c.parsed);
        assert_eq!(c.subject.as_deref(), Some("été"));
        assert_eq!(c.from_name.as_deref(), Some("Café"));
        assert_eq!(c.from_address.as_deref(), Some("bob@example.com"));
        assert_eq!(c.reply_to, ["other@example.net"]);
        assert_eq!(c.date, Some(1_748_851_200));
        assert_eq!(c.mailer.as_deref(), Some("Mailer 1.0"));
        assert_eq!(c.plain.len(), 1);
        assert!(c.plain[0].starts_with("Voilà"));
        assert_eq!(c.text_urls[0].host, "www.example.org");
        assert_eq!(c.attachments.len(), 1);
        assert_eq!(c.attachments[0].name, "a.exe");
        assert!(!c.boundary_missing && !c.boundary_unterminated);
    }
}
