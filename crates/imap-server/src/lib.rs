//! The IMAP roles: `imap` (STARTTLS, RFC 9051 §6.2.1; LOGINDISABLED before TLS) and `imaps`
//! (implicit TLS, RFC 8314). One server speaks IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501):
//! a client gets rev1 behaviour until it sends `ENABLE IMAP4rev2`.
//!
//! Sessions of one mailbox see each other through the store's change events and MODSEQ: a
//! session's view is brought up to date from `changes_since` at the points RFC 9051 §7.5.1
//! allows (never an EXPUNGE during FETCH, STORE or SEARCH), and at once while in IDLE.
//!
//! Failed logins are logged in one stable line for fail2ban (`etc/fail2ban/`):
//! `auth failed service=imap remote=IP user=NAME`, and answered after a delay.
#![forbid(unsafe_code)]

mod compress;
mod connection;
mod fetch;
mod mailboxes;
mod search;
mod selected;

use facteur_directory::Directory;
use facteur_model::{AccountId, MailboxId, ModSeq, Uid};
use facteur_net::Shutdown;
use facteur_store::Store;
use facteur_store::ViewEntry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Imap,
    Imaps,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Imap => "imap",
            Role::Imaps => "imaps",
        }
    }
}

/// Shared by every IMAP connection of the process.
pub struct Context {
    pub hostname: String,
    pub settings: facteur_config::Imap,
    pub directory: Directory,
    pub store: Store,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: Shutdown,
    /// Sessions per (account, client address), for `max_connections_per_user_ip`.
    user_ip: Mutex<HashMap<(AccountId, IpAddr), usize>>,
    /// Password verifications running at once (each Argon2id run takes 19 MiB and a core).
    verifications: tokio::sync::Semaphore,
    /// Views of mailboxes as they are at a MODSEQ, shared by every session whose view is
    /// exactly that: a thousand sessions idling in one large mailbox hold it once.
    /// Keyed by mailbox and UIDVALIDITY: a row id may come back for a new mailbox after a
    /// DELETE, a UIDVALIDITY never does.
    views: Mutex<HashMap<(MailboxId, u32), SharedView>>,
    /// Told when the user moves or copies messages into Junk (spam: true) or out of it to a
    /// mailbox other than Trash (spam: false): the spam classifier learns from it.
    junk_training: Option<JunkTraining>,
}

/// See [`Context::with_junk_training`]: (account, mailbox, the UIDs there, spam).
pub type JunkTraining = Arc<dyn Fn(AccountId, MailboxId, Vec<Uid>, bool) + Send + Sync>;

/// A view and the MODSEQ it is exact at; weak, so it goes with the last session holding it.
type SharedView = (ModSeq, std::sync::Weak<Vec<ViewEntry>>);

impl Context {
    pub fn new(
        hostname: String,
        settings: facteur_config::Imap,
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
            user_ip: Mutex::new(HashMap::new()),
            verifications: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            ),
            views: Mutex::new(HashMap::new()),
            junk_training: None,
        }
    }

    /// Calls `training` when the user files messages into Junk or takes them out of it.
    pub fn with_junk_training(mut self, training: JunkTraining) -> Context {
        self.junk_training = Some(training);
        self
    }

    /// The shared view of `mailbox` at exactly `modseq`, if a session holds one.
    fn shared_view(
        &self,
        mailbox: (MailboxId, u32),
        modseq: ModSeq,
    ) -> Option<Arc<Vec<ViewEntry>>> {
        let views = self.views.lock().expect("view table");
        views
            .get(&mailbox)
            .filter(|(m, _)| *m == modseq)
            .and_then(|(_, w)| w.upgrade())
    }

    /// Offers a view that is exactly `mailbox` at `modseq` to other sessions; returns the one
    /// to keep (an equal one already shared, or this one).
    fn share_view(
        &self,
        mailbox: (MailboxId, u32),
        modseq: ModSeq,
        view: Arc<Vec<ViewEntry>>,
    ) -> Arc<Vec<ViewEntry>> {
        let mut views = self.views.lock().expect("view table");
        if let Some((m, w)) = views.get(&mailbox)
            && *m == modseq
            && let Some(shared) = w.upgrade()
        {
            return shared;
        }
        if views.len() > 1024 {
            views.retain(|_, (_, w)| w.strong_count() > 0);
        }
        views.insert(mailbox, (modseq, Arc::downgrade(&view)));
        view
    }

    /// Counts a session of `account` from `ip`; None when the cap is reached.
    fn admit(self: &Arc<Self>, account: AccountId, ip: IpAddr) -> Option<UserIpGuard> {
        let mut map = self.user_ip.lock().expect("user-ip table");
        let n = map.entry((account, ip)).or_insert(0);
        if *n >= self.settings.max_connections_per_user_ip {
            return None;
        }
        *n += 1;
        Some(UserIpGuard(self.clone(), account, ip))
    }
}

/// One counted session; released on drop, whatever ends the session.
struct UserIpGuard(Arc<Context>, AccountId, IpAddr);

impl Drop for UserIpGuard {
    fn drop(&mut self) {
        let mut map = self.0.user_ip.lock().expect("user-ip table");
        if let Some(n) = map.get_mut(&(self.1, self.2)) {
            *n -= 1;
            if *n == 0 {
                map.remove(&(self.1, self.2));
            }
        }
    }
}

pub async fn serve(listener: TcpListener, role: Role, ctx: Arc<Context>) {
    let limits = facteur_net::Limits {
        max_connections: ctx.settings.max_connections,
        max_per_ip: ctx.settings.max_connections_per_ip,
        busy_reply: b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n".to_vec(),
        // RFC 5530 §3: UNAVAILABLE, temporary.
        refused_reply: |why| format!("* BYE [UNAVAILABLE] {why}\r\n").into_bytes(),
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
