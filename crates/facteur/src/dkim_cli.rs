//! `facteur dkim ...`: DKIM keys for local domains (RFC 6376), in the spirit of
//! `opendkim-genkey`, with the DNS records to publish and a rotation that waits for DNS.
//!
//! Keys live in the store (`dkim_keys`): `active` keys sign, `next` keys (from `rotate`) wait
//! until their records are visible in DNS (the server checks every `dkim.check_minutes`, or
//! `rotate --now`), `retired` keys no longer sign and their records may go once
//! `dkim.retire_days` have passed.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use facteur_config::Config;
use facteur_store::{DkimKey, Store};
use facteur_trust::dkim::{self, Algorithm};
use std::process::ExitCode;

/// A line on standard output; a reader that went away (`| head`) is no error.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Make signing keys for DOMAIN (RSA-2048 and Ed25519 unless --algorithm) and print the
    /// DNS TXT records to publish. Mail from DOMAIN is signed with them from now on.
    Generate {
        domain: String,
        /// The selector (default: `rsa-YYYYMMDD` / `ed-YYYYMMDD`).
        #[arg(long)]
        selector: Option<String>,
        /// `rsa` or `ed25519` (default: both).
        #[arg(long)]
        algorithm: Option<Algorithm>,
    },
    /// What should be in DNS for every key (or DOMAIN's), and whether it is there.
    Show { domain: Option<String> },
    /// New keys for DOMAIN under new selectors. Signing switches to them once their records
    /// are visible in DNS (or at once with --now); the old keys are retired.
    Rotate {
        domain: String,
        /// Switch now, without waiting for DNS.
        #[arg(long)]
        now: bool,
    },
    /// Forget a retired key (after its DNS record was removed).
    Remove { domain: String, selector: String },
}

