//! The server side of DKIM keys: submission's signer follows the store (`facteur dkim` runs in
//! another process), and a rotation completes once the new keys' records are in DNS.

use crate::dkim_cli::publishes;
use facteur_net::Shutdown;
use facteur_smtp_server::DkimSigning;
use facteur_store::{DkimKey, Store};
use facteur_trust::dkim::{Signer, SigningKey, public_key_b64};
use std::time::{Duration, Instant};

/// How often the store is looked at for changed keys.
const RELOAD: Duration = Duration::from_secs(60);

/// Keeps `signing` equal to the store's active keys (checked every minute), and every
/// `options.check_minutes` promotes a domain's `next` keys once DNS publishes all of them.
pub async fn maintain(
    store: Store,
    signing: DkimSigning,
    resolver: facteur_dns::Resolver,
    options: facteur_config::Dkim,
    shutdown: Shutdown,
) {
    let mut loaded: Option<Vec<(String, String)>> = None;
    let mut next_dns_check = Instant::now();
    loop {
        match store.dkim_keys(None) {
            Ok(keys) => {
                if Instant::now() >= next_dns_check {
                    next_dns_check =
                        Instant::now() + Duration::from_secs(options.check_minutes.max(1) * 60);
                    promote_published(&store, &resolver, &keys).await;
                }
                // Promotion changed the keys: read them again.
                let keys = store.dkim_keys(None).unwrap_or(keys);
                let active: Vec<&DkimKey> = keys.iter().filter(|k| k.state == "active").collect();
                let names: Vec<(String, String)> = active
                    .iter()
                    .map(|k| (k.domain.clone(), k.selector.clone()))
                    .collect();
                if loaded.as_ref() != Some(&names) {
                    signing.set(signer(&active));
                    loaded = Some(names);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the DKIM keys"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RELOAD) => {}
            _ = shutdown.triggered() => return,
        }
    }
}

/// A signer for the keys that load; a key that does not is logged and left out.
fn signer(active: &[&DkimKey]) -> Option<Signer> {
    let mut usable = Vec::new();
    for k in active {
        let Ok(algorithm) = k.algorithm.parse() else {
            tracing::error!(domain = %k.domain, selector = %k.selector, algorithm = %k.algorithm, "DKIM key of an unknown algorithm; not used");
            continue;
        };
        let key = SigningKey {
            domain: k.domain.clone(),
            selector: k.selector.clone(),
            algorithm,
            private_pem: k.private_key.clone(),
        };
        match Signer::new(std::slice::from_ref(&key)) {
            Ok(_) => usable.push(key),
            Err(e) => {
                tracing::error!(domain = %k.domain, selector = %k.selector, error = %e, "DKIM key unusable; not used")
            }
        }
    }
    if usable.is_empty() {
        return None;
    }
    let mut domains: Vec<&str> = usable.iter().map(|k| k.domain.as_str()).collect();
    domains.dedup();
    match Signer::new(&usable) {
        Ok(s) => {
            tracing::info!(keys = usable.len(), domains = %domains.join(","), "DKIM signing keys loaded");
            Some(s)
        }
        Err(e) => {
            tracing::error!(error = %e, "DKIM keys unusable; mail goes unsigned");
            None
        }
    }
}

/// RFC 6376 §3.6.2.1: a key is usable by verifiers once its record is at
/// SELECTOR._domainkey.DOMAIN; a domain switches when every waiting key is there.
async fn promote_published(store: &Store, resolver: &facteur_dns::Resolver, keys: &[DkimKey]) {
    let mut domains: Vec<&str> = keys
        .iter()
        .filter(|k| k.state == "next")
        .map(|k| k.domain.as_str())
        .collect();
    domains.dedup();
    for domain in domains {
        let mut all = true;
        for k in keys
            .iter()
            .filter(|k| k.domain == domain && k.state == "next")
        {
            let Ok(algorithm) = k.algorithm.parse() else {
                all = false;
                continue;
            };
            let Ok(public) = public_key_b64(algorithm, &k.private_key) else {
                all = false;
                continue;
            };
            let name = format!("{}._domainkey.{}", k.selector, k.domain);
            let seen = resolver
                .txt(&name)
                .await
                .is_ok_and(|records| records.iter().any(|t| publishes(t, &public)));
            if !seen {
                tracing::info!(%domain, selector = %k.selector, "DKIM rotation waits: no matching record at {name} yet");
                all = false;
            }
        }
        if all {
            match store.dkim_promote_next(domain) {
                Ok(n) => {
                    tracing::info!(%domain, keys = n, "DKIM rotation done: the new keys are in DNS and sign from now on; the old ones are retired")
                }
                Err(e) => tracing::error!(%domain, error = %e, "cannot complete the DKIM rotation"),
            }
        }
    }
}
