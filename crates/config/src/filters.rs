//! The sections of the MX's filters: `[checks]`, `[greylist]`, `[spam]`, `[antivirus]`,
//! `[milter]` (docs/config.md), and their validation.

use crate::Config;
use serde::{Deserialize, Serialize};

/// A connection check's effect: refuse (a hard rule), add to the message's spam score, or
/// nothing. Written `"reject"`, `"off"` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum CheckRule {
    Score(f64),
    Word(RuleWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleWord {
    Reject,
    Off,
}

impl CheckRule {
    pub const REJECT: CheckRule = CheckRule::Word(RuleWord::Reject);
    pub const OFF: CheckRule = CheckRule::Word(RuleWord::Off);
}

/// One DNS list zone (`[[checks.dnsbl]]`, `[[checks.dnswl]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListZone {
    /// The zone queried (`zen.spamhaus.org`).
    pub zone: String,
    /// What a listing does: `"reject"`, a score (negative for allow lists), `"off"`.
    pub rule: CheckRule,
    /// Only these answers count (`["127.0.0.2", "127.0.0.3"]`); empty: any 127.0.0.0/8 answer.
    #[serde(default)]
    pub codes: Vec<String>,
}

/// `[checks]`: checks of the client, its HELO and the envelope on the MX (Postfix's smtpd
/// restrictions and postscreen), applied at RCPT; clients of `protect.allow` skip them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Checks {
    pub helo_invalid: CheckRule,
    pub helo_non_fqdn: CheckRule,
    pub sender_non_fqdn: CheckRule,
    pub recipient_non_fqdn: CheckRule,
    pub sender_unknown_domain: CheckRule,
    pub reverse_dns_missing: CheckRule,
    /// A client that talks before the greeting (postscreen's pregreet test).
    pub pregreet: CheckRule,
    /// How long the MX waits before its greeting, watching for early talkers; 0: no wait.
    pub pregreet_wait_ms: u64,
    pub dnsbl: Vec<ListZone>,
    pub dnswl: Vec<ListZone>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            helo_invalid: CheckRule::REJECT,
            helo_non_fqdn: CheckRule::Score(1.0),
            sender_non_fqdn: CheckRule::REJECT,
            recipient_non_fqdn: CheckRule::REJECT,
            sender_unknown_domain: CheckRule::REJECT,
            reverse_dns_missing: CheckRule::Score(1.0),
            pregreet: CheckRule::REJECT,
            pregreet_wait_ms: 0,
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
        }
    }
}

/// `[greylist]`: greylisting on the MX (RFC 6647).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Greylist {
    pub enabled: bool,
    /// A retry sooner than this after the first attempt is deferred again.
    pub delay_secs: u64,
    /// A retry later than this counts as a new first attempt.
    pub retry_window_hours: u64,
    /// How long a client network and sender domain that retried are let through at once.
    pub allow_days: u64,
    /// Mail whose sender domain is authenticated (DMARC pass, or SPF/DKIM pass for it) skips
    /// greylisting when the domain is known good: listed in `known_domains`, or it passed
    /// greylisting before.
    pub skip_authenticated: bool,
    pub known_domains: Vec<String>,
}

impl Default for Greylist {
    fn default() -> Self {
        Greylist {
            enabled: false,
            delay_secs: 300,
            retry_window_hours: 48,
            allow_days: 35,
            skip_authenticated: true,
            known_domains: Vec::new(),
        }
    }
}

/// `[spam]`: spam scoring of mail received on the MX.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spam {
    pub enabled: bool,
    /// `builtin` (rules and each account's Bayes), `rspamd` or `spamd` (SpamAssassin).
    pub engine: String,
    /// rspamd's normal worker (`http://127.0.0.1:11333`).
    pub rspamd_url: String,
    /// spamd's address (`127.0.0.1:783` or `unix:/run/spamd.sock`).
    pub spamd_address: String,
    pub timeout_secs: u64,
    /// From this score: `X-Spam-Flag: YES` and filed into Junk.
    pub junk_score: f64,
    /// From this score: refused at SMTP time with `550 5.7.1`; 0: never.
    pub reject_score: f64,
    /// Each account's Bayesian classifier, trained by moving mail into and out of Junk.
    pub bayes: bool,
    /// Messages of each kind an account must have taught before its classifier counts.
    pub bayes_min_learned: u32,
    /// An outside engine that fails: `accept` (unscored) or `tempfail` (451).
    pub on_error: String,
}

