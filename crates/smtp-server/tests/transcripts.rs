//! Server transcripts: each file in `tests/transcripts/` is a dialog played over TCP against a
//! real server (SMTP and LMTP listeners on 127.0.0.1, a temp data dir, a self-signed
//! certificate), then checked against the store. The format is `facteur_testkit`'s, plus:
//! - `lmtp`      (anywhere) connect to the LMTP listener;
//! - `submission` / `submissions` (anywhere) connect to the submission listener (STARTTLS) or
//!   the implicit-TLS one;
//! - `queued N`  the outbound queue holds N messages;
//! - `queue-contains text` the newest queued message contains text;
//! - `queue-lacks text` it does not;
//! - `stored ADDRESS N` the INBOX of ADDRESS holds N messages;
//! - `contains ADDRESS UID text` that stored message contains text.
//!
//! Fixture: domain example.com with alice, bob, tiny (quota 300 bytes), alias team -> alice,
//! bob; domain example.org with a catch-all to bob. Limits: 10000-byte messages, 3 recipients.
//! Passwords are `secret`; alice also has the application password printed into
//! `tests/transcripts` as `app` (see `APP_PASSWORD`). Failed AUTH waits 10 ms.

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_model::{Address, Uid};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_smtp_server::{Context, Role};
use facteur_store::{Options as StoreOptions, Store};
use facteur_testkit::{Client, Target, play, unescape};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

struct TestServer {
    smtp: SocketAddr,
    lmtp: SocketAddr,
    submission: SocketAddr,
    submissions: SocketAddr,
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

async fn start(name: &str) -> TestServer {
    let settings = facteur_config::Smtp {
        max_message_size: 10_000,
        max_recipients: 3,
        max_line_length: 512,
        timeout_secs: 30,
        max_errors: 20,
        max_connections: 100,
    };
    start_with(name, settings).await
}

async fn start_with(name: &str, settings: facteur_config::Smtp) -> TestServer {
    let dir =
        std::env::temp_dir().join(format!("facteur-transcript-{name}-{}", std::process::id()));
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
    directory.add_domain("example.org").unwrap();
    for user in ["alice", "bob"] {
        directory
            .add_account(&format!("{user}@example.com"), "secret", None)
            .unwrap();
    }
    directory
        .add_account("tiny@example.com", "secret", Some(300))
        .unwrap();
    directory
        .add_alias(
            "team@example.com",
            &["alice@example.com".into(), "bob@example.com".into()],
        )
        .unwrap();
    directory
        .add_alias("@example.org", &["bob@example.com".into()])
        .unwrap();
    let tls = load_tls(TlsSettings::SelfSigned {
        hostname: "mx.example.com",
        dir: &dir.join("tls"),
    })
    .unwrap();
    let shutdown = Shutdown::new();
    let mut addrs = Vec::new();
    for role in [Role::Smtp, Role::Lmtp, Role::Submission, Role::Submissions] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let ctx = Arc::new(Context {
            role,
            hostname: "mx.example.com".into(),
            settings: settings.clone(),
            submission: facteur_config::Submission {
                auth_failure_delay_ms: 10,
                ..Default::default()
            },
            directory: directory.clone(),
            store: store.clone(),
            tls: Some(tls.acceptor.clone()),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(facteur_smtp_server::serve(listener, ctx));
    }
    TestServer {
        smtp: addrs[0],
        lmtp: addrs[1],
        submission: addrs[2],
        submissions: addrs[3],
        store,
        dir,
        shutdown,
    }
}

async fn run(file: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let server = start(file.trim_end_matches(".txt")).await;
    let has = |word: &str| text.lines().any(|l| l.trim() == word);
    let cert = server.dir.join("tls/self-signed.crt");
    let addr = if has("lmtp") {
        server.lmtp
    } else if has("submission") {
        server.submission
    } else if has("submissions") {
        server.submissions
    } else {
        server.smtp
    };
    let target = Target {
        addr,
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: has("submissions"),
    };
    let store = server.store.clone();
    play(file, &text, &target, |words, ctx| {
        check_store(&store, words, ctx)
    })
    .await;
    assert!(server.store.check().unwrap().is_consistent());
}

/// `lmtp`, `stored ADDRESS N`, `contains ADDRESS UID text`.
fn check_store(store: &Store, words: &[&str], ctx: &str) {
    let inbox = |address: &str| {
        let a = Address::parse(address).unwrap();
        let account = store
            .account(&a.domain, &a.folded_local())
            .unwrap()
            .unwrap();
        store.mailboxes(account.id).unwrap().remove(0)
    };
    match words {
        ["lmtp" | "submission" | "submissions"] => {}
        ["queued", count] => {
            assert_eq!(
                store.queue_entries().unwrap().len().to_string(),
                *count,
                "{ctx}"
            )
        }
        ["queue-contains" | "queue-lacks", needle @ ..] => {
            let entries = store.queue_entries().unwrap();
            let last = entries.last().expect("a queued message");
            let body = store
                .queue_content(&last.message.queue_id)
                .unwrap()
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            let needle = String::from_utf8(unescape(&needle.join(" "))).unwrap();
            assert_eq!(
                body.contains(&needle),
                words[0] == "queue-contains",
                "{ctx}: queued message is {body:?}"
            );
        }
        ["queued-to", recipients @ ..] => {
            let entries = store.queue_entries().unwrap();
            let last = entries.last().expect("a queued message");
            let got: Vec<&str> = last
                .message
                .recipients
                .iter()
                .map(|r| r.address.as_str())
                .collect();
            assert_eq!(got, recipients, "{ctx}");
        }
        ["stored", address, count] => {
            assert_eq!(inbox(address).messages.to_string(), *count, "{ctx}")
        }
        ["contains", address, uid, needle @ ..] => {
            let body = store
                .message_content(inbox(address).id, Uid(uid.parse().unwrap()))
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            let needle = String::from_utf8(unescape(&needle.join(" "))).unwrap();
            assert!(body.contains(&needle), "{ctx}: message is {body:?}");
        }
        _ => panic!("{ctx}: unknown directive"),
    }
}

macro_rules! transcripts {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                run($file).await;
            }
        )*
    };
}

