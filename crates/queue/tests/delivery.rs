//! The queue service against real SMTP servers on loopback (facteur's own MX role): delivery
//! with STARTTLS, a 550 5.1.1 turned into a DSN in the sender's INBOX that explains itself, a
//! receiving side that is down deferred and delivered once it is up, the attempt log.

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_queue::client::{Settings, Timeouts, TlsMode};
use facteur_queue::route::Route;
use facteur_queue::service::Service;
use facteur_store::{Options as StoreOptions, QueuedMessage, QueuedRecipient, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Site {
    dir: PathBuf,
    store: Store,
    directory: Directory,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn site(name: &str, domain: &str, users: &[&str]) -> Site {
    let dir = std::env::temp_dir().join(format!("facteur-queue-{name}-{}", std::process::id()));
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
            auth_cache_ttl: Duration::ZERO,
        },
    );
    directory.add_domain(domain).unwrap();
    for u in users {
        directory
            .add_account(&format!("{u}@{domain}"), "secret", None)
            .unwrap();
    }
    Site {
        dir,
        store,
        directory,
    }
}

/// facteur's MX role for `site` on `listener`.
fn mx(site: &Site, listener: tokio::net::TcpListener, shutdown: &Shutdown) {
    let tls = load_tls(TlsSettings::SelfSigned {
        hostname: "mx.remote.test",
        dir: &site.dir.join("tls"),
    })
    .unwrap();
    let ctx = Arc::new(facteur_smtp_server::Context {
        role: facteur_smtp_server::Role::Smtp,
        hostname: "mx.remote.test".into(),
        settings: facteur_config::Smtp::default(),
        submission: facteur_config::Submission::default(),
        directory: site.directory.clone(),
        store: site.store.clone(),
        tls: Some(tls.acceptor),
        shutdown: shutdown.clone(),
        queued: None,
        auth: None,
        dkim: Default::default(),
        srs: None,
        filter: None,
    });
    tokio::spawn(facteur_smtp_server::serve(listener, ctx));
}

fn service(sender: &Site, port: u16, shutdown: &Shutdown) -> Arc<Service> {
    service_with(
        sender,
        port,
        shutdown,
        facteur_config::Queue {
            retry_secs: vec![1],
            scan_secs: 1,
            ..Default::default()
        },
    )
}

fn service_with(
    sender: &Site,
    port: u16,
    shutdown: &Shutdown,
    options: facteur_config::Queue,
) -> Arc<Service> {
    let mut route = Route::default();
    route
        .transports
        .insert("remote.test".into(), ("127.0.0.1".into(), port));
    let opportunistic = Arc::new(facteur_testkit::accept_any());
    Arc::new(Service {
        store: sender.store.clone(),
        directory: sender.directory.clone(),
        hostname: "mx.example.test".into(),
        options,
        client: Settings {
            helo: "mx.example.test".into(),
            tls: TlsMode::Opportunistic,
            verified: opportunistic.clone(),
            opportunistic,
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                ..Timeouts::default()
            },
            source: None,
        },
        route,
        wake: Arc::default(),
        delay_warning: Duration::from_secs(2),
        pool: Default::default(),
        destinations: Default::default(),
        rates: Default::default(),
        tls_report: Default::default(),
        shutdown: shutdown.clone(),
    })
}

