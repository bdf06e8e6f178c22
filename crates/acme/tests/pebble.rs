//! ACME against a real CA on loopback: Debian's `pebble` (RFC 8555 test server) with
//! `pebble-challtestsrv` as its DNS server (every name is 127.0.0.1). Certificates are obtained
//! with HTTP-01 and TLS-ALPN-01, served by SNI, then renewed while the listener keeps running.
//! Nothing leaves the machine. Skipped, saying so, only when `pebble` is not on PATH.

use facteur_acme::{Challenges, Manager, Options};
use facteur_config::AcmeChallenge;
use facteur_net::{CertInfo, CertSource, CertSpec, Certificates};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The tiny HTTP-01 responder the `http` role stands for: answers
/// `GET /.well-known/acme-challenge/TOKEN` from `Challenges` (RFC 8555 §8.3).
async fn serve_http01(listener: TcpListener, challenges: Challenges) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let challenges = challenges.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let path = request.split(' ').nth(1).unwrap_or("");
            let answer = path
                .strip_prefix("/.well-known/acme-challenge/")
                .and_then(|token| challenges.response(token));
            let response = match answer {
                Some(body) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// A mail-role stand-in: completes TLS handshakes with the server's acceptor, says hello.
async fn serve_mail(listener: TcpListener, certs: Certificates) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = certs.acceptor();
        tokio::spawn(async move {
            if let Ok(mut tls) = acceptor.accept(stream).await {
                let _ = tls.write_all(b"* OK\r\n").await;
                let _ = tls.flush().await;
                let mut sink = [0u8; 16];
                let _ = tls.read(&mut sink).await;
            }
        });
    }
}

