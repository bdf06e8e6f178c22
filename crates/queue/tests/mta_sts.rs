//! MTA-STS (RFC 8461) against a policy server and MX hosts on loopback, names from a DNS
//! server on loopback, certificates from a test CA: a domain in `enforce` mode gets its mail
//! only at a listed MX with a valid certificate; an MX outside the policy, or one whose
//! certificate does not verify, gets nothing (the message waits, never in clear text).

use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_queue::client::verified_tls;
use facteur_queue::mta_sts::MtaSts;
use facteur_queue::route::Route;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{Dir, certificates, mx, queue, service, store, wait_tried};

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
        &recv_store,
        &recv_dir,
        Some(good_tls.clone()),
        good,
        &shutdown,
    );
    let bad_tls = load_tls(TlsSettings::SelfSigned {
        hostname: "mx.badcert.test",
        dir: &root.join("bad-tls"),
    })
    .unwrap()
    .acceptor;
    mx(&recv_store, &recv_dir, Some(bad_tls), bad, &shutdown);
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
    let svc = service(&send_store, send_dir, route, verified, &shutdown);
    queue(&send_store, "GOOD", "bob@remote.test").await;
    queue(&send_store, "STRICT", "bob@strict.test").await;
    queue(&send_store, "BADCERT", "bob@badcert.test").await;
    tokio::spawn(svc.run());
    wait_tried(&send_store, &["GOOD", "STRICT", "BADCERT"]).await;
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
