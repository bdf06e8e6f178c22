//! The MX's and submission's filters, in the order a message meets them: the connection
//! checks at RCPT ([`crate::checks`]), then at the end of DATA greylisting (RFC 6647),
//! the virus scan (clamd), the milters, and spam scoring (the built-in rules with each
//! account's Bayesian classifier, or rspamd, or spamd). Each says what becomes of the message:
//! a refusal with its SMTP reply, header fields to add, a copy filed into Junk.

use crate::checks::{self, CheckOptions, ClientChecks, Finding, Refusal, Rule};
use facteur_dns::Resolver;
use facteur_milter::{Milter, Modification, Transaction, Verdict as MilterVerdict};
use facteur_model::AccountId;
use facteur_scan::{ClamVerdict, Clamd, Rspamd, RspamdAction, RspamdMeta, Spamd};
use facteur_spam::Hit;
use facteur_store::{GreylistTimes, Greylisted, Store};
use std::net::IpAddr;
use std::time::Duration;

/// What to do when an outside filter (clamd, a milter, rspamd, spamd) cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// `451 4.7.1`: the client retries; nothing unfiltered gets in.
    Tempfail,
    /// Go on without it (logged).
    Accept,
    /// `550 5.7.1` (milters only, Postfix's `milter_default_action = reject`).
    Reject,
}

impl OnError {
    pub fn parse(text: &str) -> OnError {
        match text {
            "accept" => OnError::Accept,
            "reject" => OnError::Reject,
            _ => OnError::Tempfail,
        }
    }

