//! Connections kept open between messages to the same host (RFC 5321 §3.3 allows several
//! transactions per session): the next message skips the TCP and TLS handshakes and EHLO.
//! At most `PER_HOST` idle connections per host, closed after `IDLE` seconds without use,
//! well inside the 5 minutes a server waits for the next command (RFC 5321 §4.5.3.2.7).

use crate::client::Connection;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PER_HOST: usize = 8;
const IDLE: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Pool(Mutex<HashMap<String, Vec<(Connection, Instant)>>>);

impl Pool {
    /// An idle connection to this host, if one was kept and is still fresh.
    pub fn take(&self, key: &str) -> Option<Connection> {
        let mut map = self.0.lock().expect("connection pool");
        let idle = map.get_mut(key)?;
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE {
                return Some(conn);
            }
            tokio::spawn(conn.quit());
        }
        None
    }

    /// Keeps `conn` for the next message to its host, or says goodbye when enough are kept.
    pub fn put(&self, key: String, conn: Connection) {
        let mut map = self.0.lock().expect("connection pool");
        let idle = map.entry(key).or_default();
        if idle.len() < PER_HOST {
            idle.push((conn, Instant::now()));
        } else {
            tokio::spawn(conn.quit());
        }
    }

    /// Closes connections idle for too long.
    pub fn close_idle(&self) {
        let mut map = self.0.lock().expect("connection pool");
        for idle in map.values_mut() {
            let (stale, fresh): (Vec<_>, Vec<_>) = idle
                .drain(..)
                .partition(|(_, since)| since.elapsed() >= IDLE);
            *idle = fresh;
            for (conn, _) in stale {
                tokio::spawn(conn.quit());
            }
        }
        map.retain(|_, idle| !idle.is_empty());
    }
}