async fn queue(sender: &Site, id: &str, to: &[&str]) {
    let mut w = sender.store.blob_writer();
    w.write(
        format!(
            "From: alice@example.test\r\nTo: {}\r\nSubject: test {id}\r\nMessage-ID: <{id}@example.test>\r\n\r\nhello\r\n",
            to.join(", ")
        )
        .as_bytes(),
    )
    .unwrap();
    let blob = w.finish().unwrap();
    let envelope = facteur_delivery::Envelope {
        return_path: "alice@example.test",
        queue_id: id,
        internal_date: 0,
        enforce_quota: false,
        added_fields: "",
        junk: false,
        per_account: &[],
    };
    let outbound = QueuedMessage {
        queue_id: id.into(),
        sender: "alice@example.test".into(),
        recipients: to
            .iter()
            .map(|a| QueuedRecipient {
                address: a.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    facteur_delivery::deliver_and_queue(&sender.store, blob, &envelope, &[], Some(outbound))
        .await
        .unwrap();
}

fn inbox(site: &Site, address: &str) -> Vec<String> {
    let a = facteur_model::Address::parse(address).unwrap();
    let account = site
        .store
        .account(&a.domain, &a.folded_local())
        .unwrap()
        .unwrap();
    let mb = site.store.mailboxes(account.id).unwrap().remove(0);
    site.store
        .messages(mb.id)
        .unwrap()
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&site.store.message_content(mb.id, m.uid).unwrap()).into_owned()
        })
        .collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_starttls_and_bounces_unknown_users_with_an_explanation() {
    let shutdown = Shutdown::new();
    let sender = site("send", "example.test", &["alice"]);
    let receiver = site("recv", "remote.test", &["bob"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    mx(&receiver, listener, &shutdown);
    queue(&sender, "Q1", &["bob@remote.test", "nobody@remote.test"]).await;
    let svc = service(&sender, port, &shutdown);
    tokio::spawn(svc.clone().run());
    wait_until("the queue empties", || {
        sender.store.queue_entries().unwrap().is_empty()
    })
    .await;
    let got = inbox(&receiver, "bob@remote.test");
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("Subject: test Q1"), "{}", got[0]);
    assert!(
        got[0].contains("with ESMTPS"),
        "delivered over TLS: {}",
        got[0]
    );
    wait_until("the bounce arrives", || {
        inbox(&sender, "alice@example.test").len() == 1
    })
    .await;
    let dsn = inbox(&sender, "alice@example.test").remove(0);
    assert!(dsn.starts_with("Return-Path: <>"), "{dsn}");
    assert!(dsn.contains("Content-Type: multipart/report; report-type=delivery-status"));
    assert!(dsn.contains("<nobody@remote.test>:"), "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; nobody@remote.test"));
    assert!(dsn.contains("Action: failed"));
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(dsn.contains("Diagnostic-Code: smtp; 550"), "{dsn}");
    assert!(dsn.contains("What it means:"), "{dsn}");
    assert!(
        dsn.contains("Subject: test Q1"),
        "the original header: {dsn}"
    );
    assert!(
        !dsn.contains("bob@remote.test>:"),
        "only the failed recipient: {dsn}"
    );
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_retried_and_delivered_when_it_comes_up() {
    let shutdown = Shutdown::new();
    let sender = site("retry-send", "example.test", &["alice"]);
    let receiver = site("retry-recv", "remote.test", &["bob"]);
    // A port nothing listens on yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    queue(&sender, "Q2", &["bob@remote.test"]).await;
    let svc = service(&sender, port, &shutdown);
    tokio::spawn(svc.clone().run());
    wait_until("a failed attempt is recorded", || {
        !sender.store.queue_attempts("Q2").unwrap().is_empty()
    })
    .await;
    let attempts = sender.store.queue_attempts("Q2").unwrap();
    assert!(attempts[0].reply.contains("refused"), "{attempts:?}");
    let entry = sender.store.queue_entries().unwrap().remove(0);
    assert_eq!(entry.states[0].state, "queued");
    assert!(entry.states[0].attempts >= 1);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    mx(&receiver, listener, &shutdown);
    wait_until("delivered after the retry", || {
        sender.store.queue_entries().unwrap().is_empty()
    })
    .await;
    assert_eq!(inbox(&receiver, "bob@remote.test").len(), 1);
    assert!(inbox(&sender, "alice@example.test").is_empty(), "no bounce");
    shutdown.trigger();
}

/// A scripted SMTP server: `450 4.7.0` to its first `greylist` RCPT commands, whatever the
/// connection (a greylist remembers the triplet, not the connection), then it accepts. Returns its port and the number of messages it accepted.
type Received = Arc<std::sync::Mutex<Vec<String>>>;

async fn greylisting_server(
    greylist: usize,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>, Received) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let data: Received = Arc::default();
    let kept = data.clone();
    let rcpts = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            let rcpts = rcpts.clone();
            let kept = kept.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 grey.test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        if line != "." {
                            kept.lock().unwrap().push(line);
                            continue;
                        }
                        in_data = false;
                        counter.fetch_add(1, Ordering::SeqCst);
                        b"250 2.0.0 accepted\r\n"
                    } else {
                        match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                            "EHLO" => b"250-grey.test\r\n250 PIPELINING\r\n",
                            "RCPT" if rcpts.fetch_add(1, Ordering::SeqCst) < greylist => {
                                b"450 4.7.0 Greylisted, please try again later\r\n"
                            }
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        }
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted, data)
}