    /// The refusal for a filter that failed; None to go on.
    fn refusal(self, what: &str) -> Option<Refusal> {
        match self {
            OnError::Accept => None,
            OnError::Tempfail => Some(Refusal {
                code: 451,
                status: (4, 7, 1),
                text: format!("{what} is unavailable; try again later"),
            }),
            OnError::Reject => Some(Refusal {
                code: 550,
                status: (5, 7, 1),
                text: format!("{what} is unavailable; message refused"),
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GreylistOptions {
    pub times: GreylistTimes,
    pub skip_authenticated: bool,
    /// Lower case.
    pub known_domains: Vec<String>,
}

pub enum SpamEngine {
    Builtin,
    Rspamd(Rspamd),
    Spamd(Spamd),
}

pub struct SpamOptions {
    pub engine: SpamEngine,
    pub junk_score: f64,
    /// 0: never refused.
    pub reject_score: f64,
    pub bayes: bool,
    pub bayes_min_learned: u32,
    pub on_error: OnError,
}

pub struct AntivirusOptions {
    pub clamd: Clamd,
    pub on_error: OnError,
    pub submission: bool,
}

/// Everything configured; see docs/config.md `[checks]`, `[greylist]`, `[spam]`,
/// `[antivirus]`, `[milter]`.
pub struct FilterOptions {
    pub checks: CheckOptions,
    pub pregreet: Rule,
    pub pregreet_wait: Duration,
    pub greylist: Option<GreylistOptions>,
    pub spam: Option<SpamOptions>,
    pub antivirus: Option<AntivirusOptions>,
    pub milters_mx: Vec<Milter>,
    pub milters_submission: Vec<Milter>,
    pub milter_on_error: OnError,
}

impl Default for FilterOptions {
    /// Nothing checked, nothing scanned.
    fn default() -> Self {
        FilterOptions {
            checks: CheckOptions::default(),
            pregreet: Rule::Off,
            pregreet_wait: Duration::ZERO,
            greylist: None,
            spam: None,
            antivirus: None,
            milters_mx: Vec::new(),
            milters_submission: Vec::new(),
            milter_on_error: OnError::Tempfail,
        }
    }
}

/// The filters of a server; shared by its connections.
pub struct Filter {
    options: FilterOptions,
    store: Store,
    resolver: Option<Resolver>,
}

/// What the checks found during one connection, kept by the SMTP session.
#[derive(Debug, Default)]
pub struct Session {
    /// The client's checks, made at the first RCPT.
    client: Option<ClientChecks>,
    /// HELO findings for this name.
    helo: Option<(String, Vec<Finding>)>,
    /// Sender findings for this address.
    sender: Option<(String, Vec<Finding>)>,
    /// Recipient findings of the current transaction.
    recipients: Vec<Finding>,
    /// Talked before the greeting (scored, when the rule is a score).
    pub pregreet: Option<Finding>,
}

impl Session {
    /// A new transaction (MAIL FROM): the recipients' findings are forgotten.
    pub fn new_transaction(&mut self) {
        self.recipients.clear();
    }

    /// The findings that count for the current message.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.client
            .iter()
            .flat_map(|c| c.findings.iter())
            .chain(self.helo.iter().flat_map(|(_, f)| f.iter()))
            .chain(self.sender.iter().flat_map(|(_, f)| f.iter()))
            .chain(self.recipients.iter())
            .chain(self.pregreet.iter())
    }

    /// The client is on a DNS allow list.
    pub fn whitelisted(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.whitelisted)
    }

    /// The client's name from reverse DNS, when the checks looked it up.
    pub fn reverse_name(&self) -> Option<&str> {
        self.client.as_ref().and_then(|c| c.reverse_name.as_deref())
    }
}

/// A message at the end of DATA.
pub struct Message<'a> {
    /// Received on the MX (else submitted).
    pub mx: bool,
    pub ip: IpAddr,
    pub port: u16,
    pub helo: &'a str,
    /// The envelope sender, empty for the null sender.
    pub mail_from: &'a str,
    pub recipients: &'a [String],
    /// The accounts that get a local copy (for their Bayes statistics and Junk).
    pub accounts: &'a [AccountId],
    /// The message as received (header and body, CRLF), without our Received field.
    pub content: &'a [u8],
    pub queue_id: &'a str,
    pub hostname: &'a str,
    pub auth_user: Option<&'a str>,
    pub tls: Option<(&'a str, &'a str)>,
    /// The email authentication results (MX).
    pub auth: Option<&'a facteur_model::authresults::AuthResults>,
    /// The connection's checks.
    pub session: &'a Session,
    /// The client is on `protect.allow`.
    pub exempt: bool,
}

/// What the filters decided.
#[derive(Debug, Default)]
pub struct Filtered {
    /// Refuse the message with this reply.
    pub refusal: Option<Refusal>,
    /// Accept it and drop it (a milter's DISCARD).
    pub discard: bool,
    /// The message as the milters changed it (the part after our Received field).
    pub content: Option<Vec<u8>>,
    /// Header fields for every local copy (an outside engine's X-Spam fields).
    pub fields: String,
    /// Every local copy into Junk.
    pub junk: bool,
    /// Per account: its own X-Spam fields, and whether its copy goes into Junk.
    pub accounts: Vec<(AccountId, String, bool)>,
    /// One line for the log: `greylist=passed virus=clean spam=2.1/5.0`.
    pub summary: Vec<String>,
}

impl Filter {
    pub fn new(options: FilterOptions, store: Store, resolver: Option<Resolver>) -> Filter {
        Filter {
            options,
            store,
            resolver,
        }
    }

    /// How long to wait for an early talker before the greeting, and what it costs; None
    /// when the check is off.
    pub fn pregreet(&self) -> Option<(Duration, Rule)> {
        (self.options.pregreet != Rule::Off && !self.options.pregreet_wait.is_zero())
            .then_some((self.options.pregreet_wait, self.options.pregreet))
    }

    /// The MX's checks at RCPT (Postfix checks at RCPT too, `smtpd_delay_reject`): the
    /// client's (once per connection), the HELO name's and the sender's (once each), the
    /// recipient's. The first hard rule that matches refuses the recipient; scores wait for
    /// the end of DATA.
    pub async fn recipient(
        &self,
        session: &mut Session,
        ip: IpAddr,
        helo: &str,
        sender: &str,
        recipient: &str,
    ) -> Result<(), Refusal> {
        let options = &self.options.checks;
        if let Some(resolver) = &self.resolver {
            if session.client.is_none() {
                session.client = Some(checks::client(resolver, ip, options).await);
            }
            let known = session.sender.as_ref().is_some_and(|(s, _)| s == sender);
            if !known {
                let found = checks::sender(resolver, sender, options).await;
                session.sender = Some((sender.to_string(), found));
            }
        }
        if session.helo.as_ref().is_none_or(|(h, _)| h != helo) {
            session.helo = Some((helo.to_string(), checks::helo(helo, options)));
        }
        let found = checks::recipient(recipient, options);
        let whitelisted = session.whitelisted();
        let refusal = session
            .client
            .iter()
            .flat_map(|c| c.findings.iter())
            // Any DNS allow list listing lets the client pass its block-list and reverse-DNS
            // refusals (`checks` waives them itself for a hard-rule allow list; a scored one
            // waives them here).
            .filter(|_| !whitelisted)
            .chain(session.helo.iter().flat_map(|(_, f)| f.iter()))
            .chain(session.sender.iter().flat_map(|(_, f)| f.iter()))
            .chain(found.iter())
            .find_map(|f| f.reply.clone());
        if let Some(r) = refusal {
            return Err(r);
        }
        session.recipients.extend(found);
        Ok(())
    }

    /// The end-of-DATA filters, in order; the first refusal ends them.
    pub async fn message(&self, m: &Message<'_>) -> Filtered {
        let mut out = Filtered::default();
        if let Some(r) = self.greylist(m, &mut out).await {
            out.refusal = Some(r);
            return out;
        }
        if let Some(r) = self.antivirus(m, &mut out).await {
            out.refusal = Some(r);
            return out;
        }
        if let Some(r) = self.milters(m, &mut out).await {
            out.refusal = Some(r);
            return out;
        }
        if out.discard {
            return out;
        }
        if m.mx
            && let Some(spam) = &self.options.spam
        {
            let content = out.content.take();
            let scored = self
                .spam(m, spam, content.as_deref().unwrap_or(m.content), &mut out)
                .await;
            out.content = content;
            if let Some(r) = scored {
                out.refusal = Some(r);
            }
        }
        out
    }

    /// RFC 6647: an unknown (network, sender, recipient) triplet is deferred; a retry after
    /// the delay passes, and the network and domain are let through afterwards.
    async fn greylist(&self, m: &Message<'_>, out: &mut Filtered) -> Option<Refusal> {
        let g = self.options.greylist.as_ref()?;
        if !m.mx || m.exempt || m.session.whitelisted() {
            return None;
        }
        let sender = m.mail_from.to_ascii_lowercase();
        // The null sender (bounces): its HELO name stands for the domain (RFC 7208 §2.3).
        let sender_domain = match sender.rsplit_once('@') {
            Some((_, d)) => d.to_string(),
            None => m.helo.to_ascii_lowercase(),
        };
        let authenticated: Vec<String> =
            m.auth.map(|r| r.authenticated.clone()).unwrap_or_default();
        let store = self.store.clone();
        if g.skip_authenticated && !authenticated.is_empty() {
            let known = g
                .known_domains
                .iter()
                .find(|d| authenticated.iter().any(|a| a == *d))
                .cloned();
            let known = match known {
                Some(d) => Some(d),
                None => {
                    let store = store.clone();
                    let domains = authenticated.clone();
                    tokio::task::spawn_blocking(move || {
                        domains.into_iter().find(|d| {
                            store
                                .greylist_allowed(&format!("domain {d}"))
                                .unwrap_or(false)
                        })
                    })
                    .await
                    .ok()
                    .flatten()
                }
            };
            if let Some(domain) = known {
                out.summary
                    .push(format!("greylist=skipped (authenticated {domain})"));
                return None;
            }
        }
        let network = network_of(m.ip);
        let triplets: Vec<String> = m
            .recipients
            .iter()
            .map(|r| format!("{network} {sender} {}", r.to_ascii_lowercase()))
            .collect();
        let allow_key = format!("net {network} {sender_domain}");
        let domain_keys: Vec<String> = authenticated
            .iter()
            .map(|d| format!("domain {d}"))
            .collect();
        let times = g.times;
        let decided = tokio::task::spawn_blocking(move || {
            store.greylist(&triplets, &allow_key, &domain_keys, times)
        })
        .await;
        match decided {
            Ok(Ok(Greylisted::Allowed)) => {
                out.summary.push("greylist=allowed".into());
                None
            }
            Ok(Ok(Greylisted::Passed)) => {
                out.summary.push("greylist=passed".into());
                None
            }
            Ok(Ok(Greylisted::Defer(secs))) => {
                out.summary.push(format!("greylist=deferred ({secs} s)"));
                // RFC 6647 §2.1: a temporary failure, which a real MTA retries.
                Some(Refusal {
                    code: 450,
                    status: (4, 7, 0),
                    text: format!(
                        "Greylisted: first message from {network} for this sender and \
                         recipient; try again in {secs} seconds"
                    ),
                })
            }
            Ok(Err(e)) => {
                tracing::error!(queue_id = %m.queue_id, error = %e, "greylisting: cannot read or write the store; message let through");
                None
            }
            Err(e) => {
                tracing::error!(queue_id = %m.queue_id, error = %e, "greylisting failed; message let through");
                None
            }
        }
    }

    async fn antivirus(&self, m: &Message<'_>, out: &mut Filtered) -> Option<Refusal> {
        let av = self.options.antivirus.as_ref()?;
        if !m.mx && !av.submission {
            return None;
        }
        match av.clamd.scan(m.content).await {
            Ok(ClamVerdict::Clean) => {
                out.summary.push("virus=clean".into());
                None
            }
            Ok(ClamVerdict::Infected(name)) => {
                out.summary.push(format!("virus={name}"));
                tracing::warn!(queue_id = %m.queue_id, remote = %m.ip, virus = %name, "virus found; message refused");
                Some(Refusal {
                    code: 554,
                    status: (5, 7, 1),
                    text: format!("Virus found: {}; message refused", printable(&name)),
                })
            }
            Err(e) => {
                tracing::error!(queue_id = %m.queue_id, error = %e, "virus scan failed");
                out.summary.push("virus=unscanned".into());
                av.on_error.refusal("The virus scanner")
            }
        }
    }

    async fn milters(&self, m: &Message<'_>, out: &mut Filtered) -> Option<Refusal> {
        let milters = if m.mx {
            &self.options.milters_mx
        } else {
            &self.options.milters_submission
        };
        let client_name = m
            .session
            .reverse_name()
            .map(String::from)
            .unwrap_or_else(|| format!("[{}]", m.ip));
        for milter in milters {
            let content = out.content.take().unwrap_or_else(|| m.content.to_vec());
            let tx = Transaction {
                client_ip: m.ip,
                client_port: m.port,
                client_name: &client_name,
                helo: m.helo,
                mail_from: m.mail_from,
                mail_args: &[],
                recipients: m.recipients,
                message: &content,
                queue_id: m.queue_id,
                hostname: m.hostname,
                server_addr: None,
                auth: m.auth_user.map(|u| ("PLAIN", u)),
                tls: m.tls,
            };
            let outcome = match milter.check(&tx).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(queue_id = %m.queue_id, milter = %milter.address(), error = %e, "milter failed");
                    out.summary
                        .push(format!("milter {}=failed", milter.address()));
                    out.content = Some(content);
                    match self.options.milter_on_error.refusal("A mail filter") {
                        Some(r) => return Some(r),
                        None => continue,
                    }
                }
            };
            let changes = outcome.modifications.len();
            let body_changes: Vec<Modification> = outcome
                .modifications
                .iter()
                .filter(|c| {
                    !matches!(
                        c,
                        Modification::ChangeFrom(_)
                            | Modification::AddRecipient(_)
                            | Modification::DeleteRecipient(_)
                    )
                })
                .cloned()
                .collect();
            if body_changes.len() < changes {
                tracing::warn!(queue_id = %m.queue_id, milter = %milter.address(),
                    "milter asked to change the envelope (sender or recipients); not applied");
            }
            let content = if body_changes.is_empty() {
                content
            } else {
                facteur_milter::apply(&content, &body_changes)
            };
            out.content = Some(content);
            let verdict = match &outcome.verdict {
                MilterVerdict::Continue | MilterVerdict::Accept => "accept".to_string(),
                MilterVerdict::Discard => "discard".to_string(),
                MilterVerdict::Reject(r) | MilterVerdict::Tempfail(r) => r.code.to_string(),
                MilterVerdict::Quarantine(_) => "quarantine".to_string(),
            };
            out.summary.push(format!(
                "milter {}={verdict}{}",
                milter.address(),
                if body_changes.is_empty() {
                    String::new()
                } else {
                    format!(" ({} changes)", body_changes.len())
                }
            ));
            match outcome.verdict {
                MilterVerdict::Continue => {}
                // ACCEPT ends this milter's part; the next ones still run.
                MilterVerdict::Accept => {}
                MilterVerdict::Discard => {
                    out.discard = true;
                    return None;
                }
                MilterVerdict::Quarantine(reason) => {
                    tracing::info!(queue_id = %m.queue_id, milter = %milter.address(), %reason, "milter quarantine: filed into Junk");
                    out.junk = true;
                }
                MilterVerdict::Reject(r) | MilterVerdict::Tempfail(r) => {
                    let (class, subject, detail) =
                        r.status
                            .unwrap_or(if r.code >= 500 { (5, 7, 1) } else { (4, 7, 1) });
                    return Some(Refusal {
                        code: r.code,
                        status: (class, subject, detail),
                        text: printable(&r.text),
                    });
                }
            }
        }
        None
    }

