//! Versioned schema migrations, recorded in `PRAGMA user_version`.
//!
//! Invariant: a migration is only ever appended; released ones never change.

use crate::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: directory, IMAP data model, blobs.
    "
    CREATE TABLE domains (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        local_part TEXT NOT NULL,          -- folded to lower case
        password TEXT NOT NULL,            -- PHC string (Argon2id)
        quota_bytes INTEGER NOT NULL DEFAULT 0,
        used_bytes INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        UNIQUE (domain_id, local_part)
    );
    CREATE TABLE aliases (
        id INTEGER PRIMARY KEY,
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        local_part TEXT NOT NULL,          -- folded; '' is the catch-all of the domain
        target TEXT NOT NULL,
        UNIQUE (domain_id, local_part, target)
    );
    CREATE TABLE mailboxes (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        special_use TEXT,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        highestmodseq INTEGER NOT NULL DEFAULT 1,
        subscribed INTEGER NOT NULL DEFAULT 1,
        UNIQUE (account_id, name)
    );
    CREATE INDEX mailboxes_special ON mailboxes(account_id, special_use);
    CREATE TABLE blobs (
        hash BLOB PRIMARY KEY,             -- SHA-256 of the content
        size INTEGER NOT NULL,
        data BLOB                          -- NULL: the content is the file blobs/hh/hash
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags TEXT NOT NULL DEFAULT '',
        internaldate INTEGER NOT NULL,
        size INTEGER NOT NULL,             -- prefix + blob, what IMAP calls RFC822.SIZE
        prefix BLOB NOT NULL,              -- per-recipient trace headers (Return-Path, Delivered-To)
        blob_hash BLOB NOT NULL REFERENCES blobs(hash),
        envelope TEXT NOT NULL,            -- parsed once at delivery (JSON)
        structure TEXT NOT NULL,           -- MIME structure with offsets into the blob (JSON)
        queue_id TEXT NOT NULL,
        UNIQUE (mailbox_id, uid)
    );
    CREATE INDEX messages_blob ON messages(blob_hash);
    CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
    CREATE TABLE expunged (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    ",
    // 2: header fields parsed once at delivery, for SEARCH and FETCH without the blob.
    "ALTER TABLE messages ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';",
    // 3: application passwords.
    "
    CREATE TABLE app_passwords (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest TEXT NOT NULL,              -- SHA-256 of the generated secret, hex
        created INTEGER NOT NULL,
        last_used INTEGER,
        UNIQUE (account_id, name)
    );
    CREATE INDEX app_passwords_digest ON app_passwords(account_id, digest);
    ",
    // 4: IMAP subscriptions (a name may stay subscribed after its mailbox is gone, RFC 9051
    // §6.3.9) and the search index: decoded body text per blob in an FTS5 trigram index, so
    // SEARCH BODY/TEXT is a substring lookup instead of a scan of every blob.
    "
    CREATE TABLE subscriptions (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (account_id, name)
    ) WITHOUT ROWID;
    INSERT INTO subscriptions (account_id, name)
        SELECT account_id, name FROM mailboxes WHERE subscribed = 1;
    CREATE TABLE blob_text (
        id INTEGER PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE
    );
    CREATE VIRTUAL TABLE text_index USING fts5(body, headers, tokenize = 'trigram');
    -- RFC 3501 §2.3.2 (Recent): messages from this UID on have not been seen by any session.
    ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
    -- The last mailbox id and UIDVALIDITY given out. Neither is ever given again: a mailbox
    -- deleted and created again under the same name never gets the same UIDVALIDITY (RFC 9051
    -- §2.3.1.1), and a session or an event naming a deleted mailbox's id can never reach a
    -- later mailbox (of any account) that would otherwise reuse the row id.
    CREATE TABLE sequences (
        name TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO sequences (name, last) SELECT 'uidvalidity', coalesce(max(uidvalidity), 0) FROM mailboxes;
    INSERT INTO sequences (name, last) SELECT 'mailbox', coalesce(max(id), 0) FROM mailboxes;
    -- A selected mailbox's view (UID, MODSEQ, flags) and STATUS counts read from the index
    -- alone, without touching the wide message rows.
    CREATE INDEX messages_view ON messages(mailbox_id, uid, modseq, flags, size);
    CREATE TRIGGER blobs_text_gone AFTER DELETE ON blobs BEGIN
        DELETE FROM text_index WHERE rowid = (SELECT id FROM blob_text WHERE hash = old.hash);
        DELETE FROM blob_text WHERE hash = old.hash;
    END;
    ",
    // 5: SASL secrets (docs/decisions/0013). SCRAM-SHA-256 (RFC 5802, RFC 7677): one salt and
    // iteration count per account, shared by its password and application passwords because
    // the server sends the salt before it can know which secret the client holds; StoredKey
    // and ServerKey per secret. CRAM-MD5 (RFC 2195): the HMAC-MD5 inner and outer MD5 states
    // (32 bytes), password-equivalent, kept only while the admin enables CRAM-MD5. NULL: not
    // computed yet (accounts made before this version get them at their next password login).
    "
    ALTER TABLE accounts ADD COLUMN scram_salt BLOB;
    ALTER TABLE accounts ADD COLUMN scram_iterations INTEGER;
    ALTER TABLE accounts ADD COLUMN scram_stored_key BLOB;
    ALTER TABLE accounts ADD COLUMN scram_server_key BLOB;
    ALTER TABLE accounts ADD COLUMN cram_md5 BLOB;
    ALTER TABLE app_passwords ADD COLUMN scram_stored_key BLOB;
    ALTER TABLE app_passwords ADD COLUMN scram_server_key BLOB;
    ALTER TABLE app_passwords ADD COLUMN cram_md5 BLOB;
    ",
    // 6: the outbound queue. One row per accepted message (its blob, envelope and DSN
    // parameters), one per recipient with its own state, so each recipient is delivered or
    // bounced once whatever happens to the others.
    "
    CREATE TABLE queue (
        id INTEGER PRIMARY KEY,
        queue_id TEXT NOT NULL UNIQUE,
        blob_hash BLOB NOT NULL REFERENCES blobs(hash),
        sender TEXT NOT NULL,              -- reverse path; '' is the null sender
        envid TEXT,                        -- RFC 3461 §4.4 ENVID
        ret_full INTEGER,                  -- RFC 3461 §4.3: 1 FULL, 0 HDRS, NULL unspecified
        smtputf8 INTEGER NOT NULL DEFAULT 0,
        body_8bit INTEGER NOT NULL DEFAULT 0,
        submitter TEXT,                    -- the authenticated account, for logs and limits
        created INTEGER NOT NULL,
        held INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_blob ON queue(blob_hash);
    CREATE TABLE queue_recipients (
        queue_row INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        address TEXT NOT NULL,
        notify TEXT NOT NULL DEFAULT '',   -- RFC 3461 §4.1 NOTIFY values, comma-separated
        orcpt TEXT,                        -- RFC 3461 §4.2 ORCPT as given
        state TEXT NOT NULL DEFAULT 'queued', -- queued | sent | failed
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_reply TEXT,
        PRIMARY KEY (queue_row, position)
    ) WITHOUT ROWID;
    CREATE INDEX queue_due ON queue_recipients(state, next_attempt);
    ",
    // 7: every delivery attempt of a queued recipient, for `facteur queue show`: when, which
    // host, what it answered. Removed with the message.
    "
    CREATE TABLE queue_attempts (
        queue_row INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        at INTEGER NOT NULL,
        host TEXT NOT NULL,                -- the MX or relay tried, with its address
        reply TEXT NOT NULL                -- the remote reply, or what went wrong before one
    );
    CREATE INDEX queue_attempts_row ON queue_attempts(queue_row, position);
    ",
    // 8: whether the sender was told a recipient is delayed (RFC 3464 `delayed`), told once.
    "ALTER TABLE queue_recipients ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;",
    // 9: DKIM signing keys per domain and selector, with their place in a rotation.
    "
    CREATE TABLE dkim_keys (
        domain TEXT NOT NULL,              -- lowercase, A-labels
        selector TEXT NOT NULL,
        algorithm TEXT NOT NULL,           -- rsa | ed25519
        private_key TEXT NOT NULL,         -- PKCS#8 PEM
        state TEXT NOT NULL,               -- next | active | retired
        created INTEGER NOT NULL,
        changed INTEGER NOT NULL,          -- when it entered its state
        PRIMARY KEY (domain, selector)
    ) WITHOUT ROWID;
    -- DMARC evaluations of received mail (RFC 7489 §7.2), until reported.
    CREATE TABLE dmarc_evaluations (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        policy_domain TEXT NOT NULL,
        evaluation TEXT NOT NULL           -- JSON, facteur_trust::report::Evaluation
    );
    CREATE INDEX dmarc_evaluations_domain ON dmarc_evaluations(policy_domain, at);
    CREATE TABLE dmarc_reported (
        policy_domain TEXT PRIMARY KEY,
        until INTEGER NOT NULL             -- end of the last period reported
    ) WITHOUT ROWID;
    ",
    // 10: secrets the server makes once and keeps (the SRS key).
    "
    CREATE TABLE server_secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        created INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- Outcomes of outbound TLS per recipient domain and day, for TLS reports (RFC 8460).
    CREATE TABLE tls_results (
        day INTEGER NOT NULL,              -- days since 1970 (UTC)
        policy_domain TEXT NOT NULL,
        observation TEXT NOT NULL,         -- JSON, facteur_trust::tlsrpt::Observation, count 0
        count INTEGER NOT NULL,
        PRIMARY KEY (day, policy_domain, observation)
    ) WITHOUT ROWID;
    ",
    // 11: addresses refused at connection time (brute-force bans, admin bans), shared by every
    // protocol and every process.
    "
    CREATE TABLE bans (
        address TEXT PRIMARY KEY,          -- an IPv4 address or an IPv6 /64 (`2001:db8::/64`)
        until INTEGER NOT NULL,            -- Unix time the ban ends
        reason TEXT NOT NULL,
        created INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 12: greylisting (RFC 6647) and each account's Bayesian spam statistics.
    "
    CREATE TABLE greylist (
        triplet TEXT PRIMARY KEY,          -- client network, sender, recipient
        first INTEGER NOT NULL,            -- Unix time of the first attempt
        last INTEGER NOT NULL,
        passed INTEGER NOT NULL DEFAULT 0  -- 1 once retried in the window
    ) WITHOUT ROWID;
    CREATE INDEX greylist_last ON greylist(last);
    -- Client networks and sender domains that retried: not greylisted again until `until`.
    CREATE TABLE greylist_allowed (
        key TEXT PRIMARY KEY,              -- `net NETWORK SENDER-DOMAIN` or `domain DOMAIN`
        until INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE bayes_tokens (
        account INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        token INTEGER NOT NULL,            -- facteur_spam::bayes token hash (a u64 as i64)
        spam INTEGER NOT NULL,
        ham INTEGER NOT NULL,
        PRIMARY KEY (account, token)
    ) WITHOUT ROWID;
    CREATE TABLE bayes_learned (
        account INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        message TEXT NOT NULL,             -- the blob hash of the message learned
        spam INTEGER NOT NULL,             -- 1 learned as spam, 0 as ham
        at INTEGER NOT NULL,
        PRIMARY KEY (account, message)
    ) WITHOUT ROWID;
    ",
];

/// Brings the schema to the newest version, one transaction per migration.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "store schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account made under schema 4 keeps its password and gets empty SASL secrets.
    #[test]
    fn version_5_adds_empty_sasl_secrets_to_existing_accounts() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            "INSERT INTO domains (id, name, created) VALUES (1, 'example.com', 0);
             INSERT INTO accounts (id, domain_id, local_part, password, created)
                 VALUES (1, 1, 'old', '$argon2id$old', 0);
             INSERT INTO app_passwords (account_id, name, digest, created)
                 VALUES (1, 'phone', 'abcd', 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let (password, salt, cram): (String, Option<Vec<u8>>, Option<Vec<u8>>) = conn
            .query_row(
                "SELECT password, scram_salt, cram_md5 FROM accounts WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(password, "$argon2id$old");
        assert!(salt.is_none() && cram.is_none());
        let key: Option<Vec<u8>> = conn
            .query_row("SELECT scram_stored_key FROM app_passwords", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(key.is_none());
    }
}
