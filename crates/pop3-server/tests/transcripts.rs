//! POP3 transcripts over TCP against a real server (`facteur_testkit` format), plus:
//! - `pop3s` (anywhere): connect to the implicit-TLS listener;
//! - `expunge ADDRESS UID`: another session (IMAP) removes that message now;
//! - `stored ADDRESS N`: the INBOX holds N messages.
//!
//! Fixture: example.com with alice (password "secret", three messages of 60, 70 and 80 bytes
//! with UIDs 1-3) and bob (empty).

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_model::{Address, Uid};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_pop3_server::{Context, Role};
use facteur_store::{NewMessage, Options as StoreOptions, Store, Target as Copy};
use facteur_testkit::{Client, Target, play};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

struct TestServer {
    pop3: SocketAddr,
    pop3s: SocketAddr,
    store: Store,
    dir: PathBuf,
    shutdown: Shutdown,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(name: &str, settings: facteur_config::Pop3) -> TestServer {
    let dir = std::env::temp_dir().join(format!("facteur-pop3-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(StoreOptions {
        data_dir: dir.clone(),
        inline_blob_max: 4096,
        group_commit_max: 16,
    })
    .unwrap();
    let directory = Directory::new(
        store.clone(),
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: std::time::Duration::from_secs(60),
        },
    );
    directory.add_domain("example.com").unwrap();
    let alice = directory
        .add_account("alice@example.com", "secret", None)
        .unwrap();
    directory
        .add_account("bob@example.com", "secret", None)
        .unwrap();
    for (i, pad) in [(1, 30), (2, 40), (3, 50)] {
        // 30 bytes of headers and framing + padding = 60, 70, 80 bytes.
        let body = format!(
            "Subject: message {i}\r\n\r\n.{}\r\nend\r\n",
            "x".repeat(pad)
        );
        let mut w = store.blob_writer();
        w.write(body.as_bytes()).unwrap();
        let m = NewMessage {
            blob: w.finish().unwrap(),
            internal_date: 0,
            envelope: "{}".into(),
            structure: "{}".into(),
            headers: "[]".into(),
            search_text: String::new(),
            search_headers: String::new(),
            queue_id: format!("Q{i}"),
        };
        store
            .deliver(
                m,
                vec![Copy {
                    account: alice,
                    prefix: vec![],
                    enforce_quota: false,
                    mailbox: None,
                    flags: String::new(),
                }],
            )
            .await
            .unwrap();
    }
    let tls = load_tls(TlsSettings::SelfSigned {
        hostname: "mx.example.com",
        dir: &dir.join("tls"),
    })
    .unwrap();
    let shutdown = Shutdown::new();
    let ctx = Arc::new(Context::new(
        "mx.example.com".into(),
        settings,
        directory,
        store.clone(),
        Some(tls.acceptor),
        shutdown.clone(),
    ));
    let mut addrs = Vec::new();
    for role in [Role::Pop3, Role::Pop3s] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        tokio::spawn(facteur_pop3_server::serve(listener, role, ctx.clone()));
    }
    TestServer {
        pop3: addrs[0],
        pop3s: addrs[1],
        store,
        dir,
        shutdown,
    }
}

fn inbox(store: &Store, address: &str) -> (facteur_model::AccountId, facteur_store::MailboxInfo) {
    let a = Address::parse(address).unwrap();
    let account = store
        .account(&a.domain, &a.folded_local())
        .unwrap()
        .unwrap();
    (account.id, store.mailboxes(account.id).unwrap().remove(0))
}

async fn run(file: &str, expire_days: Option<u32>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let settings = facteur_config::Pop3 {
        auth_failure_delay_ms: 10,
        expire_days,
        ..facteur_config::Pop3::default()
    };
    let server = start(file.trim_end_matches(".txt"), settings).await;
    let implicit = text.lines().any(|l| l.trim() == "pop3s");
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: if implicit { server.pop3s } else { server.pop3 },
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: implicit,
    };
    let store = server.store.clone();
    play(file, &text, &target, |words, ctx| match words {
        ["pop3s"] => {}
        ["expunge", address, uid] => {
            let (account, mailbox) = inbox(&store, address);
            store
                .expunge(account, mailbox.id, &[Uid(uid.parse().unwrap())])
                .unwrap();
        }
        ["stored", address, count] => assert_eq!(
            inbox(&store, address).1.messages.to_string(),
            *count,
            "{ctx}"
        ),
        _ => panic!("{ctx}: unknown directive"),
    })
    .await;
    assert!(server.store.check().unwrap().is_consistent());
}

