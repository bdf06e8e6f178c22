//! What the three clients share: scanner addresses, the connection with its two timeouts,
//! concurrent send-and-receive, and bounded reads.

use crate::{ScanError, printable};
use std::future::Future;
use std::io;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

/// Where a scanner listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

const ADDRESS_FORMS: &str = "expected unix:/path/to/socket, tcp:HOST:PORT or HOST:PORT";

impl Target {
    /// Parses `unix:/path`, `/path`, `tcp:HOST:PORT` or `HOST:PORT`; IPv6 literals go in
    /// brackets (`[::1]:3310`, the RFC 3986 §3.2.2 notation).
    pub(crate) fn parse(text: &str) -> Result<Target, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return unix_target(path);
        }
        if text.starts_with('/') {
            return unix_target(text);
        }
        let hostport = text.strip_prefix("tcp:").unwrap_or(text);
        if hostport.is_empty() {
            return Err(format!("the address is empty; {ADDRESS_FORMS}"));
        }
        let (host, port) = split_host_port(hostport, None)?;
        Ok(Target::Tcp { host, port })
    }

    /// The value of an HTTP `Host` header for this target (RFC 9110 §7.2).
    pub(crate) fn host_header(&self) -> String {
        match self {
            Target::Unix(_) => "localhost".to_string(),
            Target::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

fn unix_target(path: &str) -> Result<Target, String> {
    if path.is_empty() {
        return Err("the socket path is empty".to_string());
    }
    if !path.starts_with('/') {
        return Err(format!("the socket path {path:?} is not absolute"));
    }
    if path.chars().any(char::is_control) {
        return Err("the socket path contains a control character".to_string());
    }
    Ok(Target::Unix(PathBuf::from(path)))
}

/// Splits `host:port` or `[v6]:port`; without a port, `default_port` is used if given.
pub(crate) fn split_host_port(
    text: &str,
    default_port: Option<u16>,
) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (literal, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?} opens an IPv6 bracket but does not close it"))?;
        literal
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("{literal:?} is not an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected {after:?} after the IPv6 address")),
        };
        (literal.to_string(), port)
    } else {
        match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(format!(
                    "{text:?} has several colons; write IPv6 addresses in brackets, e.g. [::1]:3310"
                ));
            }
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (text.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("the host name is missing in {text:?}"));
    }
    if host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    let port = match (port, default_port) {
        (Some(port), _) => match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("the port {port:?} is not a number from 1 to 65535")),
        },
        (None, Some(port)) => port,
        (None, None) => return Err(format!("the port is missing; {ADDRESS_FORMS}")),
    };
    Ok((host, port))
}

/// A scanner's address with the limits of every call made to it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) service: &'static str,
    /// The address as configured, for messages.
    pub(crate) address: String,
    pub(crate) target: Target,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
}

impl Endpoint {
    /// Parses a `unix:`/`tcp:`/`HOST:PORT` address.
    pub(crate) fn parse(
        service: &'static str,
        address: &str,
        timeout: Duration,
    ) -> Result<Endpoint, ScanError> {
        let address = address.trim();
        let target = Target::parse(address).map_err(|reason| config(service, address, reason))?;
        Endpoint::new(service, address, target, timeout)
    }

    /// Checks the timeout and builds the endpoint.
    pub(crate) fn new(
        service: &'static str,
        address: &str,
        target: Target,
        timeout: Duration,
    ) -> Result<Endpoint, ScanError> {
        if timeout.is_zero() {
            return Err(config(service, address, "the timeout is zero".to_string()));
        }
        Ok(Endpoint {
            service,
            address: address.to_string(),
            target,
            connect_timeout: timeout.min(crate::DEFAULT_CONNECT_TIMEOUT),
            timeout,
        })
    }

    /// Sets the connect timeout; zero is ignored. It never exceeds the overall timeout.
    pub(crate) fn set_connect_timeout(&mut self, limit: Duration) {
        if !limit.is_zero() {
            self.connect_timeout = limit;
        }
    }

