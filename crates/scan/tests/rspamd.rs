//! facteur-scan's rspamd client against scripted servers speaking rspamd's HTTP protocol
//! (rspamd documentation, "Rspamd protocol": `POST /checkv2`, envelope headers, JSON reply).

mod common;

use common::{Reply, TempDir, free_port, received, serve_tcp, serve_unix};
use facteur_scan::{Rspamd, RspamdAction, RspamdMeta, ScanError};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

fn message() -> Vec<u8> {
    b"Subject: offer\r\nFrom: <seller@example.com>\r\nTo: <buyer@example.org>\r\n\
      Message-ID: <offer-1@example.com>\r\n\r\nBuy now.\r\n"
        .to_vec()
}

/// A reply as rspamd's normal worker sends it.
fn http_reply(status: &str, json: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 GMT\r\nContent-Length: {}\r\n\
         Content-Type: application/json\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

const ADD_HEADER: &str = r#"{"is_skipped":false,"score":8.4,"required_score":15.0,"action":"add header",
"symbols":{"FORGED_SENDER":{"name":"FORGED_SENDER","score":5.0,"metric_score":5.0,"description":"Forged"},
"DATE_IN_PAST":{"name":"DATE_IN_PAST","score":3.4,"options":["1: 1.00 / 1.00"]}},
"messages":{},"message-id":"offer-1@example.com","time_real":0.01,
"milter":{"add_headers":{"X-Spam":{"value":"Yes","order":0},
"X-Spamd-Result":{"value":"default: False [8.40 / 15.00];\n FORGED_SENDER(5.00)[]","order":0}},
"remove_headers":{"X-Spam":0}}}"#;

#[tokio::test]
async fn fake_rspamd_add_header_verdict_and_request_format() {
    let (addr, server) = serve_tcp(Reply::Bytes(http_reply("200 OK", ADD_HEADER))).await;
    let rspamd = Rspamd::parse(&format!("http://{addr}"), 5 * SECOND).expect("url");
    let rcpts = [
        "buyer@example.org".to_string(),
        "other@example.org".to_string(),
    ];
    let meta = RspamdMeta {
        ip: Some("192.0.2.7".parse().expect("ip")),
        helo: Some("mail.example.com"),
        from: Some("seller@example.com"),
        rcpts: &rcpts,
        queue_id: Some("4Zx9Q1"),
        user: None,
        hostname: Some("mail.example.com"),
    };
    let verdict = rspamd.check(&message(), &meta).await.expect("verdict");
    assert_eq!(verdict.action, RspamdAction::AddHeader);
    assert_eq!((verdict.score, verdict.required_score), (8.4, 15.0));
    assert_eq!(
        verdict.symbols,
        [
            ("DATE_IN_PAST".to_string(), 3.4),
            ("FORGED_SENDER".to_string(), 5.0)
        ]
    );
    assert_eq!(verdict.smtp_message, None);
    assert_eq!(
        verdict.add_headers,
        [
            ("X-Spam".to_string(), "Yes".to_string()),
            (
                "X-Spamd-Result".to_string(),
                "default: False [8.40 / 15.00];\r\n FORGED_SENDER(5.00)[]".to_string()
            ),
        ]
    );

    let request = received(server).await;
    assert_eq!(request.head.lines().next(), Some("POST /checkv2 HTTP/1.1"));
    let headers = request.headers();
    for expected in [
        format!("Host: {addr}"),
        "Connection: close".to_string(),
        format!("Content-Length: {}", message().len()),
        "IP: 192.0.2.7".to_string(),
        "Helo: mail.example.com".to_string(),
        "Hostname: mail.example.com".to_string(),
        "From: seller@example.com".to_string(),
        "Rcpt: buyer@example.org".to_string(),
        "Rcpt: other@example.org".to_string(),
        "Queue-Id: 4Zx9Q1".to_string(),
    ] {
        assert!(
            headers.contains(&expected.as_str()),
            "{expected} in {headers:?}"
        );
    }
    assert!(
        !headers.iter().any(|h| h.starts_with("User:")),
        "{headers:?}"
    );
    assert_eq!(request.body, message());
}

