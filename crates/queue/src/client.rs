//! The SMTP client (RFC 5321) that hands queued messages to other servers: EHLO (HELO when
//! refused), STARTTLS when offered (RFC 3207; opportunistic unless the route requires it),
//! AUTH PLAIN to a smarthost (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME
//! (RFC 6152), SMTPUTF8 (RFC 6531), DSN parameters (RFC 3461), and one connection for several
//! messages.
//!
//! Invariants: every read has the timeout RFC 5321 §4.5.3.2 gives its stage; a reply is at
//! most 100 lines of at most 4096 octets; a failure says at which stage and whether it is
//! permanent (a 5xx reply) or temporary (4xx, network, TLS, timeouts).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

/// RFC 5321 §4.5.3.2 timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// §4.5.3.2.1 initial 220: 5 minutes.
    pub greeting: Duration,
    /// §4.5.3.2.2-3 MAIL, RCPT (and EHLO, STARTTLS, AUTH): 5 minutes.
    pub command: Duration,
    /// §4.5.3.2.4 DATA initiation: 2 minutes.
    pub data_start: Duration,
    /// §4.5.3.2.5 each block of data: 3 minutes.
    pub data_block: Duration,
    /// §4.5.3.2.6 the reply after the final dot: 10 minutes.
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_start: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

/// A reply: code and lines of text (without the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Where a connection or transaction failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The remote reply, when there was one.
    pub reply: Option<Reply>,
    /// What happened, for logs and the queue (`connect to ...: connection refused`).
    pub message: String,
    /// A 5xx: do not retry this recipient (or message).
    pub permanent: bool,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reply {
            Some(r) => write!(f, "{r} ({})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn temporary(message: impl Into<String>) -> Failure {
    Failure {
        reply: None,
        message: message.into(),
        permanent: false,
    }
}

fn refused(stage: &str, reply: Reply) -> Failure {
    Failure {
        permanent: reply.is_permanent(),
        message: format!("{stage} refused"),
        reply: Some(reply),
    }
}

/// How TLS is used on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS when offered, any certificate (RFC 7435 opportunistic security); clear text
    /// when not offered.
    Opportunistic,
    /// STARTTLS required, certificate verified for the host name.
    Required,
    /// TLS from the first byte (a smarthost on 465), certificate verified.
    Implicit,
}

/// What the connection needs besides the address.
#[derive(Clone)]
pub struct Settings {
    /// Our name in EHLO.
    pub helo: String,
    pub tls: TlsMode,
    /// Verifies certificates (Required, Implicit).
    pub verified: Arc<rustls::ClientConfig>,
    /// Accepts any certificate (Opportunistic).
    pub opportunistic: Arc<rustls::ClientConfig>,
    pub timeouts: Timeouts,
    /// The local address connections leave from (Postfix `smtp_bind_address`); None: the
    /// system's choice. Matters for SPF and reverse DNS on a machine with several addresses.
    pub source: Option<std::net::IpAddr>,
}

enum Stream {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<tokio_rustls::client::TlsStream<TcpStream>>>),
    /// Between the plain stream and the TLS one, or after a failed handshake.
    Gone,
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    pub pipelining: bool,
    pub size: Option<u64>,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub starttls: bool,
    pub chunking: bool,
    pub auth: Vec<String>,
}

impl Extensions {
    fn parse(reply: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => e.pipelining = true,
                "SIZE" => e.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
                "8BITMIME" => e.eight_bit = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "DSN" => e.dsn = true,
                "STARTTLS" => e.starttls = true,
                "CHUNKING" => e.chunking = true,
                "AUTH" => e.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
                _ => {}
            }
        }
        e
    }
}

/// A message to send on a connection.
pub struct Envelope<'a> {
    /// Reverse path, empty for the null sender.
    pub from: &'a str,
    pub recipients: &'a [RecipientParams<'a>],
    pub envid: Option<&'a str>,
    pub ret_full: Option<bool>,
    pub eight_bit: bool,
    pub smtputf8: bool,
}

pub struct RecipientParams<'a> {
    pub address: &'a str,
    pub notify: &'a [String],
    pub orcpt: Option<&'a str>,
}

/// The outcome of one transaction: per recipient, the RCPT reply (accepted recipients then
/// share the final reply).
#[derive(Debug)]
pub struct Sent {
    pub rcpt: Vec<Result<Reply, Reply>>,
    /// The reply after the data, when at least one recipient was accepted.
    pub data: Option<Reply>,
}

