//! Message delivery with group commit: one thread owns the write connection; deliveries that
//! arrive while it commits are taken together into the next transaction, so N concurrent
//! messages cost one WAL fsync instead of N.
//!
//! Invariants: a delivery's reply is sent only after its transaction committed; each delivery
//! is isolated in a savepoint, so one failing recipient never undoes another message.

use crate::blob::Blob;
use crate::queue::QueuedMessage;
use crate::{Change, Result, Store, StoreError};
use facteur_model::{AccountId, MailboxId, ModSeq, Uid};
use rusqlite::{Connection, params};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// A message to file, already parsed.
#[derive(Debug)]
pub struct NewMessage {
    pub blob: Blob,
    pub internal_date: i64,
    pub envelope: String,
    pub structure: String,
    /// Top-level header fields (JSON), see `delivery::meta`.
    pub headers: String,
    /// Decoded text of the body for the search index (SEARCH BODY/TEXT); may be empty.
    pub search_text: String,
    /// Header fields as text (raw, decoded, parsed addresses) for the search index.
    pub search_headers: String,
    pub queue_id: String,
}

/// One mailbox copy: the account's INBOX (or the mailbox named), with its own trace-header prefix.
#[derive(Debug, Clone)]
pub struct Target {
    pub account: AccountId,
    /// Trace headers for this copy only (Return-Path, Delivered-To), stored beside the shared blob.
    pub prefix: Vec<u8>,
    /// Refuse the copy when it would take the account past its quota (LMTP and single-recipient
    /// paths); when false, a copy accepted at RCPT time may overshoot once.
    pub enforce_quota: bool,
    /// The mailbox to file into (IMAP APPEND); None: the account's INBOX.
    pub mailbox: Option<MailboxId>,
    /// Initial flags, space-separated (IMAP APPEND); empty for delivered mail.
    pub flags: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub modseq: ModSeq,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    #[error("over quota")]
    OverQuota,
    #[error("no such account")]
    NoSuchAccount,
    #[error("no such mailbox")]
    NoSuchMailbox,
    #[error("store failure: {0}")]
    Failed(String),
}

pub(crate) enum Job {
    Deliver(Box<DeliverJob>),
    Record(RecordJob),
    /// A DMARC evaluation to keep for the aggregate report; nobody waits for it.
    Dmarc {
        at: i64,
        policy_domain: String,
        evaluation: String,
    },
}

pub(crate) struct DeliverJob {
    message: NewMessage,
    targets: Vec<Target>,
    queue: Option<QueuedMessage>,
    reply: oneshot::Sender<Result<Vec<Result<Delivered, DeliverError>>>>,
}

/// The attempts of one queued message (`Store::queue_record_batched`).
pub(crate) struct RecordJob {
    pub(crate) queue_id: String,
    pub(crate) attempts: Vec<crate::queue::Attempt>,
    /// Whether no recipient is left queued, and the blob files to remove.
    pub(crate) reply: oneshot::Sender<Result<(bool, Vec<crate::BlobHash>)>>,
}

impl Store {
    /// Files one message into the INBOX of each target. Returns once the copies are durable,
    /// with one outcome per target in order.
    pub async fn deliver(
        &self,
        message: NewMessage,
        targets: Vec<Target>,
    ) -> Result<Vec<Result<Delivered, DeliverError>>> {
        self.deliver_and_queue(message, targets, None).await
    }

    /// Files the local copies and, in the same transaction, queues the message for its remote
    /// recipients: either both are durable or neither is. A failure to queue fails every copy.
    pub async fn deliver_and_queue(
        &self,
        message: NewMessage,
        targets: Vec<Target>,
        queue: Option<QueuedMessage>,
    ) -> Result<Vec<Result<Delivered, DeliverError>>> {
        let (reply, answer) = oneshot::channel();
        self.writer_sender()?
            .send(Job::Deliver(Box::new(DeliverJob {
                message,
                targets,
                queue,
                reply,
            })))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(crate) fn writer_sender(&self) -> Result<mpsc::Sender<Job>> {
        let mut slot = self.inner.writer.lock().expect("writer lock");
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let conn = crate::open_connection(&self.inner.options.data_dir)?;
        let (tx, rx) = mpsc::channel();
        let max = self.inner.options.group_commit_max;
        let changes = self.inner.changes.clone();
        let lock = self.inner.write_lock.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, max, changes, lock))
            .map_err(crate::io_err("starting the store writer"))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }
}

