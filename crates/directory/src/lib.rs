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
mod password;
pub mod sasl;
mod sender;

pub use password::{generate_password, hash_password, verify_password};

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
    /// A local domain, but nobody there by that name.
    UnknownUser,
    /// Not a domain of this server.
    NotLocal,
    /// A relay attempt hidden in the local part.
    RelayAttempt,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub mailbox: Mailbox,
    /// The application password used, by name; None for the account's own password.
    pub app_password: Option<String>,
}

/// Alias chains longer than this are treated as loops (Postfix `virtual_alias_recursion_limit`).
const MAX_ALIAS_DEPTH: usize = 10;

#[derive(Clone)]
pub struct Directory {
    store: Store,
    options: Options,
    auth_cache: std::sync::Arc<cache::AuthCache>,
}

impl Directory {
    pub fn new(store: Store, options: Options) -> Directory {
        let auth_cache = std::sync::Arc::new(cache::AuthCache::new(options.auth_cache_ttl));
        Directory {
            store,
            options,
            auth_cache,
        }
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
        let mut found = Vec::new();
        let mut visited = Vec::new();
        self.expand(
            &address.domain,
            &address.folded_local(),
            0,
            &mut visited,
            &mut found,
        )?;
        Ok(if found.is_empty() {
            Resolution::UnknownUser
        } else {
            Resolution::Deliver(found)
        })
    }

    fn expand(
        &self,
        domain: &Domain,
        local: &str,
        depth: usize,
        visited: &mut Vec<String>,
        found: &mut Vec<Mailbox>,
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
        found: &mut Vec<Mailbox>,
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
        found: &mut Vec<Mailbox>,
    ) -> Result<()> {
        match Address::parse(target) {
            Some(t) if self.store.domain_exists(&t.domain)? => {
                self.expand(&t.domain, &t.folded_local(), depth + 1, visited, found)
            }
            _ => {
                tracing::warn!(target, "alias target is not a local address; skipped");
                Ok(())
            }
        }
    }

    fn push_account(&self, domain: &Domain, local: &str, found: &mut Vec<Mailbox>) -> Result<bool> {
        let Some(account) = self.store.account(domain, local)? else {
            return Ok(false);
        };
        if !found.iter().any(|m| m.account == account.id) {
            found.push(Mailbox {
                account: account.id,
                address: account.address,
            });
        }
        Ok(true)
    }

    /// Checks a login with the account's password or one of its application passwords.
    /// `username` is the account's address. Unknown users cost the same hashing as known ones,
    /// so timing reveals nothing. CPU-heavy (Argon2id): call it off the async runtime's worker
    /// threads.
    pub fn authenticate(&self, username: &str, password: &str) -> Result<Option<Login>> {
        let account = match Address::parse(username) {
            Some(a) => self.store.account(&a.domain, &a.folded_local())?,
            None => None,
        };
        let Some(a) = account else {
            let _ = verify_password(dummy_hash(), password);
            return Ok(None);
        };
        let mailbox = Mailbox {
            account: a.id,
            address: a.address.clone(),
        };
        // Generated application passwords are checked by digest first: no Argon2id needed.
        if let Some(name) = self
            .store
            .app_password_named(a.id, &app_password::digest(password))?
        {
            self.store.touch_app_password(a.id, &name)?;
            return Ok(Some(Login {
                mailbox,
                app_password: Some(name),
            }));
        }
        if self.auth_cache.hit(a.id, &a.password, password)
            || verify_password(&a.password, password)
        {
            self.auth_cache.remember(a.id, &a.password, password);
            return Ok(Some(Login {
                mailbox,
                app_password: None,
            }));
        }
        Ok(None)
    }

    /// Creates an application password named `name` and returns it; it is shown only once.
    pub fn add_app_password(&self, address: &str, name: &str) -> Result<String> {
        let address = parse_address(address)?;
        app_password::check_name(name)?;
        let secret = app_password::generate();
        self.store
            .add_app_password(&address, name, &app_password::digest(&secret))?;
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
        Ok(self.store.add_account(&address, &hash, quota)?)
    }

    pub fn remove_account(&self, address: &str) -> Result<()> {
        Ok(self.store.remove_account(&parse_address(address)?)?)
    }

    pub fn set_password(&self, address: &str, password: &str) -> Result<()> {
        check_password(password)?;
        Ok(self
            .store
            .set_password(&parse_address(address)?, &hash_password(password)?)?)
    }

    pub fn set_quota(&self, address: &str, quota: u64) -> Result<()> {
        Ok(self.store.set_quota(&parse_address(address)?, quota)?)
    }

    pub fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<AccountRecord>> {
        let domain = domain.map(parse_domain).transpose()?;
        Ok(self.store.list_accounts(domain.as_ref())?)
    }

    /// Adds an alias `source -> targets`; `@domain` as source is the catch-all.
    /// Targets must be addresses of local domains.
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
            if !self.store.domain_exists(&t.domain)? {
                return Err(DirectoryError::Invalid(format!(
                    "target {t} is not in a local domain; forwarding to other domains needs outbound delivery"
                )));
            }
            checked.push(format!("{}@{}", t.folded_local(), t.domain));
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
