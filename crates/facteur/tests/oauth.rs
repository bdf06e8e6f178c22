//! OAuth end to end: `facteur serve` with `oauth.jwks_url` fetches the issuer's JWK Set from a
//! loopback HTTP server at start; a token signed with that key logs in over XOAUTH2 on
//! submission, a token signed with another key does not. The same issuer key published later
//! under a new `kid` is picked up by the hourly refresh, not tested here (an hour).

mod harness;

use facteur_directory::sasl::{encode_base64, encode_base64url};
use harness::{Client, Ports, Site, free_port};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://id.example.test";

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn token(key: &Ed25519KeyPair, email: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = encode_base64url(br#"{"alg":"EdDSA","kid":"main"}"#);
    let claims = encode_base64url(
        format!(
            r#"{{"iss":"{ISSUER}","aud":"mail","email":"{email}","exp":{}}}"#,
            now + 300
        )
        .as_bytes(),
    );
    let signed = format!("{header}.{claims}");
    format!(
        "{signed}.{}",
        encode_base64url(key.sign(signed.as_bytes()).as_ref())
    )
}

/// Serves `body` for every request, counting requests, until the test ends.
fn serve_jwks(body: String) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/jwk-set+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

#[test]
fn xoauth2_with_keys_fetched_from_the_issuer_url() {
    let issuer = key();
    let jwks = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"main","use":"sig","x":"{}"}}]}}"#,
        encode_base64url(issuer.public_key().as_ref())
    );
    let (jwks_port, hits) = serve_jwks(jwks);
    let ports = Ports {
        submission: Some(free_port()),
        ..Ports::none()
    };
    let mut site = Site::with_ports(
        "oauth",
        "",
        &format!(
            "[submission]\nplaintext_auth = true\nauth_failure_delay_ms = 10\n\
             [oauth]\nissuer = \"{ISSUER}\"\naudience = \"mail\"\n\
             jwks_url = \"http://127.0.0.1:{jwks_port}/.well-known/jwks.json\"\n"
        ),
        ports,
    );
    site.setup(&["alice@example.test"]);
    let _server = site.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !site.log().contains("OAuth issuer keys loaded") {
        assert!(
            Instant::now() < deadline,
            "keys never loaded:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let xoauth2 = |token: &str| {
        encode_base64(format!("user=alice@example.test\x01auth=Bearer {token}\x01\x01").as_bytes())
    };
    let mut c = Client::hello(site.submission(), false).unwrap();
    let ehlo = c.command("EHLO client.test").unwrap();
    assert!(
        ehlo.lines.iter().any(|l| l.contains("OAUTHBEARER XOAUTH2")),
        "{ehlo}"
    );
    // Another key's signature: the error challenge, then 535.
    let forged = token(&key(), "alice@example.test");
    let reply = c
        .command(&format!("AUTH XOAUTH2 {}", xoauth2(&forged)))
        .unwrap();
    assert!(reply.is("334"), "{reply}");
    assert!(c.command("").unwrap().is("535 5.7.8"));
    let good = token(&issuer, "alice@example.test");
    let reply = c
        .command(&format!("AUTH XOAUTH2 {}", xoauth2(&good)))
        .unwrap();
    assert!(reply.is("235 2.7.0"), "{reply}");
    assert!(site.log().contains("via="), "{}", site.log());
}