/// RFC 6647 greylisting as the seeds describe it: the first try gets 450 4.7.0, the queue
/// retries on its schedule and the second try is accepted; the attempt log keeps both replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greylisting_450_is_retried_and_accepted() {
    let shutdown = Shutdown::new();
    let sender = site("grey-send", "example.test", &["alice"]);
    let (port, accepted, _) = greylisting_server(1).await;
    queue(&sender, "Q3", &["bob@remote.test"]).await;
    let svc = service(&sender, port, &shutdown);
    tokio::spawn(svc.clone().run());
    wait_until("accepted on the retry", || {
        accepted.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    wait_until("the queue empties", || {
        sender.store.queue_entries().unwrap().is_empty()
    })
    .await;
    assert!(
        inbox(&sender, "alice@example.test").is_empty(),
        "no bounce, no delay notice"
    );
    shutdown.trigger();
}

/// RFC 3464 `delayed`: a recipient still deferred after `delay_warning` gets one notice to
/// the sender, not one per attempt; the message stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delay_is_told_to_the_sender_once() {
    let shutdown = Shutdown::new();
    let sender = site("delay-send", "example.test", &["alice"]);
    let (port, _, _) = greylisting_server(usize::MAX).await;
    queue(&sender, "Q4", &["bob@remote.test"]).await;
    let svc = service(&sender, port, &shutdown);
    tokio::spawn(svc.clone().run());
    wait_until("the delay notice", || {
        inbox(&sender, "alice@example.test").len() == 1
    })
    .await;
    let notice = inbox(&sender, "alice@example.test").remove(0);
    assert!(
        notice.contains("Subject: Delayed Mail (still being retried)"),
        "{notice}"
    );
    assert!(
        notice.contains("Action: delayed\r\nStatus: 4.7.0"),
        "{notice}"
    );
    assert!(notice.contains("Greylisted"), "{notice}");
    // More attempts, still one notice.
    let attempts = sender.store.queue_attempts("Q4").unwrap().len();
    wait_until("two more attempts", || {
        sender.store.queue_attempts("Q4").unwrap().len() >= attempts + 2
    })
    .await;
    assert_eq!(inbox(&sender, "alice@example.test").len(), 1);
    assert_eq!(
        sender.store.queue_entries().unwrap().len(),
        1,
        "still queued"
    );
    shutdown.trigger();
}

/// RFC 6152 §3: to a server without 8BITMIME an 8-bit message goes re-encoded in 7 bits
/// (quoted-printable), and decodes to the same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_messages_are_downgraded_for_servers_without_8bitmime() {
    let shutdown = Shutdown::new();
    let sender = site("8bit-send", "example.test", &["alice"]);
    let (port, accepted, data) = greylisting_server(0).await;
    let mut w = sender.store.blob_writer();
    w.write("From: alice@example.test\r\nSubject: accents\r\n\r\nD\u{e9}j\u{e0} vu \u{2014} caf\u{e9}\r\n".as_bytes())
        .unwrap();
    let envelope = facteur_delivery::Envelope {
        return_path: "alice@example.test",
        queue_id: "Q8",
        internal_date: 0,
        enforce_quota: false,
        added_fields: "",
        junk: false,
        per_account: &[],
    };
    let outbound = QueuedMessage {
        queue_id: "Q8".into(),
        sender: "alice@example.test".into(),
        body_8bit: true,
        recipients: vec![QueuedRecipient {
            address: "bob@remote.test".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    facteur_delivery::deliver_and_queue(
        &sender.store,
        w.finish().unwrap(),
        &envelope,
        &[],
        Some(outbound),
    )
    .await
    .unwrap();
    let svc = service(&sender, port, &shutdown);
    tokio::spawn(svc.clone().run());
    wait_until("accepted", || {
        accepted.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    let lines = data.lock().unwrap().clone();
    assert!(lines.iter().all(|l| l.is_ascii()), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "Content-Transfer-Encoding: quoted-printable"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("D=C3=A9j=C3=A0 vu =E2=80=94 caf=C3=A9")),
        "{lines:?}"
    );
    shutdown.trigger();
}

/// `queue.per_destination_rate`: over the minute's allowance, messages wait for the next
/// minute instead of being sent; the attempt log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_rate_limit_holds_the_excess_for_the_next_minute() {
    let shutdown = Shutdown::new();
    let sender = site("rate-send", "example.test", &["alice"]);
    let (port, accepted, _) = greylisting_server(0).await;
    queue(&sender, "R1", &["bob@remote.test"]).await;
    queue(&sender, "R2", &["bob@remote.test"]).await;
    let svc = service_with(
        &sender,
        port,
        &shutdown,
        facteur_config::Queue {
            retry_secs: vec![1],
            scan_secs: 1,
            per_destination_rate: 1,
            ..Default::default()
        },
    );
    tokio::spawn(svc.clone().run());
    wait_until("one sent, one held", || {
        accepted.load(std::sync::atomic::Ordering::SeqCst) == 1
            && sender.store.queue_entries().unwrap().len() == 1
            && sender
                .store
                .queue_attempts(&sender.store.queue_entries().unwrap()[0].message.queue_id)
                .unwrap()
                .iter()
                .any(|a| a.reply.contains("per_destination_rate"))
    })
    .await;
    shutdown.trigger();
}
