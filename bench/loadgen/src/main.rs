//! `facteur-loadgen pop3 ADDR PASSWORD CLIENTS USER...`: each client logs in as one user (round
//! robin), retrieves every message with pipelined RETR commands (RFC 2449 PIPELINING) and
//! quits without deleting. Prints one line: messages, bytes, seconds, messages per second.
//!
//! Bounded: every read has a timeout; the run stops with an error after 10 minutes.
//!
//! `facteur-loadgen submission|submissions ...`: authenticated message submission over TLS;
//! `facteur-loadgen relay ...`: the same in cleartext, to a fixed recipient (relaying); see
//! `submission.rs`.
//!
//! `facteur-loadgen mx ...`: another MTA sending one file (a DKIM-signed message, say) as the
//! content of every message to an MX, in cleartext, without AUTH; see `mx.rs`.

use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod mx;
mod submission;

const WINDOW: usize = 16;
const READ_TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if matches!(args.get(1).map(String::as_str), Some("submission" | "submissions" | "relay")) {
        return submission::main(&args[1..]).await;
    }
    if args.get(1).map(String::as_str) == Some("mx") {
        return mx::main(&args[1..]).await;
    }
    let [_, proto, addr, password, clients, users @ ..] = args.as_slice() else {
        eprintln!("usage: facteur-loadgen pop3 ADDR PASSWORD CLIENTS USER...");
        eprintln!("       facteur-loadgen submission|submissions|relay ... (see --help of those)");
        eprintln!("       facteur-loadgen mx [--source IP] ADDR HELO FROM CLIENTS MESSAGES SECONDS PER_CONN FILE RCPT...");
        std::process::exit(2);
    };
    if proto != "pop3" || users.is_empty() {
        eprintln!("only `pop3` with at least one user is supported");
        std::process::exit(2);
    }
    let clients: usize = clients.parse()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (addr, user, password) = (addr.clone(), users[i % users.len()].clone(), password.clone());
        tasks.push(tokio::spawn(async move { pop3_client(&addr, &user, &password).await }));
    }
    let run = async {
        let mut total = (0u64, 0u64);
        for t in tasks {
            let (m, b) = t.await??;
            total.0 += m;
            total.1 += b;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total)
    };
    let (messages, bytes) = tokio::time::timeout(Duration::from_secs(600), run).await??;
    let secs = started.elapsed().as_secs_f64();
    println!("messages={messages} bytes={bytes} seconds={secs:.3} msg_per_s={:.0}", messages as f64 / secs);
    Ok(())
}

async fn line(r: &mut BufReader<TcpStream>, buf: &mut String) -> Result<()> {
    buf.clear();
    let n = tokio::time::timeout(READ_TIMEOUT, r.read_line(buf)).await??;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(())
}

async fn expect_ok(r: &mut BufReader<TcpStream>, buf: &mut String, what: &str) -> Result<()> {
    line(r, buf).await?;
    if !buf.starts_with("+OK") {
        return Err(format!("{what}: {}", buf.trim_end()).into());
    }
    Ok(())
}

/// Logs in, RETRs every message (WINDOW commands in flight), QUIT. Returns (messages, bytes).
async fn pop3_client(addr: &str, user: &str, password: &str) -> Result<(u64, u64)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = String::new();
    expect_ok(&mut r, &mut buf, "greeting").await?;
    r.get_mut().write_all(format!("USER {user}\r\nPASS {password}\r\nSTAT\r\n").as_bytes()).await?;
    expect_ok(&mut r, &mut buf, "USER").await?;
    expect_ok(&mut r, &mut buf, "PASS").await?;
    expect_ok(&mut r, &mut buf, "STAT").await?;
    let count: usize = buf.split_whitespace().nth(1).ok_or("STAT")?.parse()?;
    let (mut sent, mut received, mut bytes) = (0, 0, 0u64);
    while received < count {
        let mut batch = String::new();
        while sent < count && sent - received < WINDOW {
            sent += 1;
            batch.push_str(&format!("RETR {sent}\r\n"));
        }
        if !batch.is_empty() {
            r.get_mut().write_all(batch.as_bytes()).await?;
        }
        expect_ok(&mut r, &mut buf, "RETR").await?;
        loop {
            line(&mut r, &mut buf).await?;
            if buf == ".\r\n" {
                break;
            }
            bytes += buf.len() as u64;
        }
        received += 1;
    }
    r.get_mut().write_all(b"QUIT\r\n").await?;
    expect_ok(&mut r, &mut buf, "QUIT").await?;
    Ok((count as u64, bytes))
}