    /// Scores the message; refuses it above `reject_score`, files copies into Junk above
    /// `junk_score`, and gives every copy its X-Spam fields.
    async fn spam(
        &self,
        m: &Message<'_>,
        spam: &SpamOptions,
        content: &[u8],
        out: &mut Filtered,
    ) -> Option<Refusal> {
        match &spam.engine {
            SpamEngine::Builtin => self.builtin(m, spam, content, out).await,
            SpamEngine::Rspamd(rspamd) => {
                let meta = RspamdMeta {
                    ip: Some(m.ip),
                    helo: Some(m.helo),
                    from: Some(m.mail_from),
                    rcpts: m.recipients,
                    queue_id: Some(m.queue_id),
                    user: m.auth_user,
                    hostname: Some(m.hostname),
                };
                match rspamd.check(content, &meta).await {
                    Ok(v) => {
                        let report = facteur_spam::Report {
                            score: v.score,
                            hits: v
                                .symbols
                                .iter()
                                .map(|(name, score)| facteur_spam::hit(name, *score, ""))
                                .collect(),
                        };
                        out.fields = facteur_spam::headers(&report, v.required_score, m.hostname);
                        out.summary.push(format!(
                            "spam={:.1}/{:.1} (rspamd)",
                            v.score, v.required_score
                        ));
                        let text = v.smtp_message.as_deref().map(printable);
                        match v.action {
                            RspamdAction::Reject => Some(Refusal {
                                code: 550,
                                status: (5, 7, 1),
                                text: text.unwrap_or_else(|| "Message refused as spam".into()),
                            }),
                            RspamdAction::SoftReject | RspamdAction::Greylist => Some(Refusal {
                                code: 451,
                                status: (4, 7, 1),
                                text: text.unwrap_or_else(|| "Try again later".into()),
                            }),
                            RspamdAction::AddHeader | RspamdAction::RewriteSubject => {
                                out.junk = true;
                                None
                            }
                            RspamdAction::NoAction | RspamdAction::Other(_) => None,
                        }
                    }
                    Err(e) => {
                        tracing::error!(queue_id = %m.queue_id, error = %e, "rspamd failed");
                        out.summary.push("spam=unscored".into());
                        spam.on_error.refusal("The spam filter")
                    }
                }
            }
            SpamEngine::Spamd(spamd) => match spamd.check(content, None).await {
                Ok(v) => {
                    let report = facteur_spam::Report {
                        score: v.score,
                        hits: v
                            .symbols
                            .iter()
                            .map(|name| facteur_spam::hit(name, 0.0, ""))
                            .collect(),
                    };
                    out.fields = facteur_spam::headers(&report, v.threshold, m.hostname);
                    out.summary
                        .push(format!("spam={:.1}/{:.1} (spamd)", v.score, v.threshold));
                    if spam.reject_score > 0.0 && v.score >= spam.reject_score {
                        return Some(spam_refusal(v.score, spam.reject_score));
                    }
                    out.junk = v.spam;
                    None
                }
                Err(e) => {
                    tracing::error!(queue_id = %m.queue_id, error = %e, "spamd failed");
                    out.summary.push("spam=unscored".into());
                    spam.on_error.refusal("The spam filter")
                }
            },
        }
    }

