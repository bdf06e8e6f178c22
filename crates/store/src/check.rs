//! Consistency check and blob garbage collection.
//!
//! `check` proves the durability invariants after a crash: every message row has its blob (row
//! and, for file blobs, the file with the right size), UIDs are below their mailbox's UIDNEXT,
//! accounts' used bytes match their messages, and SQLite's own structure is sound.

use crate::blob::{BlobHash, blob_path};
use crate::{Result, Store};
use rusqlite::Transaction;
use std::path::Path;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub messages: u64,
    pub blobs: u64,
    /// Problems that mean an inconsistent store; empty when all is well.
    pub errors: Vec<String>,
    /// Blob files no row references (left by a crash between rename and commit); harmless.
    pub unreferenced_files: u64,
}

impl CheckReport {
    pub fn is_consistent(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Store {
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let data_dir = self.data_dir().to_owned();
        self.read(|c| {
            let integrity: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            if integrity != "ok" {
                report
                    .errors
                    .push(format!("sqlite quick_check: {integrity}"));
            }
            report.messages = c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
            report.blobs = c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
            let mut stmt = c.prepare(
                "SELECT m.mailbox_id, m.uid, hex(m.blob_hash) FROM messages m
                 LEFT JOIN blobs b ON b.hash = m.blob_hash WHERE b.hash IS NULL",
            )?;
            for row in stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })? {
                let (mailbox, uid, hash) = row?;
                report.errors.push(format!(
                    "message {uid} of mailbox {mailbox} names missing blob {hash}"
                ));
            }
            let mut stmt = c.prepare("SELECT hash, size FROM blobs WHERE data IS NULL")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))? {
                let (hash, size) = row?;
                let Some(hash) = BlobHash::from_slice(&hash) else {
                    report.errors.push("a blob row has a malformed hash".into());
                    continue;
                };
                let path = blob_path(&data_dir, hash);
                match std::fs::metadata(&path) {
                    Ok(m) if m.len() == size as u64 => {}
                    Ok(m) => report.errors.push(format!(
                        "{} has {} bytes, expected {size}",
                        path.display(),
                        m.len()
                    )),
                    Err(e) => report.errors.push(format!("{}: {e}", path.display())),
                }
            }
            let mut stmt = c.prepare(
                "SELECT b.hash FROM blobs b WHERE data IS NOT NULL AND length(data) != size",
            )?;
            if stmt.exists([])? {
                report
                    .errors
                    .push("an inline blob's length differs from its recorded size".into());
            }
            let mut stmt = c.prepare(
                "SELECT mb.id, mb.uidnext, max(m.uid), mb.highestmodseq, max(m.modseq)
                 FROM mailboxes mb JOIN messages m ON m.mailbox_id = mb.id GROUP BY mb.id
                 HAVING max(m.uid) >= mb.uidnext OR max(m.modseq) > mb.highestmodseq",
            )?;
            for row in stmt.query_map([], |r| r.get::<_, i64>(0))? {
                report.errors.push(format!(
                    "mailbox {} has UIDs or MODSEQs beyond its counters",
                    row?
                ));
            }
            let mut stmt = c.prepare(
                "SELECT a.id, a.used_bytes, coalesce(sum(m.size), 0) FROM accounts a
                 LEFT JOIN mailboxes mb ON mb.account_id = a.id
                 LEFT JOIN messages m ON m.mailbox_id = mb.id
                 GROUP BY a.id HAVING a.used_bytes != coalesce(sum(m.size), 0)",
            )?;
            for row in stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })? {
                let (id, used, actual) = row?;
                report.errors.push(format!(
                    "account {id} records {used} bytes used, messages hold {actual}"
                ));
            }
            Ok(())
        })?;
        report.unreferenced_files = self.unreferenced_files()?.len() as u64;
        Ok(report)
    }

    /// Blob files no row names: left by a crash between a file's rename and its commit.
    fn unreferenced_files(&self) -> Result<Vec<std::path::PathBuf>> {
        let mut found = Vec::new();
        let Ok(dirs) = std::fs::read_dir(self.data_dir().join("blobs")) else {
            return Ok(found);
        };
        for dir in dirs.flatten() {
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name();
                let Some(hash) = name.to_str().and_then(parse_hex) else {
                    continue;
                };
                let known = self.read(|c| {
                    Ok(c.prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1")?
                        .exists([&hash.0[..]])?)
                })?;
                if !known {
                    found.push(file.path());
                }
            }
        }
        Ok(found)
    }

    /// Deletes blob files no row names. Only the server calls it, at start, before it accepts
    /// mail: then no delivery can be between a file's rename and its commit.
    pub fn remove_unreferenced_files(&self) -> Result<usize> {
        let files = self.unreferenced_files()?;
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        Ok(files.len())
    }
}

/// Deletes blob rows nothing references and returns the hashes whose files must go after commit.
pub(crate) fn unreferenced_blobs(tx: &Transaction<'_>) -> Result<Vec<BlobHash>> {
    let mut stmt = tx.prepare(
        "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_hash = blobs.hash)
           AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob_hash = blobs.hash)
         RETURNING hash, data IS NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, bool>(1)?)))?;
    let mut files = Vec::new();
    for row in rows {
        let (hash, is_file) = row?;
        if let Some(hash) = BlobHash::from_slice(&hash).filter(|_| is_file) {
            files.push(hash);
        }
    }
    Ok(files)
}

/// Deletes one blob row if nothing references it any more; returns its hash when its content
/// is a file to remove after the commit.
pub(crate) fn release_blob(tx: &rusqlite::Connection, hash: &[u8]) -> Result<Option<BlobHash>> {
    use rusqlite::OptionalExtension;
    let is_file: Option<bool> = tx
        .prepare_cached(
            "DELETE FROM blobs WHERE hash = ?1
             AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_hash = ?1)
             AND NOT EXISTS (SELECT 1 FROM queue WHERE blob_hash = ?1)
             RETURNING data IS NULL",
        )?
        .query_row([hash], |r| r.get(0))
        .optional()?;
    Ok(BlobHash::from_slice(hash).filter(|_| is_file == Some(true)))
}

pub(crate) fn remove_blob_files(data_dir: &Path, files: &[BlobHash]) {
    for hash in files {
        let _ = std::fs::remove_file(blob_path(data_dir, *hash));
    }
}

fn parse_hex(name: &str) -> Option<BlobHash> {
    if name.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(name.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(BlobHash(out))
}
