//! Every reply facteur's SMTP and LMTP sessions send, named once (RFC 5321 §4.2 codes,
//! RFC 3463 enhanced status codes, RFC 2034 for their use in replies).

use std::fmt::Write;

/// An RFC 3463 enhanced status code `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u8, pub u16, pub u16);

/// A reply: code, optional enhanced status, one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: Option<Status>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: Option<Status>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Appends the wire form: `250-first`, ..., `250 last`, each line with the status code.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let _ = write!(s, "{}{sep}", self.code);
            if let Some(Status(c, sub, det)) = self.status {
                let _ = write!(s, "{c}.{sub}.{det} ");
            }
            s.push_str(line);
            s.push_str("\r\n");
        }
        out.extend_from_slice(s.as_bytes());
    }

    /// The reply as one line of text, for logs.
    pub fn to_log(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out)
            .trim_end()
            .replace("\r\n", " / ")
    }
}

const fn st(c: u8, s: u16, d: u16) -> Option<Status> {
    Some(Status(c, s, d))
}

// RFC 5321 §4.2: 220 greeting, no enhanced code (RFC 2034 §3 applies it to later replies).
pub fn greeting(host: &str, lmtp: bool) -> Reply {
    let kind = if lmtp { "LMTP" } else { "ESMTP" };
    Reply::new(220, None, format!("{host} {kind} facteur"))
}

pub fn ehlo(host: &str, client: &str, keywords: Vec<String>) -> Reply {
    let mut lines = vec![format!("{host} greets {client}")];
    lines.extend(keywords);
    Reply {
        code: 250,
        status: None,
        lines,
    }
}

pub fn helo(host: &str) -> Reply {
    Reply::new(250, None, host.to_string())
}

pub fn ok() -> Reply {
    Reply::new(250, st(2, 0, 0), "Ok")
}
pub fn sender_ok() -> Reply {
    Reply::new(250, st(2, 1, 0), "Sender ok")
}
pub fn recipient_ok() -> Reply {
    Reply::new(250, st(2, 1, 5), "Recipient ok")
}
pub fn start_data() -> Reply {
    Reply::new(354, None, "End data with <CR><LF>.<CR><LF>")
}
pub fn chunk_ok(octets: u64) -> Reply {
    Reply::new(250, st(2, 0, 0), format!("{octets} octets received"))
}
pub fn queued(id: &str) -> Reply {
    Reply::new(250, st(2, 0, 0), format!("Ok: queued as {id}"))
}
/// LMTP, RFC 2033 §4.2: one reply per recipient after the data.
pub fn delivered(recipient: &str, id: &str) -> Reply {
    Reply::new(250, st(2, 1, 5), format!("<{recipient}> delivered as {id}"))
}
pub fn bye() -> Reply {
    Reply::new(221, st(2, 0, 0), "Bye")
}
pub fn reset() -> Reply {
    Reply::new(250, st(2, 0, 0), "Reset")
}
// RFC 5321 §3.5.3: 252 when the server will not verify but will accept.
pub fn cannot_vrfy() -> Reply {
    Reply::new(
        252,
        st(2, 1, 5),
        "Cannot VRFY user, but will accept message and attempt delivery",
    )
}
pub fn help() -> Reply {
    Reply::new(
        214,
        st(2, 0, 0),
        "Commands: HELO EHLO LHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS; see RFC 5321",
    )
}
pub fn ready_for_tls() -> Reply {
    Reply::new(220, st(2, 0, 0), "Ready to start TLS")
}
pub fn tls_unavailable() -> Reply {
    Reply::new(454, st(4, 7, 0), "TLS not available")
}
pub fn tls_already_active() -> Reply {
    Reply::new(503, st(5, 5, 1), "TLS already active")
}

// Client mistakes.
pub fn unrecognized() -> Reply {
    Reply::new(500, st(5, 5, 1), "Command not recognized")
}
pub fn not_implemented(verb: &str) -> Reply {
    Reply::new(502, st(5, 5, 1), format!("{verb} not implemented"))
}
pub fn auth_not_available() -> Reply {
    Reply::new(
        502,
        st(5, 5, 1),
        "AUTH is not available on this port; use submission (587 or 465)",
    )
}
// RFC 4954 §4 and §6: the AUTH exchange.
/// A SASL challenge, base64 (RFC 4954 §4: `334` carries no enhanced status code).
pub fn auth_challenge(base64: &str) -> Reply {
    Reply::new(334, None, base64)
}
pub fn auth_ok() -> Reply {
    Reply::new(235, st(2, 7, 0), "Authentication successful")
}
pub fn auth_failed() -> Reply {
    Reply::new(535, st(5, 7, 8), "Authentication credentials invalid")
}
pub fn auth_cancelled() -> Reply {
    Reply::new(501, st(5, 0, 0), "Authentication cancelled")
}
pub fn auth_bad_base64() -> Reply {
    Reply::new(
        501,
        st(5, 5, 2),
        "Cannot decode the response: invalid base64",
    )
}
pub fn auth_unknown_mechanism(name: &str) -> Reply {
    Reply::new(
        504,
        st(5, 5, 4),
        format!("Unrecognized authentication mechanism {name}"),
    )
}
pub fn auth_needs_tls() -> Reply {
    Reply::new(
        538,
        st(5, 7, 11),
        "Encryption required for authentication: issue STARTTLS first",
    )
}
pub fn already_authenticated() -> Reply {
    Reply::new(503, st(5, 5, 1), "Already authenticated")
}
pub fn auth_required() -> Reply {
    Reply::new(530, st(5, 7, 0), "Authentication required")
}
pub fn auth_temporary_failure() -> Reply {
    Reply::new(454, st(4, 7, 0), "Temporary authentication failure")
}
pub fn too_many_auth_failures() -> Reply {
    Reply::new(421, st(4, 7, 0), "Too many failed authentications; closing")
}
/// RFC 3463 X.7.1: the account may not use this sender address (Postfix
/// reject_sender_login_mismatch).
pub fn sender_not_owned(addr: &str, account: &str) -> Reply {
    Reply::new(
        553,
        st(5, 7, 1),
        format!("Sender address <{addr}> is not owned by {account}"),
    )
}
pub fn from_header_not_owned(addr: &str, account: &str) -> Reply {
    Reply::new(
        553,
        st(5, 7, 1),
        format!("From: header address <{addr}> is not owned by {account}"),
    )
}
pub fn header_missing_from() -> Reply {
    Reply::new(550, st(5, 6, 0), "The message has no From: header field")
}
pub fn header_too_large(max: usize) -> Reply {
    Reply::new(
        552,
        st(5, 3, 4),
        format!("Header section exceeds {max} bytes"),
    )
}

