//! The Sender Rewriting Scheme for mail forwarded to other domains: the envelope sender
//! (RFC 5321 §4.1.1.2 MAIL FROM) is rewritten into an address of our forwarding domain, so
//! the receiver's SPF check (RFC 7208) sees a domain whose SPF record lists us, and bounces
//! (RFC 5321 §6.1, §4.5.5) come back to us to be sent on to the original sender.
//!
//! The scheme is the de facto one of Shevek's "Sender Rewriting Scheme" paper, as libsrs2
//! and postsrsd implement it, so addresses interoperate with them:
//!
//! - `user@orig.example` becomes `SRS0=HHHH=TT=orig.example=user@DOMAIN`: TT is the day
//!   (days since 1970-01-01 modulo 1024, two base32 characters `A-Z2-7`, RFC 4648 §6
//!   alphabet), HHHH the first four base64 characters (RFC 4648 §4) of HMAC-SHA1 (RFC 2104)
//!   over TT, the host and the local part, all lowercased.
//! - An SRS0 address of another forwarder, `SRS0=opaque@fwd.example`, becomes
//!   `SRS1=HHHH=fwd.example==opaque@DOMAIN` (the hash over the host and `=opaque`); an SRS1
//!   address is re-hashed keeping the first forwarder's host. A bounce to our SRS1 address
//!   goes back to `SRS0=opaque@fwd.example`, which that forwarder reverses.
//! - Reversing checks the hash against every secret (so secrets can be rotated: the first
//!   signs, the others still verify) without regard to case, as postsrsd does, since mail
//!   systems change the case of local parts; and the age, at most `max_age_days`.
//!
//! Nothing here panics, whatever the address.

use ring::hmac;
use std::fmt;

/// The timestamp alphabet (RFC 4648 §6 base32).
const TIME_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The hash alphabet (RFC 4648 §4 base64).
const HASH_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Timestamps count days modulo 1024 (two base32 characters).
const TIME_SLOTS: u64 = 1024;
/// Seconds in a timestamp unit.
const DAY: u64 = 86_400;
/// Characters of the hash kept in addresses (libsrs2's default).
const HASH_LEN: usize = 4;
/// Separators accepted after the SRS0/SRS1 tag (libsrs2's `srs_separators`); ours is `=`.
const SEPARATORS: &[u8] = b"=+-";

/// Why an address could not be reversed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    /// The address does not start with `SRS0=` or `SRS1=` (nor `+`/`-` separators).
    #[error("{0:?} is not an SRS address")]
    NotSrs(String),
    /// The address has the SRS tag but lacks a part or has an invalid one.
    #[error("malformed SRS address {address:?}: {reason}")]
    Malformed {
        /// The address as given.
        address: String,
        /// The part that is missing or wrong.
        reason: &'static str,
    },
    /// The hash does not match under any secret: forged, damaged, or made with a secret that
    /// is no longer configured.
    #[error("SRS address {0:?} has an invalid hash (forged, or made with a retired secret)")]
    BadHash(String),
    /// The timestamp is older than the accepted age.
    #[error(
        "SRS address {address:?} has expired: made {age_days} days ago, accepted for {max_age_days}"
    )]
    Expired {
        /// The address as given.
        address: String,
        /// Its age in days (modulo 1024: the timestamp holds no more).
        age_days: u64,
        /// The configured maximum.
        max_age_days: u16,
    },
    /// No secret is configured, so no address can be checked.
    #[error("no SRS secret is configured")]
    NoSecret,
}

/// A rewriter for one forwarding domain; see the module documentation.
#[derive(Clone)]
pub struct Srs {
    /// The first signs; all verify.
    keys: Vec<hmac::Key>,
    /// Lowercase, without a trailing dot.
    domain: String,
    max_age_days: u16,
}

impl fmt::Debug for Srs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Srs")
            .field("secrets", &self.keys.len())
            .field("domain", &self.domain)
            .field("max_age_days", &self.max_age_days)
            .finish()
    }
}

