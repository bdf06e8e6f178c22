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
