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

use facteur_directory::sasl::{encode_base64, encode_base64url};
use facteur_directory::{Directory, OAuthOptions, Options as DirectoryOptions, SaslOptions};
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
        max_connections_per_ip: 0,
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
    )
    // Every mechanism on: CRAM-MD5 and the OAuth ones with an Ed25519 issuer key.
    .with_sasl(SaslOptions {
        cram_md5: true,
        oauth: Some(OAuthOptions {
            issuer: ISSUER.into(),
            audience: "facteur".into(),
            username_claim: "email".into(),
            leeway_secs: 60,
            scope: "mail".into(),
        }),
    });
    let key = issuer_key();
    let public = encode_base64url(ring::signature::KeyPair::public_key(&key).as_ref());
    let jwks = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"{public}"}}]}}"#);
    assert_eq!(directory.set_jwks(&jwks).unwrap(), 1);
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
            queued: None,
            auth: None,
            dkim: Default::default(),
            srs: None,
            filter: None,
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

const ISSUER: &str = "https://issuer.example.com";

/// The test issuer's key, the same in every server of this process.
fn issuer_key() -> ring::signature::Ed25519KeyPair {
    static PKCS8: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let pkcs8 = PKCS8.get_or_init(|| {
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    });
    ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8).unwrap()
}

/// A signed access token (RFC 7519) for `email`, valid for `lifetime` seconds from now.
fn token(email: &str, lifetime: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = encode_base64url(br#"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#);
    let claims = encode_base64url(
        format!(
            r#"{{"iss":"{ISSUER}","aud":"facteur","email":"{email}","exp":{},"iat":{now}}}"#,
            now + lifetime
        )
        .as_bytes(),
    );
    let signed = format!("{header}.{claims}");
    let signature = encode_base64url(issuer_key().sign(signed.as_bytes()).as_ref());
    format!("{signed}.{signature}")
}

/// A submissions session up to after EHLO.
async fn submission_session(server: &TestServer, cert: &std::path::Path) -> Client {
    let target = Target {
        addr: server.submissions,
        cert,
        server_name: "mx.example.com",
        implicit_tls: true,
    };
    let mut c = Client::connect(&target).await;
    assert!(c.line("greeting").await.starts_with("220 "));
    c.send(b"EHLO client.example\r\n").await;
    let mut auth = String::new();
    loop {
        let line = c.line("ehlo").await;
        if line.starts_with("250-AUTH ") {
            auth = line.clone();
        }
        if line.starts_with("250 ") {
            break;
        }
    }
    assert_eq!(
        auth,
        "250-AUTH SCRAM-SHA-256 PLAIN LOGIN CRAM-MD5 OAUTHBEARER XOAUTH2"
    );
    c
}

fn challenge(line: String) -> String {
    let b64 = line
        .strip_prefix("334 ")
        .unwrap_or_else(|| panic!("not a challenge: {line}"));
    let raw = facteur_directory::sasl::decode_base64(b64).unwrap();
    String::from_utf8(raw).unwrap()
}

/// SCRAM-SHA-256 (RFC 5802 §5, RFC 7677) over SMTP: the client proves the password, the
/// server proves it knows the verifier (`v=`), the client answers the last challenge empty.
#[tokio::test]
async fn rfc7677_scram_sha_256_over_submission() {
    use facteur_directory::sasl::scram;
    let server = start("scram").await;
    let cert = server.dir.join("tls/self-signed.crt");
    let mut c = submission_session(&server, &cert).await;
    let mut wrong = scram::Client::new("alice@example.com", "not secret", "n1");
    c.send(b"AUTH SCRAM-SHA-256\r\n").await;
    assert_eq!(c.line("empty challenge").await, "334 ");
    c.send(format!("{}\r\n", encode_base64(wrong.first().as_bytes())).as_bytes())
        .await;
    let last = wrong
        .last(&challenge(c.line("server-first").await))
        .unwrap();
    c.send(format!("{}\r\n", encode_base64(last.as_bytes())).as_bytes())
        .await;
    assert_eq!(
        c.line("failure").await,
        "535 5.7.8 Authentication credentials invalid"
    );
    let mut client = scram::Client::new("alice@example.com", "secret", "n2");
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
        c.line("success").await,
        "235 2.7.0 Authentication successful"
    );
    c.send(b"MAIL FROM:<alice@example.com>\r\n").await;
    assert!(c.line("mail").await.starts_with("250 2.1.0"));
}

