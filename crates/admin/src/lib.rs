//! The `http` role: what mail clients and certificate authorities ask of a mail server over
//! HTTP.
//!
//! - Thunderbird autoconfig (`/.well-known/autoconfig/mail/config-v1.1.xml` and
//!   `/mail/config-v1.1.xml`, the `autoconfig.DOMAIN` host), see [`autoconfig`];
//! - Outlook's Autodiscover POX (`POST /autodiscover/autodiscover.xml`);
//! - ACME HTTP-01 answers (RFC 8555 §8.3, `/.well-known/acme-challenge/TOKEN`).
//!
//! The server is a small, strict HTTP/1.1 one (docs/decisions/0015): bounded request line,
//! headers and body, a timeout on every read, one request per connection.
#![forbid(unsafe_code)]

pub mod autoconfig;
mod http;

use facteur_directory::Directory;
use facteur_net::Shutdown;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Answers ACME HTTP-01 challenges: the key authorization for a token, if one is pending.
pub type ChallengeResponder = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything the role needs, shared by its connections.
pub struct Context {
    pub directory: Directory,
    pub clients: autoconfig::Settings,
    pub acme: Option<ChallengeResponder>,
    pub shutdown: Shutdown,
}

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let limits = facteur_net::Limits {
        max_connections: 256,
        max_per_ip: 32,
        busy_reply:
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        refused_reply: |_| {
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        },
    };
    let shutdown = ctx.shutdown.clone();
    facteur_net::accept_loop("http", listener, shutdown, limits, move |stream, peer| {
        let ctx = ctx.clone();
        async move { http::handle(stream, peer, &ctx).await }
    })
    .await;
}
