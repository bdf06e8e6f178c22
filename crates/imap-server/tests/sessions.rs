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

    // A flag set by A: B learns it at its next command.
    let (lines, _) = a.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Flagged))"]);
    let (lines, done) = b.cmd("NOOP").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Flagged))"], "{done}");

    // B idles; A expunges message 2 and appends one: B hears both without asking.
    let idle = b.send("IDLE").await;
    assert_eq!(b.client.line("idle").await, "+ idling");
    a.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(b.client.line("deleted flag").await, "* 2 FETCH (FLAGS (\\Deleted))");
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
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(done, format!("{idle} OK IDLE terminated"));

    // Both agree on the mailbox.
    let (la, _) = a.cmd("UID FETCH 1:* FLAGS").await;
    let (lb, _) = b.cmd("UID FETCH 1:* FLAGS").await;
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
    third
        .send(b"a LOGIN alice@example.com secret\r\n")
        .await;
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
