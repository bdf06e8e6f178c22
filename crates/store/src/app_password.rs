//! Application passwords: several named, revocable passwords per account, one per device or
//! program, so a lost phone costs one revocation instead of a password change everywhere.
//!
//! Invariant: only a digest is stored (see `directory::app_password` for why a fast digest is
//! right for generated secrets); a name is unique per account.

use crate::secrets::{CredentialSecrets, ScramSalt};
use crate::{Result, Store, StoreError, now_unix};
use facteur_model::{AccountId, Address};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub name: String,
    pub created: i64,
    /// Unix time of the last login with it; None when never used.
    pub last_used: Option<i64>,
}

impl Store {
    /// Adds an application password with its SASL secrets, computed with `salt` (the
    /// account's salt, or the one it gets now when it has none).
    pub fn add_app_password(
        &self,
        address: &Address,
        name: &str,
        digest: &str,
        salt: &ScramSalt,
        secrets: &CredentialSecrets,
    ) -> Result<()> {
        self.write(|tx| {
            let account = account_of(tx, address)?;
            crate::secrets::check_salt(tx, account, salt)?;
            let (stored, server) = crate::secrets::scram_columns(secrets);
            let done = tx.execute(
                "INSERT INTO app_passwords (account_id, name, digest, created, scram_stored_key,
                     scram_server_key, cram_md5)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO NOTHING",
                params![
                    account,
                    name,
                    digest,
                    now_unix(),
                    stored,
                    server,
                    secrets.cram_md5
                ],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(format!(
                    "{address} has an application password named {name} already"
                )));
            }
            Ok(())
        })
    }

    pub fn remove_app_password(&self, address: &Address, name: &str) -> Result<()> {
        self.write(|tx| {
            let account = account_of(tx, address)?;
            let done = tx.execute(
                "DELETE FROM app_passwords WHERE account_id = ?1 AND name = ?2",
                params![account, name],
            )?;
            if done == 0 {
                return Err(StoreError::NotFound(format!(
                    "{address} has no application password named {name}"
                )));
            }
            Ok(())
        })
    }

    pub fn list_app_passwords(&self, address: &Address) -> Result<Vec<AppPassword>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT p.name, p.created, p.last_used FROM app_passwords p
                 JOIN accounts a ON a.id = p.account_id JOIN domains d ON d.id = a.domain_id
                 WHERE d.name = ?1 AND a.local_part = ?2 ORDER BY p.name",
            )?;
            let rows = stmt.query_map(
                params![address.domain.as_str(), address.folded_local()],
                |r| {
                    Ok(AppPassword {
                        name: r.get(0)?,
                        created: r.get(1)?,
                        last_used: r.get(2)?,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The name of the account's application password with this digest, if any.
    pub fn app_password_named(&self, account: AccountId, digest: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT name FROM app_passwords WHERE account_id = ?1 AND digest = ?2",
            )?
            .query_row(params![account.0, digest], |r| r.get(0))
            .optional()?)
        })
    }

    pub fn touch_app_password(&self, account: AccountId, name: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE app_passwords SET last_used = ?3 WHERE account_id = ?1 AND name = ?2",
                params![account.0, name, now_unix()],
            )?;
            Ok(())
        })
    }
}

fn account_of(tx: &rusqlite::Transaction<'_>, address: &Address) -> Result<i64> {
    tx.query_row(
        "SELECT a.id FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE d.name = ?1 AND a.local_part = ?2",
        params![address.domain.as_str(), address.folded_local()],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("no account {address}")))
}
