//! Parse-once metadata: the IMAP ENVELOPE fields (RFC 9051 §7.5.2) and the MIME structure
//! (RFC 2045, RFC 2046) with byte offsets, computed at delivery and stored as JSON so IMAP
//! FETCH ENVELOPE/BODYSTRUCTURE and SEARCH never reparse a message.
//!
//! Offsets are relative to the start of the blob. Header values are kept raw (unfolded), as
//! IMAP returns them undecoded.

use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde_json::{Value, json};

/// What is parsed once and stored with each copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// IMAP ENVELOPE fields (JSON object).
    pub envelope: String,
    /// MIME structure with offsets (JSON object).
    pub structure: String,
    /// Top-level header fields in order, `[[name, unfolded raw value], ...]` (JSON), for
    /// SEARCH HEADER and FETCH HEADER.FIELDS without reading the blob.
    pub headers: String,
    /// The Message-ID, for logs.
    pub message_id: Option<String>,
    /// Decoded text of every text part (nested messages included), for the search index.
    pub search_text: String,
    /// The header fields as SEARCH matches them, for the search index: each raw (unfolded)
    /// field, its decoded value, and the parsed addresses as `name <mailbox@host>`.
    pub search_headers: String,
}

/// Most header text kept per message for the search index.
const SEARCH_HEADERS_MAX: usize = 64 * 1024;

fn search_headers(m: &Message<'_>, envelope: &Value) -> String {
    let mut out = String::new();
    for (name, value) in m.headers_raw() {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&unfold(value.trim()));
        out.push('\n');
    }
    for h in m.headers() {
        let decoded: Vec<String> = match &h.value {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => continue,
        };
        for d in decoded {
            out.push_str(h.name.as_str());
            out.push_str(": ");
            out.push_str(&d);
            out.push('\n');
        }
    }
    let one = |a: &Value, out: &mut String| {
        out.push_str(&format!(
            "{} <{}@{}>\n",
            a["name"].as_str().unwrap_or(""),
            a["mailbox"].as_str().unwrap_or(""),
            a["host"].as_str().unwrap_or("")
        ));
    };
    for field in ["from", "sender", "reply_to", "to", "cc", "bcc"] {
        for a in envelope[field].as_array().into_iter().flatten() {
            match a["members"].as_array() {
                Some(members) => {
                    out.push_str(a["group"].as_str().unwrap_or(""));
                    out.push('\n');
                    members.iter().for_each(|m| one(m, &mut out));
                }
                None => one(a, &mut out),
            }
        }
    }
    if out.len() > SEARCH_HEADERS_MAX {
        let mut end = SEARCH_HEADERS_MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Most text kept per message for the search index.
const SEARCH_TEXT_MAX: usize = 1 << 20;

fn search_text(m: &Message<'_>, out: &mut String) {
    for part in &m.parts {
        if out.len() >= SEARCH_TEXT_MAX {
            return;
        }
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                let room = SEARCH_TEXT_MAX - out.len();
                let mut end = t.len().min(room);
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&t[..end]);
                out.push('\n');
            }
            PartType::Message(inner) => search_text(inner, out),
            _ => {}
        }
    }
}

/// Parses a message. One mail-parser cannot read still gets a minimal structure: delivery
/// never fails on content.
/// Only what a message that no mailbox keeps needs: its Message-ID. Everything else is empty.
pub fn parse_header_only(raw: &[u8]) -> Meta {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    let message_id = MessageParser::default()
        .parse_headers(&raw[..end])
        .and_then(|m| m.message_id().map(str::to_string));
    Meta {
        envelope: "{}".into(),
        structure: "{}".into(),
        headers: "[]".into(),
        message_id,
        search_text: String::new(),
        search_headers: String::new(),
    }
}

