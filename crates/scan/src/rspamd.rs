//! rspamd, through its HTTP `/checkv2` endpoint.
//!
//! Reference: rspamd documentation, "Rspamd protocol" (developers/protocol): the message is
//! POSTed as the request body, envelope data goes in the headers `IP`, `Helo`, `Hostname`,
//! `From`, `Rcpt` (one per recipient), `Queue-Id` and `User`; the reply is a JSON object with
//! `action`, `score`, `required_score`, `symbols`, and optionally `subject`, `messages`
//! (`smtp_message`) and `milter` (`add_headers`).
//!
//! The HTTP/1.1 exchange (RFC 9112) is written here by hand: one request per connection with
//! `Connection: close`, a reply framed by `Content-Length`, chunked coding or the end of the
//! connection, and never longer than the configured bound. Plain HTTP only: rspamd's normal
//! worker is meant to be reached over loopback or a unix socket.

use crate::conn::{
    Endpoint, Fault, Target, config, duplex, find_blank_line, read_bounded, split_host_port,
};
use crate::{ScanError, printable};
use serde_json::Value;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Default bound on a reply, header block included.
pub const DEFAULT_MAX_REPLY: usize = 1024 * 1024;
/// Longest header block accepted in a reply.
const MAX_HEAD: usize = 16 * 1024;

/// A client of one rspamd normal worker. Each call opens its own connection.
#[derive(Debug, Clone)]
pub struct Rspamd {
    endpoint: Endpoint,
    /// Request target, e.g. `/checkv2`.
    path: String,
    /// `Host` header value.
    host: String,
    max_reply: usize,
}

/// Envelope data passed along with the message; everything is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct RspamdMeta<'a> {
    /// The SMTP client's IP address (`IP`).
    pub ip: Option<IpAddr>,
    /// The HELO/EHLO argument (`Helo`).
    pub helo: Option<&'a str>,
    /// The MAIL FROM address (`From`); `Some("")` is the null reverse-path, sent as `<>`.
    pub from: Option<&'a str>,
    /// The RCPT TO addresses (`Rcpt`, one header each).
    pub rcpts: &'a [String],
    /// The queue identifier, used in rspamd's logs (`Queue-Id`).
    pub queue_id: Option<&'a str>,
    /// The authenticated SMTP user (`User`).
    pub user: Option<&'a str>,
    /// The SMTP client's verified host name (`Hostname`).
    pub hostname: Option<&'a str>,
}

/// The action rspamd recommends ("Rspamd HTTP reply", `action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RspamdAction {
    /// `no action`: likely ham.
    NoAction,
    /// `greylist`: answer with a temporary failure this time.
    Greylist,
    /// `add header`: mark as spam in a header.
    AddHeader,
    /// `rewrite subject`: mark as spam in the subject (see [`RspamdVerdict::subject`]).
    RewriteSubject,
    /// `soft reject`: answer with a temporary failure (e.g. a rate limit).
    SoftReject,
    /// `reject`: refuse the message.
    Reject,
    /// An action this client does not know, as rspamd named it.
    Other(String),
}

impl RspamdAction {
    fn from_protocol(name: &str) -> RspamdAction {
        match name.trim().to_ascii_lowercase().replace('_', " ").as_str() {
            "no action" => RspamdAction::NoAction,
            "greylist" => RspamdAction::Greylist,
            "add header" => RspamdAction::AddHeader,
            "rewrite subject" => RspamdAction::RewriteSubject,
            "soft reject" => RspamdAction::SoftReject,
            "reject" => RspamdAction::Reject,
            _ => RspamdAction::Other(printable(name.as_bytes(), 100)),
        }
    }

    /// The action's name in rspamd's protocol, e.g. `add header`.
    pub fn as_str(&self) -> &str {
        match self {
            RspamdAction::NoAction => "no action",
            RspamdAction::Greylist => "greylist",
            RspamdAction::AddHeader => "add header",
            RspamdAction::RewriteSubject => "rewrite subject",
            RspamdAction::SoftReject => "soft reject",
            RspamdAction::Reject => "reject",
            RspamdAction::Other(name) => name,
        }
    }
}

