//! SpamAssassin's spamd, through the SPAMC/SPAMD protocol.
//!
//! Reference: "The SpamAssassin Network Protocol", `spamd/PROTOCOL` in the SpamAssassin
//! sources. A request is a command line (`SYMBOLS SPAMC/1.5`), headers (`Content-length`,
//! `User`), a blank line and the message; the client then shuts down its side. The reply is
//! `SPAMD/1.x <code> <text>` (the code from sysexits.h, 0 being `EX_OK`), headers among which
//! `Spam: True ; 15.3 / 5.0`, a blank line and, for `SYMBOLS`, the names of the rules that hit
//! separated by commas.

use crate::conn::{Endpoint, Fault, duplex, find_blank_line, read_bounded};
use crate::{ScanError, printable};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Longest reply read: the header block and the list of rule names.
const MAX_REPLY: usize = 64 * 1024;
/// Longest user name sent.
const MAX_USER: usize = 256;

/// A client of one spamd daemon. Each call opens its own connection.
#[derive(Debug, Clone)]
pub struct Spamd {
    endpoint: Endpoint,
}

/// spamd's verdict on a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamdVerdict {
    /// Whether the score reaches the threshold (spamd's `Spam: True`).
    pub spam: bool,
    /// The message's score.
    pub score: f64,
    /// The score from which spamd calls a message spam (`required_score`).
    pub threshold: f64,
    /// Names of the rules that hit, in spamd's order.
    pub symbols: Vec<String>,
}

impl Spamd {
    /// A client for spamd at `address` (`unix:/run/spamd.sock`, `tcp:127.0.0.1:783` or
    /// `127.0.0.1:783`). Each call ends within `timeout`, connecting included; the connection
    /// itself must be made within the smaller of `timeout` and
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
    pub fn parse(address: &str, timeout: Duration) -> Result<Spamd, ScanError> {
        Ok(Spamd {
            endpoint: Endpoint::parse("spamd", address, timeout)?,
        })
    }

    /// Sets the connect timeout (never more than the overall timeout; zero is ignored).
    pub fn with_connect_timeout(mut self, limit: Duration) -> Spamd {
        self.endpoint.set_connect_timeout(limit);
        self
    }

    /// The address as configured.
    pub fn address(&self) -> &str {
        &self.endpoint.address
    }

    /// Checks `message` with the `SYMBOLS` command, on behalf of `user` if given (spamd then
    /// applies that user's preferences; PROTOCOL, "User").
    ///
    /// spamd's own errors (e.g. `76 Bad header line`) give [`ScanError::Answered`].
    pub async fn check(
        &self,
        message: &[u8],
        user: Option<&str>,
    ) -> Result<SpamdVerdict, ScanError> {
        let mut head = format!("SYMBOLS SPAMC/1.5\r\nContent-length: {}\r\n", message.len());
        if let Some(user) = user {
            check_user(user).map_err(|reason| self.endpoint.invalid_request(reason))?;
            head.push_str("User: ");
            head.push_str(user);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let head = head.into_bytes();
        let reply = self
            .endpoint
            .exchange(|stream| {
                duplex(
                    stream,
                    |mut writer| async move {
                        writer.write_all(&head).await?;
                        writer.write_all(message).await?;
                        // PROTOCOL, "Synopsis": "After each side is done writing, it shuts
                        // down its side of the connection."
                        writer.shutdown().await
                    },
                    |mut reader| async move { read_reply(&mut reader).await },
                )
            })
            .await?;
        let verdict = parse_reply(&reply).map_err(|fault| self.endpoint.error(fault))?;
        tracing::debug!(
            spamd = %self.endpoint.address,
            bytes = message.len(),
            spam = verdict.spam,
            score = verdict.score,
            "spamd check"
        );
        Ok(verdict)
    }

    /// Checks that spamd answers: `PING` must be answered `SPAMD/1.x 0 PONG` (PROTOCOL, "PING").
    pub async fn ping(&self) -> Result<(), ScanError> {
        let reply = self
            .endpoint
            .exchange(|stream| {
                duplex(
                    stream,
                    |mut writer| async move {
                        writer.write_all(b"PING SPAMC/1.5\r\n\r\n").await?;
                        writer.shutdown().await
                    },
                    |mut reader| async move { read_reply(&mut reader).await },
                )
            })
            .await?;
        let head = reply_head(&reply);
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let (_, code, text) = status_line(first).map_err(|fault| self.endpoint.error(fault))?;
        match (code, text.trim()) {
            (0, "PONG") => Ok(()),
            (0, _) => Err(self
                .endpoint
                .error(Fault::unexpected("expected PONG, got", first))),
            (code, text) => Err(self.endpoint.error(answered(code, text))),
        }
    }
}

/// PROTOCOL, "User": "format is that of a traditional UNIX username"; sites with virtual
/// users also pass addresses, so anything printable without spaces is let through.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name is empty".to_string());
    }
    if user.len() > MAX_USER {
        return Err(format!("the user name is longer than {MAX_USER} bytes"));
    }
    if user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "the user name {:?} contains a space or control character",
            printable(user.as_bytes(), 100)
        ));
    }
    Ok(())
}

