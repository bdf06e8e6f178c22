//! A cache of verified logins, so clients that log in every minute (POP3 polling, IMAP
//! reconnects) do not pay a full Argon2id verification each time (Dovecot's `auth_cache`).
//!
//! Invariants:
//! - only successful verifications are cached; a wrong password always costs the full hash;
//! - the cache holds an HMAC-SHA256 of the password under a random key made at start, never
//!   the password;
//! - an entry is valid only while the account's stored hash is unchanged, so `account passwd`
//!   takes effect at once; entries expire after the configured TTL.

use facteur_model::AccountId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct AuthCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<AccountId, Entry>>,
}

struct Entry {
    mac: [u8; 32],
    stored_hash: String,
    until: Instant,
}

/// Bound on entries: past it, expired ones are dropped, then the cache is cleared.
const MAX_ENTRIES: usize = 100_000;

impl AuthCache {
    pub fn new(ttl: Duration) -> AuthCache {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        AuthCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// True when this password was verified for this account and stored hash within the TTL.
    pub fn hit(&self, account: AccountId, stored_hash: &str, password: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let entries = self.entries.lock().expect("auth cache lock");
        entries.get(&account).is_some_and(|e| {
            e.until > Instant::now()
                && e.stored_hash == stored_hash
                && constant_time_eq(&e.mac, &self.mac(password))
        })
    }

    pub fn remember(&self, account: AccountId, stored_hash: &str, password: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            mac: self.mac(password),
            stored_hash: stored_hash.to_string(),
            until: Instant::now() + self.ttl,
        };
        let mut entries = self.entries.lock().expect("auth cache lock");
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, e| e.until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(account, entry);
    }

    /// HMAC-SHA256 (RFC 2104) of the password under the process key.
    fn mac(&self, password: &str) -> [u8; 32] {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(password.as_bytes())
            .finalize();
        Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize()
            .into()
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_password_and_hash_within_ttl() {
        let c = AuthCache::new(Duration::from_secs(60));
        let a = AccountId(1);
        assert!(!c.hit(a, "h1", "pw"));
        c.remember(a, "h1", "pw");
        assert!(c.hit(a, "h1", "pw"));
        assert!(!c.hit(a, "h1", "other"));
        assert!(!c.hit(a, "h2", "pw"), "password changed since");
        assert!(!c.hit(AccountId(2), "h1", "pw"));
        let off = AuthCache::new(Duration::ZERO);
        off.remember(a, "h1", "pw");
        assert!(!off.hit(a, "h1", "pw"));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 §4.3 uses key "Jefe"; our key is 32 bytes, so pad "Jefe" with zeros, which
        // HMAC does anyway for short keys.
        let mut c = AuthCache::new(Duration::from_secs(1));
        c.key = [0; 32];
        c.key[..4].copy_from_slice(b"Jefe");
        let mac = c.mac("what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
