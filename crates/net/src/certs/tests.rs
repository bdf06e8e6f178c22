use super::*;
use rustls::pki_types::ServerName;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the target's temporary directory.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "facteur-net-certs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed certificate for `names`; returns its PEM, its key's PEM and its DER.
fn make(names: &[&str]) -> (String, String, CertificateDer<'static>) {
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

/// Writes a certificate for `names` as `stem.crt`/`stem.key` in `dir`.
fn write(dir: &Path, stem: &str, names: &[&str], hostnames: &[&str]) -> (CertSpec, String) {
    let (cert, key, der) = make(names);
    let spec = CertSpec {
        cert: dir.join(format!("{stem}.crt")),
        key: dir.join(format!("{stem}.key")),
        hostnames: hostnames.iter().map(|s| s.to_string()).collect(),
        source: CertSource::File,
    };
    std::fs::write(&spec.cert, cert).unwrap();
    std::fs::write(&spec.key, key).unwrap();
    (spec, CertInfo::parse(&der).unwrap().serial)
}

#[test]
fn sni_picks_exact_then_wildcard_then_default() {
    let dir = temp_dir();
    let (default, default_serial) = write(&dir, "default", &["mail.example.com"], &[]);
    // Configured names win over the certificate's own.
    let (exact, exact_serial) = write(&dir, "exact", &["other.test"], &["imap.example.org"]);
    let (wild, wild_serial) = write(&dir, "wild", &["*.example.net"], &[]);
    let certs = Certificates::load(vec![default, exact, wild]).unwrap();
    let pick = |sni: Option<&str>| certs.select(sni).unwrap().info.serial;
    assert_eq!(pick(None), default_serial);
    assert_eq!(pick(Some("mail.example.com")), default_serial);
    assert_eq!(pick(Some("IMAP.example.org")), exact_serial);
    assert_eq!(
        pick(Some("other.test")),
        default_serial,
        "configured names replace SANs"
    );
    assert_eq!(pick(Some("pop.example.net")), wild_serial);
    assert_eq!(
        pick(Some("a.b.example.net")),
        default_serial,
        "one label only"
    );
    assert_eq!(pick(Some("example.net")), default_serial);
    assert_eq!(pick(Some("unknown.test")), default_serial);
}

#[test]
fn wildcards_match_one_label() {
    assert!(wildcard_matches("*.example.com", "a.example.com"));
    assert!(wildcard_matches("*.example.com", "A.EXAMPLE.com"));
    assert!(!wildcard_matches("*.example.com", "example.com"));
    assert!(!wildcard_matches("*.example.com", "a.b.example.com"));
    assert!(!wildcard_matches("example.com", "example.com"));
}

#[test]
fn self_signed_is_default_only_without_another() {
    let dir = temp_dir();
    let (mut own, own_serial) = write(&dir, "self", &["localhost"], &[]);
    own.source = CertSource::SelfSigned;
    let certs = Certificates::load(vec![own]).unwrap();
    assert_eq!(certs.select(None).unwrap().info.serial, own_serial);
    let (acme, acme_serial) = write(&dir, "acme", &["mx.example.com"], &[]);
    certs.install(acme).unwrap();
    assert_eq!(
        certs.select(Some("x.test")).unwrap().info.serial,
        acme_serial
    );
}

/// A client handshake with `sni` and `alpn`; returns the serial of the certificate it saw.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    roots: &[CertificateDer<'static>],
    sni: &str,
    alpn: &[&[u8]],
) -> Result<String, std::io::Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move { acceptor.accept(server_io).await.map(|_| ()) });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let client = connector.connect(name, client_io).await;
    let _ = server.await;
    let client = client?;
    let der = &client.get_ref().1.peer_certificates().unwrap()[0];
    Ok(CertInfo::parse(der).unwrap().serial)
}

