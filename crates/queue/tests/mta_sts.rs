//! MTA-STS (RFC 8461) against a policy server and MX hosts on loopback, names from a DNS
//! server on loopback, certificates from a test CA: a domain in `enforce` mode gets its mail
//! only at a listed MX with a valid certificate; an MX outside the policy, or one whose
//! certificate does not verify, gets nothing (the message waits, never in clear text).

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_queue::client::{Settings, Timeouts, TlsMode, opportunistic_tls, verified_tls};
use facteur_queue::mta_sts::MtaSts;
use facteur_queue::route::Route;
use facteur_queue::service::Service;
use facteur_store::{Options as StoreOptions, QueuedMessage, QueuedRecipient, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(dir: &Path, domain: &str, user: &str) -> (Store, Directory) {
    let store = Store::open(StoreOptions {
        data_dir: dir.to_path_buf(),
        inline_blob_max: 4096,
        group_commit_max: 8,
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
    directory
        .add_account(&format!("{user}@{domain}"), "secret", None)
        .unwrap();
    (store, directory)
}

/// A CA, and a certificate it signed for `names`, written to `dir`; returns (ca, cert, key).
fn certificates(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "facteur test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

/// The policy server: answers by the Host it is asked for.
async fn policy_server(acceptor: tokio_rustls::TlsAcceptor) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let mx = if request.contains("host: mta-sts.strict.test") {
                    "other.strict.test"
                } else if request.contains("host: mta-sts.badcert.test") {
                    "mx.badcert.test"
                } else {
                    "mx.remote.test"
                };
                let body =
                    format!("version: STSv1\r\nmode: enforce\r\nmx: {mx}\r\nmax_age: 86400\r\n");
                let _ = tls
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn mx(
    dir: &Path,
    store: &Store,
    directory: &Directory,
    tls: tokio_rustls::TlsAcceptor,
    listener: tokio::net::TcpListener,
    shutdown: &Shutdown,
) {
    let _ = dir;
    let ctx = Arc::new(facteur_smtp_server::Context {
        role: facteur_smtp_server::Role::Smtp,
        hostname: "mx.remote.test".into(),
        settings: facteur_config::Smtp::default(),
        submission: facteur_config::Submission::default(),
        directory: directory.clone(),
        store: store.clone(),
        tls: Some(tls),
        shutdown: shutdown.clone(),
        queued: None,
    });
    tokio::spawn(facteur_smtp_server::serve(listener, ctx));
}

async fn queue(store: &Store, id: &str, to: &str) {
    let mut w = store.blob_writer();
    w.write(format!("From: alice@example.test\r\nSubject: {id}\r\n\r\nhello\r\n").as_bytes())
        .unwrap();
    let envelope = facteur_delivery::Envelope {
        return_path: "alice@example.test",
        queue_id: id,
        internal_date: 0,
        enforce_quota: false,
    };
    let outbound = QueuedMessage {
        queue_id: id.into(),
        sender: "alice@example.test".into(),
        recipients: vec![QueuedRecipient {
            address: to.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    facteur_delivery::deliver_and_queue(store, w.finish().unwrap(), &envelope, &[], Some(outbound))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_delivers_only_to_listed_mx_over_verified_tls() {
    let root = std::env::temp_dir().join(format!("facteur-mta-sts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let _cleanup = Dir(root.clone());
    let shutdown = Shutdown::new();
    let (ca, cert, key) = certificates(
        &root.join("pki"),
        &[
            "mx.remote.test",
            "mta-sts.remote.test",
            "mta-sts.strict.test",
            "mta-sts.badcert.test",
        ],
    );
    let good_tls = load_tls(TlsSettings::Files {
        cert: &cert,
        key: &key,
    })
    .unwrap()
    .acceptor;
    // MX hosts: the good one on 127.0.0.1 with the CA's certificate, a bad one on 127.0.0.4
    // with a self-signed certificate for its name; the same port on both addresses.
    let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = good.local_addr().unwrap().port();
    let bad = tokio::net::TcpListener::bind(("127.0.0.4", port))
        .await
        .unwrap();
    let (recv_store, recv_dir) = store(&root.join("recv"), "remote.test", "bob");
    recv_dir.add_domain("badcert.test").unwrap();
    recv_dir.add_domain("strict.test").unwrap();
    recv_dir
        .add_account("bob@badcert.test", "secret", None)
        .unwrap();
    recv_dir
        .add_account("bob@strict.test", "secret", None)
        .unwrap();
    mx(
        &root,
        &recv_store,
        &recv_dir,
        good_tls.clone(),
        good,
        &shutdown,
    );
    let bad_tls = load_tls(TlsSettings::SelfSigned {
        hostname: "mx.badcert.test",
        dir: &root.join("bad-tls"),
    })
    .unwrap()
    .acceptor;
    mx(&root, &recv_store, &recv_dir, bad_tls, bad, &shutdown);
    let policy_port = policy_server(good_tls).await;

    let dns = facteur_testkit::dns::DnsServer::start(([127, 0, 0, 1], 0).into());
    for domain in ["remote.test", "strict.test", "badcert.test"] {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        dns.add_txt(&format!("_mta-sts.{domain}"), "v=STSv1; id=20261123;");
        dns.add_a(&format!("mta-sts.{domain}"), [127, 0, 0, 1].into());
    }
    dns.add_a("mx.remote.test", [127, 0, 0, 1].into());
    dns.add_a("mx.strict.test", [127, 0, 0, 1].into());
    dns.add_a("mx.badcert.test", [127, 0, 0, 4].into());
    let resolver = facteur_dns::Resolver::new(&facteur_dns::ResolverOptions {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .unwrap();
    let verified = verified_tls(Some(&ca)).unwrap();
    let route = Route {
        resolver: Some(resolver.clone()),
        mx_port: port,
        mta_sts: Some(Arc::new(MtaSts::new(
            resolver,
            verified.clone(),
            policy_port,
        ))),
        ..Route::default()
    };
    let (send_store, send_dir) = store(&root.join("send"), "example.test", "alice");
    let svc = Arc::new(Service {
        store: send_store.clone(),
        directory: send_dir,
        hostname: "mx.example.test".into(),
        options: facteur_config::Queue {
            retry_secs: vec![3600],
            scan_secs: 1,
            ..Default::default()
        },
        client: Settings {
            helo: "mx.example.test".into(),
            tls: TlsMode::Opportunistic,
            verified,
            opportunistic: opportunistic_tls(),
            timeouts: Timeouts::default(),
        },
        route,
        wake: Arc::default(),
        delay_warning: Duration::ZERO,
        pool: Default::default(),
        destinations: Default::default(),
        rates: Default::default(),
        shutdown: shutdown.clone(),
    });
    queue(&send_store, "GOOD", "bob@remote.test").await;
    queue(&send_store, "STRICT", "bob@strict.test").await;
    queue(&send_store, "BADCERT", "bob@badcert.test").await;
    tokio::spawn(svc.run());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tried = ["GOOD", "STRICT", "BADCERT"].iter().all(|id| {
            !send_store.queue_attempts(id).unwrap_or_default().is_empty() || {
                *id == "GOOD"
                    && send_store
                        .queue_entries()
                        .unwrap()
                        .iter()
                        .all(|e| e.message.queue_id != "GOOD")
            }
        });
        if tried {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every message was tried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<String> = send_store
        .queue_entries()
        .unwrap()
        .iter()
        .map(|e| e.message.queue_id.clone())
        .collect();
    assert_eq!(
        left,
        ["STRICT", "BADCERT"],
        "only the good one left the queue"
    );
    let strict = send_store.queue_attempts("STRICT").unwrap();
    assert!(strict[0].reply.contains("MTA-STS"), "{strict:?}");
    let badcert = send_store.queue_attempts("BADCERT").unwrap();
    assert!(
        badcert[0].reply.contains("TLS handshake failed"),
        "{badcert:?}"
    );
    // Only the good message reached a mailbox.
    let account = recv_store
        .account(&facteur_model::Domain::parse("remote.test").unwrap(), "bob")
        .unwrap()
        .unwrap();
    let inbox = recv_store.mailboxes(account.id).unwrap().remove(0);
    assert_eq!(inbox.messages, 1);
    let got = recv_store
        .message_content(inbox.id, facteur_model::Uid(1))
        .unwrap();
    assert!(
        String::from_utf8_lossy(&got).contains("with ESMTPS"),
        "over TLS"
    );
    for domain in ["badcert.test", "strict.test"] {
        let a = recv_store
            .account(&facteur_model::Domain::parse(domain).unwrap(), "bob")
            .unwrap()
            .unwrap();
        assert_eq!(
            recv_store.mailboxes(a.id).unwrap()[0].messages,
            0,
            "{domain}: nothing in clear text"
        );
    }
    shutdown.trigger();
}
