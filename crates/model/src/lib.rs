//! Shared vocabulary: mail addresses, domains and the identifiers every layer passes around.
//!
//! Invariants: a [`Domain`] is always lower case without a trailing dot; an [`Address`] keeps its
//! local part as written (RFC 5321 §2.4: local parts are case-sensitive on the wire) and offers a
//! folded form for lookups, since facteur matches local parts case-insensitively.
#![forbid(unsafe_code)]

pub mod authresults;
pub mod calendar;

use std::fmt;

/// A domain name, lower-cased, without trailing dot (RFC 5321 §2.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain as written in a command or by an admin. Accepts one trailing dot (the
    /// root) and UTF-8 labels (RFC 6531); refuses empty labels, spaces and other punctuation.
    pub fn parse(raw: &str) -> Option<Domain> {
        let name = raw.strip_suffix('.').unwrap_or(raw);
        if name.is_empty() || name.len() > 255 {
            return None;
        }
        for label in name.split('.') {
            let valid_chars = label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
            if label.is_empty() || label.len() > 63 || !valid_chars || label.starts_with('-') {
                return None;
            }
        }
        Some(Domain(name.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox address `local@domain`. The local part is stored unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub local: String,
    pub domain: Domain,
}

impl Address {
    /// Parses `local@domain` as an admin types it (no quoting, no route).
    pub fn parse(raw: &str) -> Option<Address> {
        let (local, domain) = raw.rsplit_once('@')?;
        if local.is_empty() || local.len() > 64 || local.chars().any(|c| c.is_whitespace()) {
            return None;
        }
        if local.contains(['@', '"', '<', '>', ',', ';', ':', '\\', '(', ')', '[', ']']) {
            return None;
        }
        Some(Address {
            local: local.to_string(),
            domain: Domain::parse(domain)?,
        })
    }

    /// The local part folded for lookups (case-insensitive matching).
    pub fn folded_local(&self) -> String {
        self.local.to_lowercase()
    }

    /// Whether the address needs SMTPUTF8 to travel (RFC 6531 §3.2).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.as_str().is_ascii()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account of the directory.
    AccountId(i64)
);
id_type!(
    /// A mailbox (folder) of an account.
    MailboxId(i64)
);
id_type!(
    /// A message's IMAP UID inside its mailbox (RFC 9051 §2.3.1.1).
    Uid(u32)
);
id_type!(
    /// A modification sequence (RFC 7162 §3.1).
    ModSeq(u64)
);

/// The identifier of one accepted message, shown in replies and every log line about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueId(pub String);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The special-use attributes of RFC 6154 §2 that facteur creates for every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Inbox,
    Sent,
    Drafts,
    Junk,
    Trash,
    Archive,
}

impl SpecialUse {
    /// The mailboxes every new account gets, with their names.
    pub const DEFAULT_MAILBOXES: [(&'static str, SpecialUse); 6] = [
        ("INBOX", SpecialUse::Inbox),
        ("Sent", SpecialUse::Sent),
        ("Drafts", SpecialUse::Drafts),
        ("Junk", SpecialUse::Junk),
        ("Trash", SpecialUse::Trash),
        ("Archive", SpecialUse::Archive),
    ];

    /// The RFC 6154 attribute (`INBOX` has none; it is named by RFC 9051 §5.1).
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            SpecialUse::Inbox => None,
            SpecialUse::Sent => Some("\\Sent"),
            SpecialUse::Drafts => Some("\\Drafts"),
            SpecialUse::Junk => Some("\\Junk"),
            SpecialUse::Trash => Some("\\Trash"),
            SpecialUse::Archive => Some("\\Archive"),
        }
    }

    pub fn from_attribute(raw: &str) -> Option<SpecialUse> {
        Self::DEFAULT_MAILBOXES
            .iter()
            .map(|(_, u)| *u)
            .find(|u| u.attribute() == Some(raw))
    }
}

/// A unique, time-ordered id for one accepted message (the queue id in logs and replies):
/// microseconds since 1970 and a per-process counter, in hex.
pub fn queue_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff;
    format!("{:X}{:04X}", micros, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_fold_case_and_root_dot() {
        assert_eq!(
            Domain::parse("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        for bad in ["", ".", "a..b", "-a.b", "a b", "a@b", "a%b"] {
            assert!(Domain::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            Domain::parse("Exämple.org").unwrap().as_str(),
            "exämple.org"
        );
    }

    #[test]
    fn addresses_keep_local_case_and_refuse_specials() {
        let a = Address::parse("Alice.B@Example.com").unwrap();
        assert_eq!(a.to_string(), "Alice.B@example.com");
        assert_eq!(a.folded_local(), "alice.b");
        for bad in [
            "alice",
            "@example.com",
            "a b@example.com",
            "\"a\"@example.com",
            "a@",
        ] {
            assert!(Address::parse(bad).is_none(), "{bad:?}");
        }
    }
}
