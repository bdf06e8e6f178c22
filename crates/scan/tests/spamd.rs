//! facteur-scan's spamd client against scripted servers speaking the SPAMC/SPAMD wire format
//! (spamd/PROTOCOL; the replies are those real spamd 4.0 sends), and against the real spamd
//! (Debian package spamd, with the rules shipped in spamassassin) when it is installed.

mod common;

use common::{Daemon, Reply, TempDir, free_port, interop_binary, received, serve_tcp, serve_unix};
use facteur_scan::{ScanError, Spamd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The GTUBE test message (SpamAssassin's "Generic Test for Unsolicited Bulk Email"), its
/// marker assembled at run time.
fn gtube() -> Vec<u8> {
    let marker = format!(
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*{}",
        "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    );
    format!(
        "Subject: Test spam mail (GTUBE)\r\nMessage-ID: <GTUBE1.1010101@example.net>\r\n\
         Date: Wed, 23 Jul 2003 23:30:00 +0200\r\nFrom: Sender <sender@example.net>\r\n\
         To: Recipient <recipient@example.net>\r\n\r\nThis is the GTUBE, the\r\n\tGeneric\r\n\
         \tTest for\r\n\tUnsolicited\r\n\tBulk\r\n\tEmail\r\n\r\n{marker}\r\n\r\n"
    )
    .into_bytes()
}

fn ham() -> Vec<u8> {
    b"Subject: lunch\r\nFrom: Alice <alice@example.net>\r\nTo: Bob <bob@example.net>\r\n\
      Date: Wed, 23 Jul 2003 23:30:00 +0200\r\nMessage-ID: <lunch-42@example.net>\r\n\r\n\
      Shall we meet at noon?\r\n"
        .to_vec()
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn fake_spamd_spam_verdict_and_request_format() {
    let reply = b"SPAMD/1.1 0 EX_OK\r\nContent-length: 27\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,NO_RECEIVED,NO_RELAYS";
    let (addr, server) = serve_tcp(Reply::Bytes(reply.to_vec())).await;
    let spamd = Spamd::parse(&format!("tcp:{addr}"), 5 * SECOND).expect("address");
    let message = gtube();
    let verdict = spamd.check(&message, Some("alice")).await.expect("verdict");
    assert!(verdict.spam);
    assert_eq!((verdict.score, verdict.threshold), (1000.0, 5.0));
    assert_eq!(verdict.symbols, ["GTUBE", "NO_RECEIVED", "NO_RELAYS"]);

    let request = received(server).await;
    assert_eq!(
        request.head,
        format!(
            "SYMBOLS SPAMC/1.5\r\nContent-length: {}\r\nUser: alice",
            message.len()
        )
    );
    assert_eq!(request.body, message);
    assert!(
        request.half_closed,
        "the client shuts down its side after the message"
    );
}

#[tokio::test]
async fn fake_spamd_ham_without_user() {
    // SYMBOLS replies from older servers end the list with CRLFs and may omit Content-length.
    let reply =
        b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.8 / 5.0\r\n\r\nMSGID_SHORT,NO_RECEIVED\r\n\r\n";
    let (addr, server) = serve_tcp(Reply::Bytes(reply.to_vec())).await;
    let spamd = Spamd::parse(&addr.to_string(), 5 * SECOND).expect("address");
    let verdict = spamd.check(&ham(), None).await.expect("verdict");
    assert!(!verdict.spam);
    assert_eq!((verdict.score, verdict.threshold), (-0.8, 5.0));
    assert_eq!(verdict.symbols, ["MSGID_SHORT", "NO_RECEIVED"]);
    let request = received(server).await;
    assert_eq!(
        request.headers(),
        [format!("Content-length: {}", ham().len())]
    );
}

#[tokio::test]
async fn fake_spamd_error_reply() {
    let reply = b"SPAMD/1.0 76 Bad header line: (Content-Length mismatch: Expected 5 bytes, got 2 bytes)\r\n";
    let (addr, server) = serve_tcp(Reply::Bytes(reply.to_vec())).await;
    let spamd = Spamd::parse(&addr.to_string(), 5 * SECOND).expect("address");
    let error = spamd.check(&ham(), None).await.expect_err("an error");
    assert!(matches!(error, ScanError::Answered { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "spamd at {addr} answered: Bad header line: (Content-Length mismatch: \
             Expected 5 bytes, got 2 bytes) (code 76 EX_PROTOCOL)"
        )
    );
    received(server).await;
}

#[tokio::test]
async fn fake_spamd_garbage_reply() {
    let (addr, server) =
        serve_tcp(Reply::Bytes(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec())).await;
    let spamd = Spamd::parse(&addr.to_string(), 5 * SECOND).expect("address");
    let error = spamd.check(&ham(), None).await.expect_err("an error");
    assert!(matches!(error, ScanError::Protocol { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with(&format!(
            "spamd at {addr} sent a reply that cannot be understood"
        )),
        "{error}"
    );
    received(server).await;
}

#[tokio::test]
async fn fake_spamd_closes_without_answering() {
    let (addr, server) = serve_tcp(Reply::Bytes(Vec::new())).await;
    let spamd = Spamd::parse(&addr.to_string(), 5 * SECOND).expect("address");
    let error = spamd.check(&ham(), None).await.expect_err("an error");
    assert_eq!(
        error.to_string(),
        format!("spamd at {addr}: the connection was closed before a complete reply")
    );
    received(server).await;
}

#[tokio::test]
async fn fake_spamd_silent_times_out() {
    let (addr, server) = serve_tcp(Reply::Silent).await;
    let spamd = Spamd::parse(&addr.to_string(), Duration::from_millis(300)).expect("address");
    let started = Instant::now();
    let error = spamd.check(&ham(), None).await.expect_err("a timeout");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("spamd at {addr}: no answer within 300 ms")
    );
    assert!(
        started.elapsed() < 3 * SECOND,
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}

#[tokio::test]
async fn fake_spamd_oversized_reply() {
    let head =
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 10000000\r\nSpam: True ; 9.0 / 5.0\r\n\r\n".to_vec();
    let (addr, server) = serve_tcp(Reply::Flood {
        head,
        total: 4 * 1024 * 1024,
    })
    .await;
    let spamd = Spamd::parse(&addr.to_string(), 5 * SECOND).expect("address");
    let error = spamd.check(&ham(), None).await.expect_err("too large");
    assert!(
        matches!(error, ScanError::ReplyTooLarge { limit: 65536, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("spamd at {addr} sent a reply longer than 65536 bytes")
    );
    received(server).await;
}

#[tokio::test]
async fn fake_spamd_over_unix_socket() {
    let dir = TempDir::new("spamd-unix");
    let path = dir.path().join("spamd.sock");
    let reply = b"SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 6.5 / 5.0\r\n\r\nA,B,C";
    let server = serve_unix(&path, Reply::Bytes(reply.to_vec()));
    let spamd = Spamd::parse(&format!("unix:{}", path.display()), 5 * SECOND).expect("address");
    let verdict = spamd
        .check(&ham(), Some("bob@example.net"))
        .await
        .expect("verdict");
    assert!(verdict.spam);
    assert_eq!(verdict.score, 6.5);
    assert_eq!(verdict.symbols, ["A", "B", "C"]);
    let request = received(server).await;
    assert!(
        request.headers().contains(&"User: bob@example.net"),
        "{request:?}"
    );
}

#[tokio::test]
async fn a_user_name_with_a_line_break_is_refused_before_connecting() {
    // Nothing listens on this address: the request must be refused before any connection.
    let spamd = Spamd::parse(&format!("127.0.0.1:{}", free_port()), 5 * SECOND).expect("address");
    let error = spamd
        .check(&ham(), Some("alice\r\nContent-length: 0"))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, ScanError::InvalidRequest { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn fake_spamd_ping() {
    let (addr, server) = serve_tcp(Reply::Bytes(b"SPAMD/1.5 0 PONG\r\n".to_vec())).await;
    let spamd = Spamd::parse(&addr.to_string(), 5 * SECOND).expect("address");
    spamd.ping().await.expect("pong");
    assert_eq!(received(server).await.head, "PING SPAMC/1.5");
}

/// True when this process runs as root (spamd then needs `-u` to drop privileges).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[tokio::test]
async fn real_spamd_gtube_over_tcp_and_unix_socket() {
    let Some(binary) = interop_binary("/usr/sbin/spamd", "spamd") else {
        return;
    };
    let dir = TempDir::new("spamd");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let port = free_port();
    let socket = dir.path().join("spamd.sock");
    let log = dir.path().join("spamd.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut command = Command::new(&binary);
    // -L: local tests only (no DNS or network lookups); -x: no per-user configuration files.
    command
        .args(["-L", "-x", "--syslog=stderr", "--max-children=2"])
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--listen={}", socket.display()))
        .arg(format!("--helper-home-dir={}", home.display()))
        .arg(format!(
            "--pidfile={}",
            dir.path().join("spamd.pid").display()
        ));
    if running_as_root() {
        command.args(["-u", "nobody"]);
    }
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start spamd");
    let mut daemon = Daemon {
        child,
        name: "spamd",
        log,
    };
    let tcp = Spamd::parse(&format!("127.0.0.1:{port}"), 30 * SECOND).expect("address");
    let unix = Spamd::parse(&format!("unix:{}", socket.display()), 30 * SECOND).expect("address");
    let mut up = false;
    for _ in 0..600 {
        daemon.assert_running();
        if tcp.ping().await.is_ok() && unix.ping().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "spamd did not answer PING within 60 s:\n{}",
        daemon.log()
    );
    eprintln!(
        "spamd answered PING {} ms after start",
        started.elapsed().as_millis()
    );

    for spamd in [&tcp, &unix] {
        let at = spamd.address();
        let verdict = spamd
            .check(&gtube(), Some("nobody"))
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}\n{}", daemon.log()));
        assert!(verdict.spam, "{at}: {verdict:?}");
        assert!(verdict.score >= 100.0, "{at}: {verdict:?}");
        assert_eq!(verdict.threshold, 5.0, "{at}: {verdict:?}");
        assert!(
            verdict.symbols.iter().any(|s| s == "GTUBE"),
            "{at}: {verdict:?}"
        );

        let verdict = spamd
            .check(&ham(), None)
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}\n{}", daemon.log()));
        assert!(!verdict.spam, "{at}: {verdict:?}");
        assert!(verdict.score < 5.0, "{at}: {verdict:?}");
        assert!(
            !verdict.symbols.iter().any(|s| s == "GTUBE"),
            "{at}: {verdict:?}"
        );
    }
    drop(daemon);
}
