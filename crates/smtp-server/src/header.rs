//! Submission's look at the header section (RFC 6409 §8): the From: addresses for the sender
//! rules, and the fields an MSA adds when the client left them out (Date, RFC 6409 §8.3;
//! Message-ID, §8.3; From, §8.2 when absent). The header section is held in memory until its
//! end, bounded by `max_header_size`; the body streams straight to the blob.

use mail_parser::{Address, HeaderName, MessageParser};

/// Collects the header section from the first body pieces.
#[derive(Debug)]
pub struct HeaderScan {
    buf: Vec<u8>,
    max: usize,
    /// Past `max` without an end: refuse the message.
    pub too_large: bool,
}

/// The header section, split from what follows it.
#[derive(Debug)]
pub struct Split {
    /// Header fields, each line with its CRLF, without the empty line.
    pub header: Vec<u8>,
    /// The empty line and the body (may be empty for a message without a body).
    pub rest: Vec<u8>,
}

impl HeaderScan {
    pub fn new(max: usize) -> HeaderScan {
        HeaderScan {
            buf: Vec::new(),
            max,
            too_large: false,
        }
    }

    /// Takes the next piece; returns the split once the empty line ending the header section
    /// has arrived (RFC 5322 §2.1).
    pub fn push(&mut self, bytes: &[u8]) -> Option<Split> {
        if self.too_large {
            return None;
        }
        let start = self.buf.len().saturating_sub(3);
        self.buf.extend_from_slice(bytes);
        if self.buf.starts_with(b"\r\n") {
            return Some(self.split_at(0));
        }
        if let Some(i) = find(&self.buf[start..], b"\r\n\r\n") {
            return Some(self.split_at(start + i + 2));
        }
        if self.buf.len() > self.max {
            self.too_large = true;
            self.buf = Vec::new();
        }
        None
    }

    /// The message ended inside its header section (no body): all of it is header.
    pub fn finish(&mut self) -> Option<Split> {
        if self.too_large {
            return None;
        }
        let mut header = std::mem::take(&mut self.buf);
        if !header.is_empty() && !header.ends_with(b"\r\n") {
            header.extend_from_slice(b"\r\n");
        }
        Some(Split {
            header,
            rest: Vec::new(),
        })
    }

    fn split_at(&mut self, at: usize) -> Split {
        let rest = self.buf.split_off(at);
        Split {
            header: std::mem::take(&mut self.buf),
            rest,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the header section says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Every address of every From: field (groups included).
    pub from: Vec<String>,
    pub has_from: bool,
    pub has_date: bool,
    pub has_message_id: bool,
}

pub fn inspect(header: &[u8]) -> Info {
    let mut info = Info::default();
    // The parser wants a complete message: the header section and an empty body.
    let mut raw = header.to_vec();
    raw.extend_from_slice(b"\r\n");
    let Some(message) = MessageParser::default().parse_headers(&raw[..]) else {
        return info;
    };
    for h in message.headers() {
        match h.name {
            HeaderName::From => {
                info.has_from = true;
                if let Some(a) = h.value.as_address() {
                    collect(a, &mut info.from);
                }
            }
            HeaderName::Date => info.has_date = true,
            HeaderName::MessageId => info.has_message_id = true,
            _ => {}
        }
    }
    info
}

fn collect(a: &Address<'_>, out: &mut Vec<String>) {
    let mut push = |addr: &mail_parser::Addr<'_>| {
        if let Some(x) = addr.address.as_deref() {
            out.push(x.to_string());
        }
    };
    match a {
        Address::List(list) => list.iter().for_each(&mut push),
        Address::Group(groups) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .for_each(&mut push),
    }
}

/// The fields to add after the client's header section (RFC 6409 §8).
pub fn additions(info: &Info, account: &str, message_id: &str, date: &str) -> String {
    let mut out = String::new();
    if !info.has_from {
        out.push_str(&format!("From: <{account}>\r\n"));
    }
    if !info.has_date {
        out.push_str(&format!("Date: {date}\r\n"));
    }
    if !info.has_message_id {
        out.push_str(&format!("Message-ID: <{message_id}>\r\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_empty_line_across_pieces() {
        let mut s = HeaderScan::new(1000);
        assert!(s.push(b"From: a@b.c\r\nSubject: x\r").is_none());
        let split = s.push(b"\n\r\nbody\r\n").unwrap();
        assert_eq!(split.header, b"From: a@b.c\r\nSubject: x\r\n");
        assert_eq!(split.rest, b"\r\nbody\r\n");
        let mut s = HeaderScan::new(1000);
        let split = s.push(b"\r\nno header\r\n").unwrap();
        assert_eq!((split.header.len(), split.rest.len()), (0, 13));
        let mut s = HeaderScan::new(1000);
        assert!(s.push(b"Subject: only a header").is_none());
        assert_eq!(s.finish().unwrap().header, b"Subject: only a header\r\n");
        let mut s = HeaderScan::new(10);
        assert!(s.push(b"Subject: far too long\r\n").is_none());
        assert!(s.too_large && s.finish().is_none());
    }

    #[test]
    fn finds_from_addresses_and_missing_fields() {
        let info = inspect(
            b"From: \"A\" <alice@example.com>, bob@example.com\r\nFrom: Team: carol@example.com;\r\nSubject: x\r\n",
        );
        assert_eq!(
            info.from,
            ["alice@example.com", "bob@example.com", "carol@example.com"]
        );
        assert!(info.has_from && !info.has_date && !info.has_message_id);
        let add = additions(&info, "alice@example.com", "Q1@mx", "Mon, 1 Jan 2024");
        assert_eq!(add, "Date: Mon, 1 Jan 2024\r\nMessage-ID: <Q1@mx>\r\n");
        let info = inspect(b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n");
        assert!(!info.has_from && info.has_date && info.has_message_id);
        assert_eq!(additions(&info, "a@b.c", "i", "d"), "From: <a@b.c>\r\n");
    }
}
