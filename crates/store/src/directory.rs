//! Directory tables: domains, accounts and aliases. Policy (hashing, resolution order,
//! subaddresses) lives in the `directory` crate; this module only stores and finds.
//!
//! Invariants: domain names and local parts are stored folded to lower case; an account is
//! created together with its default mailboxes (RFC 6154 special-use) in one transaction.

use crate::secrets::{CredentialSecrets, ScramSalt};
use crate::{Result, Store, StoreError, now_unix};
use facteur_model::{AccountId, Address, Domain, SpecialUse};
use rusqlite::{OptionalExtension, Transaction, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    pub address: String,
    pub password: String,
    pub quota_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// `local@domain`, or `@domain` for a catch-all.
    pub source: String,
    pub target: String,
}

impl Store {
    pub fn add_domain(&self, domain: &Domain) -> Result<()> {
        self.write(|tx| {
            let done = tx.execute(
                "INSERT INTO domains (name, created) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![domain.as_str(), now_unix()],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(format!(
                    "domain {domain} exists already"
                )));
            }
            Ok(())
        })
    }

    /// Removes a domain; refused while accounts or aliases still use it.
    pub fn remove_domain(&self, domain: &Domain) -> Result<()> {
        self.write(|tx| {
            let id = domain_id(tx, domain)?;
            let users: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?1)
                      + (SELECT count(*) FROM aliases WHERE domain_id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            if users > 0 {
                return Err(StoreError::Conflict(format!(
                    "domain {domain} still has {users} accounts or aliases; remove them first"
                )));
            }
            tx.execute("DELETE FROM domains WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    pub fn list_domains(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT name FROM domains ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn domain_exists(&self, domain: &Domain) -> Result<bool> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
                .exists([domain.as_str()])?)
        })
    }

    /// Creates an account and its default mailboxes, without SASL secrets (they are computed
    /// at its first password login).
    pub fn add_account(
        &self,
        address: &Address,
        password_hash: &str,
        quota: u64,
    ) -> Result<AccountId> {
        self.add_account_with_secrets(
            address,
            password_hash,
            quota,
            None,
            &CredentialSecrets::default(),
        )
    }

    /// Creates an account and its default mailboxes, with the SASL secrets of its password
    /// (computed with `salt`).
    pub fn add_account_with_secrets(
        &self,
        address: &Address,
        password_hash: &str,
        quota: u64,
        salt: Option<&ScramSalt>,
        secrets: &CredentialSecrets,
    ) -> Result<AccountId> {
        self.write(|tx| {
            let domain = domain_id(tx, &address.domain)?;
            let local = address.folded_local();
            let exists = tx
                .prepare("SELECT 1 FROM accounts WHERE domain_id = ?1 AND local_part = ?2")?
                .exists(params![domain, local])?;
            if exists {
                return Err(StoreError::Conflict(format!(
                    "account {address} exists already"
                )));
            }
            let (stored, server) = crate::secrets::scram_columns(secrets);
            tx.execute(
                "INSERT INTO accounts (domain_id, local_part, password, quota_bytes, created,
                     scram_salt, scram_iterations, scram_stored_key, scram_server_key, cram_md5)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    domain,
                    local,
                    password_hash,
                    quota as i64,
                    now_unix(),
                    salt.map(|s| &s.salt),
                    salt.map(|s| s.iterations),
                    stored,
                    server,
                    secrets.cram_md5
                ],
            )?;
            let account = tx.last_insert_rowid();
            for (name, special) in SpecialUse::DEFAULT_MAILBOXES {
                create_mailbox(tx, account, name, Some(special))?;
            }
            Ok(AccountId(account))
        })
    }

    /// Removes an account with its mailboxes and messages, then unreferenced blobs.
    pub fn remove_account(&self, address: &Address) -> Result<()> {
        let files = self.write(|tx| {
            let id = account_id(tx, address)?
                .ok_or_else(|| StoreError::NotFound(format!("no account {address}")))?;
            tx.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
            crate::check::unreferenced_blobs(tx)
        })?;
        crate::check::remove_blob_files(self.data_dir(), &files);
        Ok(())
    }

    /// Replaces the password and its SASL secrets (computed with `salt`, which must be the
    /// account's salt or become it when the account has none yet) in one transaction, so the
    /// old password's secrets never outlive it.
    pub fn set_password(
        &self,
        address: &Address,
        password_hash: &str,
        salt: &ScramSalt,
        secrets: &CredentialSecrets,
    ) -> Result<()> {
        self.write(|tx| {
            let id = account_id(tx, address)?
                .ok_or_else(|| StoreError::NotFound(format!("no account {address}")))?;
            crate::secrets::check_salt(tx, id, salt)?;
            let (stored, server) = crate::secrets::scram_columns(secrets);
            tx.execute(
                "UPDATE accounts SET password = ?2, scram_stored_key = ?3, scram_server_key = ?4,
                     cram_md5 = ?5
                 WHERE id = ?1",
                params![id, password_hash, stored, server, secrets.cram_md5],
            )?;
            Ok(())
        })
    }

    pub fn set_quota(&self, address: &Address, quota: u64) -> Result<()> {
        self.write(|tx| {
            let id = account_id(tx, address)?
                .ok_or_else(|| StoreError::NotFound(format!("no account {address}")))?;
            tx.execute(
                "UPDATE accounts SET quota_bytes = ?2 WHERE id = ?1",
                params![id, quota as i64],
            )?;
            Ok(())
        })
    }

    /// Finds an account by domain and folded local part.
    pub fn account(&self, domain: &Domain, folded_local: &str) -> Result<Option<AccountRecord>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT a.id, a.local_part || '@' || d.name, a.password, a.quota_bytes, a.used_bytes
                 FROM accounts a JOIN domains d ON d.id = a.domain_id
                 WHERE d.name = ?1 AND a.local_part = ?2",
            )?
            .query_row(params![domain.as_str(), folded_local], account_row)
            .optional()?)
        })
    }

    pub fn list_accounts(&self, domain: Option<&Domain>) -> Result<Vec<AccountRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT a.id, a.local_part || '@' || d.name, a.password, a.quota_bytes, a.used_bytes
                 FROM accounts a JOIN domains d ON d.id = a.domain_id
                 WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, a.local_part",
            )?;
            let rows = stmt.query_map([domain.map(|d| d.as_str())], account_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Adds `source -> target`; `folded_local` empty is the catch-all of the domain.
    pub fn add_alias(&self, domain: &Domain, folded_local: &str, target: &str) -> Result<()> {
        self.write(|tx| {
            let id = domain_id(tx, domain)?;
            let done = tx.execute(
                "INSERT INTO aliases (domain_id, local_part, target) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![id, folded_local, target],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(format!(
                    "alias {folded_local}@{domain} -> {target} exists already"
                )));
            }
            Ok(())
        })
    }

    /// Removes the given targets of an alias, or all of them when `targets` is empty.
    pub fn remove_alias(
        &self,
        domain: &Domain,
        folded_local: &str,
        targets: &[String],
    ) -> Result<()> {
        self.write(|tx| {
            let id = domain_id(tx, domain)?;
            let mut removed = 0;
            if targets.is_empty() {
                removed += tx.execute(
                    "DELETE FROM aliases WHERE domain_id = ?1 AND local_part = ?2",
                    params![id, folded_local],
                )?;
            }
            for target in targets {
                removed += tx.execute(
                    "DELETE FROM aliases WHERE domain_id = ?1 AND local_part = ?2 AND target = ?3",
                    params![id, folded_local, target],
                )?;
            }
            if removed == 0 {
                return Err(StoreError::NotFound(format!(
                    "no such alias {folded_local}@{domain}"
                )));
            }
            Ok(())
        })
    }

    /// The targets of an alias (exact local part; '' for the catch-all).
    pub fn alias_targets(&self, domain: &Domain, folded_local: &str) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT target FROM aliases a JOIN domains d ON d.id = a.domain_id
                 WHERE d.name = ?1 AND a.local_part = ?2 ORDER BY a.id",
            )?;
            let rows = stmt.query_map(params![domain.as_str(), folded_local], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn list_aliases(&self, domain: Option<&Domain>) -> Result<Vec<AliasRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT a.local_part || '@' || d.name, a.target FROM aliases a
                 JOIN domains d ON d.id = a.domain_id
                 WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, a.local_part, a.id",
            )?;
            let rows = stmt.query_map([domain.map(|d| d.as_str())], |r| {
                Ok(AliasRecord {
                    source: r.get(0)?,
                    target: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: AccountId(r.get(0)?),
        address: r.get(1)?,
        password: r.get(2)?,
        quota_bytes: r.get::<_, i64>(3)? as u64,
        used_bytes: r.get::<_, i64>(4)? as u64,
    })
}

fn domain_id(tx: &Transaction<'_>, domain: &Domain) -> Result<i64> {
    tx.query_row(
        "SELECT id FROM domains WHERE name = ?1",
        [domain.as_str()],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "unknown domain {domain}; add it with `facteur domain add {domain}`"
        ))
    })
}

