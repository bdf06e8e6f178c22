//! The outbound queue: messages accepted for remote recipients, kept until each recipient is
//! delivered, bounced or expired (the outbound service works through it).
//!
//! Invariants: a queue row is written in the same transaction as the local copies of its
//! message (`Store::deliver_and_queue`), so the `250` covers both; its blob is referenced and
//! never collected while the row exists; each recipient has its own state.

use crate::blob::{Blob, BlobHash, blob_path};
use crate::{Result, Store, StoreError, io_err, now_unix};
use rusqlite::{Connection, OptionalExtension, params};

/// A message to queue for its remote recipients.
#[derive(Debug, Clone, Default)]
pub struct QueuedMessage {
    pub queue_id: String,
    /// The reverse path; empty for the null sender.
    pub sender: String,
    pub envid: Option<String>,
    pub ret_full: Option<bool>,
    pub smtputf8: bool,
    pub body_8bit: bool,
    /// The authenticated account that submitted it.
    pub submitter: Option<String>,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub address: String,
    /// RFC 3461 NOTIFY values, upper case.
    pub notify: Vec<String>,
    pub orcpt: Option<String>,
}

/// A queued message as stored, with its recipients' states.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub message: QueuedMessage,
    pub size: u64,
    pub created: i64,
    pub held: bool,
    /// (recipient, state, attempts, next attempt, last reply)
    pub states: Vec<RecipientState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    pub address: String,
    pub state: String,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_reply: Option<String>,
}

pub(crate) fn insert(conn: &Connection, blob: &Blob, m: &QueuedMessage) -> Result<()> {
    let now = now_unix();
    let row: i64 = conn
        .prepare_cached(
            "INSERT INTO queue (queue_id, blob_hash, sender, envid, ret_full, smtputf8, body_8bit,
                                submitter, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![
                m.queue_id,
                &blob.hash.0[..],
                m.sender,
                m.envid,
                m.ret_full,
                m.smtputf8,
                m.body_8bit,
                m.submitter,
                now
            ],
            |r| r.get(0),
        )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO queue_recipients (queue_row, position, address, notify, orcpt, next_attempt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, r) in m.recipients.iter().enumerate() {
        stmt.execute(params![
            row,
            i as i64,
            r.address,
            r.notify.join(","),
            r.orcpt,
            now
        ])?;
    }
    Ok(())
}

/// A `queue` row (with its blob's size) as an entry without recipients yet.
fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, QueueEntry)> {
    Ok((
        r.get(0)?,
        QueueEntry {
            message: QueuedMessage {
                queue_id: r.get(1)?,
                sender: r.get(2)?,
                envid: r.get(3)?,
                ret_full: r.get(4)?,
                smtputf8: r.get(5)?,
                body_8bit: r.get(6)?,
                submitter: r.get(7)?,
                recipients: Vec::new(),
            },
            created: r.get(8)?,
            held: r.get(9)?,
            size: r.get::<_, i64>(10)? as u64,
            states: Vec::new(),
        },
    ))
}

/// Deletes a queued message (its recipients and attempts go with it) and its blob when
/// nothing else holds it; returns the blob file to remove after the commit.
fn delete_message(tx: &Connection, row: i64) -> Result<Option<BlobHash>> {
    let hash: Vec<u8> = tx.query_row(
        "DELETE FROM queue WHERE id = ?1 RETURNING blob_hash",
        [row],
        |r| r.get(0),
    )?;
    crate::check::release_blob(tx, &hash)
}

