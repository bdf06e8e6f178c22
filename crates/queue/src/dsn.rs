//! Delivery status notifications (RFC 3464, in the RFC 6522 multipart/report container): the
//! message a sender gets when facteur gives up on (or is still trying) one of its recipients.
//! A human part that explains the remote reply in plain words, the machine-readable
//! `message/delivery-status`, and the original message's header (or all of it with RET=FULL,
//! RFC 3461 §4.3). Sent from the null reverse path, so a DSN is never bounced (RFC 5321 §6.1).

use crate::explain;

/// What happened to one recipient.
pub struct RecipientReport<'a> {
    pub address: &'a str,
    pub orcpt: Option<&'a str>,
    /// `failed` or `delayed` (RFC 3464 §2.3.3).
    pub action: &'a str,
    /// The remote server (`dns; mx.example.net`), when one answered.
    pub remote_mta: Option<&'a str>,
    /// The remote reply or what went wrong.
    pub diagnostic: &'a str,
}

pub struct Report<'a> {
    pub hostname: &'a str,
    /// The original sender, who gets the report.
    pub to: &'a str,
    pub queue_id: &'a str,
    pub envid: Option<&'a str>,
    pub arrival: &'a str,
    pub date: &'a str,
    pub message_id: &'a str,
    pub recipients: &'a [RecipientReport<'a>],
    /// The original message (trace headers included).
    pub original: &'a [u8],
    /// RET=FULL: return the whole message; otherwise only its header.
    pub full: bool,
}

/// The enhanced status to report (RFC 3464 §2.3.4): from the reply when it has one, else the
/// class of the action with "other".
fn status_of(e: &explain::Explanation, action: &str) -> String {
    match e.status {
        // RFC 3464 §2.3.4: a failed recipient's status is of class 5 even when the last
        // attempt was a temporary failure (the message expired).
        Some((4, s, d)) if action == "failed" => format!("5.{s}.{d}"),
        Some((c, s, d)) => format!("{c}.{s}.{d}"),
        None if action == "delayed" => "4.0.0".into(),
        None => "5.0.0".into(),
    }
}

/// The whole DSN message, CRLF line endings.
pub fn build(r: &Report<'_>) -> Vec<u8> {
    let boundary = format!("{}/{}", r.queue_id, r.hostname);
    let delayed = r.recipients.iter().all(|x| x.action == "delayed");
    let subject = if delayed {
        "Delayed Mail (still being retried)"
    } else {
        "Undelivered Mail Returned to Sender"
    };
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: {date}\r\nMessage-ID: <{id}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n\
         This is a MIME-encapsulated message.\r\n\r\n--{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        host = r.hostname,
        to = r.to,
        date = r.date,
        id = r.message_id,
    ));
    if delayed {
        out.push_str(&format!(
            "This is the mail system at {}.\r\n\r\nYour message could not be delivered yet to the \
             recipients below. It stays in the queue and will be tried again; you do not need to \
             send it again. If it still cannot be delivered, you will get another message.\r\n\r\n",
            r.hostname
        ));
    } else {
        out.push_str(&format!(
            "This is the mail system at {}.\r\n\r\nYour message could not be delivered to the \
             recipients below. It was not delivered to them and will not be tried again.\r\n\r\n",
            r.hostname
        ));
    }
    let explained: Vec<explain::Explanation> = r
        .recipients
        .iter()
        .map(|x| explain::explain(x.diagnostic))
        .collect();
    for (x, e) in r.recipients.iter().zip(&explained) {
        out.push_str(&format!("<{}>:\r\n", x.address));
        if let Some(mta) = x.remote_mta {
            out.push_str(&format!(
                "    The server {mta} answered: {}\r\n",
                x.diagnostic
            ));
        } else {
            out.push_str(&format!("    {}\r\n", x.diagnostic));
        }
        out.push_str(&format!("    What it means: {}\r\n", e.summary));
        if let Some(fix) = &e.fix {
            out.push_str(&format!("    What to do: {fix}\r\n"));
        }
        out.push_str("\r\n");
    }
    // RFC 3464 §2.2: per-message fields, then a block per recipient.
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {}\r\n",
        r.hostname
    ));
    if let Some(envid) = r.envid {
        out.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    out.push_str(&format!(
        "X-Facteur-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        r.queue_id, r.arrival
    ));
    for (x, e) in r.recipients.iter().zip(&explained) {
        out.push_str("\r\n");
        if let Some(o) = x.orcpt {
            out.push_str(&format!("Original-Recipient: {o}\r\n"));
        }
        out.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            x.address,
            x.action,
            status_of(e, x.action)
        ));
        if let Some(mta) = x.remote_mta {
            // RFC 3464 §2.3.5: `dns; NAME`; the attempt log says `NAME [ADDRESS]:PORT`.
            let name = mta.split(" [").next().unwrap_or(mta);
            out.push_str(&format!("Remote-MTA: dns; {name}\r\n"));
        }
        let single_line = x.diagnostic.replace(['\r', '\n'], " ");
        if single_line
            .get(..3)
            .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
        {
            out.push_str(&format!("Diagnostic-Code: smtp; {single_line}\r\n"));
        } else {
            out.push_str(&format!("Diagnostic-Code: X-facteur; {single_line}\r\n"));
        }
    }
    let original = if r.full {
        r.original
    } else {
        let end = r
            .original
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(r.original.len(), |i| i + 2);
        &r.original[..end]
    };
    let kind = if r.full {
        "message/rfc822"
    } else {
        "text/rfc822-headers"
    };
    out.push_str(&format!("\r\n--{boundary}\r\nContent-Type: {kind}\r\n\r\n"));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(original);
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}
