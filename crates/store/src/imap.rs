//! Mailbox and message operations of IMAP (RFC 9051): mailbox hierarchy, subscriptions, flags
//! with MODSEQ (RFC 7162), COPY/MOVE with UIDPLUS (RFC 4315), changes since a MODSEQ for
//! session resynchronisation and QRESYNC, and the text index for SEARCH.
//!
//! Invariant: every call takes the account and checks that the mailbox belongs to it, so no
//! session can name another account's mailbox by its id.

use crate::{Change, Result, Store, StoreError};
use facteur_model::{AccountId, MailboxId, ModSeq, Uid};
use rusqlite::{OptionalExtension, Transaction, params};

/// A mailbox as LIST and SELECT see it, without counting its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    pub id: MailboxId,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: Uid,
    pub highest_modseq: ModSeq,
    /// Messages from this UID on are \Recent: no session has selected them yet.
    pub recent_uid: Uid,
}

/// STATUS counters (RFC 9051 §6.3.11, STATUS=SIZE RFC 8438).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    pub messages: u64,
    pub unseen: u64,
    pub deleted: u64,
    pub size: u64,
    pub recent: u64,
}

/// One message as a selected mailbox's view holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewEntry {
    pub uid: Uid,
    pub modseq: ModSeq,
    pub flags: String,
}

/// One message as SEARCH sees it.
#[derive(Debug, Clone)]
pub struct SearchRow {
    pub uid: Uid,
    pub internal_date: i64,
    pub size: u64,
    pub headers: String,
    pub blob: crate::BlobHash,
    /// ENVELOPE (JSON): parsed addresses for FROM, TO, CC and BCC.
    pub envelope: String,
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// What a STORE did: the messages changed, with their new flags and MODSEQ, and those that
/// failed the UNCHANGEDSINCE test (RFC 7162 §3.1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    pub changed: Vec<ViewEntry>,
    pub modified: Vec<Uid>,
}

/// Changes of a mailbox after a MODSEQ: messages added or with new flags, and UIDs expunged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    pub highest_modseq: ModSeq,
    pub uidnext: Uid,
    pub updated: Vec<ViewEntry>,
    pub expunged: Vec<Uid>,
}

/// Flags as a set: space-separated, `\Seen`-style system flags compared case-insensitively.
pub fn apply_flags(current: &str, op: FlagOp, flags: &[String]) -> String {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut out: Vec<&str> = match op {
        FlagOp::Replace => Vec::new(),
        _ => current.split_ascii_whitespace().collect(),
    };
    match op {
        FlagOp::Add | FlagOp::Replace => {
            for f in flags {
                if !out.iter().any(|o| same(o, f)) {
                    out.push(f);
                }
            }
        }
        FlagOp::Remove => out.retain(|o| !flags.iter().any(|f| same(o, f))),
    }
    out.join(" ")
}

/// A `uid, modseq, flags` row.
fn view_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<ViewEntry> {
    Ok(ViewEntry {
        uid: Uid(r.get(0)?),
        modseq: ModSeq(r.get::<_, i64>(1)? as u64),
        flags: r.get(2)?,
    })
}