/// Connects with SNI `name`; returns the leaf the server presented, and the connection.
async fn leaf_seen(
    addr: std::net::SocketAddr,
    name: &str,
) -> (CertInfo, tokio_rustls::client::TlsStream<TcpStream>) {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(facteur_testkit::accept_any()));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap();
    let mut hello = [0u8; 6];
    tls.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, b"* OK\r\n");
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (CertInfo::parse(&leaf).unwrap(), tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_pebble_over_http01_and_tls_alpn01_then_renewed_live() {
    if !facteur_testkit::pebble::available() {
        assert!(
            std::env::var("FACTEUR_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "pebble is not installed (FACTEUR_REQUIRE_INTEROP=1)"
        );
        eprintln!(
            "SKIPPED: `pebble` (with pebble-challtestsrv) is not on PATH; install Debian's \
             `pebble` package to run this test"
        );
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,rustls=error")
        .with_test_writer()
        .try_init();
    let dir = std::env::temp_dir().join(format!("facteur-acme-pebble-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Where pebble validates: our HTTP-01 responder and our TLS-ALPN-01 listener.
    let http01 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_alpn = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pebble = facteur_testkit::pebble::Pebble::start(
        &dir.join("pebble"),
        http01.local_addr().unwrap().port(),
        tls_alpn.local_addr().unwrap().port(),
    );
    let ca_file = pebble.ca_file.clone();

    // The server as it starts without a certificate: self-signed.
    let own = rcgen::generate_simple_self_signed(vec!["mail.facteur.test".into()]).unwrap();
    std::fs::write(dir.join("self.crt"), own.cert.pem()).unwrap();
    std::fs::write(dir.join("self.key"), own.key_pair.serialize_pem()).unwrap();
    let certs = Certificates::load(vec![CertSpec {
        cert: dir.join("self.crt"),
        key: dir.join("self.key"),
        hostnames: Vec::new(),
        source: CertSource::SelfSigned,
    }])
    .unwrap();
    let challenges = Challenges::new();
    tokio::spawn(serve_http01(http01, challenges.clone()));
    tokio::spawn(facteur_acme::serve_tls_alpn(tls_alpn, certs.clone()));
    let mail = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mail_addr = mail.local_addr().unwrap();
    tokio::spawn(serve_mail(mail, certs.clone()));
    let (before, _) = leaf_seen(mail_addr, "mail.facteur.test").await;
    assert!(before.issuer.contains("rcgen"), "{}", before.issuer);

    let options = |hostname: &str, challenge| Options {
        directory: pebble.directory_url.clone(),
        contact: vec!["postmaster@facteur.test".into()],
        hostnames: vec![hostname.to_string()],
        renew_before_days: 30,
        ca_file: Some(ca_file.clone()),
        challenge,
        dir: dir.join("acme"),
        poll: instant_acme::RetryPolicy::new()
            .initial_delay(Duration::from_millis(200))
            .timeout(Duration::from_secs(60)),
    };

    // HTTP-01.
    let http = Manager::new(
        options("mail.facteur.test", AcmeChallenge::Http01),
        certs.clone(),
        challenges.clone(),
    );
    assert!(http.options().due(std::time::SystemTime::now()).is_some());
    let first = http.obtain().await.expect("HTTP-01 certificate");
    assert!(
        first.info.issuer.contains("Pebble"),
        "{}",
        first.info.issuer
    );
    assert_eq!(first.info.dns_names, ["mail.facteur.test"]);
    assert!(http.options().due(std::time::SystemTime::now()).is_none());
    let account = dir.join("acme/account.json");
    let key = dir.join("acme/mail.facteur.test.key");
    for private in [&account, &key] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", private.display());
    }
    let (seen, mut open_connection) = leaf_seen(mail_addr, "mail.facteur.test").await;
    assert_eq!(seen.serial, first.info.serial);
    assert_eq!(seen.issuer, first.info.issuer);
    // Without SNI the ACME certificate is now the default, not the self-signed one.
    assert_eq!(certs.select(None).unwrap().info.serial, first.info.serial);

    // TLS-ALPN-01, for another name: both certificates served side by side by SNI.
    let alpn = Manager::new(
        options("imap.facteur.test", AcmeChallenge::TlsAlpn01),
        certs.clone(),
        challenges.clone(),
    );
    let imap = alpn.obtain().await.expect("TLS-ALPN-01 certificate");
    assert!(imap.info.issuer.contains("Pebble"), "{}", imap.info.issuer);
    let (seen, _) = leaf_seen(mail_addr, "imap.facteur.test").await;
    assert_eq!(seen.serial, imap.info.serial);
    let (seen, _) = leaf_seen(mail_addr, "mail.facteur.test").await;
    assert_eq!(seen.serial, first.info.serial);

    // Forced renewal: a new certificate in service, nothing restarted; the connection opened
    // before still works with the certificate it had.
    let renewed = http.obtain().await.expect("renewal");
    assert_ne!(renewed.info.serial, first.info.serial);
    let (seen, _) = leaf_seen(mail_addr, "mail.facteur.test").await;
    assert_eq!(seen.serial, renewed.info.serial);
    let still = open_connection.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(CertInfo::parse(&still).unwrap().serial, first.info.serial);
    open_connection.write_all(b"x").await.unwrap();

    // A restarted server finds the account and the certificate on disk.
    let fresh = Certificates::load(vec![CertSpec {
        cert: dir.join("self.crt"),
        key: dir.join("self.key"),
        hostnames: Vec::new(),
        source: CertSource::SelfSigned,
    }])
    .unwrap();
    let again = Manager::new(
        options("mail.facteur.test", AcmeChallenge::Http01),
        fresh.clone(),
        challenges.clone(),
    );
    let stored = again.install_stored().unwrap().unwrap();
    assert_eq!(stored.info.serial, renewed.info.serial);
    assert_eq!(
        fresh.select(Some("mail.facteur.test")).unwrap().info.serial,
        renewed.info.serial
    );
    // No challenge answer is left published.
    assert!(challenges.response("anything").is_none());
    drop(pebble);
    let _ = std::fs::remove_dir_all(&dir);
}
