//! The SMTP servers: role `smtp` (the MX, RFC 5321: mail for local domains only, never a relay)
//! and role `lmtp` (RFC 2033). Each connection runs a sans-IO session from `smtp-session`; this
//! crate owns sockets, TLS, timeouts and shutdown, and answers the session's questions from the
//! directory and the store.
//!
//! Invariants: the `250` after a message is sent only after `delivery::deliver` returned, i.e.
//! after the copies are committed; replies are flushed before every blocking read (RFC 2920
//! §3.2); every read has a timeout (RFC 5321 §4.5.3.2).
#![forbid(unsafe_code)]

mod connection;
mod received;
mod recipient;

use facteur_directory::Directory;
use facteur_net::Shutdown;
use facteur_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use received::{queue_id, rfc5322_date};

/// The two roles this crate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Smtp,
    Lmtp,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Smtp => "smtp",
            Role::Lmtp => "lmtp",
        }
    }
}

/// Everything a connection needs, shared by the connections of one listener.
pub struct Context {
    pub role: Role,
    pub hostname: String,
    pub settings: facteur_config::Smtp,
    pub directory: Directory,
    pub store: Store,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: Shutdown,
}

impl Context {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs.max(1))
    }
}

/// Accepts connections until shutdown; each runs in its own task.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let slots = Arc::new(Semaphore::new(ctx.settings.max_connections));
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(role = ctx.role.name(), address = %local, "listening");
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.triggered() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::error!(role = ctx.role.name(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = slots.clone().try_acquire_owned().ok();
        let ctx = ctx.clone();
        let guard = ctx.shutdown.session();
        tokio::spawn(async move {
            match permit {
                Some(_permit) => connection::handle(stream, peer, &ctx).await,
                None => connection::refuse_busy(stream, peer, &ctx).await,
            }
            drop(guard);
        });
    }
    tracing::info!(role = ctx.role.name(), address = %local, "stopped listening");
}