fn run(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    max: usize,
    changes: tokio::sync::broadcast::Sender<Change>,
    lock: std::sync::Arc<std::sync::Mutex<()>>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        let committed = {
            let _turn = lock.lock().expect("write lock");
            commit_batch(&mut conn, &batch, &mut events)
        };
        match committed {
            Ok(outcomes) => {
                // Events first: whoever learns of a delivery (its 250) can already see it.
                for event in events {
                    let _ = changes.send(event);
                }
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    match (job, outcome) {
                        (Job::Deliver(job), Outcome::Deliver(o)) => {
                            let _ = job.reply.send(Ok(o));
                        }
                        (Job::Record(job), Outcome::Record(o)) => {
                            let _ = job.reply.send(o);
                        }
                        (Job::Dmarc { .. }, Outcome::Noted) => {}
                        _ => unreachable!("one outcome per job, in order"),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "store commit failed");
                let text = e.to_string();
                for job in batch {
                    let err = StoreError::Conflict(text.clone());
                    match job {
                        Job::Deliver(job) => {
                            let _ = job.reply.send(Err(err));
                        }
                        Job::Record(job) => {
                            let _ = job.reply.send(Err(err));
                        }
                        Job::Dmarc { .. } => {}
                    }
                }
            }
        }
    }
}

type Outcomes = Vec<Result<Delivered, DeliverError>>;

enum Outcome {
    Deliver(Outcomes),
    Record(Result<(bool, Vec<crate::BlobHash>)>),
    Noted,
}

fn commit_batch(
    conn: &mut Connection,
    batch: &[Job],
    events: &mut Vec<Change>,
) -> Result<Vec<Outcome>> {
    // A batch of attempt records only, all of which may be lazy (decision 0018), commits
    // without an fsync of its own; any delivery or full record makes the whole batch durable.
    let mut lazy = true;
    for job in batch {
        lazy &= match job {
            Job::Deliver(_) => false,
            // Statistics: a power cut losing one costs a row in a report.
            Job::Dmarc { .. } => true,
            Job::Record(r) => crate::queue::record_is_lazy(conn, &r.queue_id, &r.attempts)?,
        };
        if !lazy {
            break;
        }
    }
    if lazy {
        conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    }
    let committed = commit_jobs(conn, batch, events);
    if lazy {
        conn.execute_batch("PRAGMA synchronous=FULL")?;
    }
    committed
}

fn commit_jobs(
    conn: &mut Connection,
    batch: &[Job],
    events: &mut Vec<Change>,
) -> Result<Vec<Outcome>> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut all = Vec::with_capacity(batch.len());
    for job in batch {
        let mut sp = tx.savepoint()?;
        match job {
            Job::Deliver(job) => {
                let mut job_events = Vec::new();
                match file_message(&sp, job, &mut job_events) {
                    Ok(outcomes) => {
                        sp.commit()?;
                        events.extend(job_events);
                        all.push(Outcome::Deliver(outcomes));
                    }
                    Err(e) => {
                        sp.rollback()?;
                        drop(sp);
                        let text = e.to_string();
                        all.push(Outcome::Deliver(
                            job.targets
                                .iter()
                                .map(|_| Err(DeliverError::Failed(text.clone())))
                                .collect(),
                        ));
                    }
                }
            }
            Job::Dmarc {
                at,
                policy_domain,
                evaluation,
            } => {
                let noted = sp
                    .prepare_cached(
                        "INSERT INTO dmarc_evaluations (at, policy_domain, evaluation)
                         VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut st| st.execute(params![at, policy_domain, evaluation]));
                match noted {
                    Ok(_) => sp.commit()?,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot keep a DMARC evaluation");
                        sp.rollback()?;
                    }
                }
                all.push(Outcome::Noted);
            }
            Job::Record(job) => {
                match crate::queue::record_attempts(&sp, &job.queue_id, &job.attempts) {
                    Ok(done) => {
                        sp.commit()?;
                        all.push(Outcome::Record(Ok(done)));
                    }
                    Err(e) => {
                        sp.rollback()?;
                        drop(sp);
                        all.push(Outcome::Record(Err(e)));
                    }
                }
            }
        }
    }
    tx.commit()?;
    Ok(all)
}

