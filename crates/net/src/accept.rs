//! The accept loop every role shares: connection caps (total and per IP), one task per
//! connection, stop on shutdown.

use crate::Shutdown;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// 0: no per-IP limit.
    pub max_per_ip: usize,
    /// What a refused client reads before the close (e.g. `421 4.3.2 ...`).
    pub busy_reply: Vec<u8>,
    /// What a client the gate refuses (a ban) reads before the close, given the reason.
    pub refused_reply: fn(&str) -> Vec<u8>,
}

/// Counts live connections per IP; the guard gives the slot back.
#[derive(Default)]
struct Counter(Mutex<HashMap<IpAddr, usize>>, Mutex<usize>);

struct Slot(Arc<Counter>, IpAddr);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.1.lock().expect("counter lock") -= 1;
        let mut per_ip = self.0.0.lock().expect("counter lock");
        if let Some(n) = per_ip.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.1);
            }
        }
    }
}

impl Counter {
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut total = self.1.lock().expect("counter lock");
        let mut per_ip = self.0.lock().expect("counter lock");
        let mine = per_ip.entry(ip).or_insert(0);
        let over_ip = limits.max_per_ip > 0 && *mine >= limits.max_per_ip;
        if *total >= limits.max_connections || (over_ip && !crate::gate::exempt(ip)) {
            if *mine == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *total += 1;
        *mine += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Counter {
    fn count(&self, ip: IpAddr) -> usize {
        self.0
            .lock()
            .expect("counter lock")
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }
}

/// Accepts until shutdown; runs `handle` in its own task for each connection within limits.
pub async fn accept_loop<F, Fut>(
    role: &'static str,
    listener: TcpListener,
    shutdown: Shutdown,
    limits: Limits,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let counter = Arc::new(Counter::default());
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(role, address = %local, "listening");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => break,
            a = listener.accept() => a,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::error!(role, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some(why) = crate::gate::get().and_then(|g| g.refused(peer.ip().to_canonical())) {
            tracing::info!(role, remote = %peer, reason = %why, "connection refused");
            let reply = (limits.refused_reply)(&why);
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stream.write_all(&reply)).await;
            });
            continue;
        }
        let Some(slot) = counter.take(peer.ip(), &limits) else {
            // Per address (Postfix smtpd_client_connection_count_limit, Dovecot
            // mail_max_userip_connections) or for the whole role.
            let busy = if counter.count(peer.ip()) >= limits.max_per_ip && limits.max_per_ip > 0 {
                let why = format!(
                    "too many connections from {}: at most {} at a time",
                    peer.ip(),
                    limits.max_per_ip
                );
                tracing::warn!(role, remote = %peer, reason = %why, "connection refused");
                (limits.refused_reply)(&why)
            } else {
                tracing::warn!(role, remote = %peer, "connection limit reached; refused");
                limits.busy_reply.clone()
            };
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&busy)).await;
            });
            continue;
        };
        let guard = shutdown.session();
        let task = handle(stream, peer);
        tokio::spawn(async move {
            task.await;
            drop(slot);
            drop(guard);
        });
    }
    tracing::info!(role, address = %local, "stopped listening");
}
