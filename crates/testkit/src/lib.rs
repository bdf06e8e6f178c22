//! Plays transcript files against a running server over TCP (and TLS after STARTTLS/STLS, or
//! from the start for implicit-TLS roles). One format for every protocol:
//!
//! - `C: text`   send text + CRLF;        `R: text` send text with \r \n \t \\ escapes, no CRLF;
//! - `L: N c`    send N times the character c (no CRLF);
//! - `S: text`   the next line is exactly text;    `S~ prefix` it starts with prefix;
//! - `S* prefix` SMTP multi-line reply: lines until one without '-' after the code, which
//!   must start with prefix;
//! - `tls`       TLS handshake on the connection;  `closed` the server closed the connection;
//! - `# ...`     comment; any other line is handed to the caller's `custom` hook (role
//!   selection, store assertions), which panics on what it does not know.
#![forbid(unsafe_code)]

pub mod dns;
pub mod pebble;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(10);

pub enum Client {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream>>),
    Gone,
}

/// How to reach the server and trust its certificate.
pub struct Target<'a> {
    pub addr: SocketAddr,
    /// PEM certificate the TLS client trusts (the server's self-signed one).
    pub cert: &'a Path,
    pub server_name: &'a str,
    /// Start with TLS (pop3s, submissions, imaps).
    pub implicit_tls: bool,
}

impl Client {
    pub async fn connect(target: &Target<'_>) -> Client {
        let tcp = TcpStream::connect(target.addr)
            .await
            .expect("connect to the server");
        if target.implicit_tls {
            Client::Tls(Box::new(BufReader::new(tls(tcp, target).await)))
        } else {
            Client::Plain(BufReader::new(tcp))
        }
    }

    /// Reads one line with its line ending; None at end of stream.
    pub async fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = match self {
            Client::Plain(s) => tokio::time::timeout(WAIT, s.read_line(&mut line)).await,
            Client::Tls(s) => tokio::time::timeout(WAIT, s.read_line(&mut line)).await,
            Client::Gone => return None,
        };
        match read.expect("no reply within the wait") {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    /// Reads one line, checks it ends with CRLF, returns it without.
    pub async fn line(&mut self, ctx: &str) -> String {
        let line = self
            .read_line()
            .await
            .unwrap_or_else(|| panic!("{ctx}: connection closed"));
        assert!(line.ends_with("\r\n"), "{ctx}: line without CRLF: {line:?}");
        line.trim_end_matches("\r\n").to_string()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        match self {
            Client::Plain(s) => s.get_mut().write_all(bytes).await.expect("send"),
            Client::Tls(s) => {
                s.get_mut().write_all(bytes).await.expect("send");
                s.get_mut().flush().await.expect("send");
            }
            Client::Gone => panic!("not connected"),
        }
    }

    pub async fn start_tls(&mut self, target: &Target<'_>, ctx: &str) {
        let Client::Plain(reader) = std::mem::replace(self, Client::Gone) else {
            panic!("{ctx}: TLS is already active")
        };
        assert!(
            reader.buffer().is_empty(),
            "{ctx}: server sent bytes before the handshake"
        );
        *self = Client::Tls(Box::new(BufReader::new(
            tls(reader.into_inner(), target).await,
        )));
    }
}

async fn tls(tcp: TcpStream, target: &Target<'_>) -> TlsStream {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls::pki_types::CertificateDer::from_pem_file(target.cert)
                .expect("server certificate"),
        )
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(target.server_name.to_string())
        .expect("server name");
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake")
}

/// A TLS client configuration that accepts any server certificate, for tests that check which
/// certificate they were given (issuer, serial) rather than whether it chains to a root.
pub fn accept_any() -> rustls::ClientConfig {
    facteur_net::tls::any_certificate_client()
}

/// The leaf certificate an implicit-TLS server at `addr` presents for SNI `name`.
pub async fn leaf_certificate(
    addr: SocketAddr,
    name: &str,
) -> rustls::pki_types::CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(accept_any()));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    let tls = tokio::time::timeout(WAIT, connector.connect(server, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake");
    tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone()
}

/// Decodes `\r`, `\n`, `\t`, `\\`.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            other => panic!("bad escape \\{other:?}"),
        }
    }
    out
}

/// Plays `text` (`name` prefixes failure messages); `custom` receives the words of any other
/// directive and the position for its messages.
pub async fn play<F>(name: &str, text: &str, target: &Target<'_>, mut custom: F)
where
    F: FnMut(&[&str], &str),
{
    let mut client = Client::connect(target).await;
    for (n, raw) in text.lines().enumerate() {
        let ctx = format!("{name}:{}: {raw}", n + 1);
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (op, arg) = line.split_at(2.min(line.len()));
        let arg = arg.strip_prefix(' ').unwrap_or(arg);
        match op {
            "C:" => client.send(format!("{arg}\r\n").as_bytes()).await,
            "R:" => client.send(&unescape(arg)).await,
            "L:" => {
                let (count, c) = arg.split_once(' ').expect("L: N c");
                client
                    .send(c.repeat(count.parse().expect("count")).as_bytes())
                    .await;
            }
            "S:" => assert_eq!(client.line(&ctx).await, arg, "{ctx}"),
            "S~" => {
                let got = client.line(&ctx).await;
                assert!(got.starts_with(arg), "{ctx}: got {got:?}");
            }
            "S*" => loop {
                let got = client.line(&ctx).await;
                if got.as_bytes().get(3) != Some(&b'-') {
                    assert!(got.starts_with(arg), "{ctx}: last line {got:?}");
                    break;
                }
            },
            _ => match line {
                "tls" => client.start_tls(target, &ctx).await,
                "closed" => {
                    let rest = client.read_line().await;
                    assert!(rest.is_none(), "{ctx}: expected close, got {rest:?}");
                }
                _ => custom(&line.split(' ').collect::<Vec<_>>(), &ctx),
            },
        }
    }
}
