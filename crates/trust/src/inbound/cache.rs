//! Bounded caches for the DNS answers the checks use, shared by every message a [`Checker`]
//! checks (mail-auth asks its caller for them: it keeps none of its own).
//!
//! What is kept is the parsed answer (an SPF or DMARC record, a DKIM public key ready to
//! verify, addresses, host names), so a sender seen again costs neither a DNS round trip nor a
//! parse. Entries live as long as their TTL says (RFC 1035 §3.2.1), never more than
//! [`MAX_TTL`]; each cache holds a fixed number of entries: when full, expired entries go first,
//! then an arbitrary eighth of the rest.
//!
//! [`Checker`]: super::Checker

use mail_auth::{MX, Parameters, RecordSet, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::dmarc::DmarcTxt;

/// The longest an answer is kept, whatever its TTL: a key rotated or a record fixed is seen
/// within the hour.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(3600);

/// Entries per cache. A few thousand senders' records: a few megabytes at most.
const TXT_ENTRIES: usize = 8192;
const ADDRESS_ENTRIES: usize = 8192;
const MX_ENTRIES: usize = 2048;
const PTR_ENTRIES: usize = 4096;
const DMARC_ENTRIES: usize = 4096;

/// A map of at most `capacity` entries, each with its expiry.
pub(crate) struct BoundedCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> BoundedCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic elsewhere while holding the lock leaves a consistent map: keep using it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for BoundedCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        let mut map = self.lock();
        match map.get(name) {
            Some((value, until)) if *until > now => return Some(value.clone()),
            Some(_) => {}
            None => return None,
        }
        map.remove(name);
        None
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(value, _)| value)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let now = Instant::now();
        let until = valid_until.min(now + MAX_TTL);
        if until <= now {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                // HashMap iteration order is arbitrary (randomly seeded): an arbitrary eighth.
                let mut excess = map.len() + 1 - self.capacity + self.capacity / 8;
                map.retain(|_, _| {
                    if excess > 0 {
                        excess -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
        }
        map.insert(key, (value, until));
    }
}

/// The caches of one [`super::Checker`].
pub(crate) struct Caches {
    pub(crate) txt: BoundedCache<Box<str>, Txt>,
    pub(crate) mx: BoundedCache<Box<str>, RecordSet<MX>>,
    pub(crate) ipv4: BoundedCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub(crate) ipv6: BoundedCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub(crate) ptr: BoundedCache<IpAddr, RecordSet<Box<str>>>,
    /// DMARC records with their text (mail-auth's TXT cache keeps only the parsed form; the
    /// text and its `pct=` and `rua=` as published are needed for reports and replies).
    pub(crate) dmarc: BoundedCache<Box<str>, DmarcTxt>,
}

/// mail-auth's lookup parameters with these caches.
pub(crate) type Params<'x, P> = Parameters<
    'x,
    P,
    BoundedCache<Box<str>, Txt>,
    BoundedCache<Box<str>, RecordSet<MX>>,
    BoundedCache<Box<str>, RecordSet<Ipv4Addr>>,
    BoundedCache<Box<str>, RecordSet<Ipv6Addr>>,
    BoundedCache<IpAddr, RecordSet<Box<str>>>,
>;

impl Caches {
    pub(crate) fn new() -> Self {
        Caches {
            txt: BoundedCache::new(TXT_ENTRIES),
            mx: BoundedCache::new(MX_ENTRIES),
            ipv4: BoundedCache::new(ADDRESS_ENTRIES),
            ipv6: BoundedCache::new(ADDRESS_ENTRIES),
            ptr: BoundedCache::new(PTR_ENTRIES),
            dmarc: BoundedCache::new(DMARC_ENTRIES),
        }
    }

    /// `params` with every cache attached.
    pub(crate) fn params<P>(&self, params: P) -> Params<'_, P> {
        Parameters::new(params)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_not_returned() {
        let cache: BoundedCache<Box<str>, u32> = BoundedCache::new(4);
        cache.insert("a".into(), 1, Instant::now() + Duration::from_secs(60));
        cache.insert("b".into(), 2, Instant::now());
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("b"), None);
    }

    #[test]
    fn the_size_stays_bounded() {
        let cache: BoundedCache<Box<str>, usize> = BoundedCache::new(16);
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..1000 {
            cache.insert(i.to_string().into(), i, later);
            assert!(cache.lock().len() <= 16);
        }
        assert_eq!(cache.get("999"), Some(999));
    }
}
