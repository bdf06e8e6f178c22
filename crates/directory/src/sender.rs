//! Which sender addresses an account may use on submission (Postfix
//! `reject_sender_login_mismatch` with `smtpd_sender_login_maps` drawn from the virtual alias
//! maps): its own address, its subaddresses (RFC 5233), and the aliases that deliver to it.
//! A catch-all does not count: it would let its owner send as anyone in the domain.

use crate::{Directory, Mailbox, Resolution, Result};
use facteur_model::Address;

impl Directory {
    /// Whether `account` may send as `address`.
    pub fn may_send_as(&self, account: &Mailbox, address: &Address) -> Result<bool> {
        if !self.store.domain_exists(&address.domain)? {
            return Ok(false);
        }
        let local = address.folded_local();
        let sep = &self.options.subaddress_separator;
        let base = match local.split_once(sep.as_str()) {
            Some((base, _)) if !sep.is_empty() && !base.is_empty() => base.to_string(),
            _ => local.clone(),
        };
        let own = Address::parse(&account.address)
            .is_some_and(|a| a.domain == address.domain && a.folded_local() == base);
        if own {
            return Ok(true);
        }
        // Only an explicit alias (of the address or of its base) may lend its name.
        let explicit = !self
            .store
            .alias_targets(&address.domain, &local)?
            .is_empty()
            || !self.store.alias_targets(&address.domain, &base)?.is_empty();
        if !explicit {
            return Ok(false);
        }
        Ok(match self.resolve(address)? {
            Resolution::Deliver(found) => found.iter().any(|m| m.account == account.account),
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Directory, Mailbox, Options};
    use facteur_model::Address;
    use facteur_store::{Options as StoreOptions, Store};

    #[test]
    fn own_address_subaddresses_and_delivering_aliases_only() {
        let path = std::env::temp_dir().join(format!("facteur-sender-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let store = Store::open(StoreOptions {
            data_dir: path.clone(),
            inline_blob_max: 1024,
            group_commit_max: 8,
        })
        .unwrap();
        let dir = Directory::new(
            store,
            Options {
                subaddress_separator: "+".into(),
                default_quota: 0,
                auth_cache_ttl: std::time::Duration::ZERO,
            },
        );
        dir.add_domain("example.com").unwrap();
        let alice = dir.add_account("alice@example.com", "pw", None).unwrap();
        dir.add_account("bob@example.com", "pw", None).unwrap();
        dir.add_alias(
            "sales@example.com",
            &["alice@example.com".into(), "bob@example.com".into()],
        )
        .unwrap();
        dir.add_alias("billing@example.com", &["bob@example.com".into()])
            .unwrap();
        dir.add_alias("@example.com", &["alice@example.com".into()])
            .unwrap();
        let alice = Mailbox {
            account: alice,
            address: "alice@example.com".into(),
        };
        let may = |a: &str| {
            dir.may_send_as(&alice, &Address::parse(a).unwrap())
                .unwrap()
        };
        assert!(may("alice@example.com"));
        assert!(may("Alice@Example.COM"));
        assert!(may("alice+lists@example.com"));
        assert!(may("sales@example.com"));
        assert!(may("sales+q4@example.com"));
        assert!(!may("billing@example.com"), "an alias of someone else");
        assert!(!may("bob@example.com"));
        assert!(!may("anyone@example.com"), "the catch-all lends no names");
        assert!(!may("alice@elsewhere.example"));
        let _ = std::fs::remove_dir_all(&path);
    }
}
