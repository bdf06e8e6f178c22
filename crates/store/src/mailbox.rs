//! Reading mailboxes and messages back: what IMAP, POP3 and `mailbox export` build on.

use crate::blob::{BlobHash, blob_path};
use crate::{Change, Result, Store, StoreError, io_err};
use facteur_model::{AccountId, MailboxId, ModSeq, Uid};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub id: MailboxId,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: Uid,
    pub highest_modseq: ModSeq,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: Uid,
    pub modseq: ModSeq,
    pub flags: String,
    pub internal_date: i64,
    pub size: u64,
    pub blob: BlobHash,
    pub queue_id: String,
    pub envelope: String,
    pub structure: String,
    pub headers: String,
}

impl Store {
    /// The account's mailbox with this special use (`junk`, `sent`, ...; RFC 6154), if it has
    /// one.
    pub fn special_mailbox(
        &self,
        account: AccountId,
        special_use: &str,
    ) -> Result<Option<MailboxId>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id FROM mailboxes WHERE account_id = ?1 AND special_use = ?2",
            )?
            .query_row(rusqlite::params![account.0, special_use], |r| {
                Ok(MailboxId(r.get(0)?))
            })
            .optional()?)
        })
    }

    pub fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxInfo>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT m.id, m.name, m.special_use, m.uidvalidity, m.uidnext, m.highestmodseq,
                        (SELECT count(*) FROM messages WHERE mailbox_id = m.id)
                 FROM mailboxes m WHERE m.account_id = ?1 ORDER BY m.id",
            )?;
            let rows = stmt.query_map([account.0], |r| {
                Ok(MailboxInfo {
                    id: MailboxId(r.get(0)?),
                    name: r.get(1)?,
                    special_use: r.get(2)?,
                    uidvalidity: r.get(3)?,
                    uidnext: Uid(r.get(4)?),
                    highest_modseq: ModSeq(r.get::<_, i64>(5)? as u64),
                    messages: r.get::<_, i64>(6)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageInfo>> {
        self.messages_range(mailbox, Uid(1), Uid(u32::MAX))
    }

    /// Messages with UIDs from `first` to `last`, in UID order.
    pub fn messages_range(
        &self,
        mailbox: MailboxId,
        first: Uid,
        last: Uid,
    ) -> Result<Vec<MessageInfo>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uid, modseq, flags, internaldate, size, blob_hash, queue_id, envelope, structure, headers
                 FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
            )?;
            let rows = stmt.query_map(params![mailbox.0, first.0, last.0], |r| {
                let hash: Vec<u8> = r.get(5)?;
                Ok(MessageInfo {
                    uid: Uid(r.get(0)?),
                    modseq: ModSeq(r.get::<_, i64>(1)? as u64),
                    flags: r.get(2)?,
                    internal_date: r.get(3)?,
                    size: r.get::<_, i64>(4)? as u64,
                    blob: BlobHash::from_slice(&hash).unwrap_or(BlobHash([0; 32])),
                    queue_id: r.get(6)?,
                    envelope: r.get(7)?,
                    structure: r.get(8)?,
                    headers: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// UID, size, INTERNALDATE and flags of every message, in UID order: the light listing
    /// POP3 needs at login.
    pub fn message_index(&self, mailbox: MailboxId) -> Result<Vec<(Uid, u64, i64, String)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uid, size, internaldate, flags FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
            )?;
            let rows = stmt.query_map([mailbox.0], |r| {
                Ok((Uid(r.get(0)?), r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Adds the `\Seen` flag (RFC 9051 §2.3.2) to messages that lack it, with a new MODSEQ.
    pub fn mark_seen(&self, account: AccountId, mailbox: MailboxId, uids: &[Uid]) -> Result<()> {
        let seen = ["\\Seen".to_string()];
        self.store_flags(account, mailbox, uids, crate::FlagOp::Add, &seen, None)?;
        Ok(())
    }

    /// Removes messages for good: rows go, the expunge log keeps their UIDs with one new MODSEQ
    /// (RFC 7162 §3.2.10, for QRESYNC VANISHED), usage shrinks, unshared blobs are deleted.
    /// Returns the UIDs actually removed (others were already gone).
    pub fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<Uid>> {
        let (removed, modseq, files) = self.write(|tx| {
            let modseq = next_modseq(tx, account, mailbox)?;
            let mut removed = Vec::new();
            let mut freed = 0i64;
            let mut hashes: Vec<Vec<u8>> = Vec::new();
            for uid in uids {
                let row: Option<(i64, Vec<u8>)> = tx
                    .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING size, blob_hash")?
                    .query_row(params![mailbox.0, uid.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((size, hash)) = row else { continue };
                tx.prepare_cached("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)")?
                    .execute(params![mailbox.0, uid.0, modseq])?;
                freed += size;
                removed.push(*uid);
                if !hashes.contains(&hash) {
                    hashes.push(hash);
                }
            }
            tx.execute("UPDATE accounts SET used_bytes = used_bytes - ?2 WHERE id = ?1", params![account.0, freed])?;
            let mut files = Vec::new();
            for hash in hashes {
                files.extend(crate::check::release_blob(tx, &hash)?);
            }
            Ok((removed, ModSeq(modseq as u64), files))
        })?;
        crate::check::remove_blob_files(self.data_dir(), &files);
        if !removed.is_empty() {
            self.publish(Change::Expunged {
                account,
                mailbox,
                uids: removed.clone(),
                modseq,
            });
        }
        Ok(removed)
    }

    /// The hash of the message's shared content (hex), the same for every copy: what names a
    /// message learnt by a spam classifier wherever the user moves it.
    pub fn message_key(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<String>> {
        let hash: Option<Vec<u8>> = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT blob_hash FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
            )?
            .query_row(params![mailbox.0, uid.0], |r| r.get(0))
            .optional()?)
        })?;
        Ok(hash
            .and_then(|h| BlobHash::from_slice(&h))
            .map(|h| h.to_hex()))
    }

    /// The whole message as a client sees it: the copy's prefix, then the shared blob.
    pub fn message_content(&self, mailbox: MailboxId, uid: Uid) -> Result<Vec<u8>> {
        type Row = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
        let row: Option<Row> = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT m.prefix, m.blob_hash, b.data FROM messages m
                 JOIN blobs b ON b.hash = m.blob_hash
                 WHERE m.mailbox_id = ?1 AND m.uid = ?2",
            )?
            .query_row(params![mailbox.0, uid.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
        })?;
        let (mut out, hash, inline) = row.ok_or_else(|| {
            StoreError::NotFound(format!("no message {uid} in mailbox {mailbox}"))
        })?;
        match inline {
            Some(data) => out.extend_from_slice(&data),
            None => {
                let hash = BlobHash::from_slice(&hash)
                    .ok_or_else(|| StoreError::NotFound("malformed blob hash".into()))?;
                let path = blob_path(self.data_dir(), hash);
                let data =
                    std::fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    }
}

/// Takes the mailbox's next MODSEQ (RFC 7162 §3.1.2: strictly increasing); fails when the
/// mailbox is not the account's, so no call can touch another account's mail.
pub(crate) fn next_modseq(
    tx: &rusqlite::Transaction<'_>,
    account: AccountId,
    mailbox: MailboxId,
) -> Result<i64> {
    Ok(tx.query_row(
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1
         WHERE id = ?1 AND account_id = ?2 RETURNING highestmodseq",
        params![mailbox.0, account.0],
        |r| r.get(0),
    )?)
}