pub fn dkim(config: &Config, cmd: DkimCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = crate::admin::open(config)?;
    let store = dir.store().clone();
    match cmd {
        DkimCommand::Generate {
            domain,
            selector,
            algorithm,
        } => {
            let domain = local_domain(&store, &domain)?;
            let algorithms =
                algorithm.map_or(vec![Algorithm::Rsa, Algorithm::Ed25519], |a| vec![a]);
            if selector.is_some() && algorithms.len() > 1 {
                bail!("--selector names one key: give --algorithm too (rsa or ed25519)");
            }
            let keys = store.dkim_keys(Some(&domain))?;
            for a in &algorithms {
                if keys
                    .iter()
                    .any(|k| k.state == "active" && k.algorithm == a.to_string())
                {
                    bail!(
                        "{domain} has an active {a} key already: `facteur dkim rotate {domain}` \
                         replaces keys without breaking signatures in flight"
                    );
                }
            }
            let made = make_keys(&store, &domain, &algorithms, selector, "active")?;
            out!(
                "Mail from {domain} is signed with these keys from now on (the server picks them up within a minute)."
            );
            out!("Publish in the DNS zone of {domain}:");
            out!("");
            for key in &made {
                out!("{}", zone_line(key)?);
            }
            out!("");
            out!(
                "Until the records are published, receivers find no key: the signatures fail (as if unsigned)."
            );
            out!("`facteur dkim show {domain}` checks what DNS answers.");
        }
        DkimCommand::Show { domain } => {
            let domain = domain.map(|d| d.to_ascii_lowercase());
            let keys = store.dkim_keys(domain.as_deref())?;
            if keys.is_empty() {
                out!(
                    "No DKIM key{}. `facteur dkim generate DOMAIN` makes them.",
                    domain.map(|d| format!(" for {d}")).unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let resolver = crate::admin::resolver(config);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut missing = 0;
            for key in &keys {
                let public = dkim::public_key_b64(algorithm(key)?, &key.private_key)
                    .with_context(|| format!("key {} of {}", key.selector, key.domain))?;
                let name = format!("{}._domainkey.{}", key.selector, key.domain);
                let dns = match &resolver {
                    Some(r) => match runtime.block_on(r.txt(&name)) {
                        Ok(records) if records.iter().any(|t| publishes(t, &public)) => {
                            "published".to_string()
                        }
                        Ok(records) if records.is_empty() => {
                            missing += usize::from(key.state != "retired");
                            "MISSING: no TXT record".to_string()
                        }
                        Ok(_) => {
                            missing += usize::from(key.state != "retired");
                            "DIFFERENT: the TXT record there is for another key".to_string()
                        }
                        Err(e) if e.is_permanent() => {
                            missing += usize::from(key.state != "retired");
                            "MISSING: the name does not exist".to_string()
                        }
                        Err(e) => format!("unknown ({e})"),
                    },
                    None => "not checked (no resolver)".to_string(),
                };
                out!(
                    "{} selector {} ({}): {}, since {}",
                    key.domain,
                    key.selector,
                    key.algorithm,
                    state_text(key, config.dkim.retire_days),
                    date(key.changed)
                );
                out!("  DNS: {dns}");
                if key.state != "retired" || dns == "published" {
                    out!("  {}", zone_line(key)?);
                }
            }
            if missing > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        DkimCommand::Rotate { domain, now } => {
            let domain = local_domain(&store, &domain)?;
            let keys = store.dkim_keys(Some(&domain))?;
            if keys.iter().any(|k| k.state == "next") && !now {
                bail!(
                    "{domain} has keys waiting for DNS already (`facteur dkim show {domain}`); \
                     publish them, or `facteur dkim rotate {domain} --now` to switch anyway"
                );
            }
            let mut algorithms: Vec<Algorithm> = keys
                .iter()
                .filter(|k| k.state == "active")
                .filter_map(|k| k.algorithm.parse().ok())
                .collect();
            algorithms.dedup();
            if algorithms.is_empty() {
                algorithms = vec![Algorithm::Rsa, Algorithm::Ed25519];
            }
            let waiting: Vec<DkimKey> = keys.into_iter().filter(|k| k.state == "next").collect();
            let made = if waiting.is_empty() {
                make_keys(&store, &domain, &algorithms, None, "next")?
            } else {
                waiting
            };
            if now {
                let signing = store.dkim_promote_next(&domain)?;
                out!("{domain} now signs with {signing} new key(s); the old ones are retired.");
                out!(
                    "Keep the old records in DNS for {} days, so mail in flight still verifies.",
                    config.dkim.retire_days
                );
                out!("Make sure these are published:");
            } else {
                out!("New keys for {domain}. Publish in its DNS zone:");
            }
            out!("");
            for key in &made {
                out!("{}", zone_line(key)?);
            }
            out!("");
            if !now {
                out!(
                    "The server switches to them once DNS shows them (it looks every {} minutes); \
                     the current keys keep signing until then and are retired after.",
                    config.dkim.check_minutes
                );
            }
        }
        DkimCommand::Remove { domain, selector } => {
            let keys = store.dkim_keys(Some(&domain))?;
            match keys.iter().find(|k| k.selector == selector) {
                None => bail!("{domain} has no key with selector {selector}"),
                Some(k) if k.state != "retired" => bail!(
                    "the key {selector} of {domain} is {}: only retired keys are removed \
                     (`facteur dkim rotate {domain}` retires the active ones)",
                    k.state
                ),
                Some(_) => {
                    store.dkim_remove_key(&domain, &selector)?;
                    out!("Removed the key {selector} of {domain}; its DNS record can go too.");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The domain, lowercase, if it is one of ours.
fn local_domain(store: &Store, domain: &str) -> anyhow::Result<String> {
    let Some(parsed) = facteur_model::Domain::parse(domain) else {
        bail!("`{domain}` is not a domain name");
    };
    if !store.domain_exists(&parsed)? {
        bail!("{domain} is not a local domain (`facteur domain add {domain}` first)");
    }
    Ok(parsed.to_string())
}

/// Makes and stores one key per algorithm, under `selector` or a dated one.
fn make_keys(
    store: &Store,
    domain: &str,
    algorithms: &[Algorithm],
    selector: Option<String>,
    state: &str,
) -> anyhow::Result<Vec<DkimKey>> {
    let existing: Vec<String> = store
        .dkim_keys(Some(domain))?
        .into_iter()
        .map(|k| k.selector)
        .collect();
    let today = facteur_model::calendar::ymd(std::time::SystemTime::now());
    let mut made = Vec::new();
    for a in algorithms {
        let selector = match &selector {
            Some(s) => {
                if s.is_empty() || !s.split('.').all(is_label) {
                    bail!(
                        "`{s}` is not a valid selector (letters, digits, hyphens; dots between labels)"
                    );
                }
                s.clone()
            }
            None => {
                let base = format!(
                    "{}-{today}",
                    match a {
                        Algorithm::Rsa => "rsa",
                        Algorithm::Ed25519 => "ed",
                    }
                );
                // A second rotation the same day: rsa-20261123b, ...
                let mut candidate = base.clone();
                for suffix in b'b'..=b'z' {
                    if !existing.contains(&candidate) {
                        break;
                    }
                    candidate = format!("{base}{}", suffix as char);
                }
                candidate
            }
        };
        let generated = dkim::generate(*a).with_context(|| format!("making a {a} key"))?;
        let key = DkimKey {
            domain: domain.to_string(),
            selector,
            algorithm: a.to_string(),
            private_key: generated.private_pem,
            state: state.to_string(),
            created: 0,
            changed: 0,
        };
        store.dkim_add_key(&key)?;
        made.push(key);
    }
    Ok(made)
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn algorithm(key: &DkimKey) -> anyhow::Result<Algorithm> {
    key.algorithm.parse().map_err(|_| {
        anyhow::anyhow!(
            "key {} of {}: unknown algorithm {}",
            key.selector,
            key.domain,
            key.algorithm
        )
    })
}

fn zone_line(key: &DkimKey) -> anyhow::Result<String> {
    let a = algorithm(key)?;
    let public = dkim::public_key_b64(a, &key.private_key)
        .with_context(|| format!("key {} of {}", key.selector, key.domain))?;
    Ok(dkim::zone_line(
        &key.selector,
        &key.domain,
        &dkim::txt_record(a, &public),
    ))
}

fn state_text(key: &DkimKey, retire_days: u32) -> String {
    match key.state.as_str() {
        "active" => "signing".into(),
        "next" => "waiting for its DNS record (from a rotation)".into(),
        "retired" => {
            let until = key.changed + i64::from(retire_days) * 86_400;
            if facteur_model::calendar::unix_now() >= until {
                format!(
                    "retired; its DNS record can be removed, then `facteur dkim remove {} {}`",
                    key.domain, key.selector
                )
            } else {
                format!("retired; keep its DNS record until {}", date(until))
            }
        }
        other => other.to_string(),
    }
}

fn date(secs: i64) -> String {
    facteur_model::calendar::rfc5322_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64),
    )
}

/// Does this TXT record publish `public` (its p= tag, whitespace ignored, RFC 6376 §3.6.1)?
pub fn publishes(txt: &str, public: &str) -> bool {
    txt.split(';').any(|tag| {
        let tag: String = tag.chars().filter(|c| !c.is_whitespace()).collect();
        tag.strip_prefix("p=") == Some(public)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_key_is_recognised() {
        assert!(publishes("v=DKIM1; k=rsa; p=ABC", "ABC"));
        assert!(publishes("v=DKIM1;k=ed25519;p=A B C", "ABC"));
        assert!(!publishes("v=DKIM1; k=rsa; p=ABD", "ABC"));
        assert!(!publishes("v=DKIM1; k=rsa; p=", "ABC"));
    }

    #[test]
    fn selectors_are_dns_labels() {
        assert!(is_label("rsa-20261123"));
        assert!(!is_label("-x") && !is_label("a_b") && !is_label(""));
    }
}
