//! Failures to reach a scanner, for the three clients: refused, missing socket, no connection
//! made in time, a scanner that never answers.

mod common;

use common::{TempDir, free_port};
use facteur_scan::{Clamd, Rspamd, RspamdMeta, ScanError, Spamd};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn connection_refused_reads_plainly() {
    let port = free_port();
    let clamd = Clamd::parse(&format!("tcp:127.0.0.1:{port}"), 5 * SECOND).expect("address");
    assert_eq!(
        clamd.scan(b"x").await.expect_err("refused").to_string(),
        format!("clamd at tcp:127.0.0.1:{port}: connection refused")
    );
    let spamd = Spamd::parse(&format!("127.0.0.1:{port}"), 5 * SECOND).expect("address");
    assert_eq!(
        spamd
            .check(b"x", None)
            .await
            .expect_err("refused")
            .to_string(),
        format!("spamd at 127.0.0.1:{port}: connection refused")
    );
    let rspamd = Rspamd::parse(&format!("http://127.0.0.1:{port}"), 5 * SECOND).expect("url");
    let error = rspamd
        .check(b"x", &RspamdMeta::default())
        .await
        .expect_err("refused");
    assert!(matches!(error, ScanError::Connect { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("rspamd at http://127.0.0.1:{port}: connection refused")
    );
}

#[tokio::test]
async fn missing_unix_socket_and_stale_socket_file() {
    let dir = TempDir::new("connect");
    let missing = dir.path().join("clamd.ctl");
    let clamd = Clamd::parse(&format!("unix:{}", missing.display()), 5 * SECOND).expect("address");
    assert_eq!(
        clamd.ping().await.expect_err("missing").to_string(),
        format!("clamd at unix:{}: no such socket", missing.display())
    );
    // A socket file nobody listens on any more.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let clamd = Clamd::parse(&format!("unix:{}", stale.display()), 5 * SECOND).expect("address");
    assert_eq!(
        clamd.ping().await.expect_err("stale").to_string(),
        format!("clamd at unix:{}: connection refused", stale.display())
    );
}

#[tokio::test]
async fn silent_clamd_times_out() {
    // Accepts, keeps the connection open, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    });
    let clamd = Clamd::parse(&addr.to_string(), Duration::from_millis(300)).expect("address");
    let started = Instant::now();
    let error = clamd.scan(b"hello").await.expect_err("timeout");
    assert_eq!(
        error.to_string(),
        format!("clamd at {addr}: no answer within 300 ms")
    );
    assert!(error.is_timeout());
    assert!(
        started.elapsed() < 3 * SECOND,
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connection
/// attempt hangs until the client gives up.
fn saturated_listener() -> Option<(std::net::TcpListener, SocketAddr, Vec<std::net::TcpStream>)> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind("127.0.0.1:0".parse().ok()?).ok()?;
    let std_listener = {
        let listener = socket.listen(1).ok()?;
        listener.into_std().ok()?
    };
    let addr = std_listener.local_addr().ok()?;
    let mut held = Vec::new();
    // Bounded: a handful of connections fills a backlog of one.
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => held.push(stream),
            Err(_) => return Some((std_listener, addr, held)),
        }
    }
    None
}

#[tokio::test]
async fn connect_timeout_when_the_scanner_never_accepts() {
    let (_listener, addr, _held) =
        saturated_listener().expect("the kernel drops connections beyond a full listen backlog");
    let rspamd = Rspamd::parse(&format!("http://{addr}"), 5 * SECOND)
        .expect("url")
        .with_connect_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = rspamd
        .check(b"x", &RspamdMeta::default())
        .await
        .expect_err("timeout");
    assert!(
        matches!(error, ScanError::ConnectTimeout { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("rspamd at http://{addr}: could not connect within 300 ms")
    );
    assert!(
        started.elapsed() < 3 * SECOND,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn bad_configuration_is_refused_with_reasons() {
    let error = Clamd::parse("unix:", SECOND).expect_err("empty path");
    assert_eq!(
        error.to_string(),
        "clamd at \"unix:\" cannot be used: the socket path is empty"
    );
    let error = Spamd::parse("127.0.0.1:783", Duration::ZERO).expect_err("zero timeout");
    assert_eq!(
        error.to_string(),
        "spamd at \"127.0.0.1:783\" cannot be used: the timeout is zero"
    );
    let error = Rspamd::parse("https://127.0.0.1:11334", SECOND).expect_err("https");
    assert!(
        error.to_string().contains("https is not supported"),
        "{error}"
    );
}