    async fn builtin(
        &self,
        m: &Message<'_>,
        spam: &SpamOptions,
        content: &[u8],
        out: &mut Filtered,
    ) -> Option<Refusal> {
        let mut extra: Vec<Hit> = m
            .session
            .findings()
            .filter_map(|f| match f.rule {
                Rule::Score(score) => Some(facteur_spam::hit(&f.name, score, &f.description)),
                _ => None,
            })
            .collect();
        if let Some(auth) = m.auth {
            extra.extend(auth_hits(auth));
        }
        let report = heavy(content.len(), || facteur_spam::check(content, extra));
        let base = report.score;
        if spam.reject_score > 0.0 && base >= spam.reject_score {
            out.summary
                .push(format!("spam={base:.1}/{:.1} refused", spam.reject_score));
            return Some(spam_refusal(base, spam.reject_score));
        }
        let tokens = if spam.bayes && !m.accounts.is_empty() {
            heavy(content.len(), || facteur_spam::bayes::tokens(content))
        } else {
            Vec::new()
        };
        let mut scores = Vec::new();
        for &account in m.accounts {
            let mut report = report.clone();
            if !tokens.is_empty() {
                let store = self.store.clone();
                let asked = tokens.clone();
                let min = spam.bayes_min_learned;
                let bayes =
                    tokio::task::spawn_blocking(move || bayes(&store, account, &asked, min)).await;
                match bayes {
                    Ok(Ok(b)) => {
                        if let Some(hit) = b.probability.and_then(facteur_spam::bayes::bayes_hit) {
                            report.score += hit.score;
                            report.hits.push(hit);
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(queue_id = %m.queue_id, error = %e, "cannot read the Bayes statistics")
                    }
                    Err(_) => {}
                }
            }
            let junk = report.score >= spam.junk_score;
            scores.push(format!("{:.1}", report.score));
            out.accounts.push((
                account,
                facteur_spam::headers(&report, spam.junk_score, m.hostname),
                junk,
            ));
        }
        if m.accounts.is_empty() {
            out.fields = facteur_spam::headers(&report, spam.junk_score, m.hostname);
            scores.push(format!("{base:.1}"));
        }
        let tests: Vec<&str> = report.hits.iter().map(|h| h.name.as_str()).collect();
        out.summary.push(format!(
            "spam={}/{:.1} tests={}",
            scores.join(","),
            spam.junk_score,
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(",")
            }
        ));
        None
    }