impl fmt::Display for RspamdAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// rspamd's verdict on a message.
#[derive(Debug, Clone, PartialEq)]
pub struct RspamdVerdict {
    /// The recommended action.
    pub action: RspamdAction,
    /// The message's score.
    pub score: f64,
    /// The score from which rspamd would reject.
    pub required_score: f64,
    /// The symbols that hit with their scores, ordered by name.
    pub symbols: Vec<(String, f64)>,
    /// Text meant for the SMTP reply (`messages.smtp_message`).
    pub smtp_message: Option<String>,
    /// The new subject, with [`RspamdAction::RewriteSubject`].
    pub subject: Option<String>,
    /// Headers rspamd asks to add (`milter.add_headers`), in its order. Names are checked
    /// against RFC 5322 §3.6.8 (others are dropped); values are unfolded safely: line breaks
    /// are CRLF and every continuation line starts with white space (RFC 5322 §2.2.3), so
    /// `Name: value\r\n` can be written as is.
    pub add_headers: Vec<(String, String)>,
}

impl Rspamd {
    /// A client for rspamd at `url`: `http://HOST:PORT` (port 80 when absent), optionally
    /// with a path prefix before `/checkv2`, or a `unix:/path`, `tcp:HOST:PORT` or
    /// `HOST:PORT` address. Each call ends within `timeout`, connecting included; the
    /// connection itself must be made within the smaller of `timeout` and
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
    pub fn parse(url: &str, timeout: Duration) -> Result<Rspamd, ScanError> {
        const SERVICE: &str = "rspamd";
        let url = url.trim();
        let (target, prefix) = parse_url(url).map_err(|reason| config(SERVICE, url, reason))?;
        let prefix = prefix.trim_end_matches('/');
        let path = if prefix.ends_with("/checkv2") {
            prefix.to_string()
        } else {
            format!("{prefix}/checkv2")
        };
        let host = target.host_header();
        Ok(Rspamd {
            endpoint: Endpoint::new(SERVICE, url, target, timeout)?,
            path,
            host,
            max_reply: DEFAULT_MAX_REPLY,
        })
    }

    /// Sets the connect timeout (never more than the overall timeout; zero is ignored).
    pub fn with_connect_timeout(mut self, limit: Duration) -> Rspamd {
        self.endpoint.set_connect_timeout(limit);
        self
    }

    /// Sets the bound on a reply (default [`DEFAULT_MAX_REPLY`]); rspamd lists every URL and
    /// address it found, so very large messages may need more.
    pub fn with_max_reply(mut self, bytes: usize) -> Rspamd {
        self.max_reply = bytes.max(MAX_HEAD);
        self
    }

    /// The address as configured.
    pub fn address(&self) -> &str {
        &self.endpoint.address
    }

    /// Checks `message` with `POST /checkv2`, passing the envelope data of `meta`.
    ///
    /// An HTTP status other than 200 gives [`ScanError::Answered`] with rspamd's `error` text.
    pub async fn check(
        &self,
        message: &[u8],
        meta: &RspamdMeta<'_>,
    ) -> Result<RspamdVerdict, ScanError> {
        let head = self
            .request_head(message.len(), meta)
            .map_err(|reason| self.endpoint.invalid_request(reason))?;
        let max = self.max_reply;
        let reply = self
            .endpoint
            .exchange(|stream| {
                duplex(
                    stream,
                    |mut writer| async move {
                        writer.write_all(&head).await?;
                        writer.write_all(message).await?;
                        writer.flush().await
                    },
                    |mut reader| async move { read_response(&mut reader, max).await },
                )
            })
            .await?;
        let verdict = parse_verdict(reply).map_err(|fault| self.endpoint.error(fault))?;
        tracing::debug!(
            rspamd = %self.endpoint.address,
            bytes = message.len(),
            action = %verdict.action,
            score = verdict.score,
            "rspamd check"
        );
        Ok(verdict)
    }