pub fn parse(raw: &[u8]) -> Meta {
    match MessageParser::default().parse(raw) {
        Some(message) => {
            let env = envelope(&message);
            Meta {
            search_headers: search_headers(&message, &env),
            envelope: env.to_string(),
            structure: structure(&message, 0, 0, raw).to_string(),
            headers: Value::Array(
                message.headers_raw().map(|(name, value)| json!([name, unfold(value.trim())])).collect(),
            )
            .to_string(),
            message_id: message.message_id().map(str::to_string),
            search_text: {
                let mut text = String::new();
                search_text(&message, &mut text);
                text
            },
        }
        }
        None => Meta {
            envelope: json!({}).to_string(),
            structure: json!({"type": "text", "subtype": "plain", "header_start": 0, "body_start": 0, "end": raw.len()})
                .to_string(),
            headers: "[]".into(),
            message_id: None,
            search_text: String::from_utf8_lossy(&raw[..raw.len().min(SEARCH_TEXT_MAX)]).into_owned(),
            search_headers: String::new(),
        },
    }
}

fn envelope(m: &Message<'_>) -> Value {
    let raw = |name: HeaderName<'static>| m.header_raw(name).map(|v| unfold(v.trim()));
    json!({
        "date": raw(HeaderName::Date),
        "subject": raw(HeaderName::Subject),
        "from": addresses(m.from()),
        "sender": addresses(m.sender()),
        "reply_to": addresses(m.reply_to()),
        "to": addresses(m.to()),
        "cc": addresses(m.cc()),
        "bcc": addresses(m.bcc()),
        "in_reply_to": raw(HeaderName::InReplyTo),
        "message_id": raw(HeaderName::MessageId),
    })
}

fn unfold(v: &str) -> String {
    v.replace("\r\n", "").replace('\n', "")
}

/// Address lists as `[{name, mailbox, host}]`; groups as `{group, members}`.
fn addresses(a: Option<&Address<'_>>) -> Value {
    let one = |addr: &mail_parser::Addr<'_>| {
        let (mailbox, host) = addr
            .address
            .as_deref()
            .map(|a| a.rsplit_once('@').unwrap_or((a, "")))
            .unwrap_or(("", ""));
        // An obsolete source route (`<@route:user@domain>`, RFC 5322 §4.4) is the envelope's
        // adl field, apart from the mailbox.
        let (route, mailbox) = match mailbox.strip_prefix('@').and_then(|m| m.split_once(':')) {
            Some((route, mailbox)) => (Some(format!("@{route}")), mailbox),
            None => (None, mailbox),
        };
        json!({"name": addr.name.as_deref(), "route": route, "mailbox": mailbox, "host": host})
    };
    match a {
        None => Value::Null,
        Some(Address::List(list)) => Value::Array(list.iter().map(one).collect()),
        Some(Address::Group(groups)) => Value::Array(
            groups
                .iter()
                // A comment inside a group (`group: (foo) ;`) is not a member.
                .map(|g| json!({"group": g.name.as_deref(), "members": g.addresses.iter().filter(|a| a.address.is_some()).map(one).collect::<Vec<_>>()}))
                .collect(),
        ),
    }
}

fn structure(m: &Message<'_>, part_id: u32, base: usize, raw: &[u8]) -> Value {
    let Some(part) = m.part(part_id) else {
        return Value::Null;
    };
    let mut node = part_fields(part, base, raw);
    match &part.body {
        PartType::Multipart(children) => {
            let kids: Vec<Value> = children
                .iter()
                .map(|&c| structure(m, c, base, raw))
                .collect();
            node["parts"] = Value::Array(kids);
        }
        PartType::Message(inner) => {
            // mail-parser gives a nested message's offsets from the start of the outer
            // message already (checked by `nested_message_offsets_are_absolute`).
            node["message"] = json!({
                "envelope": envelope(inner),
                "structure": structure(inner, 0, base, raw),
            });
            // A part of a multipart/digest without Content-Type is message/rfc822 (RFC 2046
            // §5.1.5); mail-parser parses it as a message but reports the text/plain default.
            if node["type"] != "message" {
                node["type"] = json!("message");
                node["subtype"] = json!("rfc822");
            }
        }
        _ => {}
    }
    node
}