/// Reads the reply until its `Content-length` is satisfied or spamd closes the connection.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, Fault> {
    let reply = read_bounded(reader, MAX_REPLY, |buf| {
        let Some(end) = find_blank_line(buf) else {
            return false;
        };
        match content_length(&buf[..end]) {
            Some(Ok(length)) => buf.len() - (end + 4) >= length,
            _ => false,
        }
    })
    .await?;
    if reply.is_empty() {
        return Err(Fault::Closed);
    }
    Ok(reply)
}

/// The header block: up to the blank line, or everything when there is none (an error reply
/// is a single line).
fn reply_head(reply: &[u8]) -> &[u8] {
    match find_blank_line(reply) {
        Some(end) => &reply[..end],
        None => reply,
    }
}

/// The `Content-length` header's value, if the block has one.
fn content_length(head: &[u8]) -> Option<Result<usize, ()>> {
    lines(head).skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().map_err(|_| ()))
    })
}

/// The lines of a header block, as text, without their line ends.
fn lines(head: &[u8]) -> impl Iterator<Item = String> + '_ {
    head.split(|&b| b == b'\n').map(|line| {
        String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_string()
    })
}

/// `SPAMD/<version> <code> <text>` (PROTOCOL, "Synopsis").
fn status_line(line: &[u8]) -> Result<(String, u32, String), Fault> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    let Some(rest) = text.strip_prefix("SPAMD/") else {
        return Err(Fault::unexpected(
            "the first line is not a SPAMD reply",
            line,
        ));
    };
    let mut parts = rest.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let code = parts
        .next()
        .and_then(|code| code.parse::<u32>().ok())
        .ok_or_else(|| Fault::unexpected("the reply code is not a number", line))?;
    let message = parts.next().unwrap_or_default().to_string();
    Ok((version, code, message))
}

/// spamd's error, with the sysexits.h name of its code.
fn answered(code: u32, text: &str) -> Fault {
    let name = match code {
        64 => "EX_USAGE",
        65 => "EX_DATAERR",
        66 => "EX_NOINPUT",
        67 => "EX_NOUSER",
        68 => "EX_NOHOST",
        69 => "EX_UNAVAILABLE",
        70 => "EX_SOFTWARE",
        71 => "EX_OSERR",
        72 => "EX_OSFILE",
        73 => "EX_CANTCREAT",
        74 => "EX_IOERR",
        75 => "EX_TEMPFAIL",
        76 => "EX_PROTOCOL",
        77 => "EX_NOPERM",
        78 => "EX_CONFIG",
        _ => "",
    };
    let text = printable(text.trim().as_bytes(), 300);
    let code = if name.is_empty() || text.contains(name) {
        format!("code {code}")
    } else {
        format!("code {code} {name}")
    };
    if text.is_empty() {
        Fault::Answered(code)
    } else {
        Fault::Answered(format!("{text} ({code})"))
    }
}