/// The queue's messages (or the one named) with their recipients and states.
fn entries(c: &Connection, queue_id: Option<&str>) -> Result<Vec<QueueEntry>> {
    let mut stmt = c.prepare_cached(
        "SELECT q.id, q.queue_id, q.sender, q.envid, q.ret_full, q.smtputf8, q.body_8bit,
                q.submitter, q.created, q.held, b.size
         FROM queue q JOIN blobs b ON b.hash = q.blob_hash
         WHERE ?1 IS NULL OR q.queue_id = ?1 ORDER BY q.id",
    )?;
    let mut entries = stmt
        .query_map([queue_id], entry_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rcpts = c.prepare_cached(
        "SELECT address, notify, orcpt, state, attempts, next_attempt, last_reply
         FROM queue_recipients WHERE queue_row = ?1 ORDER BY position",
    )?;
    for (row, entry) in &mut entries {
        let list = rcpts.query_map([*row], |r| {
            let notify: String = r.get(1)?;
            Ok((
                QueuedRecipient {
                    address: r.get(0)?,
                    notify: split_notify(&notify),
                    orcpt: r.get(2)?,
                },
                RecipientState {
                    address: r.get(0)?,
                    state: r.get(3)?,
                    attempts: r.get(4)?,
                    next_attempt: r.get(5)?,
                    last_reply: r.get(6)?,
                },
            ))
        })?;
        for item in list {
            let (rcpt, state) = item?;
            entry.message.recipients.push(rcpt);
            entry.states.push(state);
        }
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

fn split_notify(notify: &str) -> Vec<String> {
    notify
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl Store {
    /// Every queued message with its recipients, oldest first.
    pub fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        self.read(|c| entries(c, None))
    }

    /// One queued message with its recipients.
    pub fn queue_entry(&self, queue_id: &str) -> Result<Option<QueueEntry>> {
        self.read(|c| Ok(entries(c, Some(queue_id))?.pop()))
    }

    /// The queued message's content (trace headers included), for delivery and `queue show`.
    pub fn queue_content(&self, queue_id: &str) -> Result<Option<Vec<u8>>> {
        type Row = (Vec<u8>, Option<Vec<u8>>);
        let row: Option<Row> = self.read(|c| {
            Ok(c.query_row(
                "SELECT q.blob_hash, b.data FROM queue q JOIN blobs b ON b.hash = q.blob_hash
                 WHERE q.queue_id = ?1",
                [queue_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })?;
        let Some((hash, inline)) = row else {
            return Ok(None);
        };
        if let Some(data) = inline {
            return Ok(Some(data));
        }
        let hash = BlobHash::from_slice(&hash)
            .ok_or_else(|| StoreError::NotFound("malformed blob hash".into()))?;
        let path = blob_path(self.data_dir(), hash);
        std::fs::read(&path)
            .map(Some)
            .map_err(io_err(format!("reading {}", path.display())))
    }
}

/// A queued message with recipients due for an attempt.
#[derive(Debug, Clone)]
pub struct DueMessage {
    pub queue_id: String,
    pub message: QueuedMessage,
    pub created: i64,
    pub size: u64,
    /// The due recipients: (position, address, attempts so far).
    pub due: Vec<DueRecipient>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRecipient {
    pub position: u32,
    pub address: String,
    pub attempts: u32,
    pub notify: Vec<String>,
    pub orcpt: Option<String>,
    /// The sender was already told this recipient is delayed.
    pub delay_notified: bool,
}

/// What an attempt did for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The remote server took it (its 250): never delivered again.
    Sent,
    /// Retry at this Unix time.
    Deferred { next_attempt: i64 },
    /// Given up: a permanent refusal or the message expired. A DSN goes to the sender.
    Failed,
}

/// One recipient's attempt, to record.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub position: u32,
    pub host: String,
    pub reply: String,
    pub outcome: AttemptOutcome,
}

/// One attempt as recorded, for `queue show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub address: String,
    pub at: i64,
    pub host: String,
    pub reply: String,
}

impl Store {
    /// Messages not on hold with at least one recipient due at `now`, oldest first, at most
    /// `limit` of them.
    pub fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<DueMessage>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT q.id, q.queue_id, q.sender, q.envid, q.ret_full, q.smtputf8, q.body_8bit,
                        q.submitter, q.created, q.held, b.size
                 FROM queue q JOIN blobs b ON b.hash = q.blob_hash
                 WHERE q.held = 0 AND q.id IN (
                     SELECT queue_row FROM queue_recipients
                     WHERE state = 'queued' AND next_attempt <= ?1)
                 ORDER BY q.id LIMIT ?2",
            )?;
            let rows: Vec<(i64, QueueEntry)> = stmt
                .query_map(params![now, limit as i64], entry_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut rcpts = c.prepare_cached(
                "SELECT position, address, attempts, notify, orcpt, delay_notified FROM queue_recipients
                 WHERE queue_row = ?1 AND state = 'queued' AND next_attempt <= ?2
                 ORDER BY position",
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for (row, entry) in rows {
                let due = rcpts
                    .query_map(params![row, now], |r| {
                        let notify: String = r.get(3)?;
                        Ok(DueRecipient {
                            position: r.get(0)?,
                            address: r.get(1)?,
                            attempts: r.get(2)?,
                            notify: split_notify(&notify),
                            orcpt: r.get(4)?,
                            delay_notified: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                out.push(DueMessage {
                    queue_id: entry.message.queue_id.clone(),
                    message: entry.message,
                    created: entry.created,
                    size: entry.size,
                    due,
                });
            }
            Ok(out)
        })
    }

    /// Records attempts; returns true when no recipient of the message is left to try (every
    /// one sent or failed). A message whose recipients were all sent is removed in the same
    /// transaction (one commit, no window in which it lingers); one with failures stays for
    /// its bounce, then `queue_remove`.
    ///
    /// Sent and deferred recipients of a message kept inside the database commit without an
    /// fsync of their own (decision 0018): a power cut can only undo such a record, so the
    /// message is tried again (sent twice at worst), never lost; the next full commit makes it
    /// durable. Failures (which lead to a bounce) and messages kept as files commit fully.
    pub fn queue_record(&self, queue_id: &str, attempts: &[Attempt]) -> Result<bool> {
        let lazy = self.read(|c| record_is_lazy(c, queue_id, attempts))?;
        let record = |tx: &rusqlite::Transaction<'_>| record_attempts(tx, queue_id, attempts);
        let (done, files) = if lazy {
            self.write_lazy(record)?
        } else {
            self.write(record)?
        };
        crate::check::remove_blob_files(self.data_dir(), &files);
        Ok(done)
    }

    /// [`Store::queue_record`] through the group-commit writer: the record shares a
    /// transaction with the deliveries and other records of the moment instead of taking the
    /// write lock on the caller's thread (the queue service calls it from the async runtime).
    pub async fn queue_record_batched(
        &self,
        queue_id: &str,
        attempts: Vec<Attempt>,
    ) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer_sender()?
            .send(crate::writer::Job::Record(crate::writer::RecordJob {
                queue_id: queue_id.to_string(),
                attempts,
                reply,
            }))
            .map_err(|_| StoreError::WriterGone)?;
        let (done, files) = answer.await.map_err(|_| StoreError::WriterGone)??;
        crate::check::remove_blob_files(self.data_dir(), &files);
        Ok(done)
    }

    /// Every attempt of a queued message, oldest first.
    pub fn queue_attempts(&self, queue_id: &str) -> Result<Vec<AttemptRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT r.address, a.at, a.host, a.reply FROM queue_attempts a
                 JOIN queue q ON q.id = a.queue_row
                 JOIN queue_recipients r ON r.queue_row = a.queue_row AND r.position = a.position
                 WHERE q.queue_id = ?1 ORDER BY a.rowid",
            )?;
            let rows = stmt.query_map([queue_id], |r| {
                Ok(AttemptRecord {
                    address: r.get(0)?,
                    at: r.get(1)?,
                    host: r.get(2)?,
                    reply: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Removes a queued message (done, deleted by the admin) and its blob when nothing else
    /// holds it. False when there was no such message.
    pub fn queue_remove(&self, queue_id: &str) -> Result<bool> {
        let (removed, files) = self.write(|tx| {
            let row: Option<i64> = tx
                .query_row(
                    "SELECT id FROM queue WHERE queue_id = ?1",
                    [queue_id],
                    |r| r.get(0),
                )
                .optional()?;
            match row {
                Some(row) => Ok((true, delete_message(tx, row)?.into_iter().collect())),
                None => Ok((false, Vec::<BlobHash>::new())),
            }
        })?;
        crate::check::remove_blob_files(self.data_dir(), &files);
        Ok(removed)
    }

    /// Holds or releases a message (`postsuper -h` / `-H`); false when there was none.
    pub fn queue_hold(&self, queue_id: &str, held: bool) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE queue SET held = ?2 WHERE queue_id = ?1",
                params![queue_id, held],
            )? > 0)
        })
    }

    /// Makes every waiting recipient of the message (or of every message) due now
    /// (`postqueue -f` / `-i`); returns how many recipients.
    pub fn queue_retry_now(&self, queue_id: Option<&str>) -> Result<usize> {
        let now = now_unix();
        self.write(|tx| {
            Ok(match queue_id {
                Some(id) => tx.execute(
                    "UPDATE queue_recipients SET next_attempt = ?2 WHERE state = 'queued'
                     AND queue_row = (SELECT id FROM queue WHERE queue_id = ?1)",
                    params![id, now],
                )?,
                None => tx.execute(
                    "UPDATE queue_recipients SET next_attempt = ?1 WHERE state = 'queued'",
                    [now],
                )?,
            })
        })
    }

    /// Messages with no recipient left to try: finished, but not removed yet (a crash came
    /// between recording the last attempt and the removal).
    pub fn queue_finished(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT queue_id FROM queue q WHERE NOT EXISTS (
                     SELECT 1 FROM queue_recipients r WHERE r.queue_row = q.id AND r.state = 'queued')",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Remembers that the sender was told these recipients are delayed.
    pub fn queue_delay_notified(&self, queue_id: &str, positions: &[u32]) -> Result<()> {
        self.write(|tx| {
            for p in positions {
                tx.execute(
                    "UPDATE queue_recipients SET delay_notified = 1
                     WHERE position = ?2 AND queue_row = (SELECT id FROM queue WHERE queue_id = ?1)",
                    params![queue_id, p],
                )?;
            }
            Ok(())
        })
    }

    /// Marks every waiting recipient of the message failed with `reason` (`queue bounce`);
    /// returns how many.
    pub fn queue_fail_all(&self, queue_id: &str, reason: &str) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE queue_recipients SET state = 'failed', last_reply = ?2 WHERE state = 'queued'
                 AND queue_row = (SELECT id FROM queue WHERE queue_id = ?1)",
                params![queue_id, reason],
            )?)
        })
    }
}