    /// Connects within the connect timeout, then runs `exchange` on the connection; the whole
    /// call, connection included, ends within the overall timeout.
    pub(crate) async fn exchange<T, F, Fut>(&self, exchange: F) -> Result<T, ScanError>
    where
        F: FnOnce(Stream) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let deadline = Instant::now() + self.timeout;
        let connect_limit = self.connect_timeout.min(self.timeout);
        let stream = match tokio::time::timeout(connect_limit, self.connect()).await {
            Err(_) => {
                return Err(ScanError::ConnectTimeout {
                    service: self.service,
                    address: self.address.clone(),
                    limit: connect_limit,
                });
            }
            Ok(Err(error)) => {
                return Err(ScanError::Connect {
                    service: self.service,
                    address: self.address.clone(),
                    detail: describe_io(&error),
                });
            }
            Ok(Ok(stream)) => stream,
        };
        match tokio::time::timeout_at(deadline, exchange(stream)).await {
            Err(_) => Err(ScanError::Timeout {
                service: self.service,
                address: self.address.clone(),
                limit: self.timeout,
            }),
            Ok(result) => result.map_err(|fault| self.error(fault)),
        }
    }

    async fn connect(&self) -> io::Result<Stream> {
        match &self.target {
            Target::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            Target::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                // Requests are written in whole pieces; no need to wait for coalescing.
                let _ = stream.set_nodelay(true);
                Ok(Stream::Tcp(stream))
            }
        }
    }

    /// Turns a fault met during an exchange into the public error.
    pub(crate) fn error(&self, fault: Fault) -> ScanError {
        let service = self.service;
        let address = self.address.clone();
        match fault {
            Fault::Io { doing, error } => ScanError::Io {
                service,
                address,
                detail: format!("connection lost while {doing}: {}", describe_io(&error)),
            },
            Fault::Closed => ScanError::Io {
                service,
                address,
                detail: "the connection was closed before a complete reply".to_string(),
            },
            Fault::Answered(message) => ScanError::Answered {
                service,
                address,
                message,
            },
            Fault::Protocol(detail) => ScanError::Protocol {
                service,
                address,
                detail,
            },
            Fault::TooLarge(limit) => ScanError::ReplyTooLarge {
                service,
                address,
                limit,
            },
        }
    }

    /// The error for a request the protocol cannot carry.
    pub(crate) fn invalid_request(&self, reason: String) -> ScanError {
        ScanError::InvalidRequest {
            service: self.service,
            address: self.address.clone(),
            reason,
        }
    }
}

/// The error for an unusable configuration.
pub(crate) fn config(service: &'static str, address: &str, reason: String) -> ScanError {
    ScanError::Config {
        service,
        address: address.to_string(),
        reason,
    }
}

/// What went wrong inside an exchange, before the endpoint names it.
#[derive(Debug)]
pub(crate) enum Fault {
    Io {
        doing: &'static str,
        error: io::Error,
    },
    /// End of stream before the reply was complete.
    Closed,
    /// The scanner's own error text (already made printable).
    Answered(String),
    Protocol(String),
    TooLarge(usize),
}

impl Fault {
    /// A protocol fault quoting (at most 200 characters of) what was received.
    pub(crate) fn unexpected(what: &str, received: &[u8]) -> Fault {
        Fault::Protocol(format!("{what}: {:?}", printable(received, 200)))
    }
}

/// An error sentence for an admin, without the "(os error N)" tail.
pub(crate) fn describe_io(error: &io::Error) -> String {
    use io::ErrorKind::*;
    let text = match error.kind() {
        ConnectionRefused => "connection refused",
        NotFound => "no such socket",
        PermissionDenied => "permission denied",
        ConnectionReset => "connection reset by the scanner",
        ConnectionAborted => "connection aborted",
        BrokenPipe => "the scanner closed the connection",
        UnexpectedEof => "the scanner closed the connection before the end of its reply",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "address not available",
        TimedOut => "timed out",
        _ => {
            let text = error.to_string();
            return match text.find(" (os error") {
                Some(cut) => text[..cut].to_string(),
                None => text,
            };
        }
    };
    text.to_string()
}

