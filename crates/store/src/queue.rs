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

impl Store {
    /// Every queued message with its recipients, oldest first.
    pub fn queue_entries(&self) -> Result<Vec<QueueEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT q.id, q.queue_id, q.sender, q.envid, q.ret_full, q.smtputf8, q.body_8bit,
                        q.submitter, q.created, q.held, b.size
                 FROM queue q JOIN blobs b ON b.hash = q.blob_hash ORDER BY q.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
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
            })?;
            let mut entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let mut rcpts = c.prepare(
                "SELECT address, notify, orcpt, state, attempts, next_attempt, last_reply
                 FROM queue_recipients WHERE queue_row = ?1 ORDER BY position",
            )?;
            for (row, entry) in &mut entries {
                let list = rcpts.query_map([*row], |r| {
                    let notify: String = r.get(1)?;
                    Ok((
                        QueuedRecipient {
                            address: r.get(0)?,
                            notify: notify
                                .split(',')
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect(),
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
        })
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