/// Whether a record may commit without its own fsync (decision 0018): the message is kept in
/// the database (a file blob is removed after the commit that drops it, which must be durable
/// first) and no recipient failed (a failure leads to a bounce).
pub(crate) fn record_is_lazy(c: &Connection, queue_id: &str, attempts: &[Attempt]) -> Result<bool> {
    let file_blob: bool = c
        .prepare_cached(
            "SELECT b.data IS NULL FROM queue q JOIN blobs b ON b.hash = q.blob_hash
             WHERE q.queue_id = ?1",
        )?
        .query_row([queue_id], |r| r.get(0))
        .optional()?
        .unwrap_or(true);
    Ok(!file_blob && attempts.iter().all(|a| a.outcome != AttemptOutcome::Failed))
}

/// The attempts of one message in the caller's transaction: recipient states, the attempt
/// log, and the message removed when every recipient was sent. Returns whether no recipient
/// is left queued, and the blob files to remove after the commit.
pub(crate) fn record_attempts(
    tx: &Connection,
    queue_id: &str,
    attempts: &[Attempt],
) -> Result<(bool, Vec<BlobHash>)> {
    let now = now_unix();
    let row: i64 = tx
        .prepare_cached("SELECT id FROM queue WHERE queue_id = ?1")?
        .query_row([queue_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no queued message {queue_id}")))?;
    for a in attempts {
        let (state, next) = match a.outcome {
            AttemptOutcome::Sent => ("sent", now),
            AttemptOutcome::Failed => ("failed", now),
            AttemptOutcome::Deferred { next_attempt } => ("queued", next_attempt),
        };
        tx.prepare_cached(
            "UPDATE queue_recipients SET state = ?3, next_attempt = ?4,
                attempts = attempts + 1, last_reply = ?5
             WHERE queue_row = ?1 AND position = ?2 AND state = 'queued'",
        )?
        .execute(params![row, a.position, state, next, a.reply])?;
        tx.prepare_cached(
            "INSERT INTO queue_attempts (queue_row, position, at, host, reply)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![row, a.position, now, a.host, a.reply])?;
    }
    let (left, failed): (i64, i64) = tx
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'failed')
             FROM queue_recipients WHERE queue_row = ?1",
        )?
        .query_row([row], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut files = Vec::new();
    if left == 0 && failed == 0 {
        files.extend(delete_message(tx, row)?);
    }
    Ok((left == 0, files))
}
