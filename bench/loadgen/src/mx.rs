//! `facteur-loadgen mx [--source IP] ADDR HELO FROM CLIENTS MESSAGES SECONDS PER_CONN FILE RCPT...`
//!
//! Mail from another MTA to an MX, in cleartext on loopback: the same message, FILE's content
//! as it is (a DKIM-signed message stays valid: nothing is added), sent again and again. Each
//! connection: greeting, EHLO HELO, then PER_CONN times MAIL FROM:<FROM>, RCPT TO:<RCPT>, DATA
//! with FILE's content (bare LF made CRLF, lines starting with a dot doubled, a final CRLF
//! added when missing, then the terminating dot), and QUIT. One command at a time, no
//! PIPELINING, no AUTH. Client i sends to RCPT[i % count]. CLIENTS connections run in
//! parallel. `--source IP`: connections leave from that local address (the server sees it as
//! the client's) instead of the one the system chooses.
//!
//! Bounded as `submission`: stops starting connections once MESSAGES messages are started or
//! SECONDS have passed; every read has a 30 s timeout. Prints one line as the other modes do:
//! messages, connections, seconds, messages per second, latency p50/p99/max in ms (from TCP
//! connect for the first message of a connection, from MAIL for the next ones, to the 250
//! after DATA), errors, `tls=none`. Exit status 1 when any session failed (the first errors go
//! to stderr).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::Result;
use crate::submission::{command, reply};

struct Shared {
    addr: String,
    source: Option<std::net::IpAddr>,
    helo: String,
    from: String,
    messages: u64,
    per_conn: u64,
    deadline: Instant,
    /// FILE's content ready to follow DATA: CRLF, dot-stuffed, with the final ".\r\n".
    data: Vec<u8>,
    started: AtomicU64,
    errors: AtomicU64,
}

pub async fn main(args: &[String]) -> Result<()> {
    let (source, args) = match args {
        [mode, flag, ip, rest @ ..] if flag == "--source" => (Some(ip.parse::<std::net::IpAddr>()?), [&[mode.clone()][..], rest].concat()),
        _ => (None, args.to_vec()),
    };
    let [_, addr, helo, from, clients, messages, seconds, per_conn, file, rcpts @ ..] = args.as_slice() else {
        eprintln!("usage: facteur-loadgen mx [--source IP] ADDR HELO FROM CLIENTS MESSAGES SECONDS PER_CONN FILE RCPT...");
        std::process::exit(2);
    };
    if rcpts.is_empty() {
        return Err("at least one RCPT".into());
    }
    let (clients, messages, seconds, per_conn): (usize, u64, u64, u64) =
        (clients.parse()?, messages.parse()?, seconds.parse()?, per_conn.parse()?);
    let content = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let shared = Arc::new(Shared {
        addr: addr.clone(),
        source,
        helo: helo.clone(),
        from: from.clone(),
        messages,
        per_conn: per_conn.max(1),
        deadline: Instant::now() + Duration::from_secs(seconds),
        data: stuffed(&content),
        started: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (shared, rcpt) = (shared.clone(), rcpts[i % rcpts.len()].clone());
        tasks.push(tokio::spawn(async move { client(&shared, &rcpt, i).await }));
    }
    let (mut done, mut conns, mut lat) = (0u64, 0u64, Vec::new());
    for t in tasks {
        let (m, c, l) = t.await?;
        done += m;
        conns += c;
        lat.extend(l);
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| if lat.is_empty() { 0.0 } else { lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] * 1000.0 };
    let errors = shared.errors.load(Ordering::Relaxed);
    println!(
        "messages={done} connections={conns} seconds={secs:.3} msg_per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={errors} tls=none",
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

/// The DATA payload for `content`: every line ended by CRLF (a bare LF becomes CRLF, a CR
/// already before LF stays single), a leading dot doubled (RFC 5321 §4.5.2), then ".\r\n".
fn stuffed(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 8);
    let mut at_line_start = true;
    for (i, &b) in content.iter().enumerate() {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        at_line_start = false;
        if b == b'\n' {
            if i == 0 || content[i - 1] != b'\r' {
                out.push(b'\r');
            }
            at_line_start = true;
        }
        out.push(b);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Sessions one after the other until the run is over: (messages, connections, latencies).
async fn client(s: &Shared, rcpt: &str, id: usize) -> (u64, u64, Vec<f64>) {
    let (mut messages, mut connections, mut latencies) = (0, 0, Vec::new());
    loop {
        if Instant::now() >= s.deadline {
            break;
        }
        let before = s.started.fetch_add(s.per_conn, Ordering::Relaxed);
        if before >= s.messages {
            break;
        }
        let n = s.per_conn.min(s.messages - before);
        connections += 1;
        if let Err(e) = session(s, rcpt, n, &mut messages, &mut latencies).await
            && s.errors.fetch_add(1, Ordering::Relaxed) < 5
        {
            eprintln!("client {id} ({rcpt}): {e}");
        }
    }
    (messages, connections, latencies)
}

async fn session(s: &Shared, rcpt: &str, n: u64, messages: &mut u64, latencies: &mut Vec<f64>) -> Result<()> {
    let t0 = Instant::now();
    let tcp = match s.source {
        None => TcpStream::connect(&s.addr).await?,
        Some(ip) => {
            let to: std::net::SocketAddr = s.addr.parse()?;
            let socket = if ip.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
            socket.connect(to).await?
        }
    };
    tcp.set_nodelay(true)?;
    let mut c = BufReader::with_capacity(16 * 1024, tcp);
    let mut buf = String::new();
    reply(&mut c, &mut buf, 220, "greeting").await?;
    command(&mut c, &mut buf, &format!("EHLO {}\r\n", s.helo), 250, "EHLO").await?;
    for i in 0..n {
        let start = if i == 0 { t0 } else { Instant::now() };
        command(&mut c, &mut buf, &format!("MAIL FROM:<{}>\r\n", s.from), 250, "MAIL").await?;
        command(&mut c, &mut buf, &format!("RCPT TO:<{rcpt}>\r\n"), 250, "RCPT").await?;
        command(&mut c, &mut buf, "DATA\r\n", 354, "DATA").await?;
        c.get_mut().write_all(&s.data).await?;
        c.get_mut().flush().await?;
        reply(&mut c, &mut buf, 250, "end of DATA").await?;
        latencies.push(start.elapsed().as_secs_f64());
        *messages += 1;
    }
    command(&mut c, &mut buf, "QUIT\r\n", 221, "QUIT").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::stuffed;

    #[test]
    fn crlf_and_dots() {
        assert_eq!(stuffed(b"a\nb\r\n.c\n..d"), b"a\r\nb\r\n..c\r\n...d\r\n.\r\n");
        assert_eq!(stuffed(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
    }
}
