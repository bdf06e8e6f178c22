//! What SASL mechanisms verify against (decision 0013): password logins (which also compute
//! secrets an account lacks), SCRAM keys, CRAM-MD5 states and OAuth bearer tokens.

use crate::md5::HmacMd5State;
use crate::sasl::scram;
use crate::{
    Directory, Login, Mailbox, Result, SaslOptions, SaslState, app_password, dummy_hash, oauth,
    verify_password,
};
use facteur_model::{AccountId, Address};
use facteur_store::{AccountRecord, CredentialSecrets, ScramKeys, ScramSalt};

/// A fresh SCRAM salt with RFC 7677's iteration count.
pub(crate) fn new_salt() -> ScramSalt {
    ScramSalt {
        salt: scram::random_salt(),
        iterations: scram::ITERATIONS,
    }
}

impl SaslState {
    pub(crate) fn new(options: SaslOptions) -> SaslState {
        use ring::rand::SecureRandom;
        let mut fake_salt_key = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut fake_salt_key)
            .expect("system random generator");
        SaslState {
            options,
            jwks: std::sync::RwLock::new(Vec::new()),
            fake_salt_key,
        }
    }
}

impl Directory {
    fn find_account(&self, username: &str) -> Result<Option<AccountRecord>> {
        match Address::parse(username) {
            Some(a) => Ok(self.store.account(&a.domain, &a.folded_local())?),
            None => Ok(None),
        }
    }

    /// The account's SCRAM salt, made now if it has none yet.
    pub(crate) fn account_salt(&self, account: AccountId) -> Result<ScramSalt> {
        match self.store.account_secrets(account)?.salt {
            Some(salt) => Ok(salt),
            None => Ok(self.store.ensure_scram_salt(account, &new_salt())?),
        }
    }

    /// The SASL secrets of one password under the account's salt: SCRAM keys always,
    /// CRAM-MD5 states only when enabled.
    pub(crate) fn compute_secrets(&self, password: &str, salt: &ScramSalt) -> CredentialSecrets {
        let keys = scram::derive_keys(password.as_bytes(), &salt.salt, salt.iterations);
        CredentialSecrets {
            scram: Some(ScramKeys {
                stored_key: keys.stored_key.to_vec(),
                server_key: keys.server_key.to_vec(),
            }),
            cram_md5: self
                .cram_md5_enabled()
                .then(|| HmacMd5State::new(password.as_bytes()).to_bytes()),
        }
    }

    /// Verifies a password or an application password (PLAIN, LOGIN, IMAP LOGIN, POP3 PASS).
    pub(crate) fn password_login(
        &self,
        username: &str,
        password: &str,
        mechanism: Option<&'static str>,
    ) -> Result<Option<Login>> {
        let Some(a) = self.find_account(username)? else {
            let _ = verify_password(dummy_hash(), password);
            return Ok(None);
        };
        let mailbox = Mailbox {
            account: a.id,
            address: a.address.clone(),
        };
        // Generated application passwords are checked by digest first: no Argon2id needed.
        let digest = app_password::digest(password);
        if let Some(name) = self.store.app_password_named(a.id, &digest)? {
            self.store.touch_app_password(a.id, &name)?;
            self.complete_secrets(&a, Some((&name, &digest)), password);
            return Ok(Some(Login {
                mailbox,
                app_password: Some(name),
                mechanism,
            }));
        }
        if self.auth_cache.hit(a.id, &a.password, password)
            || verify_password(&a.password, password)
        {
            self.auth_cache.remember(a.id, &a.password, password);
            self.complete_secrets(&a, None, password);
            return Ok(Some(Login {
                mailbox,
                app_password: None,
                mechanism,
            }));
        }
        Ok(None)
    }

    /// The verdict of [`Self::password_login`] when it is already known without Argon2id: the
    /// account's password verified recently (the auth cache). None otherwise, wrong passwords
    /// included: they always pay the full verification, on the blocking pool.
    pub(crate) fn cached_password_login(
        &self,
        username: &str,
        password: &str,
        mechanism: Option<&'static str>,
    ) -> Option<Login> {
        let a = self.find_account(username).ok()??;
        if !self.auth_cache.hit(a.id, &a.password, password) {
            return None;
        }
        self.complete_secrets(&a, None, password);
        Some(Login {
            mailbox: Mailbox {
                account: a.id,
                address: a.address.clone(),
            },
            app_password: None,
            mechanism,
        })
    }