    /// Learns `content` (a message of `account`, `key` its blob hash) as spam or ham for the
    /// account's Bayesian classifier: the user moved it into or out of Junk. Nothing when the
    /// built-in classifier is not in use.
    pub fn learn(&self, account: AccountId, key: &str, content: &[u8], spam: bool) {
        let Some(options) = &self.options.spam else {
            return;
        };
        if !options.bayes || !matches!(options.engine, SpamEngine::Builtin) {
            return;
        }
        if let Err(e) = learn(&self.store, account, key, content, spam) {
            tracing::warn!(error = %e, "cannot learn a message");
        }
    }
}

/// What an account's classifier says of a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bayes {
    /// Messages the account taught as spam and as ham.
    pub spam: u32,
    pub ham: u32,
    /// The spam probability; None until `min_learned` of each kind were taught.
    pub probability: Option<f64>,
}

/// `account`'s classifier on a message's `tokens` (`facteur_spam::bayes::tokens`).
pub fn bayes(
    store: &Store,
    account: AccountId,
    tokens: &[u64],
    min_learned: u32,
) -> Result<Bayes, facteur_store::StoreError> {
    let c = store.bayes_counts(account, tokens)?;
    let learned = facteur_spam::bayes::Learned {
        spam: c.spam,
        ham: c.ham,
    };
    let counts: Vec<facteur_spam::bayes::TokenCounts> = c
        .tokens
        .iter()
        .map(|&(spam, ham)| facteur_spam::bayes::TokenCounts { spam, ham })
        .collect();
    Ok(Bayes {
        spam: c.spam,
        ham: c.ham,
        probability: facteur_spam::bayes::probability_with(learned, &counts, min_learned),
    })
}