// RFC 5321 §4.5.3.1.4/§4.5.3.1.6 limits; RFC 3463 5.5.2 syntax error.
pub fn line_too_long() -> Reply {
    Reply::new(500, st(5, 5, 2), "Line too long")
}
pub fn syntax(text: &str) -> Reply {
    Reply::new(501, st(5, 5, 4), format!("Syntax error: {text}"))
}
pub fn bad_sender_syntax(text: &str) -> Reply {
    Reply::new(
        501,
        st(5, 1, 7),
        format!("Bad sender address syntax: {text}"),
    )
}
pub fn bad_recipient_syntax(text: &str) -> Reply {
    Reply::new(
        501,
        st(5, 1, 3),
        format!("Bad recipient address syntax: {text}"),
    )
}
pub fn bad_sequence(text: &str) -> Reply {
    Reply::new(
        503,
        st(5, 5, 1),
        format!("Bad sequence of commands: {text}"),
    )
}
pub fn unknown_parameter(name: &str) -> Reply {
    Reply::new(555, st(5, 5, 4), format!("Unsupported parameter {name}"))
}
pub fn body_type_unsupported(kind: &str) -> Reply {
    Reply::new(504, st(5, 5, 4), format!("BODY={kind} not supported"))
}
pub fn no_valid_recipients() -> Reply {
    Reply::new(554, st(5, 5, 1), "No valid recipients")
}
// RFC 6531 §3.7.4.1 (needs SMTPUTF8), RFC 3463 X.6.7.
pub fn needs_smtputf8() -> Reply {
    Reply::new(553, st(5, 6, 7), "Non-ASCII address requires SMTPUTF8")
}
// RFC 1870 §6.1 / RFC 3463 X.3.4.
pub fn message_too_big(max: u64) -> Reply {
    Reply::new(
        552,
        st(5, 3, 4),
        format!("Message size exceeds fixed limit of {max} bytes"),
    )
}
// RFC 5321 §4.5.3.1.10: 452 for too many recipients; RFC 3463 X.5.3.
pub fn too_many_recipients() -> Reply {
    Reply::new(452, st(4, 5, 3), "Too many recipients")
}
// RFC 5321 §2.3.8: lines end with CRLF; bare CR or LF is refused (docs/decisions).
pub fn bare_line_ending() -> Reply {
    Reply::new(
        554,
        st(5, 6, 0),
        "Message contains bare CR or LF; lines must end with CRLF (RFC 5321 §2.3.8)",
    )
}
pub fn too_many_errors() -> Reply {
    Reply::new(421, st(4, 7, 0), "Too many errors, closing connection")
}
pub fn lhlo_required() -> Reply {
    Reply::new(500, st(5, 5, 1), "This is LMTP: use LHLO (RFC 2033 §4.1)")
}

// Recipient verdicts.
pub fn no_such_user(addr: &str) -> Reply {
    Reply::new(550, st(5, 1, 1), format!("<{addr}>: no such user here"))
}
pub fn relay_denied(addr: &str) -> Reply {
    Reply::new(550, st(5, 7, 1), format!("<{addr}>: Relaying denied"))
}
pub fn over_quota(addr: &str) -> Reply {
    Reply::new(
        552,
        st(5, 2, 2),
        format!("<{addr}>: Mailbox full, over quota"),
    )
}

// Our side.
pub fn local_error() -> Reply {
    Reply::new(
        451,
        st(4, 3, 0),
        "Local error in processing, try again later",
    )
}
pub fn shutting_down(host: &str) -> Reply {
    Reply::new(
        421,
        st(4, 3, 2),
        format!("{host} Service shutting down, try again later"),
    )
}
pub fn timeout(host: &str) -> Reply {
    Reply::new(
        421,
        st(4, 4, 2),
        format!("{host} Timeout, closing connection"),
    )
}
pub fn too_busy(host: &str) -> Reply {
    Reply::new(
        421,
        st(4, 3, 2),
        format!("{host} Too many connections, try again later"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_replies_use_dash_until_last() {
        let mut out = Vec::new();
        ehlo("mx", "c", vec!["PIPELINING".into(), "SIZE 10".into()]).write_to(&mut out);
        assert_eq!(out, b"250-mx greets c\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
        out.clear();
        no_such_user("a@b").write_to(&mut out);
        assert_eq!(out, b"550 5.1.1 <a@b>: no such user here\r\n");
    }
}
