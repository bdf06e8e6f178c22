//! Bans: addresses the servers refuse at connection time until a moment (brute-force
//! protection and `facteur ban`), kept so they survive restarts and reach every process.

use crate::{Result, Store, now_unix};
use rusqlite::params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// An IPv4 address, or an IPv6 /64 written `prefix::/64`.
    pub address: String,
    /// Unix time the ban ends.
    pub until: i64,
    pub reason: String,
    pub created: i64,
}

impl Store {
    /// Bans in force (ending after now), soonest ending last.
    pub fn bans(&self) -> Result<Vec<Ban>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT address, until, reason, created FROM bans WHERE until > ?1
                 ORDER BY until DESC",
            )?;
            let rows = stmt.query_map([now_unix()], |r| {
                Ok(Ban {
                    address: r.get(0)?,
                    until: r.get(1)?,
                    reason: r.get(2)?,
                    created: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Bans `address` until `until` (replacing a ban it had); expired bans are dropped.
    pub fn ban(&self, address: &str, until: i64, reason: &str) -> Result<()> {
        self.write(|tx| {
            let now = now_unix();
            tx.execute("DELETE FROM bans WHERE until <= ?1", [now])?;
            tx.execute(
                "INSERT INTO bans (address, until, reason, created) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (address) DO UPDATE SET until = excluded.until,
                     reason = excluded.reason, created = excluded.created",
                params![address, until, reason, now],
            )?;
            Ok(())
        })
    }

    /// Lifts the ban of `address`; false when there was none.
    pub fn unban(&self, address: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM bans WHERE address = ?1", [address])? == 1))
    }
}
