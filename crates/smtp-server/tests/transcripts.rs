//! Server transcripts: each file in `tests/transcripts/` is a dialog played over TCP against a
//! real server (SMTP and LMTP listeners on 127.0.0.1, a temp data dir, a self-signed
//! certificate), then checked against the store.
//!
//! Format, one directive per line:
//! - `C: text`   send text + CRLF;       `R: text` send text with \r \n \t \\ escapes, no CRLF;
//! - `L: N c`    send N times the character c (no CRLF);
//! - `S: text`   the next reply line is exactly text;  `S~ prefix` it starts with prefix;
//! - `S* prefix` a multi-line reply whose last line starts with prefix;
//! - `tls`       TLS handshake (after a 220 to STARTTLS);   `closed` the server closed;
//! - `lmtp`      (first line) connect to the LMTP listener;
//! - `stored ADDRESS N` the INBOX of ADDRESS holds N messages;
//! - `contains ADDRESS UID text` that stored message contains text.
//!
//! Fixture: domain example.com with alice, bob, tiny (quota 300 bytes), alias team -> alice,
//! bob; domain example.org with a catch-all to bob. Limits: 10000-byte messages, 3 recipients.

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_model::{Address, Uid};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_smtp_server::{Context, Role};
use facteur_store::{Options as StoreOptions, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct TestServer {
    smtp: SocketAddr,
    lmtp: SocketAddr,
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
    let settings = facteur_config::Smtp {
        max_message_size: 10_000,
        max_recipients: 3,
        max_line_length: 512,
        timeout_secs: 30,
        max_errors: 20,
        max_connections: 100,
    };
    let mut addrs = Vec::new();
    for role in [Role::Smtp, Role::Lmtp] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let ctx = Arc::new(Context {
            role,
            hostname: "mx.example.com".into(),
            settings: settings.clone(),
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
        store,
        dir,
        shutdown,
    }
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

enum Client {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream>>),
    Gone,
}

const WAIT: Duration = Duration::from_secs(10);

impl Client {
    /// Reads one line; None at end of stream.
    async fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = match self {
            Client::Plain(s) => tokio::time::timeout(WAIT, s.read_line(&mut line)).await,
            Client::Tls(s) => tokio::time::timeout(WAIT, s.read_line(&mut line)).await,
            Client::Gone => return None,
        };
        match read.expect("no reply within the wait") {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    async fn line(&mut self, ctx: &str) -> String {
        let line = self
            .read_line()
            .await
            .unwrap_or_else(|| panic!("{ctx}: connection closed"));
        assert!(
            line.ends_with("\r\n"),
            "{ctx}: reply line without CRLF: {line:?}"
        );
        line.trim_end().to_string()
    }

    async fn send(&mut self, bytes: &[u8]) {
        match self {
            Client::Plain(s) => s.get_mut().write_all(bytes).await.unwrap(),
            Client::Tls(s) => {
                s.get_mut().write_all(bytes).await.unwrap();
                s.get_mut().flush().await.unwrap();
            }
            Client::Gone => panic!("not connected"),
        }
    }
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            other => panic!("bad escape \\{other:?}"),
        }
    }
    out
}

async fn tls_client(tcp: TcpStream, dir: &std::path::Path) -> TlsStream {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let cert =
        rustls::pki_types::CertificateDer::from_pem_file(dir.join("tls/self-signed.crt")).unwrap();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("mx.example.com").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap()
}

async fn run(file: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let server = start(file.trim_end_matches(".txt")).await;
    let lmtp = text.lines().any(|l| l.trim() == "lmtp");
    let tcp = TcpStream::connect(if lmtp { server.lmtp } else { server.smtp })
        .await
        .unwrap();
    let mut client = Client::Plain(BufReader::new(tcp));
    for (n, raw) in text.lines().enumerate() {
        let ctx = format!("{file}:{}: {raw}", n + 1);
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with('#') || line == "lmtp" {
            continue;
        }
        let (op, arg) = line.split_at(2.min(line.len()));
        let arg = arg.strip_prefix(' ').unwrap_or(arg);
        match op {
            "C:" => client.send(format!("{arg}\r\n").as_bytes()).await,
            "R:" => client.send(&unescape(arg)).await,
            "L:" => {
                let (count, c) = arg.split_once(' ').unwrap();
                client
                    .send(c.repeat(count.parse().unwrap()).as_bytes())
                    .await;
            }
            "S:" => assert_eq!(client.line(&ctx).await, arg, "{ctx}"),
            "S~" => {
                let got = client.line(&ctx).await;
                assert!(got.starts_with(arg), "{ctx}: got {got:?}");
            }
            "S*" => loop {
                let got = client.line(&ctx).await;
                if got.as_bytes().get(3) != Some(&b'-') {
                    assert!(got.starts_with(arg), "{ctx}: last line {got:?}");
                    break;
                }
            },
            _ => match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["tls"] => {
                    let Client::Plain(reader) = std::mem::replace(&mut client, Client::Gone) else {
                        panic!("{ctx}: TLS is already active")
                    };
                    assert!(
                        reader.buffer().is_empty(),
                        "{ctx}: server sent bytes before the handshake"
                    );
                    let tls = tls_client(reader.into_inner(), &server.dir).await;
                    client = Client::Tls(Box::new(BufReader::new(tls)));
                }
                ["closed"] => {
                    let rest = client.read_line().await;
                    assert!(rest.is_none(), "{ctx}: expected close, got {rest:?}");
                }
                ["stored", address, count] => {
                    let a = Address::parse(address).unwrap();
                    let account = server
                        .store
                        .account(&a.domain, &a.folded_local())
                        .unwrap()
                        .unwrap();
                    let inbox = &server.store.mailboxes(account.id).unwrap()[0];
                    assert_eq!(inbox.messages.to_string(), *count, "{ctx}");
                }
                ["contains", address, uid, needle @ ..] => {
                    let a = Address::parse(address).unwrap();
                    let account = server
                        .store
                        .account(&a.domain, &a.folded_local())
                        .unwrap()
                        .unwrap();
                    let inbox = &server.store.mailboxes(account.id).unwrap()[0];
                    let body = server
                        .store
                        .message_content(inbox.id, Uid(uid.parse().unwrap()))
                        .unwrap();
                    let body = String::from_utf8_lossy(&body);
                    let needle = String::from_utf8(unescape(&needle.join(" "))).unwrap();
                    assert!(body.contains(&needle), "{ctx}: message is {body:?}");
                }
                _ => panic!("{ctx}: unknown directive"),
            },
        }
    }
    assert!(server.store.check().unwrap().is_consistent());
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
}