pub struct Connection {
    stream: Stream,
    pub extensions: Extensions,
    /// `name [address]`, for logs and the queue.
    pub peer: String,
    pub tls: bool,
    timeouts: Timeouts,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, and upgrades to TLS as the settings ask.
    /// `name` is the server's host name (for SNI and certificate checks).
    pub async fn open(
        addr: std::net::SocketAddr,
        name: &str,
        settings: &Settings,
    ) -> Result<Connection, Failure> {
        let peer = format!("{name} [{}]:{}", addr.ip(), addr.port());
        let t = settings.timeouts;
        let connect = async {
            match settings.source {
                None => TcpStream::connect(addr).await,
                Some(ip) => {
                    let socket = if ip.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()?
                    } else {
                        tokio::net::TcpSocket::new_v6()?
                    };
                    // Another family than the source: the system picks (no error).
                    if ip.is_ipv4() == addr.is_ipv4() {
                        socket.bind(std::net::SocketAddr::new(ip, 0))?;
                        socket.connect(addr).await
                    } else {
                        TcpStream::connect(addr).await
                    }
                }
            }
        };
        let tcp = match tokio::time::timeout(t.connect, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(temporary(format!("connect to {peer}: {e}"))),
            Err(_) => {
                return Err(temporary(format!(
                    "connect to {peer}: connection timed out"
                )));
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut conn = Connection {
            stream: Stream::Plain(BufReader::new(tcp)),
            extensions: Extensions::default(),
            peer,
            tls: false,
            timeouts: t,
        };
        if settings.tls == TlsMode::Implicit {
            conn.upgrade(name, settings.verified.clone()).await?;
        }
        let greeting = conn.reply(t.greeting).await?;
        if greeting.code != 220 {
            return Err(refused("greeting", greeting));
        }
        conn.hello(&settings.helo).await?;
        match settings.tls {
            TlsMode::Implicit => {}
            TlsMode::Opportunistic if !conn.extensions.starttls => {}
            TlsMode::Required if !conn.extensions.starttls => {
                return Err(temporary(format!(
                    "{}: STARTTLS is required for this route and the server does not offer it",
                    conn.peer
                )));
            }
            mode => {
                let reply = conn.command("STARTTLS", t.command).await?;
                if reply.code != 220 {
                    if mode == TlsMode::Required {
                        return Err(refused("STARTTLS", reply));
                    }
                } else {
                    let config = if mode == TlsMode::Required {
                        settings.verified.clone()
                    } else {
                        settings.opportunistic.clone()
                    };
                    conn.upgrade(name, config).await?;
                    // RFC 3207 §4.2: start over with EHLO.
                    conn.hello(&settings.helo).await?;
                }
            }
        }
        Ok(conn)
    }

    async fn hello(&mut self, helo: &str) -> Result<(), Failure> {
        let t = self.timeouts.command;
        let reply = self.command(&format!("EHLO {helo}"), t).await?;
        if reply.code == 250 {
            self.extensions = Extensions::parse(&reply);
            return Ok(());
        }
        // RFC 5321 §3.2: a server that does not know EHLO gets HELO.
        let reply = self.command(&format!("HELO {helo}"), t).await?;
        if reply.code != 250 {
            return Err(refused("HELO", reply));
        }
        self.extensions = Extensions::default();
        Ok(())
    }

    async fn upgrade(
        &mut self,
        name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<(), Failure> {
        let Stream::Plain(reader) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(temporary("TLS already active"));
        };
        let tcp = reader.into_inner();
        let server = rustls::pki_types::ServerName::try_from(name.to_string())
            .map_err(|_| temporary(format!("{name} is not a valid TLS server name")))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(self.timeouts.command, connector.connect(server, tcp))
            .await
            .map_err(|_| temporary(format!("{}: TLS handshake timed out", self.peer)))?
            .map_err(|e| temporary(format!("{}: TLS handshake failed: {e}", self.peer)))?;
        self.stream = Stream::Tls(Box::new(BufReader::new(tls)));
        self.tls = true;
        Ok(())
    }

    /// AUTH PLAIN (RFC 4616) with an initial response; only inside TLS.
    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), Failure> {
        if !self.tls {
            return Err(temporary(format!(
                "{}: refusing to send the relay password without TLS",
                self.peer
            )));
        }
        let token =
            facteur_directory::sasl::encode_base64(format!("\0{user}\0{password}").as_bytes());
        let reply = self
            .command(&format!("AUTH PLAIN {token}"), self.timeouts.command)
            .await?;
        if reply.code != 235 {
            return Err(refused("AUTH", reply));
        }
        Ok(())
    }