impl Srs {
    /// `secrets`: the first signs, all verify (rotation); empty secrets are ignored, and with
    /// none left [`Srs::forward`] leaves addresses alone and [`Srs::reverse`] refuses.
    /// `domain`: our forwarding domain, used in rewritten addresses. `max_age_days`: how long
    /// a rewritten address is accepted back (21 by default in postsrsd; values of 1023 and
    /// more accept any timestamp, which holds only 1024 days).
    pub fn new(secrets: Vec<Vec<u8>>, domain: &str, max_age_days: u16) -> Srs {
        Srs {
            keys: secrets
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, s))
                .collect(),
            domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
            max_age_days,
        }
    }

    /// For mail we forward: `user@orig.example` -> `SRS0=HHHH=TT=orig.example=user@DOMAIN`;
    /// an SRS0 address of another forwarder -> `SRS1=HHHH=forwarder.example==HHHH=TT=...@DOMAIN`;
    /// an SRS1 address -> the same with our hash and domain. The null sender (`""` or `<>`,
    /// RFC 5321 §4.5.5), an address already in our domain, an address without a domain and
    /// any address when no secret is configured are returned unchanged. Angle brackets are
    /// kept.
    pub fn forward(&self, sender: &str) -> String {
        self.forward_at(sender, today())
    }

    /// [`Srs::forward`] as on `day` (days since 1970-01-01, UTC).
    pub fn forward_at(&self, sender: &str, day: u64) -> String {
        if let Some(inner) = sender.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            return format!("<{}>", self.forward_at(inner, day));
        }
        let Some((local, host)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        if local.is_empty()
            || host.is_empty()
            || host
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&self.domain)
        {
            return sender.to_string();
        }
        let Some(key) = self.keys.first() else {
            return sender.to_string();
        };
        let domain = &self.domain;
        if has_tag(local, b"SRS1")
            && let Some((first_host, opaque)) = split_srs1(local)
        {
            // Another forwarder's SRS1: keep the first forwarder, hash anew (libsrs2
            // srs_compile_guarded).
            let hash = hash(key, &[first_host, opaque]);
            return format!("SRS1={hash}={first_host}={opaque}@{domain}");
        }
        if has_tag(local, b"SRS0") {
            // Another forwarder's SRS0: "SRS0" stays implied, its separator and the rest are
            // kept as they are, behind the forwarder's host.
            let opaque = &local[4..];
            let hash = hash(key, &[host, opaque]);
            return format!("SRS1={hash}={host}={opaque}@{domain}");
        }
        let stamp = timestamp(day);
        let hash = hash(key, &[&stamp, host, local]);
        format!("SRS0={hash}={stamp}={host}={local}@{domain}")
    }

    /// For a bounce coming back to an SRS address of ours: the original address, after
    /// checking the hash (without regard to case, as postsrsd does) and, for SRS0, the age.
    /// For an SRS1 address, the other forwarder's SRS0 address. The domain part of `address`
    /// is not looked at (the caller routes only ours here); angle brackets are kept.
    pub fn reverse(&self, address: &str) -> Result<String, SrsError> {
        self.reverse_at(address, today())
    }

    /// [`Srs::reverse`] as on `day` (days since 1970-01-01, UTC).
    pub fn reverse_at(&self, address: &str, day: u64) -> Result<String, SrsError> {
        if let Some(inner) = address.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            return self.reverse_at(inner, day).map(|a| format!("<{a}>"));
        }
        let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
        let malformed = |reason| SrsError::Malformed {
            address: address.to_string(),
            reason,
        };
        if has_tag(local, b"SRS1") {
            let (hash_given, rest) = local[5..]
                .split_once('=')
                .ok_or_else(|| malformed("no host in the SRS1 address"))?;
            if hash_given.is_empty() {
                return Err(malformed("no hash in the SRS1 address"));
            }
            let (host, opaque) = rest
                .split_once('=')
                .ok_or_else(|| malformed("no user in the SRS1 address"))?;
            if host.is_empty() {
                return Err(malformed("no host in the SRS1 address"));
            }
            if opaque.is_empty() {
                return Err(malformed("no user in the SRS1 address"));
            }
            self.check_hash(address, hash_given, &[host, opaque])?;
            return Ok(format!("SRS0{opaque}@{host}"));
        }
        if !has_tag(local, b"SRS0") {
            return Err(SrsError::NotSrs(address.to_string()));
        }
        let mut parts = local[5..].splitn(4, '=');
        let hash_given = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("no hash in the SRS0 address"))?;
        let stamp = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("no timestamp in the SRS0 address"))?;
        let host = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("no host in the SRS0 address"))?;
        let user = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("no user in the SRS0 address"))?;
        let then = parse_timestamp(stamp).ok_or_else(|| malformed("invalid timestamp"))?;
        let age = age_days(then, day);
        if age > u64::from(self.max_age_days) {
            return Err(SrsError::Expired {
                address: address.to_string(),
                age_days: age,
                max_age_days: self.max_age_days,
            });
        }
        self.check_hash(address, hash_given, &[stamp, host, user])?;
        Ok(format!("{user}@{host}"))
    }

    /// Whether `address` looks like an SRS address: its local part begins with `SRS0` or
    /// `SRS1` and a separator (`=`, `+`, `-`), in any case. The hash is not checked.
    pub fn is_srs(address: &str) -> bool {
        let address = address.strip_prefix('<').unwrap_or(address);
        has_tag(address, b"SRS0") || has_tag(address, b"SRS1")
    }

    /// Compares `given` with the hash under each secret, without regard to case.
    fn check_hash(&self, address: &str, given: &str, parts: &[&str]) -> Result<(), SrsError> {
        if self.keys.is_empty() {
            return Err(SrsError::NoSecret);
        }
        let given = given.as_bytes();
        if given.len() == HASH_LEN
            && self.keys.iter().any(|key| {
                let expected = hash(key, parts);
                // Every byte compared, whatever the first mismatch.
                expected.bytes().zip(given).fold(0u8, |acc, (a, b)| {
                    acc | (a.to_ascii_lowercase() ^ b.to_ascii_lowercase())
                }) == 0
            })
        {
            Ok(())
        } else {
            Err(SrsError::BadHash(address.to_string()))
        }
    }
}