    /// The request line and headers (RFC 9112 §3; the envelope headers from "HTTP headers"
    /// of the rspamd protocol).
    fn request_head(&self, length: usize, meta: &RspamdMeta<'_>) -> Result<Vec<u8>, String> {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: facteur\r\n\
             Content-Type: message/rfc822\r\nContent-Length: {length}\r\n",
            self.path, self.host
        );
        let mut field = |name: &str, value: &str| -> Result<(), String> {
            // RFC 9110 §5.5: a field value carries no CR, LF or NUL; no other control either.
            if value.chars().any(|c| c.is_control()) {
                return Err(format!(
                    "the {name} value {:?} contains a control character",
                    printable(value.as_bytes(), 100)
                ));
            }
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
            Ok(())
        };
        if let Some(ip) = meta.ip {
            field("IP", &ip.to_string())?;
        }
        if let Some(helo) = meta.helo {
            field("Helo", helo)?;
        }
        if let Some(hostname) = meta.hostname {
            field("Hostname", hostname)?;
        }
        if let Some(from) = meta.from {
            field("From", if from.is_empty() { "<>" } else { from })?;
        }
        for rcpt in meta.rcpts {
            field("Rcpt", rcpt)?;
        }
        if let Some(queue_id) = meta.queue_id {
            field("Queue-Id", queue_id)?;
        }
        if let Some(user) = meta.user {
            field("User", user)?;
        }
        head.push_str("\r\n");
        Ok(head.into_bytes())
    }
}

/// `http://authority[/path]` or a plain address; returns the target and the path prefix.
fn parse_url(url: &str) -> Result<(Target, String), String> {
    let scheme_end = url.find("://");
    let Some(scheme_end) = scheme_end else {
        return Ok((Target::parse(url)?, String::new()));
    };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    let rest = &url[scheme_end + 3..];
    match scheme.as_str() {
        "http" => {}
        "https" => {
            return Err(
                "https is not supported; use rspamd's plain HTTP listener on loopback \
                        or a unix socket"
                    .to_string(),
            );
        }
        _ => {
            return Err(format!(
                "the scheme {scheme:?} is not supported; expected http://"
            ));
        }
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_string());
    }
    if path.contains(['?', '#']) {
        return Err("a query or fragment in the URL is not supported".to_string());
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the URL path must be written in visible ASCII characters".to_string());
    }
    if authority.is_empty() {
        return Err("the URL has no host".to_string());
    }
    let (host, port) = split_host_port(authority, Some(80))?;
    Ok((Target::Tcp { host, port }, path.to_string()))
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    body: Vec<u8>,
}

/// How the body of a response is delimited (RFC 9112 §6.3).
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads one response, stopping as soon as its body is complete.
async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Response, Fault> {
    let raw = read_bounded(reader, max, |buf| {
        matches!(split_response(buf, false), Ok(Some(_)))
    })
    .await?;
    if raw.is_empty() {
        return Err(Fault::Closed);
    }
    match split_response(&raw, true)? {
        Some(response) => Ok(response),
        None => Err(Fault::Closed),
    }
}

/// Parses `buf` as a response; `Ok(None)` while incomplete. With `at_end`, the connection
/// has closed, which completes a body delimited by the close.
fn split_response(buf: &[u8], at_end: bool) -> Result<Option<Response>, Fault> {
    let Some(head_end) = find_blank_line(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(Fault::Protocol(format!(
                "the header block is longer than {MAX_HEAD} bytes"
            )));
        }
        return Ok(None);
    };
    let head = &buf[..head_end];
    let rest = &buf[head_end + 4..];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let (status, reason) = parse_status_line(status_line)?;
    let mut framing = Framing::UntilClose;
    let mut length: Option<usize> = None;
    for line in lines {
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(Fault::unexpected("a header line has no colon", line));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            // RFC 9112 §6.3 point 4: chunked must be the final coding; others are not decoded.
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if !last.eq_ignore_ascii_case("chunked") || value.contains(',') {
                return Err(Fault::unexpected("unsupported Transfer-Encoding", line));
            }
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| Fault::unexpected("bad Content-Length", line))?;
            if length.is_some_and(|previous| previous != n) {
                return Err(Fault::unexpected("conflicting Content-Length", line));
            }
            length = Some(n);
        } else if (name.eq_ignore_ascii_case("content-encoding")
            || name.eq_ignore_ascii_case("compression"))
            && !value.eq_ignore_ascii_case("identity")
            && !value.is_empty()
        {
            return Err(Fault::unexpected(
                "compressed replies are not supported",
                line,
            ));
        }
    }
    if let (Framing::UntilClose, Some(n)) = (&framing, length) {
        framing = Framing::Length(n);
    }
    let body = match framing {
        Framing::Length(n) if rest.len() >= n => rest[..n].to_vec(),
        Framing::Length(_) => return Ok(None),
        Framing::Chunked => match decode_chunked(rest)? {
            Some(body) => body,
            None => return Ok(None),
        },
        Framing::UntilClose if at_end => rest.to_vec(),
        Framing::UntilClose => return Ok(None),
    };
    Ok(Some(Response {
        status,
        reason,
        body,
    }))
}