    /// After a verified password login: computes and saves the SASL secrets this credential
    /// lacks (accounts and application passwords made before schema 5), and the CRAM-MD5
    /// states when CRAM-MD5 was enabled since (or drops them when it was disabled). A
    /// failure here is logged; the login stands.
    fn complete_secrets(&self, a: &AccountRecord, app: Option<(&str, &str)>, password: &str) {
        let result = (|| -> Result<()> {
            let stored = self.store.account_secrets(a.id)?;
            let current = match app {
                None => Some(&stored.password),
                Some((name, _)) => stored
                    .app_passwords
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| &p.secrets),
            };
            let Some(current) = current else {
                return Ok(());
            };
            let complete = current.scram.is_some()
                && stored.salt.is_some()
                && current.cram_md5.is_some() == self.cram_md5_enabled();
            if complete {
                return Ok(());
            }
            let salt = match stored.salt {
                Some(salt) => salt,
                None => self.store.ensure_scram_salt(a.id, &new_salt())?,
            };
            let mut secrets = self.compute_secrets(password, &salt);
            if current.scram.is_some() {
                // Keys made with this salt already: keep them, only CRAM-MD5 changes.
                secrets.scram.clone_from(&current.scram);
            }
            let saved = match app {
                None => self
                    .store
                    .set_password_secrets(a.id, &a.password, &secrets)?,
                Some((name, digest)) => self
                    .store
                    .set_app_password_secrets(a.id, name, digest, &secrets)?,
            };
            if saved {
                tracing::info!(user = %a.address, "SASL secrets computed at login");
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(user = %a.address, error = %e, "cannot save SASL secrets");
        }
    }

    /// SCRAM: the salt and keys of every secret of the account named `username`, with the
    /// account. Unknown users (and accounts without SCRAM keys yet) get a salt made up from
    /// the name under a per-process key, stable for the process, and no keys: the exchange
    /// goes on and fails at the proof, as a wrong password does.
    pub(crate) fn scram_keys(&self, username: &str) -> Result<(scram::UserKeys, Option<Mailbox>)> {
        let fake = || scram::UserKeys {
            salt: scram::hmac_sha256(&self.sasl.fake_salt_key, username.as_bytes())
                [..scram::SALT_LEN]
                .to_vec(),
            iterations: scram::ITERATIONS,
            secrets: Vec::new(),
        };
        let Some(a) = self.find_account(username)? else {
            return Ok((fake(), None));
        };
        let stored = self.store.account_secrets(a.id)?;
        let Some(salt) = stored.salt else {
            return Ok((fake(), None));
        };
        let keys = |k: &ScramKeys| {
            Some(scram::Keys {
                stored_key: k.stored_key.as_slice().try_into().ok()?,
                server_key: k.server_key.as_slice().try_into().ok()?,
            })
        };
        let mut secrets = Vec::new();
        if let Some(k) = stored.password.scram.as_ref().and_then(keys) {
            secrets.push((None, k));
        }
        for p in &stored.app_passwords {
            if let Some(k) = p.secrets.scram.as_ref().and_then(keys) {
                secrets.push((Some(p.name.clone()), k));
            }
        }
        let mailbox = Mailbox {
            account: a.id,
            address: a.address,
        };
        Ok((
            scram::UserKeys {
                salt: salt.salt,
                iterations: salt.iterations,
                secrets,
            },
            Some(mailbox),
        ))
    }

    /// CRAM-MD5: the HMAC-MD5 states of every secret of the account; None for unknown users.
    pub(crate) fn cram_keys(
        &self,
        username: &str,
    ) -> Result<Option<(Mailbox, crate::sasl::cram::Secrets)>> {
        let Some(a) = self.find_account(username)? else {
            return Ok(None);
        };
        let stored = self.store.account_secrets(a.id)?;
        let mut secrets = Vec::new();
        if let Some(s) = stored
            .password
            .cram_md5
            .as_deref()
            .and_then(HmacMd5State::from_bytes)
        {
            secrets.push((None, s));
        }
        for p in &stored.app_passwords {
            if let Some(s) = p
                .secrets
                .cram_md5
                .as_deref()
                .and_then(HmacMd5State::from_bytes)
            {
                secrets.push((Some(p.name.clone()), s));
            }
        }
        Ok(Some((
            Mailbox {
                account: a.id,
                address: a.address,
            },
            secrets,
        )))
    }

    /// XOAUTH2 / OAUTHBEARER: verifies the token; its username claim must name an existing
    /// account and, when the SASL message names a user, that same address. The inner error
    /// is (user for the log, reason).
    pub(crate) fn bearer_login(
        &self,
        user: Option<&str>,
        token: &str,
        mechanism: &'static str,
    ) -> Result<std::result::Result<Login, (Option<String>, &'static str)>> {
        let Some(options) = self.oauth_options() else {
            return Ok(Err((user.map(str::to_string), "OAuth is not configured")));
        };
        let claimed = {
            let keys = self.sasl.jwks.read().expect("jwks lock");
            oauth::validate(token, &keys, options, oauth::now())
        };
        let claimed = match claimed {
            Ok(c) => c,
            Err(reason) => return Ok(Err((user.map(str::to_string), reason))),
        };
        let fold = |raw: &str| Address::parse(raw).map(|a| (a.folded_local(), a.domain));
        if let Some(user) = user
            && (fold(user).is_none() || fold(user) != fold(&claimed))
        {
            return Ok(Err((Some(user.to_string()), "token is for another user")));
        }
        let Some(a) = self.find_account(&claimed)? else {
            return Ok(Err((Some(claimed), "token names no account")));
        };
        Ok(Ok(Login {
            mailbox: Mailbox {
                account: a.id,
                address: a.address,
            },
            app_password: None,
            mechanism: Some(mechanism),
        }))
    }
}
