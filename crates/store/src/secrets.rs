//! SASL secrets stored beside the password hash (schema 5, docs/decisions/0013): the SCRAM
//! salt and iteration count of an account, SCRAM StoredKey/ServerKey and CRAM-MD5 HMAC states
//! for the account's password and each application password. The directory crate computes
//! them; this module only stores and finds.
//!
//! Invariants: an account's salt, once set, never changes (application passwords' keys are
//! derived from it); secrets computed at a login are saved only if the password (or the
//! application password) they were computed from is still the stored one.

use crate::{Result, Store, StoreError};
use facteur_model::AccountId;
use rusqlite::{OptionalExtension, Transaction, params};

/// The SCRAM salt and iteration count of an account (RFC 5802 §3: `s=` and `i=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramSalt {
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// SCRAM StoredKey and ServerKey of one secret (RFC 5802 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// What one secret (a password or an application password) has for SASL; None: not computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialSecrets {
    pub scram: Option<ScramKeys>,
    /// HMAC-MD5 inner and outer MD5 states, 32 bytes.
    pub cram_md5: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPasswordSecrets {
    pub name: String,
    /// SHA-256 of the secret, hex: identifies the version of the secret the keys belong to.
    pub digest: String,
    pub secrets: CredentialSecrets,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSecrets {
    pub salt: Option<ScramSalt>,
    pub password: CredentialSecrets,
    pub app_passwords: Vec<AppPasswordSecrets>,
}

impl Store {
    pub fn account_secrets(&self, account: AccountId) -> Result<AccountSecrets> {
        self.read(|c| {
            let row = c
                .prepare_cached(
                    "SELECT scram_salt, scram_iterations, scram_stored_key, scram_server_key, cram_md5
                     FROM accounts WHERE id = ?1",
                )?
                .query_row([account.0], |r| {
                    Ok((
                        r.get::<_, Option<Vec<u8>>>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        credential(r.get(2)?, r.get(3)?, r.get(4)?),
                    ))
                })
                .optional()?;
            let Some((salt, iterations, password)) = row else {
                return Err(StoreError::NotFound(format!("no account {}", account.0)));
            };
            let salt = match (salt, iterations) {
                (Some(salt), Some(i)) => Some(ScramSalt {
                    salt,
                    iterations: i as u32,
                }),
                _ => None,
            };
            let mut stmt = c.prepare_cached(
                "SELECT name, digest, scram_stored_key, scram_server_key, cram_md5
                 FROM app_passwords WHERE account_id = ?1 ORDER BY name",
            )?;
            let app_passwords = stmt
                .query_map([account.0], |r| {
                    Ok(AppPasswordSecrets {
                        name: r.get(0)?,
                        digest: r.get(1)?,
                        secrets: credential(r.get(2)?, r.get(3)?, r.get(4)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(AccountSecrets {
                salt,
                password,
                app_passwords,
            })
        })
    }

    /// The account's salt: the stored one, or `candidate` stored now when it has none.
    pub fn ensure_scram_salt(
        &self,
        account: AccountId,
        candidate: &ScramSalt,
    ) -> Result<ScramSalt> {
        self.write(|tx| ensure_salt(tx, account.0, candidate))
    }

    /// Saves secrets computed at a login from the account's password, unless the password
    /// changed meanwhile (`password_hash` is the hash the login verified). False: not saved.
    pub fn set_password_secrets(
        &self,
        account: AccountId,
        password_hash: &str,
        secrets: &CredentialSecrets,
    ) -> Result<bool> {
        self.write(|tx| {
            let (stored, server) = scram_columns(secrets);
            Ok(tx.execute(
                "UPDATE accounts SET scram_stored_key = ?3, scram_server_key = ?4, cram_md5 = ?5
                 WHERE id = ?1 AND password = ?2 AND scram_salt IS NOT NULL",
                params![account.0, password_hash, stored, server, secrets.cram_md5],
            )? == 1)
        })
    }

    /// Saves secrets computed at a login from an application password, unless it was removed
    /// or replaced meanwhile. False: not saved.
    pub fn set_app_password_secrets(
        &self,
        account: AccountId,
        name: &str,
        digest: &str,
        secrets: &CredentialSecrets,
    ) -> Result<bool> {
        self.write(|tx| {
            let (stored, server) = scram_columns(secrets);
            Ok(tx.execute(
                "UPDATE app_passwords SET scram_stored_key = ?4, scram_server_key = ?5, cram_md5 = ?6
                 WHERE account_id = ?1 AND name = ?2 AND digest = ?3",
                params![account.0, name, digest, stored, server, secrets.cram_md5],
            )? == 1)
        })
    }
}

fn credential(
    stored: Option<Vec<u8>>,
    server: Option<Vec<u8>>,
    cram_md5: Option<Vec<u8>>,
) -> CredentialSecrets {
    CredentialSecrets {
        scram: match (stored, server) {
            (Some(stored_key), Some(server_key)) => Some(ScramKeys {
                stored_key,
                server_key,
            }),
            _ => None,
        },
        cram_md5,
    }
}

pub(crate) fn scram_columns(secrets: &CredentialSecrets) -> (Option<&[u8]>, Option<&[u8]>) {
    match &secrets.scram {
        Some(k) => (Some(&k.stored_key), Some(&k.server_key)),
        None => (None, None),
    }
}

/// Sets the salt when the account has none; returns the account's salt.
pub(crate) fn ensure_salt(
    tx: &Transaction<'_>,
    account: i64,
    candidate: &ScramSalt,
) -> Result<ScramSalt> {
    tx.execute(
        "UPDATE accounts SET scram_salt = ?2, scram_iterations = ?3
         WHERE id = ?1 AND scram_salt IS NULL",
        params![account, candidate.salt, candidate.iterations],
    )?;
    let (salt, iterations): (Option<Vec<u8>>, Option<i64>) = tx
        .query_row(
            "SELECT scram_salt, scram_iterations FROM accounts WHERE id = ?1",
            [account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no account {account}")))?;
    match (salt, iterations) {
        (Some(salt), Some(i)) => Ok(ScramSalt {
            salt,
            iterations: i as u32,
        }),
        _ => Err(StoreError::Conflict(
            "the account's SCRAM salt is incomplete".into(),
        )),
    }
}

/// Checks that secrets computed with `salt` may be stored for `account`: its salt is `salt`
/// (set now when it had none).
pub(crate) fn check_salt(tx: &Transaction<'_>, account: i64, salt: &ScramSalt) -> Result<()> {
    if ensure_salt(tx, account, salt)? != *salt {
        return Err(StoreError::Conflict(
            "the account's SCRAM salt changed meanwhile; try again".into(),
        ));
    }
    Ok(())
}
