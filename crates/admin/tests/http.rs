//! The http role over TCP: autoconfig and Autodiscover for local domains only, ACME HTTP-01
//! answers, and the limits of the small server.

use facteur_admin::{ChallengeResponder, Context, autoconfig};
use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_net::Shutdown;
use facteur_store::{Options as StoreOptions, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    addr: SocketAddr,
    dir: std::path::PathBuf,
    shutdown: Shutdown,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(name: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("facteur-http-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(StoreOptions {
        data_dir: dir.clone(),
        inline_blob_max: 4096,
        group_commit_max: 4,
    })
    .unwrap();
    let directory = Directory::new(
        store,
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: std::time::Duration::ZERO,
        },
    );
    directory.add_domain("example.org").unwrap();
    let config = facteur_config::Config {
        hostname: "mail.example.org".into(),
        ..Default::default()
    };
    let acme: ChallengeResponder =
        Arc::new(|token: &str| (token == "tok-1").then(|| "tok-1.thumbprint".to_string()));
    let shutdown = Shutdown::new();
    let ctx = Arc::new(Context {
        directory,
        clients: autoconfig::Settings::from_config(&config),
        acme: Some(acme),
        shutdown: shutdown.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(facteur_admin::serve(listener, ctx));
    Server {
        addr,
        dir,
        shutdown,
    }
}

/// Sends raw bytes, returns (status, body).
async fn request(addr: SocketAddr, raw: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(15), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test]
async fn autoconfig_autodiscover_and_acme() {
    let s = start("routes").await;
    let (status, body) = request(
        s.addr,
        b"GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org HTTP/1.1\r\nHost: example.org\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<emailProvider id=\"example.org\">"));
    assert!(body.contains("<hostname>mail.example.org</hostname>"));
    // Thunderbird's other URL, domain from the autoconfig.DOMAIN host name.
    let (status, body) = request(
        s.addr,
        b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.org\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("<domain>example.org</domain>"));
    // Domains that are not ours get nothing.
    let (status, _) = request(
        s.addr,
        b"GET /mail/config-v1.1.xml?emailaddress=eve%40elsewhere.example HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404);
    let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>bob@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
    let post = format!(
        "POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.org\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
        xml.len()
    );
    let (status, body) = request(s.addr, post.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<LoginName>bob@example.org</LoginName>"));
    assert!(body.contains("<Type>SMTP</Type>"));
    let (status, _) = request(
        s.addr,
        b"GET /autodiscover/autodiscover.xml HTTP/1.1\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    // RFC 8555 §8.3: the key authorization for a pending token, 404 for any other.
    let (status, body) = request(
        s.addr,
        b"GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: mail.example.org\r\n\r\n",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "tok-1.thumbprint"));
    let (status, _) = request(
        s.addr,
        b"GET /.well-known/acme-challenge/other HTTP/1.1\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn limits() {
    let s = start("limits").await;
    let mut big = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..400 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(20)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(request(s.addr, &big).await.0, 431);
    assert_eq!(
        request(
            s.addr,
            b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n"
        )
        .await
        .0,
        413
    );
    assert_eq!(request(s.addr, b"BREW /pot HTTP/1.1\r\n\r\n").await.0, 404);
    assert_eq!(request(s.addr, b"GET / HTTP/3\r\n\r\n").await.0, 505);
}
