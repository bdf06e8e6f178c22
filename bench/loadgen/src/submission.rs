//! `facteur-loadgen submission|submissions ADDR SERVER_NAME CA_FILE PASSWORD CLIENTS MESSAGES
//! SECONDS PER_CONN SIZE USER...`
//!
//! Authenticated message submission over TLS, as a mail client does it. `submission`: connect,
//! EHLO, STARTTLS, EHLO, AUTH PLAIN (initial response), then PER_CONN times MAIL FROM:<user>,
//! RCPT TO:<user>, DATA with a message of about SIZE bytes (From: and To: the user, Date,
//! Message-ID), and QUIT. `submissions`: the same over implicit TLS (RFC 8314), without STARTTLS
//! and the first EHLO. One command at a time, no PIPELINING. The certificate is verified against
//! CA_FILE for SERVER_NAME; TLS session resumption is off, so every connection makes a full
//! handshake. CLIENTS connections run in parallel, client i as USER[i % count].
//!
//! Bounded: stops starting connections once MESSAGES messages are started or SECONDS have
//! passed; every read has a 30 s timeout. Prints one line: messages, connections, seconds,
//! messages per second, latency p50/p99/max in ms (from TCP connect for the first message of a
//! connection, from MAIL for the next ones, to the 250 after DATA), errors, TLS version and
//! cipher. Exit status 1 when any session failed (the first errors go to stderr).
//!
//! `facteur-loadgen relay ADDR PASSWORD CLIENTS MESSAGES SECONDS PER_CONN SIZE RCPT USER...`:
//! the same sessions in cleartext, without STARTTLS (for relaying on loopback): AUTH PLAIN
//! after EHLO unless PASSWORD is `-`, and every message to RCPT instead of the user itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Result;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    addr: String,
    name: ServerName<'static>,
    /// None: the `relay` mode, cleartext.
    tls: Option<TlsConnector>,
    implicit: bool,
    /// None: no AUTH.
    password: Option<String>,
    /// Every message to this address instead of the user's own.
    rcpt: Option<String>,
    messages: u64,
    per_conn: u64,
    deadline: Instant,
    body: String,
    started: AtomicU64,
    errors: AtomicU64,
}

