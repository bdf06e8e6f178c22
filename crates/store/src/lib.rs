//! The mail store: accounts, mailboxes and messages in the IMAP data model (RFC 9051 §2.3,
//! RFC 7162 for MODSEQ), kept in SQLite (WAL) with message bodies as content-addressed blobs.
//!
//! Durability invariants (docs/architecture.md, "Storage and durability"):
//! - a blob is durable before the row that names it is committed (file blobs: temp file, fsync,
//!   rename, fsync directory; inline blobs: inside the same transaction);
//! - `deliver` returns only after the transaction holding the message is committed with
//!   `synchronous=FULL`, i.e. after the WAL is fsynced;
//! - concurrent deliveries share one transaction and one fsync (group commit, [`writer`]).
#![forbid(unsafe_code)]

mod app_password;
mod bans;
mod blob;
mod check;
mod directory;
mod filter;
mod imap;
mod mailbox;
mod queue;
mod schema;
mod secrets;
mod trust;
mod writer;

pub use app_password::AppPassword;
pub use bans::Ban;
pub use blob::{Blob, BlobHash, BlobWriter};
pub use check::CheckReport;
pub use directory::{AccountRecord, AliasRecord};
pub use filter::{BayesCounts, GreylistTimes, Greylisted};
pub use imap::{
    FlagOp, MailboxChanges, MailboxCounts, MailboxRow, SearchRow, StoreOutcome, ViewEntry,
    apply_flags,
};
pub use mailbox::{MailboxInfo, MessageInfo};
pub use queue::{
    Attempt, AttemptOutcome, AttemptRecord, DueMessage, DueRecipient, QueueEntry, QueuedMessage,
    QueuedRecipient, RecipientState,
};
pub use secrets::{AccountSecrets, AppPasswordSecrets, CredentialSecrets, ScramKeys, ScramSalt};
pub use trust::DkimKey;
pub use writer::{DeliverError, Delivered, NewMessage, Target};

use facteur_model::{AccountId, MailboxId, ModSeq, Uid};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("the database schema version {found} is newer than this facteur knows ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("over quota")]
    OverQuota,
    #[error("the store's writer has stopped")]
    WriterGone,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// What the store needs to know; the binary fills it from `[store]` and `data_dir`.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// Bodies up to this size live in the database, larger ones in `blobs/`.
    pub inline_blob_max: u64,
    /// Most deliveries committed in one transaction.
    pub group_commit_max: usize,
}

/// A change, published after it is committed; IMAP IDLE and other sessions subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    MessageAdded {
        account: AccountId,
        mailbox: MailboxId,
        uid: Uid,
        modseq: ModSeq,
    },
    /// Flags changed on these messages, all with the same new MODSEQ.
    FlagsChanged {
        account: AccountId,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        modseq: ModSeq,
    },
    /// Messages removed for good, all with the same new MODSEQ (RFC 7162 §3.2.10).
    Expunged {
        account: AccountId,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        modseq: ModSeq,
    },
}

/// The embedded store. Cheap to clone; all clones share one writer and one reader pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<std::sync::mpsc::Sender<writer::Job>>>,
    changes: broadcast::Sender<Change>,
    /// Held by whoever writes in this process: writers queue on it instead of polling
    /// SQLite's lock with sleeps (the busy handler) under contention.
    write_lock: Arc<Mutex<()>>,
}

impl Store {
    /// Opens (creating if needed) the store in `options.data_dir` and migrates its schema.
    pub fn open(options: Options) -> Result<Store> {
        for dir in [
            options.data_dir.clone(),
            options.data_dir.join("blobs"),
            options.data_dir.join("tmp"),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        let mut conn = open_connection(&options.data_dir)?;
        schema::migrate(&mut conn)?;
        let (changes, _) = broadcast::channel(4096);
        let store = Store {
            inner: Arc::new(Inner {
                options,
                readers: Mutex::new(vec![conn]),
                writer: Mutex::new(None),
                changes,
                write_lock: Arc::new(Mutex::new(())),
            }),
        };
        Ok(store)
    }

    /// Removes temp files a crashed server left; only the serving process calls it, as an
    /// admin command running beside the server must not touch the server's files.
    pub fn clean_temp_files(&self) {
        blob::clean_tmp(&self.inner.options.data_dir);
    }

    pub(crate) fn publish(&self, change: Change) {
        let _ = self.inner.changes.send(change);
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.options.data_dir
    }

    /// Subscribes to changes committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    /// A writer for a new message body; finish it, then pass the blob to `deliver`.
    pub fn blob_writer(&self) -> BlobWriter {
        BlobWriter::new(
            self.inner.options.data_dir.clone(),
            self.inner.options.inline_blob_max,
        )
    }

    /// Runs `f` on a pooled read connection. Reads see the last committed state.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.inner.readers.lock().expect("reader pool lock").pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.inner.options.data_dir)?,
        };
        let out = f(&conn);
        let mut pool = self.inner.readers.lock().expect("reader pool lock");
        if pool.len() < 16 {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` in an immediate write transaction on a pooled connection (admin changes; message
    /// deliveries go through the group-commit writer instead).
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.read(|conn| {
            let _turn = self.inner.write_lock.lock().expect("write lock");
            transaction(conn, f)
        })
    }

    /// Like `write`, for changes whose loss in a power failure costs nothing lasting (flags,
    /// \Recent, subscriptions): committed with `synchronous=NORMAL`, so without an fsync of
    /// its own; the next FULL commit (any delivery) makes it durable. Never for anything that
    /// files or removes a message.
    pub(crate) fn write_lazy<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.read(|conn| {
            let _turn = self.inner.write_lock.lock().expect("write lock");
            conn.execute_batch("PRAGMA synchronous=NORMAL")?;
            let result = transaction(conn, f);
            conn.execute_batch("PRAGMA synchronous=FULL")?;
            result
        })
    }
}

/// Runs `f` in an immediate transaction on `conn` and commits it.
fn transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Opens one connection with the pragmas every connection needs.
fn open_connection(data_dir: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        data_dir.join("facteur.db"),
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    debug_assert_eq!(mode, "wal");
    // FULL: in WAL mode the WAL is fsynced at every commit, so a commit is durable when it
    // returns (NORMAL would only sync at checkpoints).
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
    )?;
    Ok(conn)
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