/// A connection to a scanner over TCP or a unix-domain socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Sends the request and reads the reply at the same time.
///
/// A scanner may answer and close before it has read the whole request (clamd does when a
/// stream passes its StreamMaxLength; clamd(8), INSTREAM). Reading only after writing would
/// then meet a reset connection and lose that answer, so the reply is read concurrently and
/// wins over a failed write; a write error is reported only when no reply came.
pub(crate) async fn duplex<T, W, WF, R, RF>(stream: Stream, write: W, read: R) -> Result<T, Fault>
where
    W: FnOnce(WriteHalf<Stream>) -> WF,
    WF: Future<Output = io::Result<()>>,
    R: FnOnce(ReadHalf<Stream>) -> RF,
    RF: Future<Output = Result<T, Fault>>,
{
    let (reader, writer) = tokio::io::split(stream);
    let write = write(writer);
    let read = read(reader);
    tokio::pin!(write, read);
    let mut write_error = None;
    let mut writing = true;
    // At most two turns: the write ends once, then only the read is left.
    loop {
        tokio::select! {
            done = &mut write, if writing => {
                writing = false;
                if let Err(error) = done {
                    write_error = Some(error);
                }
            }
            result = &mut read => {
                return match (result, write_error) {
                    (Err(Fault::Io { .. } | Fault::Closed), Some(error)) => Err(Fault::Io {
                        doing: "sending the message",
                        error,
                    }),
                    (result, _) => result,
                };
            }
        }
    }
}

/// Reads until `complete` accepts what was read or the peer ends the stream, refusing more
/// than `max` bytes. Returns what was read; the caller checks it is whole.
pub(crate) async fn read_bounded<R, C>(
    reader: &mut R,
    max: usize,
    complete: C,
) -> Result<Vec<u8>, Fault>
where
    R: AsyncRead + Unpin,
    C: Fn(&[u8]) -> bool,
{
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    // Each turn adds at least one byte or returns, so at most `max` + 1 turns.
    loop {
        if !buf.is_empty() && complete(&buf) {
            return Ok(buf);
        }
        let n = reader.read(&mut chunk).await.map_err(|error| Fault::Io {
            doing: "reading the reply",
            error,
        })?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > max {
            return Err(Fault::TooLarge(max));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The position of the first CRLF CRLF, the end of a header block.
pub(crate) fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            Target::parse("unix:/run/clamav/clamd.ctl"),
            Ok(Target::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(
            Target::parse("/run/x.sock"),
            Ok(Target::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:3310"),
            Ok(Target::Tcp {
                host: "127.0.0.1".into(),
                port: 3310
            })
        );
        assert_eq!(
            Target::parse("scan.example.org:783"),
            Ok(Target::Tcp {
                host: "scan.example.org".into(),
                port: 783
            })
        );
        assert_eq!(
            Target::parse("tcp:[::1]:3310"),
            Ok(Target::Tcp {
                host: "::1".into(),
                port: 3310
            })
        );
    }

    #[test]
    fn bad_addresses_are_explained() {
        let cases = [
            ("unix:", "empty"),
            ("unix:run/x", "not absolute"),
            ("", "empty"),
            ("tcp:", "empty"),
            ("127.0.0.1", "port is missing"),
            ("127.0.0.1:0", "from 1 to 65535"),
            ("127.0.0.1:99999", "from 1 to 65535"),
            ("127.0.0.1:x", "from 1 to 65535"),
            ("::1:3310", "brackets"),
            ("[::1:3310", "does not close"),
            ("[zz]:1", "not an IPv6"),
            (":3310", "host name is missing"),
            ("bad host:1", "not a host name"),
        ];
        for (text, expected) in cases {
            let error = Target::parse(text).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn host_header() {
        assert_eq!(
            Target::parse("[::1]:80").map(|t| t.host_header()),
            Ok("[::1]:80".to_string())
        );
        assert_eq!(
            Target::parse("unix:/x").map(|t| t.host_header()),
            Ok("localhost".to_string())
        );
    }

    #[test]
    fn io_errors_read_plainly() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_io(&refused), "connection refused");
        let other = io::Error::other("strange");
        assert_eq!(describe_io(&other), "strange");
    }
}
