//! The directory: who receives mail here and how an address reaches an account.
//!
//! Resolution order for `local@domain` of a local domain (Postfix `virtual_alias_maps` then
//! `virtual_mailbox_maps`, Dovecot `recipient_delimiter`):
//! 1. an alias with exactly that local part (its targets are resolved in turn);
//! 2. an account with that local part;
//! 3. with a subaddress `base+tag`, steps 1 and 2 for `base` (RFC 5233 §2);
//! 4. the domain's catch-all alias `@domain`.
//!
//! Local parts match case-insensitively. Local parts holding `%`, `!` or `@` are refused as
//! relay attempts (the percent hack, bang paths, quoted `"a@b"` local parts), never resolved.
#![forbid(unsafe_code)]

mod app_password;
mod cache;
pub mod md5;
pub mod oauth;
mod password;
pub mod sasl;
mod secrets;
mod sender;

pub use oauth::OAuthOptions;
pub use password::{generate_password, hash_password, verify_password};
pub use sasl::{SaslExchange, SaslOutcome};

use facteur_model::{AccountId, Address, Domain};
use facteur_store::{AccountRecord, AliasRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

/// Settings of the directory (`[directory]`).
#[derive(Debug, Clone)]
pub struct Options {
    pub subaddress_separator: String,
    pub default_quota: u64,
    /// How long a verified login is remembered (0: never).
    pub auth_cache_ttl: std::time::Duration,
}

/// An account an address resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub account: AccountId,
    /// The account's address, used as Delivered-To.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The address reaches these accounts (one or more, deduplicated).
    Deliver(Vec<Mailbox>),
    /// An alias that forwards outside (to addresses of other domains), and perhaps also to
    /// local accounts: `local` may be empty, `remote` is not.
    Forward {
        local: Vec<Mailbox>,
        remote: Vec<String>,
    },
    /// A local domain, but nobody there by that name.
    UnknownUser,
    /// Not a domain of this server.
    NotLocal,
    /// A relay attempt hidden in the local part.
    RelayAttempt,
}

/// What an alias expansion collected.
#[derive(Default)]
struct Found {
    mailboxes: Vec<Mailbox>,
    forward: Vec<String>,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub mailbox: Mailbox,
    /// The application password used, by name; None for the account's own password (or an
    /// OAuth token).
    pub app_password: Option<String>,
    /// The SASL mechanism; None for a plain user/password command (IMAP LOGIN, POP3 PASS).
    pub mechanism: Option<&'static str>,
}

impl Login {
    /// The credential used, for the login log line: `password`, `app-password:NAME` or
    /// `oauth`, with the mechanism when there was one (`password/SCRAM-SHA-256`).
    pub fn via(&self) -> String {
        let credential = match (&self.app_password, self.mechanism) {
            (Some(name), _) => format!("app-password:{name}"),
            (None, Some("XOAUTH2" | "OAUTHBEARER")) => "oauth".to_string(),
            (None, _) => "password".to_string(),
        };
        match self.mechanism {
            Some(m) => format!("{credential}/{m}"),
            None => credential,
        }
    }
}

/// SASL settings (`cram_md5` of `[directory]`, `[oauth]`); see decision 0013.
#[derive(Debug, Clone, Default)]
pub struct SaslOptions {
    /// Offer CRAM-MD5 and keep its password-equivalent secrets. Off by default.
    pub cram_md5: bool,
    /// Offer XOAUTH2 and OAUTHBEARER, verifying tokens of this issuer.
    pub oauth: Option<OAuthOptions>,
}

/// SASL state shared by the clones of a [`Directory`].
struct SaslState {
    options: SaslOptions,
    /// The issuer's verification keys (RFC 7517), replaced as a whole by `set_jwks`.
    jwks: std::sync::RwLock<Vec<oauth::Jwk>>,
    /// Key of the made-up SCRAM salts of unknown users (random per process).
    fake_salt_key: [u8; 32],
}

/// Alias chains longer than this are treated as loops (Postfix `virtual_alias_recursion_limit`).
const MAX_ALIAS_DEPTH: usize = 10;

#[derive(Clone)]
pub struct Directory {
    store: Store,
    options: Options,
    auth_cache: std::sync::Arc<cache::AuthCache>,
    sasl: std::sync::Arc<SaslState>,
}