/// `HTTP/1.x SSS reason` (RFC 9112 §4).
fn parse_status_line(line: &[u8]) -> Result<(u16, String), Fault> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(Fault::unexpected("not an HTTP/1 status line", line));
    }
    let status = parts
        .next()
        .filter(|code| code.len() == 3)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| Fault::unexpected("bad HTTP status code", line))?;
    let reason = printable(parts.next().unwrap_or_default().trim().as_bytes(), 100);
    Ok((status, reason))
}

/// Decodes a chunked body (RFC 9112 §7.1); `Ok(None)` while incomplete. Trailer fields are
/// read past and dropped.
fn decode_chunked(mut data: &[u8]) -> Result<Option<Vec<u8>>, Fault> {
    let mut body = Vec::new();
    // Each turn consumes at least one size line, so the data's length bounds the turns.
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = &data[..line_end];
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size_text = String::from_utf8_lossy(size_text);
        let size_text = size_text.trim();
        if size_text.is_empty() || size_text.len() > 8 {
            return Err(Fault::unexpected("bad chunk size", line));
        }
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Fault::unexpected("bad chunk size", line))?;
        data = &data[line_end + 2..];
        if size == 0 {
            // trailer-section CRLF: either an empty line now, or fields ending in a blank line.
            if data.starts_with(b"\r\n") || find_blank_line(data).is_some() {
                return Ok(Some(body));
            }
            return Ok(None);
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err(Fault::Protocol(
                "a chunk does not end with CRLF".to_string(),
            ));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Reads the verdict from a response ("Rspamd HTTP reply").
fn parse_verdict(response: Response) -> Result<RspamdVerdict, Fault> {
    let json: Option<Value> = serde_json::from_slice(&response.body).ok();
    if response.status != 200 {
        let error = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .map(|e| printable(e.as_bytes(), 300));
        let status = format!("HTTP {} {}", response.status, response.reason);
        return Err(Fault::Answered(match error {
            Some(error) => format!("{}: {error}", status.trim_end()),
            None => status.trim_end().to_string(),
        }));
    }
    let Some(Value::Object(reply)) = json else {
        return Err(Fault::unexpected(
            "the body is not a JSON object",
            &response.body,
        ));
    };
    if let Some(error) = reply.get("error").and_then(Value::as_str) {
        return Err(Fault::Answered(printable(error.as_bytes(), 300)));
    }
    let action = reply
        .get("action")
        .and_then(Value::as_str)
        .map(RspamdAction::from_protocol)
        .ok_or_else(|| Fault::Protocol("the reply has no action".to_string()))?;
    let number = |key: &str| {
        reply
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| Fault::Protocol(format!("the reply has no numeric {key}")))
    };
    let score = number("score")?;
    let required_score = number("required_score")?;
    let symbols = match reply.get("symbols") {
        Some(Value::Object(symbols)) => symbols
            .iter()
            .map(|(name, symbol)| {
                let score = symbol.get("score").and_then(Value::as_f64).unwrap_or(0.0);
                (printable(name.as_bytes(), 200), score)
            })
            .collect(),
        _ => Vec::new(),
    };
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(|s| printable(s.as_bytes(), 1000))
    };
    let smtp_message = text(reply.get("messages").and_then(|m| m.get("smtp_message")));
    let subject = text(reply.get("subject"));
    let add_headers = reply
        .get("milter")
        .and_then(|m| m.get("add_headers"))
        .map(milter_headers)
        .unwrap_or_default();
    Ok(RspamdVerdict {
        action,
        score,
        required_score,
        symbols,
        smtp_message,
        subject,
        add_headers,
    })
}