fn part_fields(part: &MessagePart<'_>, base: usize, raw: &[u8]) -> Value {
    let ct = part.content_type();
    let (ctype, subtype) = match ct {
        Some(ct) => (
            ct.ctype().to_lowercase(),
            ct.subtype().map(str::to_lowercase),
        ),
        None => ("text".into(), Some("plain".into())),
    };
    let params = |ct: Option<&mail_parser::ContentType<'_>>| -> Vec<(String, String)> {
        ct.and_then(|c| c.attributes())
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|a| (a.name.to_string(), a.value.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let body = raw
        .get(base + part.offset_body as usize..base + part.offset_end as usize)
        .unwrap_or(&[]);
    let disposition = part.content_disposition();
    let language = match part.content_language() {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    };
    json!({
        "type": ctype,
        "subtype": subtype.unwrap_or_else(|| "plain".into()),
        "params": params(ct),
        "id": part.content_id(),
        "description": part.headers.iter().find(|h| h.name == HeaderName::ContentDescription).and_then(|h| h.value.as_text()),
        "encoding": part.content_transfer_encoding().map(str::to_lowercase),
        "disposition": disposition.map(|d| d.ctype().to_lowercase()),
        "disposition_params": params(disposition),
        "language": language,
        "location": part.content_location(),
        "header_start": base + part.offset_header as usize,
        "body_start": base + part.offset_body as usize,
        "end": base + part.offset_end as usize,
        "lines": body.iter().filter(|&&b| b == b'\n').count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_multipart_structure_has_offsets() {
        let raw = b"From: Alice <alice@example.com>\r\nTo: bob@example.com, Carol <carol@example.org>\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <1@example.com>\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\nAAAA\r\n--b1--\r\n";
        let meta = parse(raw);
        let (env, structure) = (meta.envelope, meta.structure);
        let headers: Value = serde_json::from_str(&meta.headers).unwrap();
        assert_eq!(headers[2], json!(["Subject", "=?utf-8?q?caf=C3=A9?="]));
        assert_eq!(headers.as_array().unwrap().len(), 5);
        assert_eq!(meta.message_id.as_deref(), Some("1@example.com"));
        let env: Value = serde_json::from_str(&env).unwrap();
        assert_eq!(env["subject"], "=?utf-8?q?caf=C3=A9?=");
        assert_eq!(env["to"][1]["mailbox"], "carol");
        assert_eq!(env["from"][0]["name"], "Alice");
        let s: Value = serde_json::from_str(&structure).unwrap();
        assert_eq!(s["type"], "multipart");
        assert_eq!(s["subtype"], "mixed");
        let text = &s["parts"][0];
        assert_eq!(text["params"][0], json!(["charset", "utf-8"]));
        let (start, end) = (
            text["body_start"].as_u64().unwrap() as usize,
            text["end"].as_u64().unwrap() as usize,
        );
        assert!(
            std::str::from_utf8(&raw[start..end])
                .unwrap()
                .starts_with("hello\r\nworld")
        );
        assert_eq!(s["parts"][1]["disposition"], "attachment");
        assert_eq!(s["parts"][1]["encoding"], "base64");
    }

    #[test]
    fn nested_message_offsets_are_absolute() {
        let raw = "Subject: x\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n\
Content-Type: message/rfc822\r\n\r\nFrom: Carol <carol@example.net>\r\nSubject: Menu\r\n\r\n\
Soup\r\nof the day.\r\n--o--\r\n";
        let s: Value = serde_json::from_str(&parse(raw.as_bytes()).structure).unwrap();
        let inner = &s["parts"][0]["message"]["structure"];
        let at = |k: &str| inner[k].as_u64().unwrap() as usize;
        assert!(raw[at("header_start")..].starts_with("From: Carol"));
        assert_eq!(&raw[at("body_start")..at("end")], "Soup\r\nof the day.");
        assert_eq!(inner["lines"], 1);
    }
}