#[tokio::test]
async fn handshakes_get_the_sni_certificate_and_acme_alpn_the_challenge() {
    let dir = temp_dir();
    let (a_pem, a_key, a_der) = make(&["mail.example.com"]);
    let (b_pem, b_key, b_der) = make(&["imap.example.org"]);
    for (stem, pem, key) in [("a", &a_pem, &a_key), ("b", &b_pem, &b_key)] {
        std::fs::write(dir.join(format!("{stem}.crt")), pem).unwrap();
        std::fs::write(dir.join(format!("{stem}.key")), key).unwrap();
    }
    let spec = |stem: &str| CertSpec {
        cert: dir.join(format!("{stem}.crt")),
        key: dir.join(format!("{stem}.key")),
        hostnames: Vec::new(),
        source: CertSource::File,
    };
    let certs = Certificates::load(vec![spec("a"), spec("b")]).unwrap();
    let roots = [a_der.clone(), b_der.clone()];
    let serial = |d: &CertificateDer<'_>| CertInfo::parse(d).unwrap().serial;
    let seen = handshake(certs.acceptor(), &roots, "imap.example.org", &[])
        .await
        .unwrap();
    assert_eq!(seen, serial(&b_der));
    // A client offering an ALPN protocol the mail roles do not list still connects.
    let seen = handshake(certs.acceptor(), &roots, "mail.example.com", &[b"imap"])
        .await
        .unwrap();
    assert_eq!(seen, serial(&a_der));
    // acme-tls/1 without a challenge certificate: no handshake.
    assert!(
        handshake(
            certs.alpn_challenge_acceptor(),
            &roots,
            "mail.example.com",
            &[ACME_TLS_ALPN]
        )
        .await
        .is_err()
    );
    let (c_pem, c_key, c_der) = make(&["mail.example.com"]);
    let _ = c_pem;
    let key = PrivateKeyDer::from_pem_slice(c_key.as_bytes()).unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    certs.set_alpn_challenge(
        "mail.example.com",
        Arc::new(CertifiedKey::new(vec![c_der.clone()], signing)),
    );
    let roots = [a_der, b_der, c_der.clone()];
    let seen = handshake(
        certs.alpn_challenge_acceptor(),
        &roots,
        "mail.example.com",
        &[ACME_TLS_ALPN],
    )
    .await
    .unwrap();
    assert_eq!(seen, serial(&c_der));
    certs.clear_alpn_challenge("mail.example.com");
    assert!(
        handshake(
            certs.alpn_challenge_acceptor(),
            &roots,
            "mail.example.com",
            &[ACME_TLS_ALPN]
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn a_changed_file_is_reloaded_by_the_watcher() {
    let dir = temp_dir();
    let (spec, first) = write(&dir, "mail", &["mail.example.com"], &[]);
    let certs = Certificates::load(vec![spec]).unwrap();
    let watcher = tokio::spawn(certs.clone().watch_files(Duration::from_millis(50)));
    let (_, second) = write(&dir, "mail", &["mail.example.com"], &[]);
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while certs.select(None).unwrap().info.serial != second {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
}

#[test]
fn a_broken_file_keeps_the_old_certificate() {
    let dir = temp_dir();
    let (spec, serial) = write(&dir, "mail", &["mail.example.com"], &[]);
    let certs = Certificates::load(vec![spec.clone()]).unwrap();
    std::fs::write(&spec.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let errors = certs.reload();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("mail.crt"), "{}", errors[0]);
    assert_eq!(certs.select(None).unwrap().info.serial, serial);
    // A valid certificate with the wrong key is refused too, naming both files.
    let (other_pem, _, _) = make(&["mail.example.com"]);
    std::fs::write(&spec.cert, other_pem).unwrap();
    let errors = certs.reload();
    assert!(
        errors.len() == 1 && errors[0].to_string().contains("does not match the key"),
        "{errors:?}"
    );
    assert_eq!(certs.select(None).unwrap().info.serial, serial);
    // install() of a broken file changes nothing.
    assert!(certs.install(spec).is_err());
    assert_eq!(certs.status().len(), 1);
}

#[test]
fn days_left_rounds_down_and_goes_negative() {
    let now = 1_700_000_000;
    assert_eq!(days_left(now + 14 * 86_400, now), 14);
    assert_eq!(days_left(now + 14 * 86_400 - 1, now), 13);
    assert_eq!(days_left(now + 1, now), 0);
    assert_eq!(days_left(now - 1, now), -1);
    assert_eq!(days_left(now - 86_400, now), -1);
    assert_eq!(days_left(now - 86_401, now), -2);
    assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_utc(951_827_696), "2000-02-29 12:34:56 UTC");
    assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
}

#[test]
fn not_after_is_read_from_the_certificate() {
    let mut params = rcgen::CertificateParams::new(vec!["mail.example.com".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 5, 6);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let info = CertInfo::parse(cert.der()).unwrap();
    assert_eq!(info.not_after_text(), "2031-05-06 00:00:00 UTC");
    assert_eq!(info.dns_names, ["mail.example.com"]);
    let soon = UNIX_EPOCH + Duration::from_secs(info.not_after as u64 - 10 * 86_400 - 5);
    assert_eq!(info.days_left(soon), 10);
    assert!(!info.expired(soon));
    let status = CertStatus {
        spec: CertSpec {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            hostnames: Vec::new(),
            source: CertSource::File,
        },
        info,
    };
    assert!(status.hint(soon).starts_with("expires soon"));
    let after = UNIX_EPOCH + Duration::from_secs(status.info.not_after as u64 + 1);
    assert!(status.hint(after).starts_with("EXPIRED"));
}