fn row_to_mailbox(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxRow> {
    Ok(MailboxRow {
        id: MailboxId(r.get(0)?),
        name: r.get(1)?,
        special_use: r.get(2)?,
        uidvalidity: r.get(3)?,
        uidnext: Uid(r.get(4)?),
        highest_modseq: ModSeq(r.get::<_, i64>(5)? as u64),
        recent_uid: Uid(r.get(6)?),
    })
}

const MAILBOX_COLUMNS: &str =
    "id, name, special_use, uidvalidity, uidnext, highestmodseq, recent_uid";

impl Store {
    /// Every mailbox of the account, by name.
    pub fn mailbox_list(&self, account: AccountId) -> Result<Vec<MailboxRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map([account.0], row_to_mailbox)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The account's mailbox of that name (exact; the caller folds `INBOX`).
    pub fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<MailboxRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 AND name = ?2"
            ))?
            .query_row(params![account.0, name], row_to_mailbox)
            .optional()?)
        })
    }

    /// Claims the messages below `upto` that no session has seen as \Recent for the caller
    /// (RFC 3501 §2.3.2: one session only). Returns the first UID claimed; the caller's recent
    /// messages are those from it up to `upto`.
    pub fn claim_recent(&self, mailbox: MailboxId, upto: Uid) -> Result<Uid> {
        self.write_lazy(|tx| {
            let old: u32 = tx
                .prepare_cached("SELECT recent_uid FROM mailboxes WHERE id = ?1")?
                .query_row([mailbox.0], |r| r.get(0))?;
            if upto.0 > old {
                tx.prepare_cached("UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1")?
                    .execute(params![mailbox.0, upto.0])?;
            }
            Ok(Uid(old))
        })
    }

    pub fn mailbox_counts(&self, mailbox: MailboxId) -> Result<MailboxCounts> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT count(*),
                        coalesce(sum(instr(flags, '\\Seen') = 0), 0),
                        coalesce(sum(instr(flags, '\\Deleted') > 0), 0),
                        coalesce(sum(size), 0),
                        coalesce(sum(uid >= (SELECT recent_uid FROM mailboxes WHERE id = ?1)), 0)
                 FROM messages WHERE mailbox_id = ?1",
            )?
            .query_row([mailbox.0], |r| {
                Ok(MailboxCounts {
                    messages: r.get::<_, i64>(0)? as u64,
                    unseen: r.get::<_, i64>(1)? as u64,
                    deleted: r.get::<_, i64>(2)? as u64,
                    size: r.get::<_, i64>(3)? as u64,
                    recent: r.get::<_, i64>(4)? as u64,
                })
            })?)
        })
    }

    /// Creates a mailbox; `Conflict` when the name exists.
    pub fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<facteur_model::SpecialUse>,
    ) -> Result<MailboxId> {
        self.write(|tx| {
            if exists(tx, account, name)? {
                return Err(StoreError::Conflict(format!("mailbox {name} exists")));
            }
            if let Some(su) = special_use {
                let key = format!("{su:?}").to_lowercase();
                let taken: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = ?1 AND special_use = ?2)",
                    params![account.0, key],
                    |r| r.get(0),
                )?;
                if taken {
                    return Err(StoreError::Conflict(format!(
                        "another mailbox already has the {key} use"
                    )));
                }
            }
            let id = crate::directory::create_mailbox(tx, account.0, name, special_use)?;
            // A new mailbox is not subscribed unless the client says so (RFC 9051 §6.3.4);
            // the defaults made with the account are.
            tx.execute(
                "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
                params![account.0, name],
            )?;
            Ok(MailboxId(id))
        })
    }

    /// Deletes a mailbox and its messages. The INBOX cannot be deleted.
    pub fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> Result<()> {
        let uids: Vec<Uid> = self.view(mailbox)?.into_iter().map(|e| e.uid).collect();
        if !uids.is_empty() {
            self.expunge(account, mailbox, &uids)?;
        }
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM mailboxes WHERE id = ?1 AND account_id = ?2
                 AND coalesce(special_use, '') <> 'inbox'",
                params![mailbox.0, account.0],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("no such mailbox".into()));
            }
            Ok(())
        })
    }

    /// Renames a mailbox and its children (`from/...`). Renaming INBOX moves its messages to a
    /// new mailbox and leaves INBOX empty (RFC 9051 §6.3.6).
    pub fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let inbox_move = self.write(|tx| {
            if exists(tx, account, to)? {
                return Err(StoreError::Conflict(format!("mailbox {to} exists")));
            }
            let special: Option<Option<String>> = tx
                .query_row(
                    "SELECT special_use FROM mailboxes WHERE account_id = ?1 AND name = ?2",
                    params![account.0, from],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(special) = special else {
                return Err(StoreError::NotFound(format!("no mailbox {from}")));
            };
            if special.as_deref() == Some("inbox") {
                let id = crate::directory::create_mailbox(tx, account.0, to, None)?;
                return Ok(Some(MailboxId(id)));
            }
            let prefix = format!("{from}/");
            let children: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT name FROM mailboxes WHERE account_id = ?1 AND substr(name, 1, ?3) = ?2",
                )?;
                let rows = stmt.query_map(
                    params![account.0, prefix, prefix.chars().count() as i64],
                    |r| r.get::<_, String>(0),
                )?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut renames = vec![(from.to_string(), to.to_string())];
            for child in children {
                renames.push((child.clone(), format!("{to}/{}", &child[prefix.len()..])));
            }
            for (old, new) in &renames {
                if old != from && exists(tx, account, new)? {
                    return Err(StoreError::Conflict(format!("mailbox {new} exists")));
                }
                tx.execute(
                    "UPDATE mailboxes SET name = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account.0, old, new],
                )?;
                tx.execute(
                    "UPDATE OR REPLACE subscriptions SET name = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account.0, old, new],
                )?;
            }
            Ok(None)
        })?;
        if let Some(target) = inbox_move {
            let inbox = self
                .mailbox_by_name(account, "INBOX")?
                .ok_or_else(|| StoreError::NotFound("no INBOX".into()))?;
            let uids: Vec<Uid> = self.view(inbox.id)?.into_iter().map(|e| e.uid).collect();
            if !uids.is_empty() {
                self.move_messages(account, inbox.id, &uids, target)?;
            }
        }
        Ok(())
    }

    pub fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([account.0], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn set_subscribed(&self, account: AccountId, name: &str, on: bool) -> Result<()> {
        self.write_lazy(|tx| {
            if on {
                tx.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
                    params![account.0, name],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
                    params![account.0, name],
                )?;
            }
            Ok(())
        })
    }

    /// UID, MODSEQ and flags of every message, in UID order: a SELECT's view.
    pub fn view(&self, mailbox: MailboxId) -> Result<Vec<ViewEntry>> {
        Ok(self.view_at(mailbox)?.1)
    }

    /// The view of a mailbox and the MODSEQ it is exact at, read from one snapshot.
    pub fn view_at(&self, mailbox: MailboxId) -> Result<(ModSeq, Vec<ViewEntry>)> {
        self.read(|c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Deferred)?;
            let highest: i64 = tx
                .prepare_cached("SELECT highestmodseq FROM mailboxes WHERE id = ?1")?
                .query_row([mailbox.0], |r| r.get(0))?;
            let entries = {
                let mut stmt = tx.prepare_cached(
                    "SELECT uid, modseq, flags FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
                )?;
                let rows = stmt.query_map([mailbox.0], view_entry)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok((ModSeq(highest as u64), entries))
        })
    }

    /// What changed after `since`: rows with a higher MODSEQ and UIDs expunged after it, all
    /// read from one snapshot, so the result is exactly the mailbox at `highest_modseq`.
    pub fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges> {
        self.read(|c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Deferred)?;
            let out = changes_in(&tx, mailbox, since);
            tx.commit()?;
            out
        })
    }
}