macro_rules! transcripts {
    ($($name:ident => $file:literal, $expire:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run($file, $expire).await;
            }
        )*
    };
}

transcripts! {
    rfc2595_stls_before_plaintext_login => "01-stls.txt", None;
    rfc1939_transaction_commands => "02-transaction.txt", None;
    rfc1939_rset_undoes_dele => "03-rset.txt", None;
    rfc1939_quit_in_authorization_keeps_mail => "04-quit-authorization.txt", None;
    rfc5034_auth_plain_over_pop3s => "05-auth-plain.txt", None;
    rfc1939_message_expunged_by_imap_during_session => "06-concurrent-expunge.txt", None;
    rfc2449_expire_zero_deletes_retrieved => "07-expire.txt", Some(0);
    rfc1939_errors_and_limits => "08-errors.txt", None;
    rfc4616_auth_plain_continuation_succeeds => "09-auth-success.txt", None;
    sasl_login_with_initial_response => "10-auth-login.txt", None;
}

/// RFC 2449 §8.1.2: a second session on a locked maildrop gets [IN-USE]; the lock goes with
/// the first session.
#[tokio::test]
async fn rfc2449_in_use_while_another_session_holds_the_maildrop() {
    let server = start("in-use", facteur_config::Pop3::default()).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: server.pop3s,
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: true,
    };
    let mut first = Client::connect(&target).await;
    first.line("greeting").await;
    first
        .send(b"USER alice@example.com\r\nPASS secret\r\n")
        .await;
    first.line("USER").await;
    assert_eq!(
        first.line("PASS").await,
        "+OK maildrop has 3 messages (210 octets)"
    );
    let mut second = Client::connect(&target).await;
    second.line("greeting").await;
    second
        .send(b"USER alice@example.com\r\nPASS secret\r\n")
        .await;
    second.line("USER").await;
    assert_eq!(
        second.line("PASS").await,
        "-ERR [IN-USE] maildrop is locked by another POP3 session"
    );
    first.send(b"QUIT\r\n").await;
    assert!(first.line("QUIT").await.starts_with("+OK"));
    assert!(first.read_line().await.is_none());
    second
        .send(b"USER alice@example.com\r\nPASS secret\r\n")
        .await;
    second.line("USER").await;
    assert_eq!(
        second.line("PASS").await,
        "+OK maildrop has 3 messages (210 octets)"
    );
}

/// RFC 2449 §8.1.1: with a LOGIN-DELAY policy, a second login too soon gets [LOGIN-DELAY],
/// and CAPA announces the delay.
#[tokio::test]
async fn rfc2449_login_delay() {
    let settings = facteur_config::Pop3 {
        login_delay_secs: Some(600),
        ..facteur_config::Pop3::default()
    };
    let server = start("login-delay", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: server.pop3s,
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: true,
    };
    let mut first = Client::connect(&target).await;
    first.line("greeting").await;
    first.send(b"CAPA\r\n").await;
    let mut capa = Vec::new();
    loop {
        let l = first.line("CAPA").await;
        if l == "." {
            break;
        }
        capa.push(l);
    }
    assert!(capa.iter().any(|l| l == "LOGIN-DELAY 600"), "{capa:?}");
    first
        .send(b"USER bob@example.com\r\nPASS secret\r\nQUIT\r\n")
        .await;
    first.line("USER").await;
    assert!(
        first
            .line("PASS")
            .await
            .starts_with("+OK maildrop has 0 messages")
    );
    assert!(first.line("QUIT").await.starts_with("+OK"));
    let mut again = Client::connect(&target).await;
    again.line("greeting").await;
    again.send(b"USER bob@example.com\r\nPASS secret\r\n").await;
    again.line("USER").await;
    assert_eq!(
        again.line("PASS").await,
        "-ERR [LOGIN-DELAY] logged in too recently, try later"
    );
}