fn account_id(tx: &Transaction<'_>, address: &Address) -> Result<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT a.id FROM accounts a JOIN domains d ON d.id = a.domain_id
             WHERE d.name = ?1 AND a.local_part = ?2",
            params![address.domain.as_str(), address.folded_local()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Takes the next value of a named counter: `next` maps the last value given to the new one.
fn next_in_sequence(
    tx: &Transaction<'_>,
    name: &str,
    next: impl FnOnce(i64) -> Result<i64>,
) -> Result<i64> {
    let last: i64 = tx
        .query_row("SELECT last FROM sequences WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    let value = next(last)?;
    tx.execute(
        "INSERT INTO sequences (name, last) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET last = excluded.last",
        params![name, value],
    )?;
    Ok(value)
}

pub(crate) fn create_mailbox(
    tx: &Transaction<'_>,
    account: i64,
    name: &str,
    special: Option<SpecialUse>,
) -> Result<i64> {
    let special = special.map(|s| format!("{s:?}").to_lowercase());
    // Mailbox ids are never reused (a row id would be, after a DELETE of the highest one).
    let last_id = next_in_sequence(tx, "mailbox", |last| {
        let max: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM mailboxes", [], |r| {
            r.get(0)
        })?;
        Ok(last.max(max) + 1)
    })?;
    // RFC 9051 §2.3.1.1: UIDVALIDITY must change if UIDs are ever reused. The creation time
    // keeps values unique across a restored backup; the counter keeps them unique when a
    // mailbox is deleted and made again within the same second.
    let validity = next_in_sequence(tx, "uidvalidity", |last| {
        let now = now_unix() & 0x7fff_ffff;
        Ok(if last + 1 > 0x7fff_ffff {
            1
        } else {
            now.max(last + 1)
        })
    })?;
    tx.execute(
        "INSERT INTO mailboxes (id, account_id, name, special_use, uidvalidity)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![last_id, account, name, special, validity],
    )?;
    let id = last_id;
    tx.execute(
        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
        params![account, name],
    )?;
    Ok(id)
}