/// `milter.add_headers` ("Milter headers", "Adding headers"): each name maps to
/// `{"value": .., "order": n}`, a plain string, or a list of either.
fn milter_headers(add: &Value) -> Vec<(String, String)> {
    let Value::Object(add) = add else {
        return Vec::new();
    };
    let mut headers: Vec<(i64, String, String)> = Vec::new();
    for (name, spec) in add {
        if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            tracing::warn!(header = %printable(name.as_bytes(), 100), "rspamd asked to add a header with an invalid name; dropped");
            continue;
        }
        let entries = match spec {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for entry in entries {
            let (value, order) = match entry {
                Value::String(value) => (Some(value.as_str()), 0),
                Value::Object(fields) => (
                    fields.get("value").and_then(Value::as_str),
                    fields.get("order").and_then(Value::as_i64).unwrap_or(0),
                ),
                _ => (None, 0),
            };
            if let Some(value) = value {
                headers.push((order, name.clone(), fold_safely(value)));
            }
        }
    }
    headers.sort_by_key(|(order, _, _)| *order);
    headers
        .into_iter()
        .map(|(_, name, value)| (name, value))
        .collect()
}

/// Line breaks become CRLF, each continuation line starts with white space (RFC 5322 §2.2.3),
/// empty lines go, and other control characters become spaces: the value cannot end the
/// header or start another.
fn fold_safely(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (n, line) in value
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
    {
        let line: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        if n == 0 {
            out.push_str(&line);
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        out.push_str("\r\n");
        if !line.starts_with([' ', '\t']) {
            out.push('\t');
        }
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Rspamd {
        Rspamd::parse(url, Duration::from_secs(5)).expect(url)
    }

    #[test]
    fn urls() {
        let r = client("http://127.0.0.1:11333");
        assert_eq!(
            (r.path.as_str(), r.host.as_str()),
            ("/checkv2", "127.0.0.1:11333")
        );
        let r = client("HTTP://scan.example.org/rspamd/");
        assert_eq!(
            (r.path.as_str(), r.host.as_str()),
            ("/rspamd/checkv2", "scan.example.org:80")
        );
        let r = client("http://[::1]:11333/checkv2");
        assert_eq!(
            (r.path.as_str(), r.host.as_str()),
            ("/checkv2", "[::1]:11333")
        );
        let r = client("unix:/run/rspamd/normal.sock");
        assert_eq!(
            (r.path.as_str(), r.host.as_str()),
            ("/checkv2", "localhost")
        );
        let r = client("tcp:127.0.0.1:11333");
        assert_eq!(r.host, "127.0.0.1:11333");
        for (bad, expected) in [
            ("https://127.0.0.1:11334", "https is not supported"),
            ("ftp://x", "not supported"),
            ("http://u:p@x:1", "credentials"),
            ("http://x:1/?a", "query"),
            ("http://", "no host"),
            ("http://x:0", "from 1 to 65535"),
        ] {
            let error = Rspamd::parse(bad, Duration::from_secs(1))
                .expect_err(bad)
                .to_string();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn request_headers() {
        let r = client("http://127.0.0.1:11333");
        let rcpts = ["a@example.org".to_string(), "b@example.org".to_string()];
        let meta = RspamdMeta {
            ip: Some("192.0.2.1".parse().expect("ip")),
            helo: Some("mx.example.net"),
            from: Some(""),
            rcpts: &rcpts,
            queue_id: Some("Q1"),
            user: Some("alice"),
            hostname: Some("mx.example.net"),
        };
        let head = String::from_utf8(r.request_head(42, &meta).expect("head")).expect("utf8");
        assert!(head.starts_with("POST /checkv2 HTTP/1.1\r\nHost: 127.0.0.1:11333\r\n"));
        for line in [
            "Connection: close",
            "Content-Length: 42",
            "IP: 192.0.2.1",
            "Helo: mx.example.net",
            "From: <>",
            "Rcpt: a@example.org",
            "Rcpt: b@example.org",
            "Queue-Id: Q1",
            "User: alice",
            "Hostname: mx.example.net",
        ] {
            assert!(head.contains(&format!("\r\n{line}\r\n")), "{line}: {head}");
        }
        assert!(head.ends_with("\r\n\r\n"));
        let evil = RspamdMeta {
            helo: Some("x\r\nRcpt: victim@example.org"),
            ..RspamdMeta::default()
        };
        assert!(r.request_head(1, &evil).is_err());
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            decode_chunked(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n")
                .ok()
                .flatten(),
            Some(b"Wikipedia".to_vec())
        );
        assert_eq!(
            decode_chunked(b"4\r\nWiki\r\n0\r\nX-T: 1\r\n\r\n")
                .ok()
                .flatten(),
            Some(b"Wiki".to_vec())
        );
        assert!(matches!(decode_chunked(b"4\r\nWi"), Ok(None)));
        assert!(matches!(decode_chunked(b"4\r\nWiki\r\n0\r\n"), Ok(None)));
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"4\r\nWikiXX").is_err());
        assert!(decode_chunked(b"fffffffff\r\n").is_err());
    }

    #[test]
    fn responses_frame() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra";
        let response = split_response(full, false).expect("ok").expect("complete");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"{}"[..])
        );
        assert!(matches!(
            split_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", false),
            Ok(None)
        ));
        assert!(matches!(
            split_response(b"HTTP/1.0 200 OK\r\n\r\n{}", false),
            Ok(None)
        ));
        let response = split_response(b"HTTP/1.0 200 OK\r\n\r\n{}", true)
            .expect("ok")
            .expect("complete");
        assert_eq!(response.body, b"{}");
        for bad in [
            &b"SPAMD/1.1 0 EX_OK\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(split_response(bad, true).is_err(), "{bad:?}");
        }
    }

    fn verdict(json: &str) -> Result<RspamdVerdict, Fault> {
        parse_verdict(Response {
            status: 200,
            reason: "OK".into(),
            body: json.as_bytes().to_vec(),
        })
    }

    #[test]
    fn verdicts() {
        let v = verdict(
            r#"{"is_skipped":false,"score":5.2,"required_score":7,"action":"add header",
            "symbols":{"DATE_IN_PAST":{"name":"DATE_IN_PAST","score":0.1},
                       "FORGED_SENDER":{"name":"FORGED_SENDER","score":5}},
            "messages":{"smtp_message":"Try later"},
            "milter":{"add_headers":{"X-Spam":{"value":"Yes","order":1},
                                     "X-Spamd-Bar":"+++",
                                     "X-Multi":[{"value":"a\nb","order":2},{"value":"c","order":3}],
                                     "Bad:Name":"x"}}}"#,
        )
        .expect("verdict");
        assert_eq!(v.action, RspamdAction::AddHeader);
        assert_eq!((v.score, v.required_score), (5.2, 7.0));
        assert_eq!(
            v.symbols,
            [
                ("DATE_IN_PAST".to_string(), 0.1),
                ("FORGED_SENDER".to_string(), 5.0)
            ]
        );
        assert_eq!(v.smtp_message.as_deref(), Some("Try later"));
        assert_eq!(
            v.add_headers,
            [
                ("X-Spamd-Bar".to_string(), "+++".to_string()),
                ("X-Spam".to_string(), "Yes".to_string()),
                ("X-Multi".to_string(), "a\r\n\tb".to_string()),
                ("X-Multi".to_string(), "c".to_string()),
            ]
        );
        for (name, action) in [
            ("no action", RspamdAction::NoAction),
            ("greylist", RspamdAction::Greylist),
            ("rewrite subject", RspamdAction::RewriteSubject),
            ("soft reject", RspamdAction::SoftReject),
            ("reject", RspamdAction::Reject),
            ("discard", RspamdAction::Other("discard".into())),
        ] {
            let json = format!(r#"{{"action":"{name}","score":1,"required_score":15}}"#);
            assert_eq!(verdict(&json).expect(name).action, action);
        }
        for bad in [
            "[]",
            "{}",
            r#"{"action":"reject","score":"x","required_score":1}"#,
            "not json",
        ] {
            assert!(matches!(verdict(bad), Err(Fault::Protocol(_))), "{bad}");
        }
    }

    #[test]
    fn folding_is_safe() {
        assert_eq!(fold_safely("a\r\nb"), "a\r\n\tb");
        assert_eq!(fold_safely("a\n\tb"), "a\r\n\tb");
        assert_eq!(fold_safely("a\n\nEvil: x"), "a\r\n\tEvil: x");
        assert_eq!(fold_safely("a\rb\0c"), "a b c");
    }
}
