//! What the MX's filters remember: greylisting triplets and the networks and domains that
//! passed (RFC 6647), and each account's Bayesian token statistics, learnt from the messages
//! the user moves into and out of Junk.

use crate::{Result, Store, now_unix};
use facteur_model::AccountId;
use rusqlite::{OptionalExtension, params};

/// Greylisting settings, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct GreylistTimes {
    /// A retry before this many seconds after the first attempt is deferred again.
    pub delay: i64,
    /// A retry after this many seconds counts as a new first attempt.
    pub window: i64,
    /// How long a network and sender domain that retried, and a sender domain, stay allowed.
    pub allow: i64,
}

/// What greylisting decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greylisted {
    /// The client network and sender domain retried before: accepted at once.
    Allowed,
    /// Every triplet was seen at least `delay` ago, within the window: accepted, and the
    /// network and domain remembered.
    Passed,
    /// New or too early: try again in this many seconds.
    Defer(i64),
}

/// The counts the Bayesian classifier needs for one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BayesCounts {
    /// Messages learnt as spam and as ham.
    pub spam: u32,
    pub ham: u32,
    /// Per token asked, in order: (spam, ham) messages it appeared in.
    pub tokens: Vec<(u32, u32)>,
}

impl Store {
    /// Greylisting for a message from `network` with these `triplets` (one per recipient),
    /// allowed at once under `allow_key` (the network and sender domain) when it passed
    /// before. Records first attempts, and on a pass, `allow_key` and the `domain_keys`.
    pub fn greylist(
        &self,
        triplets: &[String],
        allow_key: &str,
        domain_keys: &[String],
        times: GreylistTimes,
    ) -> Result<Greylisted> {
        let now = now_unix();
        // The common case, a known network and domain, is a read; its renewal (RFC 6647 §4.2:
        // kept while the sender keeps sending) is written at most once a day.
        let allowed: Option<i64> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT until FROM greylist_allowed WHERE key = ?1")?
                    .query_row([allow_key], |r| r.get(0))
                    .optional()?,
            )
        })?;
        if let Some(until) = allowed.filter(|u| *u > now) {
            if until < now + times.allow - 86_400 {
                self.write_lazy(|tx| {
                    tx.execute(
                        "UPDATE greylist_allowed SET until = ?2 WHERE key = ?1",
                        params![allow_key, now + times.allow],
                    )?;
                    Ok(())
                })?;
            }
            return Ok(Greylisted::Allowed);
        }
        // Losing this to a power failure costs a sender one more deferral: no fsync of its own.
        self.write_lazy(|tx| {
            // Forget what is older than the window: a retry after it starts again.
            tx.execute(
                "DELETE FROM greylist WHERE last < ?1",
                [now - times.window.max(times.allow)],
            )?;
            let mut wait = 0i64;
            for triplet in triplets {
                let seen: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT first, passed FROM greylist WHERE triplet = ?1",
                        [triplet],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match seen {
                    Some((first, passed)) if passed == 1 || now - first >= times.delay => {
                        if passed == 0 && now - first > times.window {
                            // RFC 6647 §2.2: a retry after the window is a new first attempt.
                            tx.execute(
                                "UPDATE greylist SET first = ?2, last = ?2 WHERE triplet = ?1",
                                params![triplet, now],
                            )?;
                            wait = wait.max(times.delay);
                        } else {
                            tx.execute(
                                "UPDATE greylist SET last = ?2, passed = 1 WHERE triplet = ?1",
                                params![triplet, now],
                            )?;
                        }
                    }
                    Some((first, _)) => {
                        tx.execute(
                            "UPDATE greylist SET last = ?2 WHERE triplet = ?1",
                            params![triplet, now],
                        )?;
                        wait = wait.max(first + times.delay - now);
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO greylist (triplet, first, last) VALUES (?1, ?2, ?2)",
                            params![triplet, now],
                        )?;
                        wait = wait.max(times.delay);
                    }
                }
            }
            if wait > 0 {
                return Ok(Greylisted::Defer(wait));
            }
            tx.execute("DELETE FROM greylist_allowed WHERE until <= ?1", [now])?;
            for key in std::iter::once(allow_key).chain(domain_keys.iter().map(String::as_str)) {
                tx.execute(
                    "INSERT INTO greylist_allowed (key, until) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET until = excluded.until",
                    params![key, now + times.allow],
                )?;
            }
            Ok(Greylisted::Passed)
        })
    }

    /// True when `key` (see [`Store::greylist`]) passed greylisting recently.
    pub fn greylist_allowed(&self, key: &str) -> Result<bool> {
        self.read(|c| {
            let until: Option<i64> = c
                .query_row(
                    "SELECT until FROM greylist_allowed WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(until.is_some_and(|u| u > now_unix()))
        })
    }

    /// The Bayesian counts of `account` for `tokens`.
    pub fn bayes_counts(&self, account: AccountId, tokens: &[u64]) -> Result<BayesCounts> {
        self.read(|c| {
            let mut counts = BayesCounts::default();
            let mut stmt = c.prepare_cached(
                "SELECT spam, COUNT(*) FROM bayes_learned WHERE account = ?1 GROUP BY spam",
            )?;
            let rows = stmt.query_map([account.0], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
            for row in rows {
                let (spam, n): (i64, u32) = row?;
                if spam == 1 {
                    counts.spam = n;
                } else {
                    counts.ham = n;
                }
            }
            if counts.spam == 0 && counts.ham == 0 {
                counts.tokens = vec![(0, 0); tokens.len()];
                return Ok(counts);
            }
            // One statement per CHUNK tokens (the last chunk padded with its first token), not
            // one per token: a message has hundreds.
            const CHUNK: usize = 128;
            static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                let marks: Vec<String> = (2..CHUNK + 2).map(|i| format!("?{i}")).collect();
                format!(
                    "SELECT token, spam, ham FROM bayes_tokens WHERE account = ?1 AND token IN ({})",
                    marks.join(", ")
                )
            });
            let mut stmt = c.prepare_cached(&SQL)?;
            let mut found: std::collections::HashMap<i64, (u32, u32)> =
                std::collections::HashMap::with_capacity(tokens.len());
            for chunk in tokens.chunks(CHUNK) {
                let mut values: Vec<i64> = Vec::with_capacity(CHUNK + 1);
                values.push(account.0);
                values.extend(chunk.iter().map(|&t| t as i64));
                values.resize(CHUNK + 1, chunk[0] as i64);
                let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?)))
                })?;
                for row in rows {
                    let (token, c) = row?;
                    found.insert(token, c);
                }
            }
            counts.tokens = tokens
                .iter()
                .map(|&t| found.get(&(t as i64)).copied().unwrap_or((0, 0)))
                .collect();
            Ok(counts)
        })
    }

    /// Learns the message `message` (its blob hash) with `tokens` for `account` as spam or
    /// ham. A message learnt before as the other kind is unlearnt first; false when it was
    /// already learnt as this kind (nothing changes).
    pub fn bayes_learn(
        &self,
        account: AccountId,
        message: &str,
        tokens: &[u64],
        spam: bool,
    ) -> Result<bool> {
        self.write(|tx| {
            let before: Option<i64> = tx
                .query_row(
                    "SELECT spam FROM bayes_learned WHERE account = ?1 AND message = ?2",
                    params![account.0, message],
                    |r| r.get(0),
                )
                .optional()?;
            if before == Some(i64::from(spam)) {
                return Ok(false);
            }
            let mut update = tx.prepare_cached(
                "INSERT INTO bayes_tokens (account, token, spam, ham) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, token) DO UPDATE SET
                     spam = max(0, spam + excluded.spam), ham = max(0, ham + excluded.ham)",
            )?;
            let (add_spam, add_ham) = if spam { (1, 0) } else { (0, 1) };
            // Unlearning the other kind: its counts go down as this kind's go up.
            let (undo_spam, undo_ham) = match before {
                Some(_) if spam => (0, -1),
                Some(_) => (-1, 0),
                None => (0, 0),
            };
            for &token in tokens {
                update.execute(params![
                    account.0,
                    token as i64,
                    add_spam + undo_spam,
                    add_ham + undo_ham
                ])?;
            }
            tx.execute(
                "INSERT INTO bayes_learned (account, message, spam, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, message) DO UPDATE SET spam = excluded.spam, at = excluded.at",
                params![account.0, message, i64::from(spam), now_unix()],
            )?;
            Ok(true)
        })
    }
}
