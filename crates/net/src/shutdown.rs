//! Graceful shutdown: one signal observed by every listener and session (mini-redis pattern),
//! plus a count of live sessions so the server can wait for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, watch};

#[derive(Clone)]
pub struct Shutdown {
    signal: watch::Receiver<bool>,
    trigger: Arc<watch::Sender<bool>>,
    live: Arc<(AtomicUsize, Notify)>,
}

/// Held by a live session; dropping it lets shutdown finish.
pub struct SessionGuard(Arc<(AtomicUsize, Notify)>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            signal: rx,
            trigger: Arc::new(tx),
            live: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }

    pub fn trigger(&self) {
        let _ = self.trigger.send(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.signal.borrow()
    }

    /// Resolves once shutdown is triggered.
    pub async fn triggered(&self) {
        let mut rx = self.signal.clone();
        let _ = rx.wait_for(|&v| v).await;
    }

    pub fn session(&self) -> SessionGuard {
        self.live.0.fetch_add(1, Ordering::AcqRel);
        SessionGuard(self.live.clone())
    }

    pub fn live_sessions(&self) -> usize {
        self.live.0.load(Ordering::Acquire)
    }

    /// Waits until no session is live.
    pub async fn drained(&self) {
        loop {
            let notified = self.live.1.notified();
            if self.live_sessions() == 0 {
                return;
            }
            notified.await;
        }
    }
}