    /// One transaction. Recipients are refused one by one; the message goes when at least one
    /// is accepted.
    pub async fn send(&mut self, env: &Envelope<'_>, body: &[u8]) -> Result<Sent, Failure> {
        let t = self.timeouts;
        // RFC 6152 §3: to a server without 8BITMIME, 8-bit bodies are re-encoded in 7 bits.
        let converted;
        let body = if !self.extensions.eight_bit && !body.is_ascii() {
            match crate::downgrade::to_seven_bit(body) {
                Some(seven) => {
                    converted = seven;
                    &converted[..]
                }
                None => body,
            }
        } else {
            body
        };
        let e = &self.extensions;
        if env.smtputf8 && !e.smtputf8 {
            // RFC 6531 §3.2: no way to downgrade the addresses: a permanent failure.
            return Err(Failure {
                reply: None,
                message: format!(
                    "{}: the message needs SMTPUTF8, which the server does not offer (5.6.7)",
                    self.peer
                ),
                permanent: true,
            });
        }
        if let Some(max) = e.size
            && body.len() as u64 > max
        {
            return Err(Failure {
                reply: None,
                message: format!(
                    "{}: the message ({} bytes) exceeds the server's SIZE {max} (5.3.4)",
                    self.peer,
                    body.len()
                ),
                permanent: true,
            });
        }
        let mut mail = format!("MAIL FROM:<{}>", env.from);
        if e.size.is_some() {
            mail.push_str(&format!(" SIZE={}", body.len()));
        }
        if env.eight_bit && e.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if env.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if e.dsn {
            if let Some(ret) = env.ret_full {
                mail.push_str(if ret { " RET=FULL" } else { " RET=HDRS" });
            }
            if let Some(id) = env.envid {
                mail.push_str(&format!(" ENVID={id}"));
            }
        }
        let mut commands = vec![(mail, t.command)];
        for r in env.recipients {
            let mut rcpt = format!("RCPT TO:<{}>", r.address);
            if e.dsn {
                if !r.notify.is_empty() {
                    rcpt.push_str(&format!(" NOTIFY={}", r.notify.join(",")));
                }
                if let Some(o) = r.orcpt {
                    rcpt.push_str(&format!(" ORCPT={o}"));
                }
            }
            commands.push((rcpt, t.command));
        }
        // RFC 3030: with CHUNKING the message goes in one BDAT after the recipients, as it is
        // (no dot-stuffing); otherwise DATA.
        let chunking = e.chunking;
        if !chunking {
            commands.push(("DATA".into(), t.data_start));
        }
        let last_rcpt = if chunking {
            usize::MAX
        } else {
            commands.len() - 2
        };
        let replies = if e.pipelining {
            // RFC 2920 §3.1: MAIL, RCPTs and DATA in one group, replies in order.
            let mut out = String::new();
            for (c, _) in &commands {
                out.push_str(c);
                out.push_str("\r\n");
            }
            self.write(out.as_bytes(), t.command).await?;
            let mut replies = Vec::with_capacity(commands.len());
            for (_, timeout) in &commands {
                replies.push(self.reply(*timeout).await?);
            }
            replies
        } else {
            let mut replies = Vec::with_capacity(commands.len());
            for (i, (c, timeout)) in commands.iter().enumerate() {
                let reply = self.command(c, *timeout).await?;
                let stop = (i == 0 && !reply.is_positive())
                    || (i == last_rcpt
                        && !replies
                            .iter()
                            .skip(1)
                            .chain([&reply])
                            .any(|r: &Reply| r.is_positive()));
                replies.push(reply);
                if stop {
                    break;
                }
            }
            replies
        };
        let mail_reply = &replies[0];
        if !mail_reply.is_positive() {
            let failure = refused("MAIL FROM", mail_reply.clone());
            if replies.len() == commands.len() && replies.last().is_some_and(|r| r.code == 354) {
                // A pipelining server said 354 anyway: end the data phase empty.
                self.write(b".\r\n", t.data_block).await?;
                let _ = self.reply(t.data_end).await;
            }
            self.reset().await;
            return Err(failure);
        }
        let rcpt: Vec<Result<Reply, Reply>> = (0..env.recipients.len())
            .map(|i| match replies.get(1 + i) {
                Some(r) if r.is_positive() => Ok(r.clone()),
                Some(r) => Err(r.clone()),
                None => Err(Reply {
                    code: 451,
                    lines: vec!["not tried".into()],
                }),
            })
            .collect();
        let accepted = rcpt.iter().any(Result::is_ok);
        if chunking {
            if !accepted {
                self.reset().await;
                return Ok(Sent { rcpt, data: None });
            }
            self.write(
                format!("BDAT {} LAST\r\n", body.len()).as_bytes(),
                t.data_block,
            )
            .await?;
            for chunk in body.chunks(64 * 1024) {
                self.write(chunk, t.data_block).await?;
            }
            let end = self.reply(t.data_end).await?;
            return Ok(Sent {
                rcpt,
                data: Some(end),
            });
        }
        let data_reply = replies.get(commands.len() - 1);
        match data_reply {
            Some(r) if r.code == 354 && accepted => {}
            Some(r) if r.code == 354 => {
                // RFC 2920 §3.1: no valid recipient but DATA accepted: send an empty message
                // end so the server aborts nothing we care about.
                self.write(b".\r\n", t.data_block).await?;
                let _ = self.reply(t.data_end).await;
                return Ok(Sent { rcpt, data: None });
            }
            Some(r) if accepted => {
                self.reset().await;
                return Err(refused("DATA", r.clone()));
            }
            _ => {
                self.reset().await;
                return Ok(Sent { rcpt, data: None });
            }
        }
        let stuffed = dot_stuff(body);
        for chunk in stuffed.chunks(64 * 1024) {
            self.write(chunk, t.data_block).await?;
        }
        let end = self.reply(t.data_end).await?;
        Ok(Sent {
            rcpt,
            data: Some(end),
        })
    }