/// Days since 1970-01-01 UTC, by the system clock (0 if it is before 1970).
fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / DAY)
}

/// Whether `local` begins with `tag` (any case) and a separator.
fn has_tag(local: &str, tag: &[u8; 4]) -> bool {
    let bytes = local.as_bytes();
    bytes.len() > 4 && bytes[..4].eq_ignore_ascii_case(tag) && SEPARATORS.contains(&bytes[4])
}

/// An SRS1 local part's first forwarder host and opaque rest: `SRS1=HHHH=host=rest`.
fn split_srs1(local: &str) -> Option<(&str, &str)> {
    let (hash, rest) = local.get(5..)?.split_once('=')?;
    let (host, opaque) = rest.split_once('=')?;
    (!hash.is_empty() && !host.is_empty() && !opaque.is_empty()).then_some((host, opaque))
}

/// The timestamp of `day`: days modulo 1024 as two base32 characters.
fn timestamp(day: u64) -> String {
    let t = day % TIME_SLOTS;
    [(t >> 5) & 31, t & 31]
        .iter()
        .map(|&i| TIME_ALPHABET[i as usize] as char)
        .collect()
}

/// The day (modulo 1024) a two-character timestamp stands for; any case.
fn parse_timestamp(stamp: &str) -> Option<u64> {
    let bytes = stamp.as_bytes();
    if bytes.len() != 2 {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &c| {
        let c = c.to_ascii_uppercase();
        let i = TIME_ALPHABET.iter().position(|&a| a == c)?;
        Some((acc << 5) | i as u64)
    })
}

/// Days from the timestamp `then` (modulo 1024) to `day`: a timestamp "in the future" is one
/// from the previous 1024-day cycle (libsrs2 srs_timestamp_check).
fn age_days(then: u64, day: u64) -> u64 {
    let now = day % TIME_SLOTS;
    if now >= then {
        now - then
    } else {
        now + TIME_SLOTS - then
    }
}

/// The first four base64 characters of HMAC-SHA1 over the lowercased parts, concatenated
/// (libsrs2 srs_hash_create: ASCII lowercasing, no separators).
fn hash(key: &hmac::Key, parts: &[&str]) -> String {
    let mut context = hmac::Context::with_key(key);
    for part in parts {
        context.update(part.to_ascii_lowercase().as_bytes());
    }
    let tag = context.sign();
    let b = tag.as_ref();
    // 4 base64 characters take the first 24 bits; HMAC-SHA1 gives 160.
    let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    (0..HASH_LEN)
        .map(|i| HASH_ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        // 2020-01-01 is day 18262; 18262 % 1024 = 854 = 26 * 32 + 22.
        assert_eq!(timestamp(18262), "2W");
        assert_eq!(parse_timestamp("2W"), Some(854));
        assert_eq!(parse_timestamp("2w"), Some(854));
        assert_eq!(parse_timestamp("AA"), Some(0));
        assert_eq!(parse_timestamp("77"), Some(1023));
        assert_eq!(parse_timestamp("1A"), None);
        assert_eq!(parse_timestamp("AAA"), None);
        assert_eq!(parse_timestamp("é"), None);
        assert_eq!(age_days(854, 18262), 0);
        assert_eq!(age_days(853, 18262), 1);
        assert_eq!(age_days(855, 18262), 1023);
    }

    #[test]
    fn tags() {
        assert!(has_tag("SRS0=x", b"SRS0"));
        assert!(has_tag("srs0+x", b"SRS0"));
        assert!(has_tag("Srs1-x", b"SRS1"));
        assert!(!has_tag("SRS0", b"SRS0"));
        assert!(!has_tag("SRS0x", b"SRS0"));
        assert!(!has_tag("é", b"SRS0"));
        assert!(!has_tag("SRS\u{e9}x", b"SRS0"));
    }
}
