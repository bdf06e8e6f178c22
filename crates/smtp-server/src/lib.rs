//! The SMTP servers: role `smtp` (the MX, RFC 5321: mail for local domains only, never a
//! relay), role `lmtp` (RFC 2033), and the submission roles `submission` (RFC 6409, STARTTLS
//! then AUTH) and `submissions` (RFC 8314 implicit TLS). Each connection runs a sans-IO session
//! from `smtp-session`; this crate owns sockets, TLS, timeouts and shutdown, and answers the
//! session's questions from the directory and the store.
//!
//! Invariants: the `250` after a message is sent only after `delivery::deliver_and_queue`
//! returned, i.e. after the local copies and the queue entry for remote recipients are
//! committed; replies are flushed before every blocking read (RFC 2920 §3.2); every read has a
//! timeout (RFC 5321 §4.5.3.2); submission never takes MAIL before a successful AUTH.
#![forbid(unsafe_code)]

mod auth;
mod connection;
mod header;
mod received;
mod recipient;
mod trust;

pub use trust::DkimSigning;

use facteur_directory::Directory;
use facteur_net::Shutdown;
use facteur_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub use received::{queue_id, rfc5322_date};

/// The roles this crate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Smtp,
    Lmtp,
    Submission,
    Submissions,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Smtp => "smtp",
            Role::Lmtp => "lmtp",
            Role::Submission => "submission",
            Role::Submissions => "submissions",
        }
    }

    pub fn is_submission(self) -> bool {
        matches!(self, Role::Submission | Role::Submissions)
    }
}

/// Everything a connection needs, shared by the connections of one listener.
pub struct Context {
    pub role: Role,
    pub hostname: String,
    pub settings: facteur_config::Smtp,
    pub submission: facteur_config::Submission,
    pub directory: Directory,
    pub store: Store,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: Shutdown,
    /// Woken when a message is queued for remote recipients, so it leaves at once.
    pub queued: Option<Arc<tokio::sync::Notify>>,
    /// The MX's SPF/DKIM/DMARC/ARC/iprev checks (`[auth]`); None: not checked.
    pub auth: Option<facteur_trust::inbound::Checker>,
    /// Submission's DKIM signer (`[dkim]`), replaced when keys change.
    pub dkim: DkimSigning,
    /// SRS for mail forwarded outside (`[forwarding]`); None: envelope senders kept as they are.
    pub srs: Option<SrsSettings>,
    /// Connection checks, greylisting, virus and spam filters, milters (`[checks]`,
    /// `[greylist]`, `[antivirus]`, `[spam]`, `[milter]`); None: none.
    pub filter: Option<Arc<facteur_protect::filter::Filter>>,
}

/// The Sender Rewriting Scheme's settings; the SRS domain is the forwarding alias's domain.
#[derive(Clone)]
pub struct SrsSettings {
    /// The first signs, every one verifies (rotation).
    pub secrets: Vec<Vec<u8>>,
    pub max_age_days: u16,
}

impl SrsSettings {
    pub fn for_domain(&self, domain: &str) -> facteur_trust::srs::Srs {
        facteur_trust::srs::Srs::new(self.secrets.clone(), domain, self.max_age_days)
    }
}

impl Context {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs.max(1))
    }
}

/// Accepts connections until shutdown; each runs in its own task.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let mut busy = Vec::new();
    facteur_smtp_session::reply::too_busy(&ctx.hostname).write_to(&mut busy);
    let limits = facteur_net::Limits {
        max_connections: ctx.settings.max_connections,
        max_per_ip: ctx.settings.max_connections_per_ip,
        busy_reply: busy,
        // RFC 5321 §3.1 / RFC 3463 X.7.0: refused for policy, for now (421 closes).
        refused_reply: |why| format!("421 4.7.0 {why}\r\n").into_bytes(),
    };
    let shutdown = ctx.shutdown.clone();
    facteur_net::accept_loop(
        ctx.role.name(),
        listener,
        shutdown,
        limits,
        move |stream, peer| {
            let ctx = ctx.clone();
            async move { connection::handle(stream, peer, &ctx).await }
        },
    )
    .await;
}
