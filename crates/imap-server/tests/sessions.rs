//! Several IMAP sessions at once over TCP: changes made in one reach the others (RFC 9051
//! §5.2, §7.5.1), the per-user-per-address cap, autologout.

mod common;

use common::*;
use facteur_testkit::{Client, Target};

struct Imap {
    client: Client,
    n: u32,
}

impl Imap {
    async fn login(target: &Target<'_>, user: &str) -> Imap {
        let mut client = Client::connect(target).await;
        let greeting = client.line("greeting").await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let mut s = Imap { client, n: 0 };
        let (_, done) = s.cmd(&format!("LOGIN {user} secret")).await;
        assert!(done.contains("OK"), "{done}");
        s
    }

    async fn send(&mut self, line: &str) -> String {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.client
            .send(format!("{tag} {line}\r\n").as_bytes())
            .await;
        tag
    }

    /// Sends a command; returns the untagged lines and the tagged completion.
    async fn cmd(&mut self, line: &str) -> (Vec<String>, String) {
        let tag = self.send(line).await;
        self.until(&format!("{tag} ")).await
    }

    /// Reads lines until one starts with `prefix`.
    async fn until(&mut self, prefix: &str) -> (Vec<String>, String) {
        let mut lines = Vec::new();
        loop {
            let l = self.client.line(prefix).await;
            if l.starts_with(prefix) {
                return (lines, l);
            }
            lines.push(l);
        }
    }
}