transcripts! {
    rfc5321_greeting_ehlo_and_simple_commands => "01-basics.txt",
    rfc5321_recipients_aliases_subaddresses_catch_all => "02-recipients.txt",
    rfc5321_never_relay_tricks => "03-relay-tricks.txt",
    rfc5321_command_sequence_and_syntax => "04-sequence.txt",
    rfc1870_size_limits => "05-size.txt",
    rfc5321_recipient_limit => "06-recipient-limit.txt",
    rfc5321_line_length_limit => "07-line-length.txt",
    rfc5321_smuggling_and_dot_stuffing => "08-smuggling.txt",
    rfc3207_starttls_discards_injection => "09-starttls.txt",
    rfc3030_bdat_chunking => "10-bdat.txt",
    rfc2033_lmtp_per_recipient_replies => "11-lmtp.txt",
    rfc1870_quota_at_rcpt => "12-quota.txt",
    rfc2920_pipelining => "13-pipelining.txt",
    rfc6531_smtputf8 => "14-smtputf8.txt",
    rfc3461_dsn_parameters_and_helo => "15-dsn-and-helo.txt",
    rfc5321_too_many_errors => "16-errors.txt",
    rfc6409_submission_starttls_then_auth => "17-submission.txt",
    rfc8314_submissions_implicit_tls => "18-submissions.txt",
    rfc4954_auth_exchanges_and_failures => "19-auth.txt",
    rfc6409_sender_rules => "20-sender-rules.txt",
    rfc6409_header_completion_and_privacy => "21-headers.txt",
}

fn plain_target<'a>(server: &TestServer, cert: &'a std::path::Path) -> Target<'a> {
    Target {
        addr: server.smtp,
        cert,
        server_name: "mx.example.com",
        implicit_tls: false,
    }
}

/// Past `max_connections` a client reads `421 4.3.2` and is closed; a freed slot serves again.
#[tokio::test]
async fn connection_limit_answers_421() {
    let settings = facteur_config::Smtp {
        max_connections: 1,
        ..facteur_config::Smtp::default()
    };
    let server = start_with("conn-limit", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let mut first = Client::connect(&plain_target(&server, &cert)).await;
    assert!(first.line("greeting").await.starts_with("220"));
    let mut second = Client::connect(&plain_target(&server, &cert)).await;
    assert_eq!(
        second.line("refusal").await,
        "421 4.3.2 mx.example.com Too many connections, try again later"
    );
    assert!(second.read_line().await.is_none());
    first.send(b"QUIT\r\n").await;
    assert!(first.line("QUIT").await.starts_with("221"));
    assert!(first.read_line().await.is_none());
    // The slot is released when the first session's task ends.
    let mut greeted = false;
    for _ in 0..50 {
        let mut third = Client::connect(&plain_target(&server, &cert)).await;
        if third.line("greeting").await.starts_with("220") {
            greeted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(greeted);
}

/// RFC 5321 §4.5.3.2: a silent client is told `421 4.4.2` and disconnected.
#[tokio::test]
async fn idle_client_times_out_with_421() {
    let settings = facteur_config::Smtp {
        timeout_secs: 1,
        ..facteur_config::Smtp::default()
    };
    let server = start_with("timeout", settings).await;
    let cert = server.dir.join("tls/self-signed.crt");
    let mut c = Client::connect(&plain_target(&server, &cert)).await;
    assert!(c.line("greeting").await.starts_with("220"));
    assert_eq!(
        c.line("timeout").await,
        "421 4.4.2 mx.example.com Timeout, closing connection"
    );
    assert!(c.read_line().await.is_none());
}
