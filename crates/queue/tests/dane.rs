//! DANE (RFC 7672) against facteur's MX role on loopback, names and TLSA records from a DNS
//! server on loopback that plays a validating resolver (the AD bit for "signed" names): a
//! certificate matching a DANE-EE or DANE-TA record is delivered to; a mismatch, a DANE-TA
//! chain for another name, a server without STARTTLS or an unreadable TLSA set get nothing
//! (the message waits, never in clear text); unsigned records are ignored; a secure set of
//! unusable records still means TLS.

use facteur_dns::{Resolver, ResolverOptions};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_queue::client::verified_tls;
use facteur_queue::route::Route;
use facteur_testkit::dns::{DnsServer, ResponseCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::Digest;
use std::time::Duration;

mod common;
use common::{Dir, certificates, mx, queue, service, store, wait_tried};

/// The recipient domains; each `mx.DOMAIN`, with `bob@DOMAIN` on the receiving side.
const DOMAINS: [&str; 8] = [
    "ee.test",
    "ta.test",
    "tawrong.test",
    "mismatch.test",
    "unsigned.test",
    "pkix.test",
    "notls.test",
    "servfail.test",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlsa_records_decide_the_tls_of_mx_hosts() {
    let root = std::env::temp_dir().join(format!("facteur-dane-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let _cleanup = Dir(root.clone());
    let shutdown = Shutdown::new();
    // One certificate, from a test CA, naming the hosts whose checks should pass by name.
    let (ca, cert, key) = certificates(&root.join("pki"), &["mx.ee.test", "mx.ta.test"]);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (leaf, ca_der) = (&chain[0], &chain[1]);
    let leaf_spki = x509_parser::parse_x509_certificate(leaf.as_ref())
        .unwrap()
        .1
        .tbs_certificate
        .subject_pki
        .raw
        .to_vec();
    let tls = load_tls(TlsSettings::Files {
        cert: &cert,
        key: &key,
    })
    .unwrap()
    .acceptor;
    // The MX with TLS on 127.0.0.1; the same MX role without STARTTLS on 127.0.0.5.
    let with_tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = with_tls.local_addr().unwrap().port();
    let without_tls = tokio::net::TcpListener::bind(("127.0.0.5", port))
        .await
        .unwrap();
    let (recv_store, recv_dir) = store(&root.join("recv"), "ee.test", "bob");
    for domain in &DOMAINS[1..] {
        recv_dir.add_domain(domain).unwrap();
        recv_dir
            .add_account(&format!("bob@{domain}"), "secret", None)
            .unwrap();
    }
    mx(&recv_store, &recv_dir, Some(tls), with_tls, &shutdown);
    mx(&recv_store, &recv_dir, None, without_tls, &shutdown);

    let dns = DnsServer::start(([127, 0, 0, 1], 0).into());
    for domain in DOMAINS {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        let ip = if domain == "notls.test" {
            [127, 0, 0, 5]
        } else {
            [127, 0, 0, 1]
        };
        dns.add_a(&format!("mx.{domain}"), ip.into());
        if domain != "unsigned.test" {
            dns.sign(domain);
        }
    }
    let tlsa = |domain: &str| format!("_{port}._tcp.mx.{domain}");
    let spki_sha256 = sha2::Sha256::digest(&leaf_spki).to_vec();
    let ca_sha256 = sha2::Sha256::digest(ca_der).to_vec();
    // DANE-EE SPKI SHA2-256 (the common "3 1 1"), beside an unusable PKIX-EE record.
    dns.add_tlsa(&tlsa("ee.test"), 3, 1, 1, &spki_sha256)
        .add_tlsa(&tlsa("ee.test"), 1, 1, 1, &[0; 32]);
    // DANE-TA: the CA, whole certificate, SHA2-256 ("2 0 1"); the chain names mx.ta.test.
    dns.add_tlsa(&tlsa("ta.test"), 2, 0, 1, &ca_sha256);
    // The same anchor for a host the certificate does not name: the name check fails.
    dns.add_tlsa(&tlsa("tawrong.test"), 2, 0, 1, &ca_sha256);
    dns.add_tlsa(&tlsa("mismatch.test"), 3, 1, 1, &[0x5a; 32]);
    // Unsigned: a wrong record that must be ignored.
    dns.add_tlsa(&tlsa("unsigned.test"), 3, 1, 1, &[0x5a; 32]);
    // Only PKIX usages: unusable for SMTP, TLS required without authentication.
    dns.add_tlsa(&tlsa("pkix.test"), 1, 1, 1, &spki_sha256);
    dns.add_tlsa(&tlsa("notls.test"), 3, 1, 1, &spki_sha256);
    dns.fail(&tlsa("servfail.test"), ResponseCode::ServFail);

    let resolver = Resolver::new(&ResolverOptions {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .unwrap();
    let route = Route {
        resolver: Some(resolver),
        mx_port: port,
        dane: true,
        ..Route::default()
    };
    let (send_store, send_dir) = store(&root.join("send"), "example.test", "alice");
    // Public verification knows the test CA: what DANE refuses is refused by DANE alone.
    let svc = service(
        &send_store,
        send_dir,
        route,
        verified_tls(Some(&ca)).unwrap(),
        &shutdown,
    );
    for domain in DOMAINS {
        queue(&send_store, domain, &format!("bob@{domain}")).await;
    }
    tokio::spawn(svc.run());
    wait_tried(&send_store, &DOMAINS).await;

    let left: Vec<String> = send_store
        .queue_entries()
        .unwrap()
        .iter()
        .map(|e| e.message.queue_id.clone())
        .collect();
    assert_eq!(
        left,
        [
            "tawrong.test",
            "mismatch.test",
            "notls.test",
            "servfail.test"
        ],
        "the messages DANE holds back"
    );
    let reply = |id: &str| {
        let attempts = send_store.queue_attempts(id).unwrap();
        assert_eq!(attempts.len(), 1, "{id}: {attempts:?}");
        format!("{} | {}", attempts[0].host, attempts[0].reply)
    };
    let tawrong = reply("tawrong.test");
    assert!(
        tawrong.contains("DANE") && tawrong.contains("mx.tawrong.test"),
        "{tawrong}"
    );
    let mismatch = reply("mismatch.test");
    assert!(
        mismatch.contains("matches none of its 1 usable TLSA record"),
        "{mismatch}"
    );
    let notls = reply("notls.test");
    assert!(notls.contains("STARTTLS is required"), "{notls}");
    let servfail = reply("servfail.test");
    assert!(
        servfail.contains("TLSA") && servfail.contains("SERVFAIL"),
        "{servfail}"
    );

    // What was delivered, and how the attempt log describes its TLS.
    let delivered = |domain: &str| {
        let account = recv_store
            .account(&facteur_model::Domain::parse(domain).unwrap(), "bob")
            .unwrap()
            .unwrap();
        recv_store.mailboxes(account.id).unwrap()[0].messages
    };
    for (domain, count) in [
        ("ee.test", 1),
        ("ta.test", 1),
        ("unsigned.test", 1),
        ("pkix.test", 1),
        ("tawrong.test", 0),
        ("mismatch.test", 0),
        ("notls.test", 0),
        ("servfail.test", 0),
    ] {
        assert_eq!(delivered(domain), count, "{domain}");
    }
    shutdown.trigger();
}
