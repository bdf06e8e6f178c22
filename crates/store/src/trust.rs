//! DKIM signing keys and DMARC evaluations.
//!
//! DKIM signing keys (RFC 6376), kept in the database so they are backed up with it and every
//! process of a cluster signs with the same ones.
//!
//! A key's state says its place in a rotation: `next` (made, its DNS record perhaps not yet
//! visible: not used to sign), `active` (signs), `retired` (no longer signs; its record stays
//! published for a grace period so mail in flight still verifies, then may be removed).
//! The private key never leaves the store except to the signer and `facteur dkim export`.

use crate::{Result, Store, StoreError, now_unix};
use rusqlite::params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// `rsa` or `ed25519`.
    pub algorithm: String,
    /// PKCS#8 PEM.
    pub private_key: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    pub created: i64,
    /// When the key entered its state (Unix time).
    pub changed: i64,
}

impl Store {
    /// Every key, or those of `domain`, by domain, then newest first.
    pub fn dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT domain, selector, algorithm, private_key, state, created, changed
                 FROM dkim_keys WHERE ?1 IS NULL OR domain = ?1
                 ORDER BY domain, created DESC, selector",
            )?;
            let rows = stmt.query_map([domain.map(str::to_ascii_lowercase)], |r| {
                Ok(DkimKey {
                    domain: r.get(0)?,
                    selector: r.get(1)?,
                    algorithm: r.get(2)?,
                    private_key: r.get(3)?,
                    state: r.get(4)?,
                    created: r.get(5)?,
                    changed: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Adds a key; a selector is used once per domain.
    pub fn dkim_add_key(&self, key: &DkimKey) -> Result<()> {
        self.write(|tx| {
            let done = tx.execute(
                "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, state, created,
                     changed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING",
                params![
                    key.domain.to_ascii_lowercase(),
                    key.selector,
                    key.algorithm,
                    key.private_key,
                    key.state,
                    now_unix()
                ],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(format!(
                    "{} has a DKIM key with selector {} already",
                    key.domain, key.selector
                )));
            }
            Ok(())
        })
    }

    /// Completes a rotation of `domain` in one transaction: its `active` keys become
    /// `retired` and its `next` keys `active`. Returns how many keys now sign (0: there was no
    /// `next` key, and nothing changed).
    pub fn dkim_promote_next(&self, domain: &str) -> Result<usize> {
        self.write(|tx| {
            let domain = domain.to_ascii_lowercase();
            let now = now_unix();
            let waiting: i64 = tx.query_row(
                "SELECT count(*) FROM dkim_keys WHERE domain = ?1 AND state = 'next'",
                [&domain],
                |r| r.get(0),
            )?;
            if waiting == 0 {
                return Ok(0);
            }
            tx.execute(
                "UPDATE dkim_keys SET state = 'retired', changed = ?2
                 WHERE domain = ?1 AND state = 'active'",
                params![domain, now],
            )?;
            Ok(tx.execute(
                "UPDATE dkim_keys SET state = 'active', changed = ?2
                 WHERE domain = ?1 AND state = 'next'",
                params![domain, now],
            )?)
        })
    }

    /// Removes a key (a retired one whose record is gone from DNS). False when there was none.
    pub fn dkim_remove_key(&self, domain: &str, selector: &str) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM dkim_keys WHERE domain = ?1 AND selector = ?2",
                params![domain.to_ascii_lowercase(), selector],
            )? == 1)
        })
    }
}

impl Store {
    /// Keeps a DMARC evaluation (JSON) for the aggregate report of `policy_domain`. Batched with
    /// the deliveries of the moment; returns at once (statistics: a crash may lose the last
    /// few).
    pub fn dmarc_note(&self, at: i64, policy_domain: &str, evaluation: String) -> Result<()> {
        self.writer_sender()?
            .send(crate::writer::Job::Dmarc {
                at,
                policy_domain: policy_domain.to_ascii_lowercase(),
                evaluation,
            })
            .map_err(|_| StoreError::WriterGone)
    }

    /// Domains with evaluations not yet reported, each with the end of its last reported
    /// period (0 when never reported).
    pub fn dmarc_pending(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT e.policy_domain, coalesce(r.until, 0) FROM dmarc_evaluations e
                 LEFT JOIN dmarc_reported r ON r.policy_domain = e.policy_domain
                 GROUP BY e.policy_domain ORDER BY e.policy_domain",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The evaluations (JSON) of `policy_domain` made before `until`.
    pub fn dmarc_evaluations(&self, policy_domain: &str, until: i64) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT evaluation FROM dmarc_evaluations
                 WHERE policy_domain = ?1 AND at < ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![policy_domain, until], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// `policy_domain` is reported up to `until`: its evaluations before are dropped.
    pub fn dmarc_reported(&self, policy_domain: &str, until: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM dmarc_evaluations WHERE policy_domain = ?1 AND at < ?2",
                params![policy_domain, until],
            )?;
            tx.execute(
                "INSERT INTO dmarc_reported (policy_domain, until) VALUES (?1, ?2)
                 ON CONFLICT (policy_domain) DO UPDATE SET until = excluded.until",
                params![policy_domain, until],
            )?;
            Ok(())
        })
    }
}

impl Store {
    /// The server secret `name` (the SRS key): the one kept, or `fresh` kept now when there
    /// is none. Every process of the server gets the same value.
    pub fn server_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO server_secrets (name, value, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![name, fresh, now_unix()],
            )?;
            Ok(tx.query_row(
                "SELECT value FROM server_secrets WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?)
        })
    }
}

impl Store {
    /// The server secret `name`, if one was made.
    pub fn server_secret_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?
                    .query_row([name], |r| r.get(0))
                    .optional()?,
            )
        })
    }
}

impl Store {
    /// Adds outbound TLS outcomes `(day, policy domain, observation JSON, count)` to the daily
    /// totals. Statistics: committed without an fsync of its own.
    pub fn tls_results_add(&self, rows: &[(i64, String, String, u64)]) -> Result<()> {
        self.write_lazy(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO tls_results (day, policy_domain, observation, count)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (day, policy_domain, observation)
                 DO UPDATE SET count = count + excluded.count",
            )?;
            for (day, domain, observation, count) in rows {
                stmt.execute(params![day, domain, observation, *count as i64])?;
            }
            Ok(())
        })
    }

    /// The totals of days before `before_day`: (day, policy domain, observation JSON, count).
    pub fn tls_results_before(&self, before_day: i64) -> Result<Vec<(i64, String, String, u64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT day, policy_domain, observation, count FROM tls_results
                 WHERE day < ?1 ORDER BY policy_domain, day",
            )?;
            let rows = stmt.query_map([before_day], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Drops the totals of `policy_domain` for days before `before_day` (reported).
    pub fn tls_results_reported(&self, policy_domain: &str, before_day: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM tls_results WHERE policy_domain = ?1 AND day < ?2",
                params![policy_domain, before_day],
            )?;
            Ok(())
        })
    }
}
