//! The POP3 roles: `pop3` (STLS, RFC 2595) and `pop3s` (implicit TLS, RFC 8314). POP3 sees the
//! INBOX of the account it logs into; the maildrop is locked per account while a session is in
//! TRANSACTION (RFC 1939 §8), and deletions are expunges every IMAP session will see.
//!
//! Failed logins are logged in one stable line for fail2ban (`etc/fail2ban/`):
//! `auth failed service=pop3 remote=IP user=NAME`, and answered after a delay.
#![forbid(unsafe_code)]

mod connection;

use facteur_directory::Directory;
use facteur_model::AccountId;
use facteur_net::Shutdown;
use facteur_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Pop3,
    Pop3s,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Pop3 => "pop3",
            Role::Pop3s => "pop3s",
        }
    }
}

/// Shared by every POP3 connection of the process.
pub struct Context {
    pub hostname: String,
    pub settings: facteur_config::Pop3,
    pub directory: Directory,
    pub store: Store,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: Shutdown,
    locks: Mutex<HashSet<AccountId>>,
    last_login: Mutex<HashMap<AccountId, Instant>>,
    /// Password verifications running at once. Each Argon2id run takes 19 MiB and a core for
    /// tens of milliseconds: unbounded, a flood of logins would exhaust memory.
    verifications: tokio::sync::Semaphore,
}

impl Context {
    pub fn new(
        hostname: String,
        settings: facteur_config::Pop3,
        directory: Directory,
        store: Store,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: Shutdown,
    ) -> Context {
        Context {
            hostname,
            settings,
            directory,
            store,
            tls,
            shutdown,
            locks: Mutex::new(HashSet::new()),
            last_login: Mutex::new(HashMap::new()),
            verifications: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            ),
        }
    }

    /// Takes the maildrop lock; None when another session holds it.
    fn lock(self: &Arc<Self>, account: AccountId) -> Option<MaildropLock> {
        let mut locks = self.locks.lock().expect("lock table");
        locks
            .insert(account)
            .then(|| MaildropLock(self.clone(), account))
    }

    /// RFC 2449 §8.1.1: true when the account logged in less than LOGIN-DELAY ago.
    fn too_soon(&self, account: AccountId) -> bool {
        let Some(delay) = self.settings.login_delay_secs else {
            return false;
        };
        let mut last = self.last_login.lock().expect("login table");
        let now = Instant::now();
        if last
            .get(&account)
            .is_some_and(|t| now.duration_since(*t).as_secs() < u64::from(delay))
        {
            return true;
        }
        last.insert(account, now);
        false
    }
}

/// Held while a session is in TRANSACTION; released on drop, whatever ends the session.
struct MaildropLock(Arc<Context>, AccountId);

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.0.locks.lock().expect("lock table").remove(&self.1);
    }
}

pub async fn serve(listener: TcpListener, role: Role, ctx: Arc<Context>) {
    let limits = facteur_net::Limits {
        max_connections: ctx.settings.max_connections,
        max_per_ip: ctx.settings.max_connections_per_ip,
        busy_reply: b"-ERR [SYS/TEMP] too many connections, try again later\r\n".to_vec(),
        // RFC 3206 §4: SYS/TEMP, a condition that will pass.
        refused_reply: |why| format!("-ERR [SYS/TEMP] {why}\r\n").into_bytes(),
    };
    let shutdown = ctx.shutdown.clone();
    facteur_net::accept_loop(
        role.name(),
        listener,
        shutdown,
        limits,
        move |stream, peer| {
            let ctx = ctx.clone();
            async move { connection::handle(stream, peer, role, ctx).await }
        },
    )
    .await;
}
