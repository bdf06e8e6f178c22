//! Trace information: the Received header (RFC 5321 §4.4, RFC 3848 protocol names), queue ids
//! and RFC 5322 §3.3 dates.

pub use facteur_model::calendar::rfc5322_date;
pub use facteur_model::queue_id;
use facteur_smtp_session::TlsInfo;
use std::net::IpAddr;
use std::time::SystemTime;

pub struct Trace<'a> {
    pub helo: &'a str,
    pub peer: IpAddr,
    pub hostname: &'a str,
    pub protocol: &'a str,
    pub queue_id: &'a str,
    pub tls: Option<&'a TlsInfo>,
    /// The recipient, named only when there is exactly one (others stay private).
    pub single_recipient: Option<String>,
    pub now: SystemTime,
    /// Name the client (EHLO, address). Submission leaves it out unless the admin wants it:
    /// RFC 5321 §4.4 asks for the `from` clause, but a user's home address is theirs to keep.
    pub reveal_client: bool,
}

/// The Received header, folded over several lines.
pub fn received(t: &Trace<'_>) -> String {
    let literal = match t.peer {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{v6}]"),
        },
    };
    let mut h = if t.reveal_client {
        format!("Received: from {} ({literal})\r\n", t.helo)
    } else {
        "Received:".to_string()
    };
    if let Some(tls) = t.tls {
        h.push_str(&format!(
            "\t(using {} with cipher {})\r\n",
            tls.version, tls.cipher
        ));
    }
    h.push_str(&format!(
        "\tby {} (facteur) with {} id {}\r\n",
        t.hostname, t.protocol, t.queue_id
    ));
    if let Some(rcpt) = &t.single_recipient {
        h.push_str(&format!("\tfor <{rcpt}>"));
    } else {
        h.push('\t');
    }
    h.push_str(&format!("; {}\r\n", rfc5322_date(t.now)));
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn received_header_names_tls_and_single_recipient() {
        let tls = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
        };
        let h = received(&Trace {
            helo: "client.example",
            peer: "::1".parse().unwrap(),
            hostname: "mx.example.com",
            protocol: "ESMTPS",
            queue_id: "ABC",
            tls: Some(&tls),
            single_recipient: Some("a@example.com".into()),
            now: UNIX_EPOCH,
            reveal_client: true,
        });
        assert_eq!(
            h,
            "Received: from client.example ([IPv6:::1])\r\n\t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n\
             \tby mx.example.com (facteur) with ESMTPS id ABC\r\n\tfor <a@example.com>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}

#[cfg(test)]
mod private {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn submission_received_header_keeps_the_client_private() {
        let h = received(&Trace {
            helo: "laptop.home",
            peer: "192.168.1.20".parse().unwrap(),
            hostname: "mx.example.com",
            protocol: "ESMTPSA",
            queue_id: "ABC",
            tls: None,
            single_recipient: None,
            now: UNIX_EPOCH,
            reveal_client: false,
        });
        assert_eq!(
            h,
            "Received:\tby mx.example.com (facteur) with ESMTPSA id ABC\r\n\t; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
