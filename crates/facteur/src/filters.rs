//! The filters of the SMTP roles from `[checks]`, `[greylist]`, `[spam]`, `[antivirus]` and
//! `[milter]`, and the Junk training of the IMAP role.

use anyhow::Context as _;
use facteur_config::{CheckRule, Config, RuleWord};
use facteur_model::{AccountId, MailboxId, Uid};
use facteur_protect::checks::{CheckOptions, ListZone, Rule};
use facteur_protect::filter::{
    AntivirusOptions, Filter, FilterOptions, GreylistOptions, OnError, SpamEngine, SpamOptions,
};
use facteur_store::{GreylistTimes, Store};
use std::sync::Arc;
use std::time::Duration;

fn rule(r: CheckRule) -> Rule {
    match r {
        CheckRule::Score(s) => Rule::Score(s),
        CheckRule::Word(RuleWord::Reject) => Rule::Reject,
        CheckRule::Word(RuleWord::Off) => Rule::Off,
    }
}

fn zones(list: &[facteur_config::ListZone]) -> Vec<ListZone> {
    list.iter()
        .map(|z| ListZone {
            codes: z.codes.iter().filter_map(|c| c.parse().ok()).collect(),
            ..ListZone::new(&z.zone, rule(z.rule))
        })
        .collect()
}

/// The filters the configuration asks for; every check of `[checks]` needs `resolver`.
pub fn build(
    config: &Config,
    store: &Store,
    resolver: facteur_dns::Resolver,
) -> anyhow::Result<Arc<Filter>> {
    let c = &config.checks;
    let checks = CheckOptions {
        helo_invalid: rule(c.helo_invalid),
        helo_non_fqdn: rule(c.helo_non_fqdn),
        sender_non_fqdn: rule(c.sender_non_fqdn),
        recipient_non_fqdn: rule(c.recipient_non_fqdn),
        sender_unknown_domain: rule(c.sender_unknown_domain),
        reverse_dns_missing: rule(c.reverse_dns_missing),
        dnsbl: zones(&c.dnsbl),
        dnswl: zones(&c.dnswl),
    };
    let g = &config.greylist;
    let greylist = g.enabled.then(|| GreylistOptions {
        times: GreylistTimes {
            delay: g.delay_secs as i64,
            window: (g.retry_window_hours * 3600) as i64,
            allow: (g.allow_days * 86_400) as i64,
        },
        skip_authenticated: g.skip_authenticated,
        known_domains: g
            .known_domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
    });
    let s = &config.spam;
    let timeout = Duration::from_secs(s.timeout_secs.max(1));
    let spam = if s.enabled {
        let engine = match s.engine.as_str() {
            "rspamd" => SpamEngine::Rspamd(
                facteur_scan::Rspamd::parse(&s.rspamd_url, timeout)
                    .map_err(|e| anyhow::anyhow!("key `spam.rspamd_url`: {e}"))?,
            ),
            "spamd" => SpamEngine::Spamd(
                facteur_scan::Spamd::parse(&s.spamd_address, timeout)
                    .map_err(|e| anyhow::anyhow!("key `spam.spamd_address`: {e}"))?,
            ),
            _ => SpamEngine::Builtin,
        };
        Some(SpamOptions {
            engine,
            junk_score: s.junk_score,
            reject_score: s.reject_score,
            bayes: s.bayes,
            bayes_min_learned: s.bayes_min_learned,
            on_error: OnError::parse(&s.on_error),
        })
    } else {
        None
    };
    let a = &config.antivirus;
    let antivirus = if a.clamd.is_empty() {
        None
    } else {
        Some(AntivirusOptions {
            clamd: facteur_scan::Clamd::parse(&a.clamd, Duration::from_secs(a.timeout_secs.max(1)))
                .map_err(|e| anyhow::anyhow!("key `antivirus.clamd`: {e}"))?,
            on_error: OnError::parse(&a.on_error),
            submission: a.submission,
        })
    };
    let m = &config.milter;
    let milter = |list: &[String], key: &str| -> anyhow::Result<Vec<facteur_milter::Milter>> {
        list.iter()
            .map(|address| {
                facteur_milter::Milter::parse(
                    address,
                    Duration::from_secs(m.connect_timeout_secs.max(1)),
                    Duration::from_secs(m.command_timeout_secs.max(1)),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("key `milter.{key}`: `{address}`"))
            })
            .collect()
    };
    let options = FilterOptions {
        checks,
        pregreet: rule(c.pregreet),
        pregreet_wait: Duration::from_millis(c.pregreet_wait_ms),
        greylist,
        spam,
        antivirus,
        milters_mx: milter(&m.mx, "mx")?,
        milters_submission: milter(&m.submission, "submission")?,
        milter_on_error: OnError::parse(&m.on_error),
    };
    Ok(Arc::new(Filter::new(
        options,
        store.clone(),
        Some(resolver),
    )))
}

/// What the IMAP role calls when a user files messages into Junk or takes them out: each
/// message is learnt by the account's Bayesian classifier, off the session's task, in the
/// order the user moved them (into Junk then out again ends as ham).
pub fn junk_training(filter: Arc<Filter>, store: Store) -> facteur_imap_server::JunkTraining {
    type Job = (AccountId, MailboxId, Vec<Uid>, bool);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(1024);
    std::thread::Builder::new()
        .name("junk-training".into())
        .spawn(move || {
            for (account, mailbox, uids, spam) in rx {
                for uid in uids {
                    // Moved on since: the later move is learnt in its turn.
                    let key = match store.message_key(mailbox, uid) {
                        Ok(Some(k)) => k,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a message to learn it");
                            continue;
                        }
                    };
                    match store.message_content(mailbox, uid) {
                        Ok(content) => filter.learn(account, &key, &content, spam),
                        Err(e) => tracing::warn!(error = %e, "cannot read a message to learn it"),
                    }
                }
            }
        })
        .expect("start the junk training thread");
    Arc::new(move |account, mailbox, uids, spam| {
        if tx.try_send((account, mailbox, uids, spam)).is_err() {
            tracing::warn!(
                account = account.0,
                "too many messages waiting to be learnt; these are not"
            );
        }
    })
}