/// Reads a `SYMBOLS` reply (PROTOCOL, "Commands": CHECK and SYMBOLS).
fn parse_reply(reply: &[u8]) -> Result<SpamdVerdict, Fault> {
    let head = reply_head(reply);
    let body = match find_blank_line(reply) {
        Some(end) => &reply[end + 4..],
        None => &[][..],
    };
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let (_, code, text) = status_line(first)?;
    if code != 0 {
        return Err(answered(code, &text));
    }
    let mut verdict = None;
    for line in lines(head).skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("spam") {
            verdict = Some(parse_spam_header(value).ok_or_else(|| {
                Fault::unexpected("the Spam header cannot be read", line.as_bytes())
            })?);
        }
    }
    let Some((spam, score, threshold)) = verdict else {
        return Err(Fault::unexpected("no Spam header in", head));
    };
    // "clients should be flexible on whether or not a CR-LF pair follows the symbol text".
    let body = match content_length(head) {
        Some(Ok(length)) if body.len() >= length => &body[..length],
        Some(Ok(_)) => return Err(Fault::Closed),
        Some(Err(())) => return Err(Fault::unexpected("bad Content-length in", head)),
        None => body,
    };
    let symbols = String::from_utf8_lossy(body)
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| printable(name.as_bytes(), 200))
        .collect();
    Ok(SpamdVerdict {
        spam,
        score,
        threshold,
        symbols,
    })
}

/// `True ; 15.3 / 5.0` (older servers write `Yes`/`No`).
fn parse_spam_header(value: &str) -> Option<(bool, f64, f64)> {
    let (flag, numbers) = value.split_once(';')?;
    let spam = match flag.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => true,
        "false" | "no" => false,
        _ => return None,
    };
    let (score, threshold) = numbers.split_once('/')?;
    let score = score.trim().parse::<f64>().ok().filter(|s| s.is_finite())?;
    let threshold = threshold
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())?;
    Some((spam, score, threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_reply_parses() {
        let reply = b"SPAMD/1.1 0 EX_OK\r\nContent-length: 27\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,NO_RECEIVED,NO_RELAYS";
        let verdict = parse_reply(reply).expect("verdict");
        assert!(verdict.spam);
        assert_eq!(verdict.score, 1000.0);
        assert_eq!(verdict.threshold, 5.0);
        assert_eq!(verdict.symbols, ["GTUBE", "NO_RECEIVED", "NO_RELAYS"]);
    }

    #[test]
    fn ham_with_trailing_crlf_and_negative_score() {
        let reply =
            b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.8 / 5.0\r\n\r\nMSGID_SHORT, NO_RECEIVED\r\n\r\n";
        let verdict = parse_reply(reply).expect("verdict");
        assert!(!verdict.spam);
        assert_eq!(verdict.score, -0.8);
        assert_eq!(verdict.symbols, ["MSGID_SHORT", "NO_RECEIVED"]);
    }

    #[test]
    fn errors_and_garbage() {
        match parse_reply(b"SPAMD/1.0 76 Bad header line: BOGUS SPAMC/1.5\r\n") {
            Err(Fault::Answered(text)) => {
                assert_eq!(
                    text,
                    "Bad header line: BOGUS SPAMC/1.5 (code 76 EX_PROTOCOL)"
                )
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            b"SPAMD/1.1 x EX_OK\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_reply(bad), Err(Fault::Protocol(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_reply(
                b"SPAMD/1.1 0 EX_OK\r\nContent-length: 50\r\nSpam: True ; 1 / 5\r\n\r\nA,B"
            ),
            Err(Fault::Closed)
        ));
    }

    #[test]
    fn user_names() {
        assert!(check_user("alice").is_ok());
        assert!(check_user("alice@example.org").is_ok());
        assert!(check_user("").is_err());
        assert!(check_user("a\r\nContent-length: 0").is_err());
        assert!(check_user("a b").is_err());
        assert!(check_user(&"a".repeat(300)).is_err());
    }
}