fn target<'a>(server: &TestServer, cert: &'a std::path::Path) -> Target<'a> {
    Target {
        addr: server.imaps,
        cert,
        server_name: "mx.example.com",
        implicit_tls: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_one_session_reach_the_others() {
    let server = start("sessions", settings()).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = target(&server, &cert);
    let mut a = Imap::login(&target, "alice@example.com").await;
    let mut b = Imap::login(&target, "alice@example.com").await;
    a.cmd("SELECT INBOX").await;
    b.cmd("SELECT INBOX").await;

    // A flag set by A: B learns it at its next command. A selected first, so the messages
    // are \Recent for A only (RFC 3501 §2.3.2).
    let (lines, _) = a.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Flagged \\Recent))"]);
    let (lines, done) = b.cmd("NOOP").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Flagged))"], "{done}");

    // B idles; A expunges message 2 and appends one: B hears both without asking.
    let idle = b.send("IDLE").await;
    assert_eq!(b.client.line("idle").await, "+ idling");
    a.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        b.client.line("deleted flag").await,
        "* 2 FETCH (FLAGS (\\Deleted))"
    );
    let (lines, _) = a.cmd("EXPUNGE").await;
    assert_eq!(lines, ["* 2 EXPUNGE"]);
    assert_eq!(b.client.line("expunge").await, "* 2 EXPUNGE");
    a.client
        .send(b"x1 APPEND INBOX {21+}\r\nSubject: appended\r\n\r\n\r\n")
        .await;
    let (_, done) = a.until("x1 ").await;
    assert!(done.starts_with("x1 OK [APPENDUID "), "{done}");
    assert_eq!(b.client.line("exists").await, "* 3 EXISTS");
    b.client.send(b"DONE\r\n").await;
    let (lines, done) = b.until(&format!("{idle} ")).await;
    // Whichever of A and B saw the new message first holds it as \Recent.
    assert!(lines.iter().all(|l| l.ends_with(" RECENT")), "{lines:?}");
    assert_eq!(done, format!("{idle} OK IDLE terminated"));

    // Both agree on the mailbox.
    let strip = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|l| !l.ends_with(" RECENT"))
            .map(|l| l.replace(" \\Recent", "").replace("\\Recent", ""))
            .collect()
    };
    let la = strip(a.cmd("UID FETCH 1:* FLAGS").await.0);
    let lb = strip(b.cmd("UID FETCH 1:* FLAGS").await.0);
    assert_eq!(la, lb);
    assert_eq!(la.len(), 3);

    // A session of another account sees nothing of it.
    let mut bob = Imap::login(&target, "bob@example.com").await;
    let (lines, _) = bob.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(lines, ["* STATUS INBOX (MESSAGES 0)"]);
    assert!(server.store.check().unwrap().is_consistent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_user_and_address_are_capped() {
    let settings = facteur_config::Imap {
        max_connections_per_user_ip: 2,
        ..settings()
    };
    let server = start("user-ip", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = target(&server, &cert);
    let mut first = Imap::login(&target, "alice@example.com").await;
    let _second = Imap::login(&target, "alice@example.com").await;
    let mut third = Client::connect(&target).await;
    third.line("greeting").await;
    third.send(b"a LOGIN alice@example.com secret\r\n").await;
    assert_eq!(
        third.line("third").await,
        "a NO [LIMIT] Too many connections for this user from this address"
    );
    // Another account is not affected.
    Imap::login(&target, "bob@example.com").await;
    // One leaves: the place is free again.
    first.cmd("LOGOUT").await;
    assert!(first.client.read_line().await.is_none());
    third.send(b"b LOGIN alice@example.com secret\r\n").await;
    assert!(third.line("after logout").await.starts_with("b OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_logged_out_after_the_timeout() {
    let settings = facteur_config::Imap {
        timeout_secs: 1,
        ..settings()
    };
    let server = start("autologout", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let mut s = Imap::login(&target(&server, &cert), "alice@example.com").await;
    s.cmd("SELECT INBOX").await;
    assert_eq!(
        s.client.line("autologout").await,
        "* BYE Autologout; idle for too long"
    );
    assert!(s.client.read_line().await.is_none());
}

/// RFC 4978: after `COMPRESS DEFLATE`, both directions are raw DEFLATE with a sync flush after
/// each response; a second COMPRESS is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_deflate_carries_the_session() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let settings = facteur_config::Imap {
        plaintext_auth: true,
        ..settings()
    };
    let server = start("compress", settings).await;
    let mut tcp = BufReader::new(tokio::net::TcpStream::connect(server.imap).await.unwrap());
    let mut line = String::new();
    tcp.read_line(&mut line).await.unwrap();
    assert!(line.contains("AUTH=PLAIN"), "{line}");
    tcp.get_mut()
        .write_all(b"a LOGIN alice@example.com secret\r\nb COMPRESS DEFLATE\r\n")
        .await
        .unwrap();
    line.clear();
    tcp.read_line(&mut line).await.unwrap();
    assert!(line.contains("COMPRESS=DEFLATE"), "{line}");
    line.clear();
    tcp.read_line(&mut line).await.unwrap();
    assert_eq!(line, "b OK DEFLATE active\r\n");
    let mut tcp = tcp.into_inner();
    let mut z = Compress::new(Compression::default(), false);
    let mut unz = Decompress::new(false);
    let mut send = async |tcp: &mut tokio::net::TcpStream, text: &[u8]| {
        let mut out = Vec::with_capacity(text.len() + 64);
        z.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
        tcp.write_all(&out).await.unwrap();
    };
    async fn until(tcp: &mut tokio::net::TcpStream, unz: &mut Decompress, end: &str) -> String {
        let mut text = Vec::new();
        let mut buf = vec![0u8; 65536];
        while !String::from_utf8_lossy(&text).contains(end) {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
                .await
                .expect("reply")
                .unwrap();
            assert!(n > 0, "closed");
            let mut out = Vec::with_capacity(1 << 20);
            unz.decompress_vec(&buf[..n], &mut out, FlushDecompress::Sync)
                .unwrap();
            text.extend_from_slice(&out);
        }
        String::from_utf8_lossy(&text).into_owned()
    }
    send(&mut tcp, b"c SELECT INBOX\r\n").await;
    assert!(
        until(&mut tcp, &mut unz, "c OK")
            .await
            .contains("* 3 EXISTS")
    );
    send(&mut tcp, b"d FETCH 1:* (BODY.PEEK[])\r\n").await;
    let text = until(&mut tcp, &mut unz, "d OK").await;
    assert!(
        text.contains("Soup of the day.") && text.contains("Numbers attached."),
        "{text}"
    );
    send(&mut tcp, b"e COMPRESS DEFLATE\r\n").await;
    assert!(
        until(&mut tcp, &mut unz, "e ")
            .await
            .contains("e NO [COMPRESSIONACTIVE]")
    );
    send(&mut tcp, b"f LOGOUT\r\n").await;
    assert!(until(&mut tcp, &mut unz, "f OK").await.contains("* BYE"));
}

/// RFC 9051 §6.2.2 AUTHENTICATE SCRAM-SHA-256 (RFC 5802, RFC 7677): a wrong proof fails after
/// the delay; the right one gets the server's `v=` as a last challenge, answered empty, then
/// OK. With SASL-IR (RFC 4959) and without. The server nonce is random, so the client's side
/// is computed here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_authenticate() {
    use facteur_directory::sasl::{decode_base64, encode_base64, scram};
    let server = start("scram", settings()).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = target(&server, &cert);
    let mut c = Client::connect(&target).await;
    let greeting = c.line("greeting").await;
    assert!(greeting.contains(" AUTH=SCRAM-SHA-256 "), "{greeting}");
    let challenge = |line: String| -> String {
        let b64 = line
            .strip_prefix("+ ")
            .unwrap_or_else(|| panic!("not a challenge: {line}"));
        String::from_utf8(decode_base64(b64).unwrap()).unwrap()
    };

    // Without an initial response: an empty challenge first; then a wrong password.
    c.send(b"a1 AUTHENTICATE SCRAM-SHA-256\r\n").await;
    assert_eq!(c.line("empty challenge").await, "+ ");
    let mut wrong = scram::Client::new("alice@example.com", "not secret", "nonce1");
    c.send(format!("{}\r\n", encode_base64(wrong.first().as_bytes())).as_bytes())
        .await;
    let server_first = challenge(c.line("server-first").await);
    assert!(server_first.starts_with("r=nonce1"), "{server_first}");
    assert!(server_first.ends_with(",i=4096"), "{server_first}");
    let last = wrong.last(&server_first).unwrap();
    c.send(format!("{}\r\n", encode_base64(last.as_bytes())).as_bytes())
        .await;
    assert_eq!(
        c.line("failure").await,
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed"
    );

    // With SASL-IR and the right password.
    let mut client = scram::Client::new("alice@example.com", "secret", "nonce2");
    c.send(
        format!(
            "a2 AUTHENTICATE SCRAM-SHA-256 {}\r\n",
            encode_base64(client.first().as_bytes())
        )
        .as_bytes(),
    )
    .await;
    let server_first = challenge(c.line("server-first").await);
    let last = client.last(&server_first).unwrap();
    c.send(format!("{}\r\n", encode_base64(last.as_bytes())).as_bytes())
        .await;
    let server_final = challenge(c.line("server-final").await);
    assert!(client.verify(&server_final), "{server_final}");
    c.send(b"\r\n").await;
    let done = c.line("completion").await;
    assert!(done.starts_with("a2 OK [CAPABILITY "), "{done}");
    c.send(b"a3 SELECT INBOX\r\n").await;
    loop {
        let l = c.line("select").await;
        if l.starts_with("a3 ") {
            assert!(l.starts_with("a3 OK"), "{l}");
            break;
        }
    }
}