/// Learns one message for `account`'s classifier; false when it was learnt so already.
pub fn learn(
    store: &Store,
    account: AccountId,
    key: &str,
    content: &[u8],
    spam: bool,
) -> Result<bool, facteur_store::StoreError> {
    let tokens = facteur_spam::bayes::tokens(content);
    let learnt = store.bayes_learn(account, key, &tokens, spam)?;
    if learnt {
        tracing::info!(account = account.0, message = %key, kind = %if spam { "spam" } else { "ham" }, "learnt");
    }
    Ok(learnt)
}

/// Runs `work` over a message of `size` octets: in place for a small one, and for a large one
/// (scoring a 50 MB message takes a while) telling the runtime this worker is busy, so other
/// sessions move to another thread meanwhile.
fn heavy<T>(size: usize, work: impl FnOnce() -> T) -> T {
    const LARGE: usize = 256 * 1024;
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if size > LARGE && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

fn spam_refusal(score: f64, threshold: f64) -> Refusal {
    Refusal {
        code: 550,
        status: (5, 7, 1),
        text: format!("Message refused as spam (score {score:.1}, limit {threshold:.1})"),
    }
}

/// The authentication results as spam score (SpamAssassin's SPF_FAIL, DKIM_INVALID,
/// DMARC_... rules, with similar weights; `facteur_spam::extra`).
fn auth_hits(auth: &facteur_model::authresults::AuthResults) -> Vec<Hit> {
    use facteur_spam::extra;
    let mut hits = Vec::new();
    match auth.spf {
        "fail" => hits.push(extra::spf_fail()),
        "softfail" => hits.push(extra::spf_softfail()),
        "pass" => hits.push(extra::spf_pass()),
        _ => {}
    }
    if auth.dkim.iter().any(|(_, r)| *r == "fail") {
        hits.push(extra::dkim_invalid());
    }
    if auth.dkim.iter().any(|(_, r)| *r == "pass") {
        hits.push(extra::dkim_valid());
    }
    // A signature of the author's own domain (the From domain DMARC checked).
    let author = |d: &String| auth.dmarc.iter().any(|(from, _, _)| from == d);
    if auth.dkim.iter().any(|(d, r)| *r == "pass" && author(d)) {
        hits.push(extra::dkim_valid_author());
    }
    // The strictest failing policy counts once.
    let failed: Vec<&str> = auth
        .dmarc
        .iter()
        .filter(|(_, r, _)| *r == "fail")
        .map(|(_, _, p)| p.as_str())
        .collect();
    if failed.contains(&"reject") {
        hits.push(extra::dmarc_reject());
    } else if failed.contains(&"quarantine") {
        hits.push(extra::dmarc_quarantine());
    } else if !failed.is_empty() {
        hits.push(extra::dmarc_none());
    } else if auth.dmarc.iter().any(|(_, r, _)| *r == "pass") {
        hits.push(extra::dmarc_pass());
    }
    hits
}

/// The client network of a greylisting triplet: the /24 of an IPv4 address, the /64 of an
/// IPv6 one (RFC 6647 §4.1: a sending farm retries from another address of its network).
fn network_of(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Printable ASCII for a reply line, at most 300 characters.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_of_triplets() {
        assert_eq!(network_of("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            network_of("2001:db8:1:2:3::4".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            network_of("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn authentication_results_become_hits() {
        use facteur_model::authresults::AuthResults;
        let names =
            |a: &AuthResults| -> Vec<String> { auth_hits(a).into_iter().map(|h| h.name).collect() };
        let good = AuthResults {
            spf: "pass",
            dkim: vec![("example.org".into(), "pass")],
            dmarc: vec![("example.org".into(), "pass", "reject".into())],
            authenticated: vec!["example.org".into()],
        };
        assert_eq!(
            names(&good),
            ["SPF_PASS", "DKIM_VALID", "DKIM_VALID_AU", "DMARC_PASS"]
        );
        let forged = AuthResults {
            spf: "fail",
            dkim: vec![("other.example".into(), "fail")],
            dmarc: vec![
                ("a.example".into(), "fail", "none".into()),
                ("b.example".into(), "fail", "quarantine".into()),
            ],
            authenticated: Vec::new(),
        };
        assert_eq!(
            names(&forged),
            ["SPF_FAIL", "DKIM_INVALID", "DMARC_QUARANTINE"]
        );
        assert!(names(&AuthResults::default()).is_empty());
    }

    #[test]
    fn replies_stay_printable() {
        assert_eq!(printable("a\r\nb\u{e9}"), "a??b?");
    }
}