#[tokio::test]
async fn fake_rspamd_chunked_reject_with_smtp_message() {
    let json = r#"{"score":21.5,"required_score":15,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0}},"messages":{"smtp_message":"Gtube pattern"}}"#;
    let (first, second) = json.split_at(30);
    let reply = format!(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{first}\r\n{:X};name=value\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let (addr, server) = serve_tcp(Reply::Bytes(reply.into_bytes())).await;
    let rspamd = Rspamd::parse(&format!("http://{addr}/"), 5 * SECOND).expect("url");
    let meta = RspamdMeta {
        from: Some(""),
        user: Some("alice"),
        ..RspamdMeta::default()
    };
    let verdict = rspamd.check(&message(), &meta).await.expect("verdict");
    assert_eq!(verdict.action, RspamdAction::Reject);
    assert_eq!(verdict.score, 21.5);
    assert_eq!(verdict.smtp_message.as_deref(), Some("Gtube pattern"));
    assert_eq!(verdict.symbols, [("GTUBE".to_string(), 0.0)]);
    let request = received(server).await;
    let headers = request.headers();
    assert!(headers.contains(&"From: <>"), "{headers:?}");
    assert!(headers.contains(&"User: alice"), "{headers:?}");
}

#[tokio::test]
async fn fake_rspamd_reply_delimited_by_close() {
    let json = r#"{"score":0.5,"required_score":15,"action":"no action","symbols":{}}"#;
    let reply = format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{json}");
    let (addr, server) = serve_tcp(Reply::Bytes(reply.into_bytes())).await;
    let rspamd = Rspamd::parse(&format!("http://{addr}/rspamd"), 5 * SECOND).expect("url");
    let verdict = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect("verdict");
    assert_eq!(verdict.action, RspamdAction::NoAction);
    assert!(verdict.symbols.is_empty());
    let request = received(server).await;
    assert_eq!(
        request.head.lines().next(),
        Some("POST /rspamd/checkv2 HTTP/1.1")
    );
}

#[tokio::test]
async fn fake_rspamd_error_status() {
    let reply = http_reply("400 Bad Request", r#"{"error":"message has no body"}"#);
    let (addr, server) = serve_tcp(Reply::Bytes(reply)).await;
    let url = format!("http://{addr}");
    let rspamd = Rspamd::parse(&url, 5 * SECOND).expect("url");
    let error = rspamd
        .check(b"", &RspamdMeta::default())
        .await
        .expect_err("error");
    assert!(matches!(error, ScanError::Answered { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("rspamd at {url} answered: HTTP 400 Bad Request: message has no body")
    );
    received(server).await;
}

#[tokio::test]
async fn fake_rspamd_bad_json() {
    let (addr, server) =
        serve_tcp(Reply::Bytes(http_reply("200 OK", r#"{"action":"reject"}"#))).await;
    let rspamd = Rspamd::parse(&format!("http://{addr}"), 5 * SECOND).expect("url");
    let error = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect_err("error");
    assert!(matches!(error, ScanError::Protocol { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .ends_with("the reply has no numeric score"),
        "{error}"
    );
    received(server).await;
}

#[tokio::test]
async fn fake_rspamd_truncated_reply() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"score\":".to_vec();
    let (addr, server) = serve_tcp(Reply::Bytes(reply)).await;
    let url = format!("http://{addr}");
    let rspamd = Rspamd::parse(&url, 5 * SECOND).expect("url");
    let error = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect_err("error");
    assert_eq!(
        error.to_string(),
        format!("rspamd at {url}: the connection was closed before a complete reply")
    );
    received(server).await;
}

#[tokio::test]
async fn fake_rspamd_silent_times_out() {
    let (addr, server) = serve_tcp(Reply::Silent).await;
    let url = format!("http://{addr}");
    let rspamd = Rspamd::parse(&url, Duration::from_millis(400)).expect("url");
    let started = Instant::now();
    let error = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect_err("timeout");
    assert!(matches!(error, ScanError::Timeout { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("rspamd at {url}: no answer within 400 ms")
    );
    assert!(
        started.elapsed() < 3 * SECOND,
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}

#[tokio::test]
async fn fake_rspamd_oversized_reply() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n".to_vec();
    let (addr, server) = serve_tcp(Reply::Flood {
        head: head.clone(),
        total: 3 * 1024 * 1024,
    })
    .await;
    let rspamd = Rspamd::parse(&format!("http://{addr}"), 5 * SECOND).expect("url");
    let error = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect_err("too large");
    assert!(
        matches!(error, ScanError::ReplyTooLarge { limit: 1048576, .. }),
        "{error:?}"
    );
    received(server).await;

    // A smaller bound set by the caller holds too.
    let (addr, server) = serve_tcp(Reply::Flood {
        head,
        total: 1024 * 1024,
    })
    .await;
    let rspamd = Rspamd::parse(&format!("http://{addr}"), 5 * SECOND)
        .expect("url")
        .with_max_reply(64 * 1024);
    let error = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect_err("too large");
    assert!(
        matches!(error, ScanError::ReplyTooLarge { limit: 65536, .. }),
        "{error:?}"
    );
    received(server).await;
}

#[tokio::test]
async fn fake_rspamd_header_block_without_end() {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for n in 0..2000 {
        head.extend_from_slice(format!("X-Filler-{n}: yes\r\n").as_bytes());
    }
    let (addr, server) = serve_tcp(Reply::Bytes(head)).await;
    let rspamd = Rspamd::parse(&format!("http://{addr}"), 5 * SECOND).expect("url");
    let error = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect_err("error");
    assert!(
        error
            .to_string()
            .ends_with("the header block is longer than 16384 bytes"),
        "{error}"
    );
    received(server).await;
}

#[tokio::test]
async fn fake_rspamd_over_unix_socket() {
    let dir = TempDir::new("rspamd-unix");
    let path = dir.path().join("rspamd.sock");
    let json = r#"{"score":4.0,"required_score":15,"action":"greylist","symbols":{}}"#;
    let server = serve_unix(&path, Reply::Bytes(http_reply("200 OK", json)));
    let rspamd = Rspamd::parse(&format!("unix:{}", path.display()), 5 * SECOND).expect("address");
    let verdict = rspamd
        .check(&message(), &RspamdMeta::default())
        .await
        .expect("verdict");
    assert_eq!(verdict.action, RspamdAction::Greylist);
    let request = received(server).await;
    assert!(
        request.headers().contains(&"Host: localhost"),
        "{request:?}"
    );
}

#[tokio::test]
async fn envelope_values_with_line_breaks_are_refused() {
    let rspamd =
        Rspamd::parse(&format!("http://127.0.0.1:{}", free_port()), 5 * SECOND).expect("url");
    let rcpts = ["victim@example.org\r\nPass: all".to_string()];
    let meta = RspamdMeta {
        rcpts: &rcpts,
        ..RspamdMeta::default()
    };
    let error = rspamd.check(&message(), &meta).await.expect_err("refused");
    assert!(
        matches!(error, ScanError::InvalidRequest { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("the Rcpt value"), "{error}");
}