/// CRAM-MD5 (RFC 2195 §2): `user HEX(HMAC-MD5(password, challenge))`.
#[tokio::test]
async fn rfc2195_cram_md5_over_submission() {
    let server = start("cram").await;
    let cert = server.dir.join("tls/self-signed.crt");
    let mut c = submission_session(&server, &cert).await;
    for (password, expected) in [
        ("wrong", "535 5.7.8 Authentication credentials invalid"),
        ("secret", "235 2.7.0 Authentication successful"),
    ] {
        c.send(b"AUTH CRAM-MD5\r\n").await;
        let nonce = challenge(c.line("challenge").await);
        assert!(
            nonce.starts_with('<') && nonce.ends_with("@mx.example.com>"),
            "{nonce}"
        );
        let mac =
            facteur_directory::md5::HmacMd5State::new(password.as_bytes()).mac(nonce.as_bytes());
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        c.send(
            format!(
                "{}\r\n",
                encode_base64(format!("alice@example.com {hex}").as_bytes())
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(c.line("verdict").await, expected);
    }
}

/// XOAUTH2 and OAUTHBEARER (RFC 7628 §3.2): a valid token logs in; a refused one gets the
/// JSON error challenge, the client's empty (XOAUTH2) or %x01 (OAUTHBEARER) answer, then 535.
#[tokio::test]
async fn rfc7628_oauth_bearer_tokens_over_submission() {
    let server = start("oauth").await;
    let cert = server.dir.join("tls/self-signed.crt");
    let xoauth2 = |user: &str, token: &str| {
        encode_base64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
    };
    let oauthbearer = |user: &str, token: &str| {
        encode_base64(
            format!(
                "n,a={user},\x01host=mx.example.com\x01port=465\x01auth=Bearer {token}\x01\x01"
            )
            .as_bytes(),
        )
    };
    // Refused: expired, and a valid token for someone else.
    let mut c = submission_session(&server, &cert).await;
    c.send(
        format!(
            "AUTH XOAUTH2 {}\r\n",
            xoauth2("alice@example.com", &token("alice@example.com", -600))
        )
        .as_bytes(),
    )
    .await;
    let error = challenge(c.line("error challenge").await);
    assert!(error.contains("\"status\":\"401\""), "{error}");
    c.send(b"\r\n").await;
    assert_eq!(
        c.line("xoauth2 refused").await,
        "535 5.7.8 Authentication credentials invalid"
    );
    c.send(
        format!(
            "AUTH OAUTHBEARER {}\r\n",
            oauthbearer("alice@example.com", &token("bob@example.com", 600))
        )
        .as_bytes(),
    )
    .await;
    let error = challenge(c.line("error challenge").await);
    assert!(error.contains("invalid_token"), "{error}");
    c.send(format!("{}\r\n", encode_base64(b"\x01")).as_bytes())
        .await;
    assert_eq!(
        c.line("oauthbearer refused").await,
        "535 5.7.8 Authentication credentials invalid"
    );
    // Accepted.
    c.send(
        format!(
            "AUTH OAUTHBEARER {}\r\n",
            oauthbearer("alice@example.com", &token("alice@example.com", 600))
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        c.line("oauthbearer").await,
        "235 2.7.0 Authentication successful"
    );
    let mut c = submission_session(&server, &cert).await;
    c.send(
        format!(
            "AUTH XOAUTH2 {}\r\n",
            xoauth2("bob@example.com", &token("bob@example.com", 600))
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(
        c.line("xoauth2").await,
        "235 2.7.0 Authentication successful"
    );
    c.send(b"MAIL FROM:<alice@example.com>\r\n").await;
    assert!(c.line("not bob's").await.starts_with("553 5.7.1"));
}

/// An application password logs in over PLAIN like the account's own.
#[tokio::test]
async fn application_password_over_submission() {
    let server = start("app-password").await;
    let directory = Directory::new(
        server.store.clone(),
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: std::time::Duration::ZERO,
        },
    );
    let secret = directory
        .add_app_password("alice@example.com", "phone")
        .unwrap();
    let cert = server.dir.join("tls/self-signed.crt");
    let mut c = submission_session(&server, &cert).await;
    let plain = encode_base64(format!("\0alice@example.com\0{secret}").as_bytes());
    c.send(format!("AUTH PLAIN {plain}\r\n").as_bytes()).await;
    assert_eq!(
        c.line("app password").await,
        "235 2.7.0 Authentication successful"
    );
    directory
        .remove_app_password("alice@example.com", "phone")
        .unwrap();
    let mut c = submission_session(&server, &cert).await;
    c.send(format!("AUTH PLAIN {plain}\r\n").as_bytes()).await;
    assert_eq!(
        c.line("revoked").await,
        "535 5.7.8 Authentication credentials invalid"
    );
}