fn file_message(conn: &Connection, job: &DeliverJob, events: &mut Vec<Change>) -> Result<Outcomes> {
    let m = &job.message;
    conn.prepare_cached(
        "INSERT INTO blobs (hash, size, data) VALUES (?1, ?2, ?3) ON CONFLICT (hash) DO NOTHING",
    )?
    .execute(params![
        &m.blob.hash.0[..],
        m.blob.size as i64,
        m.blob.inline.as_deref()
    ])?;
    if conn.changes() == 1 && !(m.search_text.is_empty() && m.search_headers.is_empty()) {
        conn.prepare_cached("INSERT INTO blob_text (hash) VALUES (?1)")?
            .execute([&m.blob.hash.0[..]])?;
        conn.prepare_cached(
            "INSERT INTO text_index (rowid, body, headers) VALUES (last_insert_rowid(), ?1, ?2)",
        )?
        .execute([&m.search_text, &m.search_headers])?;
    }
    let mut outcomes = Vec::with_capacity(job.targets.len());
    for target in &job.targets {
        let size = m.blob.size + target.prefix.len() as u64;
        let account: Option<(i64, i64)> = conn
            .prepare_cached("SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?1")?
            .query_row([target.account.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some((quota, used)) = account else {
            outcomes.push(Err(DeliverError::NoSuchAccount));
            continue;
        };
        // RFC 3463 X.2.2: the mailbox is full.
        if target.enforce_quota && quota > 0 && used as u64 + size > quota as u64 {
            outcomes.push(Err(DeliverError::OverQuota));
            continue;
        }
        let row = match target.mailbox {
            None => conn
                .prepare_cached(
                    "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                     WHERE account_id = ?1 AND special_use = 'inbox'
                     RETURNING id, uidnext - 1, highestmodseq",
                )?
                .query_row([target.account.0], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                }),
            // The account check keeps an APPEND inside the account that asked.
            Some(mailbox) => conn
                .prepare_cached(
                    "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                     WHERE account_id = ?1 AND id = ?2
                     RETURNING id, uidnext - 1, highestmodseq",
                )?
                .query_row(params![target.account.0, mailbox.0], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                }),
        };
        let (mailbox, uid, modseq): (i64, u32, i64) = match row {
            Ok(row) => row,
            Err(rusqlite::Error::QueryReturnedNoRows) => {
                outcomes.push(Err(DeliverError::NoSuchMailbox));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        conn.prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, size, prefix,
                                   blob_hash, envelope, structure, queue_id, headers)
             VALUES (?1, ?2, ?3, ?12, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            mailbox,
            uid,
            modseq,
            m.internal_date,
            size as i64,
            &target.prefix,
            &m.blob.hash.0[..],
            &m.envelope,
            &m.structure,
            &m.queue_id,
            &m.headers,
            &target.flags,
        ])?;
        conn.prepare_cached("UPDATE accounts SET used_bytes = used_bytes + ?2 WHERE id = ?1")?
            .execute(params![target.account.0, size as i64])?;
        let delivered = Delivered {
            mailbox: MailboxId(mailbox),
            uid: Uid(uid),
            modseq: ModSeq(modseq as u64),
        };
        events.push(Change::MessageAdded {
            account: target.account,
            mailbox: delivered.mailbox,
            uid: delivered.uid,
            modseq: delivered.modseq,
        });
        outcomes.push(Ok(delivered));
    }
    if let Some(queued) = &job.queue {
        crate::queue::insert(conn, &m.blob, queued)?;
    }
    Ok(outcomes)
}