impl Directory {
    /// A directory with the default SASL settings (no CRAM-MD5, no OAuth).
    pub fn new(store: Store, options: Options) -> Directory {
        let auth_cache = std::sync::Arc::new(cache::AuthCache::new(options.auth_cache_ttl));
        Directory {
            store,
            options,
            auth_cache,
            sasl: std::sync::Arc::new(SaslState::new(SaslOptions::default())),
        }
    }

    /// The same directory with these SASL settings and no OAuth keys yet. Call it before
    /// cloning: clones made earlier keep the old settings.
    pub fn with_sasl(mut self, options: SaslOptions) -> Directory {
        self.sasl = std::sync::Arc::new(SaslState::new(options));
        self
    }

    /// The SASL mechanisms to advertise, strongest first: SCRAM-SHA-256, PLAIN, LOGIN, then
    /// CRAM-MD5 when enabled, OAUTHBEARER and XOAUTH2 when an issuer is configured. None of
    /// them has channel binding: drivers offer them only when the connection is secure (TLS,
    /// or plaintext allowed by the admin).
    pub fn sasl_mechanisms(&self) -> Vec<&'static str> {
        sasl::exchange_mechanisms(&self.sasl.options)
            .map(|m| m.name())
            .collect()
    }

    /// A new exchange for `mechanism` (any case); None when it is unknown or disabled.
    /// `hostname` is the server's name (the CRAM-MD5 challenge carries it).
    pub fn sasl_start(&self, mechanism: &str, hostname: &str) -> Option<SaslExchange> {
        sasl::exchange_mechanisms(&self.sasl.options)
            .find(|m| m.name().eq_ignore_ascii_case(mechanism))
            .map(|m| SaslExchange::new(m, hostname))
    }

    /// Replaces the OAuth issuer's verification keys with those of a JWK Set (RFC 7517 §5)
    /// and returns how many are usable (RS256, ES256, EdDSA/Ed25519). Called by the server
    /// with the JWKS file at start and with what it fetched from the JWKS URL later. On error
    /// the keys in place stay.
    pub fn set_jwks(&self, json: &str) -> Result<usize> {
        let keys = oauth::parse_jwks(json).map_err(DirectoryError::Invalid)?;
        let n = keys.len();
        *self.sasl.jwks.write().expect("jwks lock") = keys;
        Ok(n)
    }

    pub(crate) fn oauth_options(&self) -> Option<&OAuthOptions> {
        self.sasl.options.oauth.as_ref()
    }

    pub(crate) fn cram_md5_enabled(&self) -> bool {
        self.sasl.options.cram_md5
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where mail for `address` goes.
    pub fn resolve(&self, address: &Address) -> Result<Resolution> {
        if !self.store.domain_exists(&address.domain)? {
            return Ok(Resolution::NotLocal);
        }
        if address.local.contains(['%', '!', '@']) {
            return Ok(Resolution::RelayAttempt);
        }
        let mut found = Found::default();
        let mut visited = Vec::new();
        self.expand(
            &address.domain,
            &address.folded_local(),
            0,
            &mut visited,
            &mut found,
        )?;
        Ok(
            match (found.mailboxes.is_empty(), found.forward.is_empty()) {
                (true, true) => Resolution::UnknownUser,
                (_, true) => Resolution::Deliver(found.mailboxes),
                (_, false) => Resolution::Forward {
                    local: found.mailboxes,
                    remote: found.forward,
                },
            },
        )
    }

    fn expand(
        &self,
        domain: &Domain,
        local: &str,
        depth: usize,
        visited: &mut Vec<String>,
        found: &mut Found,
    ) -> Result<()> {
        let key = format!("{local}@{domain}");
        if depth > MAX_ALIAS_DEPTH || visited.contains(&key) {
            // A target naming an address already on the path is that address's own account
            // (`alice -> alice, bob` keeps a copy for alice).
            return self.push_account(domain, local, found).map(|_| ());
        }
        visited.push(key);
        if self.expand_exact(domain, local, depth, visited, found)? {
            return Ok(());
        }
        let sep = &self.options.subaddress_separator;
        if let Some((base, _tag)) = local.split_once(sep.as_str()).filter(|_| !sep.is_empty())
            && !base.is_empty()
            && self.expand_exact(domain, base, depth, visited, found)?
        {
            return Ok(());
        }
        for target in self.store.alias_targets(domain, "")? {
            self.expand_target(&target, depth, visited, found)?;
        }
        Ok(())
    }

    /// Alias or account with exactly this local part; false when neither exists.
    fn expand_exact(
        &self,
        domain: &Domain,
        local: &str,
        depth: usize,
        visited: &mut Vec<String>,
        found: &mut Found,
    ) -> Result<bool> {
        let targets = self.store.alias_targets(domain, local)?;
        if !targets.is_empty() {
            for target in targets {
                self.expand_target(&target, depth, visited, found)?;
            }
            return Ok(true);
        }
        self.push_account(domain, local, found)
    }

    fn expand_target(
        &self,
        target: &str,
        depth: usize,
        visited: &mut Vec<String>,
        found: &mut Found,
    ) -> Result<()> {
        match Address::parse(target) {
            Some(t) if self.store.domain_exists(&t.domain)? => {
                self.expand(&t.domain, &t.folded_local(), depth + 1, visited, found)
            }
            // Another domain: forwarded through the queue (with SRS, by the caller).
            Some(t) => {
                let shown = t.to_string();
                if !found.forward.iter().any(|f| f.eq_ignore_ascii_case(&shown)) {
                    found.forward.push(shown);
                }
                Ok(())
            }
            None => {
                tracing::warn!(target, "alias target is not an address; skipped");
                Ok(())
            }
        }
    }

    fn push_account(&self, domain: &Domain, local: &str, found: &mut Found) -> Result<bool> {
        let Some(account) = self.store.account(domain, local)? else {
            return Ok(false);
        };
        if !found.mailboxes.iter().any(|m| m.account == account.id) {
            found.mailboxes.push(Mailbox {
                account: account.id,
                address: account.address,
            });
        }
        Ok(true)
    }

    /// Checks a login with the account's password or one of its application passwords
    /// (IMAP LOGIN, POP3 USER/PASS). `username` is the account's address. Unknown users cost
    /// the same hashing as known ones, so timing reveals nothing. CPU-heavy (Argon2id): call
    /// it off the async runtime's worker threads. A success also computes the SASL secrets
    /// the account lacks (decision 0013).
    pub fn authenticate(&self, username: &str, password: &str) -> Result<Option<Login>> {
        self.password_login(username, password, None)
    }

    /// Creates an application password named `name` and returns it; it is shown only once.
    pub fn add_app_password(&self, address: &str, name: &str) -> Result<String> {
        let address = parse_address(address)?;
        app_password::check_name(name)?;
        let account = self
            .store
            .account(&address.domain, &address.folded_local())?
            .ok_or_else(|| DirectoryError::Invalid(format!("no account {address}")))?;
        let secret = app_password::generate();
        let salt = self.account_salt(account.id)?;
        let secrets = self.compute_secrets(&secret, &salt);
        self.store.add_app_password(
            &address,
            name,
            &app_password::digest(&secret),
            &salt,
            &secrets,
        )?;
        Ok(secret)
    }

    pub fn remove_app_password(&self, address: &str, name: &str) -> Result<()> {
        Ok(self
            .store
            .remove_app_password(&parse_address(address)?, name)?)
    }

    pub fn list_app_passwords(&self, address: &str) -> Result<Vec<facteur_store::AppPassword>> {
        let address = parse_address(address)?;
        if self
            .store
            .account(&address.domain, &address.folded_local())?
            .is_none()
        {
            return Err(DirectoryError::Invalid(format!("no account {address}")));
        }
        Ok(self.store.list_app_passwords(&address)?)
    }

    /// Current usage and quota of an account (bytes; quota 0 means none).
    pub fn quota(&self, mailbox: &Mailbox) -> Result<Option<(u64, u64)>> {
        let Some(address) = Address::parse(&mailbox.address) else {
            return Ok(None);
        };
        Ok(self
            .store
            .account(&address.domain, &address.folded_local())?
            .map(|a| (a.used_bytes, a.quota_bytes)))
    }

    pub fn add_domain(&self, name: &str) -> Result<Domain> {
        let domain = Domain::parse(name)
            .ok_or_else(|| DirectoryError::Invalid(format!("`{name}` is not a domain name")))?;
        self.store.add_domain(&domain)?;
        Ok(domain)
    }

    pub fn remove_domain(&self, name: &str) -> Result<()> {
        Ok(self.store.remove_domain(&parse_domain(name)?)?)
    }

    pub fn list_domains(&self) -> Result<Vec<String>> {
        Ok(self.store.list_domains()?)
    }

    /// Creates an account; the password is hashed with Argon2id.
    pub fn add_account(
        &self,
        address: &str,
        password: &str,
        quota: Option<u64>,
    ) -> Result<AccountId> {
        let address = parse_address(address)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        let quota = quota.unwrap_or(self.options.default_quota);
        let salt = secrets::new_salt();
        let secrets = self.compute_secrets(password, &salt);
        Ok(self
            .store
            .add_account_with_secrets(&address, &hash, quota, Some(&salt), &secrets)?)
    }

    pub fn remove_account(&self, address: &str) -> Result<()> {
        Ok(self.store.remove_account(&parse_address(address)?)?)
    }

    /// Replaces the password and its SASL secrets (the account keeps its SCRAM salt, which
    /// its application passwords' keys depend on).
    pub fn set_password(&self, address: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let address = parse_address(address)?;
        let account = self
            .store
            .account(&address.domain, &address.folded_local())?
            .ok_or_else(|| DirectoryError::Invalid(format!("no account {address}")))?;
        let salt = self.account_salt(account.id)?;
        let secrets = self.compute_secrets(password, &salt);
        Ok(self
            .store
            .set_password(&address, &hash_password(password)?, &salt, &secrets)?)
    }

    pub fn set_quota(&self, address: &str, quota: u64) -> Result<()> {
        Ok(self.store.set_quota(&parse_address(address)?, quota)?)
    }

    pub fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<AccountRecord>> {
        let domain = domain.map(parse_domain).transpose()?;
        Ok(self.store.list_accounts(domain.as_ref())?)
    }

    /// Adds an alias `source -> targets`; `@domain` as source is the catch-all. A target in
    /// another domain makes the alias forward there (through the queue, with SRS).
    pub fn add_alias(&self, source: &str, targets: &[String]) -> Result<()> {
        let (domain, local) = parse_alias_source(source)?;
        if targets.is_empty() {
            return Err(DirectoryError::Invalid(
                "an alias needs at least one target".into(),
            ));
        }
        let mut checked = Vec::new();
        for target in targets {
            let t = parse_address(target)?;
            if self.store.domain_exists(&t.domain)? {
                checked.push(format!("{}@{}", t.folded_local(), t.domain));
            } else {
                // Outside: the local part as given (another server decides its case).
                checked.push(format!("{}@{}", t.local, t.domain));
            }
        }
        for target in checked {
            self.store.add_alias(&domain, &local, &target)?;
        }
        Ok(())
    }

    pub fn remove_alias(&self, source: &str, targets: &[String]) -> Result<()> {
        let (domain, local) = parse_alias_source(source)?;
        let targets: Vec<String> = targets
            .iter()
            .map(|t| parse_address(t).map(|a| format!("{}@{}", a.folded_local(), a.domain)))
            .collect::<Result<_>>()?;
        Ok(self.store.remove_alias(&domain, &local, &targets)?)
    }

    pub fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<AliasRecord>> {
        let domain = domain.map(parse_domain).transpose()?;
        Ok(self.store.list_aliases(domain.as_ref())?)
    }
}

/// A valid hash of a random password, verified against when the user does not exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&generate_password()).unwrap_or_default())
}

fn parse_domain(name: &str) -> Result<Domain> {
    Domain::parse(name)
        .ok_or_else(|| DirectoryError::Invalid(format!("`{name}` is not a domain name")))
}

fn parse_address(raw: &str) -> Result<Address> {
    Address::parse(raw).ok_or_else(|| {
        DirectoryError::Invalid(format!("`{raw}` is not an address like user@example.com"))
    })
}

fn parse_alias_source(source: &str) -> Result<(Domain, String)> {
    if let Some(domain) = source.strip_prefix('@') {
        return Ok((parse_domain(domain)?, String::new()));
    }
    let a = parse_address(source)?;
    Ok((a.domain.clone(), a.folded_local()))
}

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(DirectoryError::Invalid("the password is empty".into()));
    }
    if password.contains(['\r', '\n', '\0']) {
        return Err(DirectoryError::Invalid(
            "the password holds a line break or NUL".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