    /// RSET after a failed transaction; errors ignored (the connection will be dropped).
    async fn reset(&mut self) {
        let _ = self.command("RSET", self.timeouts.command).await;
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT", Duration::from_secs(10)).await;
    }

    async fn command(&mut self, line: &str, timeout: Duration) -> Result<Reply, Failure> {
        self.write(format!("{line}\r\n").as_bytes(), timeout)
            .await?;
        self.reply(timeout).await
    }

    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), Failure> {
        let peer = &self.peer;
        let io = async {
            match &mut self.stream {
                Stream::Plain(s) => {
                    s.get_mut().write_all(bytes).await?;
                    s.get_mut().flush().await
                }
                Stream::Tls(s) => {
                    s.get_mut().write_all(bytes).await?;
                    s.get_mut().flush().await
                }
                Stream::Gone => Err(std::io::Error::other("connection lost")),
            }
        };
        match tokio::time::timeout(timeout, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(temporary(format!("{peer}: write failed: {e}"))),
            Err(_) => Err(temporary(format!("{peer}: write timed out"))),
        }
    }

    /// Reads one reply (RFC 5321 §4.2.1: `250-` continues, `250 ` ends).
    async fn reply(&mut self, timeout: Duration) -> Result<Reply, Failure> {
        let peer = self.peer.clone();
        let read = async {
            let mut lines = Vec::new();
            loop {
                let line = match &mut self.stream {
                    Stream::Plain(s) => read_line(s).await,
                    Stream::Tls(s) => read_line(s.as_mut()).await,
                    Stream::Gone => Err("connection lost".to_string()),
                }?;
                let code = line
                    .get(..3)
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| (200..600).contains(c))
                    .ok_or_else(|| format!("not an SMTP reply: {:?}", truncate(&line)))?;
                let more = line.as_bytes().get(3) == Some(&b'-');
                lines.push(line.get(4..).unwrap_or("").to_string());
                if !more {
                    return Ok(Reply { code, lines });
                }
                if lines.len() >= MAX_LINES {
                    return Err("reply of more than 100 lines".to_string());
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(temporary(format!("{peer}: {e}"))),
            Err(_) => Err(temporary(format!(
                "{peer}: no reply within {} s",
                timeout.as_secs()
            ))),
        }
    }
}

/// Opportunistic TLS (RFC 7435): encryption against passive eavesdroppers, any certificate
/// accepted, as MTAs do when the domain publishes no policy (MTA-STS, DANE).
pub fn opportunistic_tls() -> Arc<rustls::ClientConfig> {
    Arc::new(facteur_net::tls::any_certificate_client())
}

/// Verified TLS: the system's root certificates, plus `extra_ca` (PEM) when given.
pub fn verified_tls(
    extra_ca: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<String, String> {
    let mut raw = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut raw)
        .await
        .map_err(|e| format!("read failed: {e}"))?;
    if n == 0 {
        return Err("connection closed by the server".into());
    }
    if !raw.ends_with(b"\n") {
        return Err("reply line longer than 4096 octets".into());
    }
    Ok(String::from_utf8_lossy(&raw).trim_end().to_string())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// RFC 5321 §4.5.2: a line starting with "." gets another; the data ends with CRLF "." CRLF.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_end() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n..c"), b"..a\r\nb\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n.\r\n");
    }

    #[test]
    fn extensions_from_ehlo() {
        let r = Reply {
            code: 250,
            lines: vec![
                "mx.example greets you".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
                "8BITMIME".into(),
                "STARTTLS".into(),
                "AUTH PLAIN login".into(),
                "DSN".into(),
            ],
        };
        let e = Extensions::parse(&r);
        assert!(e.pipelining && e.eight_bit && e.starttls && e.dsn && !e.smtputf8);
        assert_eq!(e.size, Some(1000));
        assert_eq!(e.auth, ["PLAIN", "LOGIN"]);
    }
}