pub async fn main(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("relay") {
        let [_, addr, password, clients, messages, seconds, per_conn, size, rcpt, users @ ..] = args else {
            eprintln!("usage: facteur-loadgen relay ADDR PASSWORD|- CLIENTS MESSAGES SECONDS PER_CONN SIZE RCPT USER...");
            std::process::exit(2);
        };
        let password = (password != "-").then(|| password.clone());
        return run(addr, None, None, false, password, Some(rcpt.clone()), [clients, messages, seconds, per_conn, size], users).await;
    }
    let [mode, addr, name, ca, password, clients, messages, seconds, per_conn, size, users @ ..] = args else {
        eprintln!(
            "usage: facteur-loadgen submission|submissions ADDR SERVER_NAME CA_FILE PASSWORD CLIENTS MESSAGES SECONDS PER_CONN SIZE USER..."
        );
        std::process::exit(2);
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots.add(cert.map_err(|e| format!("{ca}: {e}"))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let tls = Some(TlsConnector::from(Arc::new(config)));
    run(addr, Some(name), tls, mode == "submissions", Some(password.clone()), None, [clients, messages, seconds, per_conn, size], users)
        .await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    addr: &str,
    name: Option<&String>,
    tls: Option<TlsConnector>,
    implicit: bool,
    password: Option<String>,
    rcpt: Option<String>,
    [clients, messages, seconds, per_conn, size]: [&String; 5],
    users: &[String],
) -> Result<()> {
    if users.is_empty() {
        return Err("at least one USER".into());
    }
    let (clients, messages, seconds, per_conn, size): (usize, u64, u64, u64, usize) =
        (clients.parse()?, messages.parse()?, seconds.parse()?, per_conn.parse()?, size.parse()?);
    let shared = Arc::new(Shared {
        addr: addr.to_string(),
        name: ServerName::try_from(name.cloned().unwrap_or_else(|| "localhost".into()))?,
        tls,
        implicit,
        password,
        rcpt,
        messages,
        per_conn: per_conn.max(1),
        deadline: Instant::now() + Duration::from_secs(seconds),
        body: body(size),
        started: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (shared, user) = (shared.clone(), users[i % users.len()].clone());
        tasks.push(tokio::spawn(async move { client(&shared, &user, i).await }));
    }
    let (mut done, mut conns, mut lat, mut cipher) = (0u64, 0u64, Vec::new(), String::new());
    for t in tasks {
        let r = t.await?;
        done += r.messages;
        conns += r.connections;
        lat.extend(r.latencies);
        if cipher.is_empty() {
            cipher = r.cipher;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| if lat.is_empty() { 0.0 } else { lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] * 1000.0 };
    let errors = shared.errors.load(Ordering::Relaxed);
    println!(
        "messages={done} connections={conns} seconds={secs:.3} msg_per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={errors} tls={cipher}",
        done as f64 / secs,
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// A text body of about `size` bytes in 76-character lines (the headers add about 250).
fn body(size: usize) -> String {
    let line = "The quick brown fox jumps over the lazy dog; submission benchmark text line.\r\n";
    let mut b = String::with_capacity(size + line.len());
    while b.len() + line.len() <= size.saturating_sub(250).max(line.len()) {
        b.push_str(line);
    }
    b
}

struct Outcome {
    messages: u64,
    connections: u64,
    latencies: Vec<f64>,
    cipher: String,
}

/// Sessions one after the other until the run is over; a failed session is counted and reported.
async fn client(s: &Shared, user: &str, id: usize) -> Outcome {
    let mut out = Outcome { messages: 0, connections: 0, latencies: Vec::new(), cipher: String::new() };
    let mut seq = 0u64;
    loop {
        if Instant::now() >= s.deadline {
            break;
        }
        let before = s.started.fetch_add(s.per_conn, Ordering::Relaxed);
        if before >= s.messages {
            break;
        }
        let n = s.per_conn.min(s.messages - before);
        out.connections += 1;
        match session(s, user, id, &mut seq, n, &mut out).await {
            Ok(()) => {}
            Err(e) => {
                if s.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("client {id} ({user}): {e}");
                }
            }
        }
    }
    out
}

async fn session(s: &Shared, user: &str, id: usize, seq: &mut u64, n: u64, out: &mut Outcome) -> Result<()> {
    let t0 = Instant::now();
    let tcp = TcpStream::connect(&s.addr).await?;
    tcp.set_nodelay(true)?;
    let Some(connector) = &s.tls else {
        let mut c = BufReader::with_capacity(16 * 1024, tcp);
        let mut buf = String::new();
        reply(&mut c, &mut buf, 220, "greeting").await?;
        if out.cipher.is_empty() {
            out.cipher = "none".into();
        }
        return transactions(s, &mut c, &mut buf, user, id, seq, n, t0, out).await;
    };
    let tcp = if s.implicit {
        tcp
    } else {
        let mut c = BufReader::new(tcp);
        let mut buf = String::new();
        reply(&mut c, &mut buf, 220, "greeting").await?;
        command(&mut c, &mut buf, "EHLO loadgen.test\r\n", 250, "EHLO").await?;
        command(&mut c, &mut buf, "STARTTLS\r\n", 220, "STARTTLS").await?;
        if !c.buffer().is_empty() {
            return Err("data after the STARTTLS reply".into());
        }
        c.into_inner()
    };
    let tls = connector.connect(s.name.clone(), tcp).await?;
    if out.cipher.is_empty() {
        let (_, conn) = tls.get_ref();
        out.cipher = format!(
            "{:?}/{:?}",
            conn.protocol_version().ok_or("no TLS version")?,
            conn.negotiated_cipher_suite().ok_or("no cipher suite")?.suite()
        );
    }
    let mut c = BufReader::with_capacity(16 * 1024, tls);
    let mut buf = String::new();
    if s.implicit {
        reply(&mut c, &mut buf, 220, "greeting").await?;
    }
    transactions(s, &mut c, &mut buf, user, id, seq, n, t0, out).await
}

/// EHLO, AUTH PLAIN (when there is a password), then `n` messages and QUIT.
#[allow(clippy::too_many_arguments)]
async fn transactions<S: AsyncRead + AsyncWrite + Unpin>(
    s: &Shared,
    c: &mut BufReader<S>,
    buf: &mut String,
    user: &str,
    id: usize,
    seq: &mut u64,
    n: u64,
    t0: Instant,
    out: &mut Outcome,
) -> Result<()> {
    command(c, buf, "EHLO loadgen.test\r\n", 250, "EHLO").await?;
    if let Some(password) = &s.password {
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        command(c, buf, &format!("AUTH PLAIN {token}\r\n"), 235, "AUTH PLAIN").await?;
    }
    let rcpt = s.rcpt.as_deref().unwrap_or(user);
    for i in 0..n {
        let start = if i == 0 { t0 } else { Instant::now() };
        command(c, buf, &format!("MAIL FROM:<{user}>\r\n"), 250, "MAIL").await?;
        command(c, buf, &format!("RCPT TO:<{rcpt}>\r\n"), 250, "RCPT").await?;
        command(c, buf, "DATA\r\n", 354, "DATA").await?;
        *seq += 1;
        let msg = format!(
            "From: <{user}>\r\nTo: <{rcpt}>\r\nSubject: submission benchmark {id}.{seq}\r\n\
             Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}.{seq}.{}@loadgen.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{}.\r\n",
            t0.elapsed().as_nanos(),
            s.body
        );
        command(c, buf, &msg, 250, "end of DATA").await?;
        out.latencies.push(start.elapsed().as_secs_f64());
        out.messages += 1;
    }
    command(c, buf, "QUIT\r\n", 221, "QUIT").await?;
    Ok(())
}

pub(crate) async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut BufReader<S>,
    buf: &mut String,
    line: &str,
    want: u16,
    what: &str,
) -> Result<()> {
    c.get_mut().write_all(line.as_bytes()).await?;
    c.get_mut().flush().await?;
    reply(c, buf, want, what).await
}

/// Reads a reply (its continuation lines too) and checks its code.
pub(crate) async fn reply<S: AsyncRead + AsyncWrite + Unpin>(c: &mut BufReader<S>, buf: &mut String, want: u16, what: &str) -> Result<()> {
    loop {
        buf.clear();
        let n = tokio::time::timeout(READ_TIMEOUT, c.read_line(buf)).await??;
        if n == 0 {
            return Err(format!("{what}: connection closed").into());
        }
        if buf.len() < 4 || !buf.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
            return Err(format!("{what}: bad reply {:?}", buf.trim_end()).into());
        }
        if buf.as_bytes()[3] == b'-' {
            continue;
        }
        let code: u16 = buf[..3].parse()?;
        if code != want {
            return Err(format!("{what}: {}", buf.trim_end()).into());
        }
        return Ok(());
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