/// Connections per IP are capped (Dovecot's mail_max_userip_connections spirit).
#[tokio::test]
async fn per_ip_connection_cap() {
    let settings = facteur_config::Pop3 {
        max_connections_per_ip: 1,
        ..facteur_config::Pop3::default()
    };
    let server = start("per-ip", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: server.pop3,
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: false,
    };
    let mut first = Client::connect(&target).await;
    assert!(first.line("greeting").await.starts_with("+OK"));
    let mut second = Client::connect(&target).await;
    assert_eq!(
        second.line("refusal").await,
        "-ERR [SYS/TEMP] too many connections from 127.0.0.1: at most 1 at a time"
    );
    assert!(second.read_line().await.is_none());
}

/// An application password logs in like the account's password and is logged by name.
#[tokio::test]
async fn application_password_logs_in() {
    let server = start("app-password", facteur_config::Pop3::default()).await;
    let directory = Directory::new(
        server.store.clone(),
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: std::time::Duration::ZERO,
        },
    );
    let secret = directory
        .add_app_password("alice@example.com", "laptop")
        .unwrap();
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: server.pop3s,
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: true,
    };
    let mut c = Client::connect(&target).await;
    c.line("greeting").await;
    c.send(format!("USER alice@example.com\r\nPASS {secret}\r\n").as_bytes())
        .await;
    c.line("USER").await;
    assert_eq!(
        c.line("PASS").await,
        "+OK maildrop has 3 messages (210 octets)"
    );
    let used = directory.list_app_passwords("alice@example.com").unwrap();
    assert!(used[0].last_used.is_some());
}

/// RFC 5034 AUTH SCRAM-SHA-256 (RFC 5802, RFC 7677) on pop3s: a wrong proof fails with [AUTH];
/// the right one gets `v=` as a last challenge, answered with an empty line, then the
/// maildrop. The server nonce is random, so the client's side is computed here.
#[tokio::test]
async fn scram_sha_256_auth() {
    use facteur_directory::sasl::{decode_base64, encode_base64, scram};
    let settings = facteur_config::Pop3 {
        auth_failure_delay_ms: 10,
        ..facteur_config::Pop3::default()
    };
    let server = start("scram", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: server.pop3s,
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: true,
    };
    let challenge = |line: String| -> String {
        let b64 = line
            .strip_prefix("+ ")
            .unwrap_or_else(|| panic!("not a challenge: {line}"));
        String::from_utf8(decode_base64(b64).unwrap()).unwrap()
    };
    let mut c = Client::connect(&target).await;
    c.line("greeting").await;
    c.send(b"CAPA\r\n").await;
    let mut capa = Vec::new();
    loop {
        let l = c.line("CAPA").await;
        if l == "." {
            break;
        }
        capa.push(l);
    }
    assert!(
        capa.contains(&"SASL SCRAM-SHA-256 PLAIN LOGIN".to_string()),
        "{capa:?}"
    );

    // Without an initial response, and a wrong password.
    c.send(b"AUTH SCRAM-SHA-256\r\n").await;
    assert_eq!(c.line("empty challenge").await, "+ ");
    let mut wrong = scram::Client::new("alice@example.com", "not secret", "nonce1");
    c.send(format!("{}\r\n", encode_base64(wrong.first().as_bytes())).as_bytes())
        .await;
    let last = wrong
        .last(&challenge(c.line("server-first").await))
        .unwrap();
    c.send(format!("{}\r\n", encode_base64(last.as_bytes())).as_bytes())
        .await;
    assert_eq!(c.line("failure").await, "-ERR [AUTH] Authentication failed");

    // With an initial response and the right password.
    let mut client = scram::Client::new("alice@example.com", "secret", "nonce2");
    c.send(
        format!(
            "AUTH SCRAM-SHA-256 {}\r\n",
            encode_base64(client.first().as_bytes())
        )
        .as_bytes(),
    )
    .await;
    let last = client
        .last(&challenge(c.line("server-first").await))
        .unwrap();
    c.send(format!("{}\r\n", encode_base64(last.as_bytes())).as_bytes())
        .await;
    let server_final = challenge(c.line("server-final").await);
    assert!(client.verify(&server_final), "{server_final}");
    c.send(b"\r\n").await;
    assert_eq!(
        c.line("login").await,
        "+OK maildrop has 3 messages (210 octets)"
    );
}