fn changes_in(
    c: &rusqlite::Connection,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<MailboxChanges> {
    {
        let (highest, uidnext): (i64, u32) = c
            .prepare_cached("SELECT highestmodseq, uidnext FROM mailboxes WHERE id = ?1")?
            .query_row([mailbox.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out = MailboxChanges {
            highest_modseq: ModSeq(highest as u64),
            uidnext: Uid(uidnext),
            ..Default::default()
        };
        if highest as u64 <= since.0 {
            return Ok(out);
        }
        let mut stmt = c.prepare_cached(
            "SELECT uid, modseq, flags FROM messages WHERE mailbox_id = ?1 AND modseq > ?2
                 ORDER BY uid",
        )?;
        for row in stmt.query_map(params![mailbox.0, since.0 as i64], view_entry)? {
            out.updated.push(row?);
        }
        let mut stmt = c.prepare_cached(
            "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        )?;
        for row in stmt.query_map(params![mailbox.0, since.0 as i64], |r| r.get(0))? {
            out.expunged.push(Uid(row?));
        }
        Ok(out)
    }
}

impl Store {
    /// Changes flags of the UIDs given (those still present), with one new MODSEQ.
    pub fn store_flags(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreOutcome> {
        let (outcome, modseq) = self.write_lazy(|tx| {
            let mut outcome = StoreOutcome::default();
            let mut pending = Vec::new();
            {
                let mut get = tx.prepare_cached(
                    "SELECT modseq, flags FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
                )?;
                for &uid in uids {
                    let Some((modseq, current)) = get
                        .query_row(params![mailbox.0, uid.0], |r| {
                            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
                        })
                        .optional()?
                    else {
                        continue;
                    };
                    if unchanged_since.is_some_and(|u| modseq > u.0) {
                        outcome.modified.push(uid);
                        continue;
                    }
                    let new = apply_flags(&current, op, flags);
                    if new != current || unchanged_since.is_some() {
                        pending.push((uid, new));
                    }
                }
            }
            if pending.is_empty() {
                return Ok((outcome, None));
            }
            let modseq = crate::mailbox::next_modseq(tx, account, mailbox)?;
            let mut set = tx.prepare_cached(
                "UPDATE messages SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
            )?;
            for (uid, flags) in pending {
                set.execute(params![mailbox.0, uid.0, flags, modseq])?;
                outcome.changed.push(ViewEntry {
                    uid,
                    modseq: ModSeq(modseq as u64),
                    flags,
                });
            }
            Ok((outcome, Some(ModSeq(modseq as u64))))
        })?;
        if let Some(modseq) = modseq {
            self.publish(Change::FlagsChanged {
                account,
                mailbox,
                uids: outcome.changed.iter().map(|e| e.uid).collect(),
                modseq,
            });
        }
        Ok(outcome)
    }

    /// Copies messages to another mailbox of the account, keeping flags and INTERNALDATE; the
    /// blob is shared. Returns the target's UIDVALIDITY and (source UID, new UID) pairs
    /// (RFC 4315 COPYUID). `OverQuota` when the copies would pass the account's quota.
    pub fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<(u32, Vec<(Uid, Uid)>)> {
        let (validity, pairs, events, _) = self.write(|tx| copy_in(tx, account, from, uids, to))?;
        for e in events {
            self.publish(e);
        }
        Ok((validity, pairs))
    }

    /// MOVE (RFC 6851): copy, then expunge from the source, in one transaction.
    pub fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<(u32, Vec<(Uid, Uid)>)> {
        let (validity, pairs, mut events) = self.write(|tx| {
            let (validity, pairs, mut events, added) = copy_in(tx, account, from, uids, to)?;
            let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
            if !moved.is_empty() {
                let modseq = crate::mailbox::next_modseq(tx, account, from)?;
                for uid in &moved {
                    tx.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?
                        .execute(params![from.0, uid.0])?;
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![from.0, uid.0, modseq])?;
                }
                // The copies were counted; the originals leave.
                tx.execute(
                    "UPDATE accounts SET used_bytes = used_bytes - ?2 WHERE id = ?1",
                    params![account.0, added],
                )?;
                events.push(Change::Expunged {
                    account,
                    mailbox: from,
                    uids: moved,
                    modseq: ModSeq(modseq as u64),
                });
            }
            Ok((validity, pairs, events))
        })?;
        for e in events.drain(..) {
            self.publish(e);
        }
        Ok((validity, pairs))
    }

    /// Full rows of the UIDs asked, in UID order (FETCH of anything beyond flags).
    pub fn messages_by_uid(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<crate::MessageInfo>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.messages_range(mailbox, uids[0], uids[uids.len() - 1])?;
        let wanted: std::collections::HashSet<u32> = uids.iter().map(|u| u.0).collect();
        Ok(all
            .into_iter()
            .filter(|m| wanted.contains(&m.uid.0))
            .collect())
    }

    /// UIDs of the mailbox whose indexed body text contains `needle` (case-insensitive).
    pub fn search_body(&self, mailbox: MailboxId, needle: &str) -> Result<Vec<Uid>> {
        self.read(|c| {
            let pattern = format!(
                "%{}%",
                needle
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            // Three characters or more: a phrase query on the trigram index is a
            // case-insensitive substring match answered from the index; only its hits are
            // joined to the mailbox's messages. Shorter needles have no trigram: LIKE scans.
            let (sql, arg) = if needle.chars().count() >= 3 {
                (
                    "SELECT m.uid FROM text_index t
                     CROSS JOIN blob_text b ON b.id = t.rowid
                     CROSS JOIN messages m INDEXED BY messages_blob ON m.blob_hash = b.hash
                     WHERE t.text_index MATCH ?2 AND m.mailbox_id = ?1
                     ORDER BY m.uid",
                    format!("body : \"{}\"", needle.replace('"', "\"\"")),
                )
            } else {
                (
                    "SELECT m.uid FROM messages m
                     WHERE m.mailbox_id = ?1 AND m.blob_hash IN (
                         SELECT b.hash FROM blob_text b WHERE b.id IN (
                             SELECT rowid FROM text_index WHERE body LIKE ?2 ESCAPE '\\'))
                     ORDER BY m.uid",
                    pattern,
                )
            };
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params![mailbox.0, arg], |r| Ok(Uid(r.get(0)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// UIDs of the mailbox whose indexed header text (raw fields, decoded values, parsed
    /// addresses) contains `needle`, case-insensitively: a superset of the messages a header
    /// key with this needle matches. None when the needle is too short for the index.
    pub fn search_header_index(
        &self,
        mailbox: MailboxId,
        needle: &str,
    ) -> Result<Option<Vec<Uid>>> {
        if needle.chars().count() < 3 {
            return Ok(None);
        }
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                // The index hits drive the join (CROSS JOIN fixes the order, INDEXED BY the
                // lookup by blob): a few rows, instead of every message of the mailbox probed
                // against the hits.
                "SELECT m.uid FROM text_index t
                 CROSS JOIN blob_text b ON b.id = t.rowid
                 CROSS JOIN messages m INDEXED BY messages_blob ON m.blob_hash = b.hash
                 WHERE t.text_index MATCH ?2 AND m.mailbox_id = ?1
                 ORDER BY m.uid",
            )?;
            let query = format!("headers : \"{}\"", needle.replace('"', "\"\""));
            let rows = stmt.query_map(params![mailbox.0, query], |r| Ok(Uid(r.get(0)?)))?;
            Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
        })
    }

    /// What SEARCH reads of every message: UID, INTERNALDATE, size, header fields (JSON) and
    /// the blob hash, in UID order.
    ///
    /// `must_contain`: ASCII strings every row returned holds (case-insensitively) in its header
    /// fields or envelope, unless those hold RFC 2047 encoded-words; a prefilter SQLite applies
    /// so that rows that cannot match never leave the database.
    ///
    /// `only`: when given, just these UIDs (the candidates an index lookup left).
    pub fn search_rows(
        &self,
        mailbox: MailboxId,
        must_contain: &[String],
        only: Option<&[Uid]>,
    ) -> Result<Vec<SearchRow>> {
        self.read(|c| {
            let mut sql = String::from(
                "SELECT uid, internaldate, size, headers, blob_hash, envelope FROM messages
                 WHERE mailbox_id = ?1",
            );
            let mut args: Vec<String> = Vec::new();
            if let Some(uids) = only {
                let list: Vec<u32> = uids.iter().map(|u| u.0).collect();
                // A JSON array for json_each: one parameter whatever the number of UIDs.
                let json: Vec<String> = list.iter().map(u32::to_string).collect();
                args.push(format!("[{}]", json.join(",")));
                sql.push_str(" AND uid IN (SELECT value FROM json_each(?2))");
            }
            if !must_contain.is_empty() {
                sql.push_str(" AND (instr(headers, '=?') > 0 OR instr(envelope, '=?') > 0 OR (1");
                for needle in must_contain {
                    args.push(format!(
                        "%{}%",
                        needle
                            .replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    ));
                    let n = args.len() + 1;
                    sql.push_str(&format!(
                        " AND (headers LIKE ?{n} ESCAPE '\\' OR envelope LIKE ?{n} ESCAPE '\\')"
                    ));
                }
                sql.push_str("))");
            }
            sql.push_str(" ORDER BY uid");
            let mut stmt = c.prepare_cached(&sql)?;
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&mailbox.0];
            for a in &args {
                params.push(a);
            }
            let rows = stmt.query_map(params.as_slice(), |r| {
                let hash: Vec<u8> = r.get(4)?;
                Ok(SearchRow {
                    uid: Uid(r.get(0)?),
                    internal_date: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    headers: r.get(3)?,
                    blob: crate::BlobHash::from_slice(&hash).unwrap_or(crate::BlobHash([0; 32])),
                    envelope: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The account's quota and use in bytes.
    pub fn usage(&self, account: AccountId) -> Result<(u64, u64)> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?1",
                [account.0],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )?)
        })
    }
}

fn exists(tx: &Transaction<'_>, account: AccountId, name: &str) -> Result<bool> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = ?1 AND name = ?2)",
        params![account.0, name],
        |r| r.get(0),
    )?)
}

/// UIDVALIDITY of the target, UID pairs, events, bytes added.
type Copied = (u32, Vec<(Uid, Uid)>, Vec<Change>, i64);

fn copy_in(
    tx: &Transaction<'_>,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> Result<Copied> {
    let owner = |m: MailboxId| -> Result<Option<u32>> {
        Ok(tx
            .query_row(
                "SELECT uidvalidity FROM mailboxes WHERE id = ?1 AND account_id = ?2",
                params![m.0, account.0],
                |r| r.get(0),
            )
            .optional()?)
    };
    owner(from)?.ok_or_else(|| StoreError::NotFound("no such mailbox".into()))?;
    let validity = owner(to)?.ok_or_else(|| StoreError::NotFound("no such mailbox".into()))?;
    let mut present = Vec::new();
    let mut added_size = 0i64;
    {
        let mut get =
            tx.prepare_cached("SELECT size FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
        for &uid in uids {
            if let Some(size) = get
                .query_row(params![from.0, uid.0], |r| r.get::<_, i64>(0))
                .optional()?
            {
                present.push(uid);
                added_size += size;
            }
        }
    }
    if present.is_empty() {
        return Ok((validity, Vec::new(), Vec::new(), 0));
    }
    let (quota, used): (i64, i64) = tx.query_row(
        "SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?1",
        [account.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if quota > 0 && used + added_size > quota {
        return Err(StoreError::OverQuota);
    }
    let n = present.len() as i64;
    let (first_uid, modseq): (u32, i64) = tx.query_row(
        "UPDATE mailboxes SET uidnext = uidnext + ?2, highestmodseq = highestmodseq + 1
         WHERE id = ?1 RETURNING uidnext - ?2, highestmodseq",
        params![to.0, n],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut pairs = Vec::with_capacity(present.len());
    let mut events = Vec::with_capacity(present.len());
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, size, prefix, blob_hash,
                               envelope, structure, queue_id, headers)
         SELECT ?3, ?4, ?5, flags, internaldate, size, prefix, blob_hash, envelope, structure,
                queue_id, headers
         FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
    )?;
    for (i, uid) in present.into_iter().enumerate() {
        let new = Uid(first_uid + i as u32);
        insert.execute(params![from.0, uid.0, to.0, new.0, modseq])?;
        pairs.push((uid, new));
        events.push(Change::MessageAdded {
            account,
            mailbox: to,
            uid: new,
            modseq: ModSeq(modseq as u64),
        });
    }
    tx.execute(
        "UPDATE accounts SET used_bytes = used_bytes + ?2 WHERE id = ?1",
        params![account.0, added_size],
    )?;
    Ok((validity, pairs, events, added_size))
}