impl Default for Spam {
    fn default() -> Self {
        Spam {
            enabled: true,
            engine: "builtin".into(),
            rspamd_url: "http://127.0.0.1:11333".into(),
            spamd_address: "127.0.0.1:783".into(),
            timeout_secs: 30,
            junk_score: 5.0,
            reject_score: 15.0,
            bayes: true,
            bayes_min_learned: 20,
            on_error: "accept".into(),
        }
    }
}

/// `[antivirus]`: scanning by ClamAV's clamd.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Antivirus {
    /// clamd's socket (`unix:/run/clamav/clamd.ctl` or `127.0.0.1:3310`); empty: no scanning.
    pub clamd: String,
    /// clamd unreachable or failing: `tempfail` (451, the client retries) or `accept`.
    pub on_error: String,
    pub timeout_secs: u64,
    /// Scan submitted mail too.
    pub submission: bool,
}

impl Default for Antivirus {
    fn default() -> Self {
        Antivirus {
            clamd: String::new(),
            on_error: "tempfail".into(),
            timeout_secs: 60,
            submission: true,
        }
    }
}

/// `[milter]`: filters speaking the Sendmail/Postfix milter protocol.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Milter {
    /// Milters for mail received on the MX, in order (`inet:127.0.0.1:8891`, `unix:/path`).
    pub mx: Vec<String>,
    /// Milters for submitted mail (an OpenDKIM signer).
    pub submission: Vec<String>,
    /// A milter that cannot be reached or fails: `tempfail` (451), `accept` (skip it) or
    /// `reject` (550), as Postfix's `milter_default_action`.
    pub on_error: String,
    pub connect_timeout_secs: u64,
    pub command_timeout_secs: u64,
}

impl Default for Milter {
    fn default() -> Self {
        Milter {
            mx: Vec::new(),
            submission: Vec::new(),
            on_error: "tempfail".into(),
            connect_timeout_secs: 10,
            command_timeout_secs: 30,
        }
    }
}

impl Config {
    pub(crate) fn validate_filters(&self) -> Result<(), String> {
        let one_of = |key: &str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "key `{key}`: `{value}` is not one of {}",
                    allowed.join(", ")
                ))
            }
        };
        one_of(
            "spam.engine",
            &self.spam.engine,
            &["builtin", "rspamd", "spamd"],
        )?;
        one_of(
            "spam.on_error",
            &self.spam.on_error,
            &["accept", "tempfail"],
        )?;
        one_of(
            "antivirus.on_error",
            &self.antivirus.on_error,
            &["accept", "tempfail"],
        )?;
        one_of(
            "milter.on_error",
            &self.milter.on_error,
            &["accept", "tempfail", "reject"],
        )?;
        if self.spam.reject_score != 0.0 && self.spam.reject_score < self.spam.junk_score {
            return Err("key `spam.reject_score`: below `spam.junk_score` (0 turns it off)".into());
        }
        for (list, zones) in [("dnsbl", &self.checks.dnsbl), ("dnswl", &self.checks.dnswl)] {
            for (i, z) in zones.iter().enumerate() {
                if facteur_model::Domain::parse(&z.zone).is_none() {
                    return Err(format!(
                        "key `checks.{list}[{i}].zone`: `{}` is not a domain",
                        z.zone
                    ));
                }
                if let Some(bad) = z
                    .codes
                    .iter()
                    .find(|c| c.parse::<std::net::Ipv4Addr>().is_err())
                {
                    return Err(format!(
                        "key `checks.{list}[{i}].codes`: `{bad}` is not an IPv4 address"
                    ));
                }
            }
        }
        if self.greylist.delay_secs >= self.greylist.retry_window_hours * 3600 {
            return Err(
                "key `greylist.delay_secs`: must be shorter than `greylist.retry_window_hours`"
                    .into(),
            );
        }
        Ok(())
    }
}
