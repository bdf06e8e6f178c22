//! Inbound email authentication on the MX: who may send for the envelope and the author's
//! domains, and what to do with a message that fails.
//!
//! For each message received, [`Checker::check`] runs:
//!
//! - **SPF** (RFC 7208) for the HELO identity and for MAIL FROM (§2.3, §2.4). With the null
//!   sender `<>`, the HELO check is the MAIL FROM check, as `postmaster@<helo>` (§2.4). At most
//!   10 DNS-querying terms per check, more is `permerror` (§4.6.4); a check that takes longer
//!   than 20 seconds is `temperror` (§4.6.4).
//! - **DKIM** (RFC 6376): every signature is verified (at most 10 per message, §6.1 lets a
//!   verifier limit them) and each is reported.
//! - **DMARC** (RFC 7489) for the From domain: alignment of the SPF and DKIM passes with it,
//!   relaxed or strict (§3.1), the domain's policy `p=`, `sp=` for subdomains, sampling by
//!   `pct=` (§6.6.4). The organizational domain comes from a DNS tree walk over `_dmarc`
//!   records (DMARCbis, as mail-auth does), so no public suffix list is needed.
//! - **ARC** (RFC 8617): the chain of a forwarded message is validated and reported. ARC never
//!   overrides DMARC here: without a list of trusted sealers, a valid chain proves only that
//!   someone sealed it, and anyone can.
//! - **iprev** (RFC 8601 §3): the client address's PTR names, one of which must resolve back to
//!   the address.
//!
//! The outcome is one Authentication-Results header field to prepend (RFC 8601; every method
//! checked is listed, `none` included), an [`Action`] from the admin's [`Policy`], a one-line
//! summary for the log, and what a DMARC aggregate report needs ([`DmarcEvaluation`]).
//!
//! Choices where the RFCs leave the receiver free:
//!
//! - `temperror` (a DNS failure) is reported and the message accepted (RFC 7208 §8.6, RFC 7489
//!   §6.6.2 leave it open; most receivers do so), unless [`Policy::defer_on_temperror`] asks
//!   for a temporary refusal. `permerror` is reported and accepted (RFC 7208 §8.7).
//! - SPF `softfail` and `neutral` are only reported (RFC 7208 §8.5, §8.2), and so is the
//!   HELO identity's result when the sender is not null (the MAIL FROM one decides).
//! - SPF `fail` with [`SpfFailAction::Reject`] refuses the message unless DMARC passes for its
//!   From domain: a DKIM signature aligned with the author's domain shows the mail is
//!   genuine, and forwarding is the usual reason for its SPF to fail (RFC 7489 §10.1).
//! - Several From fields, or one naming several addresses (RFC 7489 §6.6.1): each distinct
//!   domain is checked and the strictest policy among those that fail applies. No From field
//!   at all: DMARC `none` (outside DMARC's scope, RFC 7489 §5); a From field without a usable
//!   address: `permerror`, no action. More than 8 distinct domains: `permerror`, refused when
//!   DMARC is enforced.
//! - DMARC `temperror` never rejects nor junks: a failure to learn the policy is not a
//!   verdict.
//!
//! Every DNS wait is bounded by the resolver options (timeout × attempts), and each method as
//! a whole by 20 seconds (or one lookup's full wait, if longer): SPF, DKIM, ARC and iprev run
//! side by side, then DMARC (all its From domains together); a method that runs out of time is
//! `temperror`. Nothing here panics on a message or an answer, whatever it holds.

mod cache;
mod dkim;
mod dmarc;
mod results;

pub use results::remove_forged_results;

use cache::Caches;
use facteur_dns::ResolverOptions;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::proto::rr::{Name, RData};
use mail_auth::common::crypto::{Algorithm, CryptoError};
use mail_auth::common::to_a_label;
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Alignment, Policy as DmarcPolicy};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, DmarcOutput, DmarcResult, DnsError, Error,
    MessageAuthenticator, SpfOutput, SpfResult,
};
use results::{ResInfo, comment, property, render};
use std::future::Future;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// RFC 7208 §4.6.4: an SPF evaluation may be stopped after at least 20 seconds, as
/// `temperror`. Each method gets the same bound.
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// DKIM signatures verified per message (RFC 6376 §6.1 lets a verifier limit them).
const MAX_DKIM_SIGNATURES: usize = 10;
/// DKIM results written in Authentication-Results (signatures and malformed ones).
const MAX_DKIM_REPORTED: usize = 10;
/// Distinct From domains checked for DMARC (RFC 7489 §6.6.1).
const MAX_FROM_DOMAINS: usize = 8;
/// PTR names whose addresses are looked up for iprev (as SPF's `ptr`, RFC 7208 §5.5).
const MAX_PTR_NAMES: usize = 10;
/// SMTP reply texts are cut to this many characters (RFC 5321 §4.5.3.1.5: 512 octets a line).
const MAX_REPLY_TEXT: usize = 400;
/// Record texts quoted in replies are cut to this many characters.
const MAX_QUOTED_RECORD: usize = 160;

/// What an SPF `fail` for the MAIL FROM identity does (or for HELO, when MAIL FROM is `<>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfFailAction {
    /// Refuse at end of DATA with 550 5.7.23 (RFC 7372 §3.2), naming the domain and its
    /// record; not when DMARC passes for the From domain (see the module documentation).
    Reject,
    /// Only report it in Authentication-Results; DMARC decides.
    Tag,
}

/// The admin's choices: what the results do to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// SPF `fail` for MAIL FROM (or HELO when MAIL FROM is <>): reject with 550 5.7.23, or
    /// only tag.
    pub spf_fail: SpfFailAction,
    /// Honour the author domain's DMARC policy: p=reject -> 550 5.7.26, p=quarantine -> Junk
    /// (with pct and sp).
    pub dmarc_enforce: bool,
    /// Also check ARC (RFC 8617) and report it in Authentication-Results.
    pub arc: bool,
    /// iprev (forward-confirmed reverse DNS) in Authentication-Results.
    pub iprev: bool,
    /// A DNS failure (`temperror`) for SPF's MAIL FROM identity, or for DMARC when it is
    /// enforced, refuses the message temporarily (451 4.7.24 for SPF, RFC 7372 §3.2; 451 4.4.3
    /// for DMARC, RFC 3463 §3.5) instead of accepting it tagged. The sender retries later; a
    /// domain whose DNS is broken for long then gets its mail bounced by its own server.
    pub defer_on_temperror: bool,
}

impl Default for Policy {
    /// SPF `fail` only tagged: mail forwarded without SRS fails SPF at every hop after the
    /// first (the indirect flows of RFC 7960), a refusal on SPF alone comes before DMARC could
    /// see an intact DKIM signature (RFC 7489 §10.1), and DMARC, enforced by default, already
    /// refuses what both SPF and DKIM leave unauthenticated when the domain owner asks for
    /// it. ARC and iprev are reported (a few lookups, mostly cached). DNS failures are
    /// tagged, not deferred.
    fn default() -> Self {
        Policy {
            spf_fail: SpfFailAction::Tag,
            dmarc_enforce: true,
            arc: true,
            iprev: true,
            defer_on_temperror: false,
        }
    }
}

/// Checks inbound messages. Created once (it holds the resolver and the DNS caches), cloned
/// freely: clones share everything.
#[derive(Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

struct Inner {
    auth: MessageAuthenticator,
    hostname: String,
    policy: Policy,
    caches: Caches,
    /// The bound of each method's evaluation.
    deadline: Duration,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("hostname", &self.inner.hostname)
            .field("policy", &self.inner.policy)
            .field("deadline", &self.inner.deadline)
            .finish()
    }
}

impl Checker {
    /// The ARC set (RFC 8617 §5.1) to prepend to `input.message` when this server forwards it
    /// as `domain`: the chain so far is verified again (answers come from the caches of the
    /// check just made), the ARC-Authentication-Results carry this hop's SPF, DKIM and ARC
    /// results, and `signer` seals with `domain`'s RSA key. None when the chain cannot be
    /// extended (a failed chain, RFC 8617 §5.1.2: cv=fail ends it) or the domain has no key.
    pub async fn arc_seal(
        &self,
        input: &Input<'_>,
        signer: &crate::dkim::Signer,
        domain: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        let inner = &self.inner;
        let Some(message) = mail_auth::AuthenticatedMessage::parse(input.message) else {
            return Err("the message cannot be parsed".into());
        };
        let chain = inner
            .within(inner.auth.verify_arc(inner.caches.params(&message)))
            .await
            .ok_or("no answer in time for the ARC chain")?;
        if !chain.can_be_sealed() {
            return Ok(None);
        }
        let dkim = inner
            .within(inner.auth.verify_dkim(inner.caches.params(&message)))
            .await
            .unwrap_or_default();
        let spf =
            inner
                .within(inner.auth.verify_spf(inner.caches.params(
                    SpfParameters::verify_mail_from(
                        input.ip,
                        input.helo,
                        &inner.hostname,
                        input.mail_from,
                    ),
                )))
                .await;
        let mut results = mail_auth::AuthenticationResults::new(&inner.hostname)
            .with_dkim_results(&dkim, message.from());
        if let Some(spf) = &spf {
            results = results.with_spf_mailfrom_result(spf, input.ip, input.mail_from, input.helo);
        }
        let results = results.with_arc_result(&chain, input.ip);
        signer
            .arc_seal(domain, &message, &results, &chain)
            .map_err(|e| e.to_string())
    }
}

/// One received message and its SMTP envelope.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The SMTP client's address.
    pub ip: IpAddr,
    /// The EHLO/HELO argument as the client sent it.
    pub helo: &'a str,
    /// The MAIL FROM address without angle brackets; "" for the null sender.
    pub mail_from: &'a str,
    /// The message as received (header + body, CRLF line ends), before we add anything.
    pub message: &'a [u8],
}

/// The outcome of [`Checker::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The whole header field to prepend (RFC 8601 §2.2), one result a line, folded before 78
    /// characters where a token boundary allows, ending with CRLF:
    ///
    /// ```text
    /// Authentication-Results: mx.example.net;
    ///     spf=pass smtp.mailfrom=alice@example.com;
    ///     spf=none smtp.helo=mail.example.com;
    ///     dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256 header.b=AbCdEfGh;
    ///     dmarc=pass (p=reject dis=none) header.from=example.com;
    ///     arc=none;
    ///     iprev=pass policy.iprev=192.0.2.1 (mail.example.com)
    /// ```
    ///
    /// (continuation lines start with a tab). Every method checked is listed, `none`
    /// included, so the reader sees it was checked. Besides the properties above:
    /// `smtp.helo` for the HELO identity's SPF result (its own result line), `header.a` (the
    /// algorithm) for DKIM, `smtp.remote-ip` for ARC, and comments with the reason of
    /// failures. A DKIM body-hash mismatch is `fail` (RFC 6376
    /// §6.1.3). In the DMARC comment, `dis=` is what the domain's policy gives after `pct=`
    /// sampling, before [`Policy::dmarc_enforce`].
    pub header: String,
    /// What to do with the message.
    pub action: Action,
    /// One line for the log: "spf=pass dkim=pass dmarc=pass (p=reject) arc=none iprev=pass".
    pub summary: String,
    /// What a DMARC aggregate report needs (RFC 7489 §7.2, appendix C), when the From domain
    /// has a DMARC record (whatever the result).
    ///
    /// With several From domains, the one that decided the action (else the first with a
    /// record).
    pub dmarc: Option<DmarcEvaluation>,
    /// The results again, for the filters that come after (spam scoring, greylisting).
    pub results: facteur_model::authresults::AuthResults,
}

/// What the checks and the [`Policy`] make of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deliver normally.
    Accept,
    /// Deliver into the recipient's Junk mailbox (DMARC p=quarantine).
    Junk {
        /// Why, for the log: the domain, its record and what failed.
        reason: String,
    },
    /// Refuse at end of DATA: code 550, enhanced status "5.7.23" (SPF) or "5.7.26" (DMARC;
    /// RFC 7372 §3.2), with a text that names the domain and quotes its record, for the
    /// sender's admin as much as ours: "SPF for example.com does not allow 192.0.2.1 to send
    /// (v=spf1 ip4:198.51.100.0/24 -all)", "From domain example.com fails DMARC: SPF none for
    /// spoofer.example; no DKIM signature. Policy of example.com is reject (_dmarc.example.com:
    /// v=DMARC1; p=reject)".
    Reject {
        /// The SMTP reply code.
        code: u16,
        /// The enhanced status code (RFC 3463).
        status: &'static str,
        /// One line of printable ASCII, at most 400 characters.
        text: String,
    },
    /// Temporary refusal, the sender retries later. RFC 7208 §8.6 and RFC 7489 §6.6.2 leave
    /// `temperror` to the receiver; like most servers, facteur tags it and accepts, and defers
    /// only with [`Policy::defer_on_temperror`]: 451 4.7.24 when SPF for MAIL FROM is
    /// `temperror`, 451 4.4.3 when DMARC (enforced) is.
    Defer {
        /// The SMTP reply code.
        code: u16,
        /// The enhanced status code (RFC 3463).
        status: &'static str,
        /// One line of printable ASCII, at most 400 characters.
        text: String,
    },
}

/// One DMARC evaluation, as an aggregate report records it (RFC 7489 §7.2, appendix C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcEvaluation {
    /// The SMTP client's address.
    pub source_ip: IpAddr,
    /// The From domain (lower case, A-labels).
    pub header_from: String,
    /// The MAIL FROM domain (the HELO name for the null sender), lower case.
    pub envelope_from: String,
    /// The domain whose record applied: the From domain, or its organizational domain.
    pub policy_domain: String,
    /// DKIM alignment mode of the record: 'r' (relaxed) or 's' (strict).
    pub adkim: char,
    /// SPF alignment mode of the record: 'r' (relaxed) or 's' (strict).
    pub aspf: char,
    /// The record's `p=`: "none", "quarantine" or "reject".
    pub p: String,
    /// The record's `sp=` (its `p=` when absent).
    pub sp: String,
    /// The record's `pct=` (100 when absent or invalid).
    pub pct: u8,
    /// The record's `rua=` URIs as published (usually `mailto:`).
    pub rua: Vec<String>,
    /// "none", "quarantine" or "reject": what the domain's policy gives this message (after
    /// `pct=` sampling, before [`Policy::dmarc_enforce`]); "none" when DMARC did not fail.
    pub disposition: String,
    /// A DKIM pass aligned with the From domain was found.
    pub dkim_aligned: bool,
    /// The SPF pass (MAIL FROM scope) is aligned with the From domain.
    pub spf_aligned: bool,
    /// Each DKIM signature: its d=, its s=, its result ("pass", "fail", "neutral", "none",
    /// "temperror", "permerror").
    pub dkim: Vec<(
        String, /*d=*/
        String, /*s=*/
        String, /*result*/
    )>,
    /// The SPF check DMARC used: its domain, its scope ("mfrom" or "helo"), its result.
    pub spf: (
        String, /*domain*/
        String, /*scope "mfrom"|"helo"*/
        String, /*result*/
    ),
    /// The text of the DMARC record that applied, as published.
    pub record: String,
}

impl Checker {
    /// A checker asking the name servers of `resolver` (the `[dns]` section) as
    /// `facteur_dns::Resolver` does: UDP, then TCP, to each server at its port, or the
    /// servers and options of `/etc/resolv.conf` when none is configured; `timeout` for each
    /// try (at least 1 s), `attempts` tries; never the hosts file. `hostname` is this host's
    /// name, the authserv-id of the Authentication-Results fields written (RFC 8601 §2.5) and
    /// the `%{r}` of SPF macros (RFC 7208 §7.3).
    ///
    /// Errors: `/etc/resolv.conf` unreadable while no name server is configured, or a
    /// `hostname` that is not a host name. Needs no runtime; checks need a tokio one.
    pub fn new(
        resolver: &ResolverOptions,
        hostname: &str,
        policy: Policy,
    ) -> Result<Checker, String> {
        let hostname = hostname.trim().trim_end_matches('.');
        if hostname.is_empty()
            || !hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!(
                "`{hostname}` cannot name this host in Authentication-Results: \
                 a host name (letters, digits, hyphens, dots) is needed"
            ));
        }
        let (config, opts) = resolver_config(resolver)?;
        let auth = MessageAuthenticator::new(config, opts)
            .map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        let one_lookup = resolver.timeout.max(Duration::from_secs(1)) * resolver.attempts.max(1);
        Ok(Checker {
            inner: Arc::new(Inner {
                auth,
                hostname: hostname.to_ascii_lowercase(),
                policy,
                caches: Caches::new(),
                deadline: TIME_LIMIT.max(one_lookup),
            }),
        })
    }

    /// Checks one message: SPF, DKIM, ARC and iprev side by side, then DMARC; see the module
    /// documentation. Call it on the message as received, then remove forged
    /// Authentication-Results ([`remove_forged_results`]) and prepend [`Verdict::header`].
    pub async fn check(&self, input: &Input<'_>) -> Verdict {
        let inner = &*self.inner;
        let ip = input.ip.to_canonical();
        let helo = input.helo.trim();
        let mail_from = envelope_address(input.mail_from);
        let mut message = AuthenticatedMessage::parse(input.message);
        if let Some(message) = message.as_mut() {
            message.dkim_headers.truncate(MAX_DKIM_SIGNATURES);
        }
        let message = message.as_ref();
        // The same message without the blank lines that end its body, for signatures with
        // relaxed body canonicalization (see `crate::canonical`).
        let trimmed = crate::canonical::without_trailing_blank_lines(input.message);
        let mut variant = trimmed.as_deref().and_then(AuthenticatedMessage::parse);
        if let Some(v) = variant.as_mut() {
            v.dkim_headers.truncate(MAX_DKIM_SIGNATURES);
        }

        let (spf, dkim, arc, iprev, dkim_trimmed) = tokio::join!(
            inner.spf(ip, helo, mail_from),
            inner.dkim(message),
            inner.arc(message),
            inner.iprev(ip),
            inner.dkim(variant.as_ref()),
        );
        let dkim = crate::canonical::relaxed_body_results(dkim, dkim_trimmed)
            .into_iter()
            .map(|o| dkim::refuse_rsa_sha1(o, message))
            .collect::<Vec<_>>();
        let mut checked = Vec::with_capacity(dkim.len());
        for output in dkim {
            checked.push(inner.refuse_key_hash_mismatch(output, message).await);
        }
        let dkim = checked;
        let dmarc = inner.dmarc(ip, message, &dkim, &spf).await;
        let action = inner.action(ip, &spf, &dmarc).await;

        let mut lines: Vec<ResInfo> = spf.results();
        let mut summary = format!("spf={}", spf_name(spf.mfrom().result()));

        if dkim.is_empty() {
            lines.push(vec!["dkim=none".to_string()]);
            summary.push_str(" dkim=none");
        } else {
            let names: Vec<&str> = dkim.iter().map(|o| dkim_name(o.result())).collect();
            summary.push_str(" dkim=");
            summary.push_str(&names.join(","));
            lines.extend(dkim.iter().take(MAX_DKIM_REPORTED).map(dkim_result));
        }

        for check in &dmarc {
            lines.push(check.result());
        }
        summary.push(' ');
        summary.push_str(&dmarc_summary(&dmarc));

        if let Some(arc) = &arc {
            lines.push(arc.result(ip));
            summary.push_str(" arc=");
            summary.push_str(arc.result);
        }
        if let Some(iprev) = &iprev {
            lines.push(iprev.result(ip));
            summary.push_str(" iprev=");
            summary.push_str(iprev.result);
        }

        // The strictest disposition; among equals, the first (max_by_key keeps the last).
        let decided = dmarc
            .iter()
            .rev()
            .filter(|c| c.evaluation.is_some())
            .max_by_key(|c| c.disposition)
            .and_then(|c| c.evaluation.clone());
        let mut results = facteur_model::authresults::AuthResults {
            spf: spf_name(spf.mfrom().result()),
            ..Default::default()
        };
        if results.spf == "pass" {
            let domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
            results.authenticated.push(domain.to_ascii_lowercase());
        }
        for output in &dkim {
            let d = output
                .signature()
                .map(|s| s.d.to_ascii_lowercase())
                .unwrap_or_default();
            let result = dkim_name(output.result());
            if result == "pass" && !d.is_empty() {
                results.authenticated.push(d.clone());
            }
            results.dkim.push((d, result));
        }
        for check in &dmarc {
            let name = check.outcome.as_str();
            if name == "pass" && !check.domain.is_empty() {
                results
                    .authenticated
                    .push(check.domain.to_ascii_lowercase());
            }
            let policy = check
                .applied
                .split_once('=')
                .map_or("", |(_, p)| p)
                .to_string();
            results.dmarc.push((check.domain.clone(), name, policy));
        }
        results.authenticated.sort();
        results.authenticated.dedup();
        Verdict {
            header: render(&inner.hostname, &lines),
            action,
            summary,
            dmarc: decided,
            results,
        }
    }
}

impl Inner {
    async fn within<F: Future>(&self, future: F) -> Option<F::Output> {
        tokio::time::timeout(self.deadline, future).await.ok()
    }

    /// SPF for HELO and MAIL FROM side by side (RFC 7208 §2.3, §2.4).
    async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfCheck {
        let timed_out =
            |domain: &str| SpfOutput::new(domain.to_string()).with_result(SpfResult::TempError);
        let helo_check = async {
            self.within(
                self.auth
                    .verify_spf(self.caches.params(SpfParameters::verify_ehlo(
                        ip,
                        helo,
                        &self.hostname,
                    ))),
            )
            .await
            .unwrap_or_else(|| timed_out(helo))
        };
        if mail_from.is_empty() {
            return SpfCheck {
                helo: helo_check.await,
                mail_from: None,
                helo_name: helo.to_string(),
                sender: String::new(),
            };
        }
        // mail-auth's choice of domain: after the last @, or the HELO name without one.
        let mail_from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let mail_from_check =
            async {
                self.within(self.auth.verify_spf(self.caches.params(
                    SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from),
                )))
                .await
                .unwrap_or_else(|| timed_out(mail_from_domain))
            };
        let (helo_output, mail_from_output) = tokio::join!(helo_check, mail_from_check);
        SpfCheck {
            helo: helo_output,
            mail_from: Some(mail_from_output),
            helo_name: helo.to_string(),
            sender: mail_from.to_string(),
        }
    }

    /// Every DKIM signature (RFC 6376 §6). Out of time: each signature is `temperror`, so
    /// DMARC cannot take a missing result for a failed one.
    async fn dkim<'a>(
        &'a self,
        message: Option<&'a AuthenticatedMessage<'a>>,
    ) -> Vec<DkimOutput<'a>> {
        let Some(message) = message else {
            return Vec::new();
        };
        if message.dkim_headers.is_empty() && !message.has_dkim_errors {
            return Vec::new();
        }
        match self
            .within(self.auth.verify_dkim(self.caches.params(message)))
            .await
        {
            Some(outputs) => outputs,
            None => message
                .dkim_headers
                .iter()
                .map(|h| {
                    DkimOutput::temp_err(Error::Dns(DnsError::Resolver(
                        "no answer in time".to_string(),
                    )))
                    .with_signature(&h.header)
                })
                .collect(),
        }
    }

    /// The ARC chain (RFC 8617 §5.2), when the policy asks for it.
    async fn arc<'a>(&'a self, message: Option<&'a AuthenticatedMessage<'a>>) -> Option<ArcCheck> {
        if !self.policy.arc {
            return None;
        }
        let Some(message) = message else {
            return Some(ArcCheck::none());
        };
        if message.ams_headers.is_empty()
            && message.as_headers.is_empty()
            && message.aar_headers.is_empty()
            && !message.has_arc_errors
        {
            return Some(ArcCheck::none());
        }
        let Some(output) = self
            .within(self.auth.verify_arc(self.caches.params(message)))
            .await
        else {
            return Some(ArcCheck::fail("no answer in time".to_string()));
        };
        Some(match output.result() {
            DkimResult::Pass => ArcCheck {
                result: "pass",
                reason: None,
            },
            DkimResult::None => ArcCheck::none(),
            // RFC 8617 §4.4 knows none, pass and fail: a chain that cannot be validated,
            // for a DNS failure too, is not a valid chain.
            DkimResult::Fail(e)
            | DkimResult::Neutral(e)
            | DkimResult::PermError(e)
            | DkimResult::TempError(e) => ArcCheck::fail(error_text(e)),
        })
    }

    /// iprev (RFC 8601 §3): a PTR name of the address whose A or AAAA records hold it.
    async fn iprev(&self, ip: IpAddr) -> Option<IprevCheck> {
        if !self.policy.iprev {
            return None;
        }
        Some(
            self.within(self.iprev_lookup(ip))
                .await
                .unwrap_or_else(|| IprevCheck::error("temperror", "no answer in time")),
        )
    }

    async fn iprev_lookup(&self, ip: IpAddr) -> IprevCheck {
        let names: Vec<String> = match self.auth.ptr_lookup(ip, Some(&self.caches.ptr)).await {
            Ok(set) => set
                .rrset
                .iter()
                .map(|n| n.trim_end_matches('.').to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            Err(Error::Dns(DnsError::RecordNotFound(_) | DnsError::InvalidRecordType)) => {
                Vec::new()
            }
            Err(Error::ParseError) => return IprevCheck::error("permerror", "malformed PTR"),
            Err(e) => return IprevCheck::error("temperror", &error_text(&e)),
        };
        if names.is_empty() {
            // RFC 8601 §2.7.3: no PTR data published is permerror.
            return IprevCheck::error("permerror", "no PTR record");
        }
        let mut temporary = None;
        for name in names.iter().take(MAX_PTR_NAMES) {
            let found = match ip {
                IpAddr::V4(v4) => self
                    .auth
                    .ipv4_lookup(name.as_str(), Some(&self.caches.ipv4))
                    .await
                    .map(|set| set.rrset.contains(&v4)),
                IpAddr::V6(v6) => self
                    .auth
                    .ipv6_lookup(name.as_str(), Some(&self.caches.ipv6))
                    .await
                    .map(|set| set.rrset.contains(&v6)),
            };
            match found {
                Ok(true) => {
                    return IprevCheck {
                        result: "pass",
                        names: vec![name.clone()],
                        reason: None,
                    };
                }
                Ok(false)
                | Err(Error::Dns(DnsError::RecordNotFound(_) | DnsError::InvalidRecordType)) => {}
                Err(e) => temporary = Some(error_text(&e)),
            }
        }
        IprevCheck {
            result: if temporary.is_some() {
                "temperror"
            } else {
                "fail"
            },
            reason: Some(temporary.unwrap_or_else(|| "no name resolves back".to_string())),
            names,
        }
    }

    /// DMARC for each distinct From domain (RFC 7489 §6.6).
    async fn dmarc(
        &self,
        ip: IpAddr,
        message: Option<&AuthenticatedMessage<'_>>,
        dkim: &[DkimOutput<'_>],
        spf: &SpfCheck,
    ) -> Vec<DmarcCheck> {
        let Some(message) = message else {
            return vec![DmarcCheck::bare(Outcome::None, "", "no header section")];
        };
        let from_fields = message
            .headers
            .iter()
            .filter(|(name, _)| name.trim_ascii().eq_ignore_ascii_case(b"From"))
            .count();
        if from_fields == 0 {
            return vec![DmarcCheck::bare(Outcome::None, "", "no From field")];
        }
        let mut domains: Vec<String> = Vec::new();
        for address in &message.from {
            if let Some((_, domain)) = address.rsplit_once('@') {
                let domain = to_a_label(domain.trim_end_matches('.')).to_ascii_lowercase();
                if !domain.is_empty() && !domains.contains(&domain) {
                    domains.push(domain);
                }
            }
        }
        if domains.is_empty() {
            return vec![DmarcCheck::bare(
                Outcome::PermError,
                "",
                "no address in the From field",
            )];
        }
        if domains.len() > MAX_FROM_DOMAINS {
            let mut check = DmarcCheck::bare(
                Outcome::PermError,
                "",
                &format!("the From field names {} domains", domains.len()),
            );
            check.disposition = Disposition::Reject;
            check.why = format!(
                "the From field names {} domains (more than {MAX_FROM_DOMAINS} are not checked)",
                domains.len()
            );
            return vec![check];
        }
        // One bound for the whole DMARC stage, however many From domains.
        let until = tokio::time::Instant::now() + self.deadline;
        let spf_domain = spf.domain();
        let several = domains.len() > 1 || from_fields > 1;
        let mut checks = Vec::with_capacity(domains.len());
        for domain in &domains {
            let single;
            let evaluated = if domains.len() == 1 {
                message
            } else {
                // mail-auth skips DMARC when From holds several domains; check each alone.
                let mut copy = message.clone();
                copy.from.retain(|a| {
                    a.rsplit_once('@').is_some_and(|(_, d)| {
                        to_a_label(d.trim_end_matches('.')).eq_ignore_ascii_case(domain)
                    })
                });
                single = copy;
                &single
            };
            let mut check = match tokio::time::timeout_at(
                until,
                self.dmarc_one(ip, evaluated, domain, dkim, spf, &spf_domain),
            )
            .await
            {
                Ok(check) => check,
                Err(_) => DmarcCheck::bare(Outcome::TempError, domain, "no answer in time"),
            };
            if several && check.reason.is_none() {
                check.reason = Some(format!(
                    "{from_fields} From field(s), {} domain(s)",
                    domains.len()
                ));
            }
            checks.push(check);
        }
        checks
    }

    async fn dmarc_one(
        &self,
        ip: IpAddr,
        message: &AuthenticatedMessage<'_>,
        domain: &str,
        dkim: &[DkimOutput<'_>],
        spf: &SpfCheck,
        spf_domain: &str,
    ) -> DmarcCheck {
        // The record's text first (it also fills the cache mail-auth's walk reads).
        let walk = dmarc::walk(&self.auth, &self.caches, domain).await.ok();
        let output = self
            .auth
            .verify_dmarc(self.caches.params(DmarcParameters::new(
                message,
                dkim,
                spf_domain,
                spf.mfrom(),
            )))
            .await;
        let outcome = Outcome::of(&output.result());
        let Some(record) = output.dmarc_record() else {
            let reason = match &output.result() {
                DmarcResult::TempError(e) | DmarcResult::PermError(e) => Some(error_text(e)),
                _ => None,
            };
            let mut check = DmarcCheck::bare(outcome, domain, "");
            check.reason = reason;
            return check;
        };
        let found = walk.as_deref().and_then(|w| dmarc::select(w, domain));
        let text = found.map_or(String::new(), |f| f.text.to_string());
        let policy_domain = found.map_or_else(|| domain.to_string(), |f| f.name.clone());
        let pct = dmarc::pct(&text);
        let rua = if found.is_some() {
            dmarc::rua(&text)
        } else {
            record.rua.iter().map(|u| u.uri().to_string()).collect()
        };
        let applied = Disposition::of(output.policy());
        let disposition = if outcome == Outcome::Fail {
            // RFC 7489 §6.6.4: outside the sample, one step milder. A record in test mode
            // (t=y, DMARCbis) is already one step milder, from mail-auth.
            if record.t || sampled(pct) {
                applied
            } else {
                applied.milder()
            }
        } else {
            Disposition::None
        };
        let policy_source = if policy_domain == domain { "p" } else { "sp" };
        let evaluation = DmarcEvaluation {
            source_ip: ip,
            header_from: domain.to_string(),
            envelope_from: spf_domain.to_string(),
            policy_domain: policy_domain.clone(),
            adkim: alignment_char(record.adkim),
            aspf: alignment_char(record.aspf),
            p: record.p.to_string(),
            sp: record.sp.to_string(),
            pct,
            rua,
            disposition: disposition.as_str().to_string(),
            dkim_aligned: *output.dkim_result() == DmarcResult::Pass,
            spf_aligned: *output.spf_result() == DmarcResult::Pass,
            dkim: dkim
                .iter()
                .filter_map(|o| {
                    o.signature().map(|s| {
                        (
                            s.d.to_ascii_lowercase(),
                            s.s.clone(),
                            dkim_name(o.result()).to_string(),
                        )
                    })
                })
                .collect(),
            spf: (
                spf_domain.to_string(),
                spf.scope().to_string(),
                spf_name(spf.mfrom().result()).to_string(),
            ),
            record: text,
        };
        let why = if outcome == Outcome::Fail {
            failure_explanation(&evaluation, dkim, &output)
        } else {
            String::new()
        };
        DmarcCheck {
            domain: domain.to_string(),
            outcome,
            reason: None,
            applied: format!("{policy_source}={}", applied.as_str()),
            disposition,
            why,
            evaluation: Some(evaluation),
        }
    }

    /// The admin's policy applied to the results, strongest action first: reject, defer,
    /// junk, accept.
    async fn action(&self, ip: IpAddr, spf: &SpfCheck, dmarc: &[DmarcCheck]) -> Action {
        let dmarc_pass = !dmarc.is_empty() && dmarc.iter().all(|c| c.outcome == Outcome::Pass);
        let spf_result = spf.mfrom().result();
        if self.policy.spf_fail == SpfFailAction::Reject
            && spf_result == SpfResult::Fail
            && !dmarc_pass
        {
            let domain = spf.domain();
            let identity = if spf.mail_from.is_some() {
                String::new()
            } else {
                " (the HELO name: the sender is null)".to_string()
            };
            let record = self
                .spf_record_text(&domain)
                .await
                .map_or(String::new(), |r| format!(" ({r})"));
            return Action::Reject {
                code: 550,
                status: "5.7.23",
                text: reply_text(&format!(
                    "SPF for {domain}{identity} does not allow {ip} to send{record}"
                )),
            };
        }
        let enforced: Vec<&DmarcCheck> = if self.policy.dmarc_enforce {
            dmarc.iter().collect()
        } else {
            Vec::new()
        };
        if let Some(check) = enforced
            .iter()
            .find(|c| c.disposition == Disposition::Reject)
        {
            return Action::Reject {
                code: 550,
                status: "5.7.26",
                text: reply_text(&check.why),
            };
        }
        if self.policy.defer_on_temperror {
            if spf_result == SpfResult::TempError {
                return Action::Defer {
                    code: 451,
                    status: "4.7.24",
                    text: reply_text(&format!(
                        "SPF for {} could not be checked (DNS failure), try again later",
                        spf.domain()
                    )),
                };
            }
            if let Some(check) = enforced.iter().find(|c| c.outcome == Outcome::TempError) {
                return Action::Defer {
                    code: 451,
                    status: "4.4.3",
                    text: reply_text(&format!(
                        "DMARC for {} could not be checked (DNS failure), try again later",
                        check.domain
                    )),
                };
            }
        }
        if let Some(check) = enforced
            .iter()
            .find(|c| c.disposition == Disposition::Quarantine)
        {
            return Action::Junk {
                reason: reply_text(&check.why),
            };
        }
        Action::Accept
    }

    /// The SPF record of `domain` as published, for a refusal's text.
    async fn spf_record_text(&self, domain: &str) -> Option<String> {
        let name = Name::from_str_relaxed(format!("{}.", domain.trim_end_matches('.'))).ok()?;
        let lookup = self
            .within(self.auth.resolver().txt_lookup(name))
            .await?
            .ok()?;
        lookup.answers().iter().find_map(|record| {
            let RData::TXT(txt) = &record.data else {
                return None;
            };
            let bytes: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let is_spf = text.len() >= 6
                && text.as_bytes()[..6].eq_ignore_ascii_case(b"v=spf1")
                && text.as_bytes().get(6).is_none_or(|b| *b == b' ');
            is_spf.then(|| quoted_record(&text))
        })
    }
}

/// SPF results of both identities.
struct SpfCheck {
    helo: SpfOutput,
    /// None for the null sender: the HELO result stands for MAIL FROM (RFC 7208 §2.4).
    mail_from: Option<SpfOutput>,
    helo_name: String,
    sender: String,
}

impl SpfCheck {
    /// The result for the MAIL FROM identity (the HELO one for the null sender).
    fn mfrom(&self) -> &SpfOutput {
        self.mail_from.as_ref().unwrap_or(&self.helo)
    }

    /// The scope of [`Self::mfrom`] in DMARC reports (RFC 7489 appendix C).
    fn scope(&self) -> &'static str {
        if self.mail_from.is_some() {
            "mfrom"
        } else {
            "helo"
        }
    }

    /// The domain [`Self::mfrom`] checked, lower case.
    fn domain(&self) -> String {
        self.mfrom()
            .domain()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    }

    fn results(&self) -> Vec<ResInfo> {
        match &self.mail_from {
            Some(mail_from) => vec![
                vec![
                    format!("spf={}", spf_name(mail_from.result())),
                    property("smtp.mailfrom", &self.sender),
                ],
                vec![
                    format!("spf={}", spf_name(self.helo.result())),
                    property("smtp.helo", &self.helo_name),
                ],
            ],
            None => vec![vec![
                format!("spf={}", spf_name(self.helo.result())),
                comment("null sender, HELO identity"),
                property("smtp.mailfrom", &format!("postmaster@{}", self.helo_name)),
                property("smtp.helo", &self.helo_name),
            ]],
        }
    }
}

struct ArcCheck {
    result: &'static str,
    reason: Option<String>,
}

impl ArcCheck {
    fn none() -> Self {
        ArcCheck {
            result: "none",
            reason: None,
        }
    }

    fn fail(reason: String) -> Self {
        ArcCheck {
            result: "fail",
            reason: Some(reason),
        }
    }

    fn result(&self, ip: IpAddr) -> ResInfo {
        let mut tokens = vec![format!("arc={}", self.result)];
        if let Some(reason) = &self.reason {
            tokens.push(comment(reason));
        }
        if self.result != "none" {
            tokens.push(property("smtp.remote-ip", &ip.to_string()));
        }
        tokens
    }
}

struct IprevCheck {
    result: &'static str,
    /// The name that resolved back (pass), or the PTR names (fail).
    names: Vec<String>,
    reason: Option<String>,
}

impl IprevCheck {
    fn error(result: &'static str, reason: &str) -> Self {
        IprevCheck {
            result,
            names: Vec::new(),
            reason: Some(reason.to_string()),
        }
    }

    fn result(&self, ip: IpAddr) -> ResInfo {
        let mut tokens = vec![
            format!("iprev={}", self.result),
            property("policy.iprev", &ip.to_string()),
        ];
        let mut note = self.names.join(", ");
        if let Some(reason) = &self.reason {
            if !note.is_empty() {
                note.push_str(": ");
            }
            note.push_str(reason);
        }
        if !note.is_empty() {
            tokens.push(comment(&note));
        }
        tokens
    }
}

/// A DMARC result as this module sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    TempError,
    PermError,
    None,
}

impl Outcome {
    fn of(result: &DmarcResult) -> Outcome {
        match result {
            DmarcResult::Pass => Outcome::Pass,
            DmarcResult::Fail(_) => Outcome::Fail,
            DmarcResult::TempError(_) => Outcome::TempError,
            DmarcResult::PermError(_) => Outcome::PermError,
            DmarcResult::None => Outcome::None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
            Outcome::None => "none",
        }
    }
}

/// A DMARC disposition, mildest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Disposition {
    None,
    Quarantine,
    Reject,
}

impl Disposition {
    fn of(policy: DmarcPolicy) -> Disposition {
        match policy {
            DmarcPolicy::Reject => Disposition::Reject,
            DmarcPolicy::Quarantine => Disposition::Quarantine,
            DmarcPolicy::None | DmarcPolicy::Unspecified => Disposition::None,
        }
    }

    fn milder(self) -> Disposition {
        match self {
            Disposition::Reject => Disposition::Quarantine,
            _ => Disposition::None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Disposition::None => "none",
            Disposition::Quarantine => "quarantine",
            Disposition::Reject => "reject",
        }
    }
}

/// DMARC for one From domain.
struct DmarcCheck {
    /// The From domain; empty when there is none.
    domain: String,
    outcome: Outcome,
    /// A comment for Authentication-Results.
    reason: Option<String>,
    /// The policy that applied, as "p=reject" or "sp=none"; empty without a record.
    applied: String,
    /// What the domain's policy does to this message (none unless DMARC failed).
    disposition: Disposition,
    /// For a refusal or the Junk reason: the domain, its record, what failed.
    why: String,
    evaluation: Option<DmarcEvaluation>,
}

impl DmarcCheck {
    fn bare(outcome: Outcome, domain: &str, reason: &str) -> Self {
        DmarcCheck {
            domain: domain.to_string(),
            outcome,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            applied: String::new(),
            disposition: Disposition::None,
            why: String::new(),
            evaluation: None,
        }
    }

    fn result(&self) -> ResInfo {
        let mut tokens = vec![format!("dmarc={}", self.outcome.as_str())];
        let mut note = String::new();
        if let Some(e) = &self.evaluation {
            note = format!("p={}", e.p);
            if e.sp != e.p || e.policy_domain != e.header_from {
                note.push_str(&format!(" sp={}", e.sp));
            }
            if e.pct < 100 {
                note.push_str(&format!(" pct={}", e.pct));
            }
            note.push_str(&format!(" dis={}", e.disposition));
        }
        if let Some(reason) = &self.reason {
            if !note.is_empty() {
                // Not a semicolon: naive readers split results at every one.
                note.push_str(", ");
            }
            note.push_str(reason);
        }
        if !note.is_empty() {
            tokens.push(comment(&note));
        }
        if !self.domain.is_empty() {
            tokens.push(property("header.from", &self.domain));
        }
        tokens
    }
}

fn dmarc_summary(checks: &[DmarcCheck]) -> String {
    let mut out = String::from("dmarc=");
    for (i, check) in checks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(check.outcome.as_str());
        if !check.applied.is_empty() {
            out.push_str(&format!(" ({})", check.applied));
        }
    }
    out
}

/// Why DMARC failed, for a refusal or the Junk reason: the From domain, what SPF and DKIM
/// gave, the policy and its record.
fn failure_explanation(
    evaluation: &DmarcEvaluation,
    dkim: &[DkimOutput<'_>],
    output: &DmarcOutput,
) -> String {
    let (spf_domain, _, spf_result) = &evaluation.spf;
    let spf = if evaluation.spf_aligned {
        format!("SPF passed for {spf_domain}")
    } else if spf_result == "pass" {
        let mode = if evaluation.aspf == 's' {
            "strict"
        } else {
            "relaxed"
        };
        format!("SPF passed for {spf_domain}, not aligned with it ({mode} alignment)")
    } else {
        format!("SPF {spf_result} for {spf_domain}")
    };
    let passes: Vec<&str> = dkim
        .iter()
        .filter(|o| *o.result() == DkimResult::Pass)
        .filter_map(|o| o.signature().map(|s| s.d.as_str()))
        .collect();
    let dkim_text = if evaluation.dkim_aligned {
        "an aligned DKIM signature".to_string()
    } else if !passes.is_empty() {
        format!("DKIM passed for {}, not aligned with it", passes.join(", "))
    } else if dkim.is_empty() {
        "no DKIM signature".to_string()
    } else {
        "no valid DKIM signature".to_string()
    };
    let policy = Disposition::of(output.policy());
    let outcome = if evaluation.disposition == policy.as_str() {
        String::new()
    } else {
        format!(
            ", {} for this message (pct={})",
            evaluation.disposition, evaluation.pct
        )
    };
    format!(
        "From domain {} fails DMARC: {spf}; {dkim_text}. Policy of {} is {}{outcome} (_dmarc.{}: {})",
        evaluation.header_from,
        evaluation.policy_domain,
        policy.as_str(),
        evaluation.policy_domain,
        quoted_record(&evaluation.record),
    )
}

fn alignment_char(alignment: Alignment) -> char {
    match alignment {
        Alignment::Strict => 's',
        Alignment::Relaxed => 'r',
    }
}

fn spf_name(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// RFC 8601 §2.7.1 names; a body hash that does not match is `fail` (RFC 6376 §6.1.3:
/// PERMFAIL, the signature did not verify), which mail-auth calls neutral.
fn dkim_name(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)) => "fail",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// One DKIM result: `dkim=pass header.d=... header.s=... header.a=... header.b=...`
/// (RFC 8601 §2.7.1; header.b holds the first 8 characters of b=, RFC 6008).
fn dkim_result(output: &DkimOutput<'_>) -> ResInfo {
    let mut tokens = vec![format!("dkim={}", dkim_name(output.result()))];
    let signature = output.signature();
    match output.result() {
        DkimResult::Pass | DkimResult::None => {}
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => {
            let reason = match (e, signature) {
                (
                    Error::Dns(DnsError::RecordNotFound(_) | DnsError::InvalidRecordType),
                    Some(s),
                ) => format!("no key at {}._domainkey.{}", s.s, s.d),
                _ => error_text(e),
            };
            tokens.push(comment(&reason));
        }
    }
    if let Some(signature) = signature {
        tokens.push(property("header.d", &signature.d));
        tokens.push(property("header.s", &signature.s));
        tokens.push(property(
            "header.a",
            match signature.a {
                Algorithm::RsaSha1 => "rsa-sha1",
                Algorithm::RsaSha256 => "rsa-sha256",
                Algorithm::Ed25519Sha256 => "ed25519-sha256",
            },
        ));
        if !signature.b.is_empty() {
            tokens.push(property("header.b", &base64_prefix(&signature.b)));
        }
    }
    tokens
}

/// A short text for a mail-auth error.
/// The start of the errors this module makes for signatures it refuses.
const REFUSAL: &str = "facteur: ";

fn error_text(error: &Error) -> String {
    match error {
        Error::Dns(DnsError::Resolver(_)) => "DNS failure".to_string(),
        Error::Dns(DnsError::RecordNotFound(_) | DnsError::InvalidRecordType) => {
            "no record".to_string()
        }
        // This module's own refusals (rsa-sha1, the key's h=) say what they refuse.
        Error::Crypto(CryptoError::Library(text)) if text.starts_with(REFUSAL) => {
            text[REFUSAL.len()..].to_string()
        }
        Error::Crypto(CryptoError::FailedVerification | CryptoError::Library(_)) => {
            "signature did not verify".to_string()
        }
        Error::Dkim(DkimError::FailedBodyHashMatch) => "body hash did not verify".to_string(),
        Error::Dkim(DkimError::RevokedPublicKey) => "key revoked".to_string(),
        Error::Dkim(DkimError::SignatureExpired) => "signature expired".to_string(),
        Error::ParseError => "malformed".to_string(),
        other => other.to_string(),
    }
}

/// The first 8 base64 characters of a signature (its first 6 octets).
fn base64_prefix(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(8);
    for chunk in bytes[..bytes.len().min(6)].chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// RFC 7489 §6.6.4: true when this message falls inside the `pct` sample.
fn sampled(pct: u8) -> bool {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    if pct >= 100 {
        return true;
    }
    // RandomState is seeded from the OS and differs at each call: a uniform draw in 0..100.
    let draw = std::hash::RandomState::new().hash_one(DRAWS.fetch_add(1, Ordering::Relaxed)) % 100;
    draw < u64::from(pct)
}

/// The MAIL FROM address without spaces or angle brackets, should the caller leave them.
fn envelope_address(mail_from: &str) -> &str {
    let trimmed = mail_from.trim();
    trimmed
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(trimmed)
        .trim()
}

/// A record's text for a reply: printable ASCII, cut to [`MAX_QUOTED_RECORD`] characters.
fn quoted_record(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.chars().count() > MAX_QUOTED_RECORD {
        let cut: String = clean.chars().take(MAX_QUOTED_RECORD - 3).collect();
        format!("{cut}...")
    } else {
        clean
    }
}

/// One line of printable ASCII for an SMTP reply, at most [`MAX_REPLY_TEXT`] characters.
fn reply_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_REPLY_TEXT)
        .collect()
}

/// The hickory configuration of facteur_dns::Resolver::new: UDP then TCP to each configured
/// server at its port (or /etc/resolv.conf's servers and options), `timeout` per try (at
/// least 1 s), `attempts` tries, no hosts file (authentication follows the DNS only).
fn resolver_config(options: &ResolverOptions) -> Result<(ResolverConfig, ResolverOpts), String> {
    let (config, mut opts) = if options.nameservers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("cannot set up the DNS resolver: reading /etc/resolv.conf: {e}"))?
    } else {
        let servers = options
            .nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                // Trust NXDOMAIN and empty answers: they are the recursive server's verdict.
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    opts.timeout = options.timeout.max(Duration::from_secs(1));
    // hickory counts retries after the first try; `attempts` counts tries.
    opts.attempts = (options.attempts.max(1) - 1) as usize;
    opts.use_hosts_file = ResolveHosts::Never;
    Ok((config, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_prefix_is_eight_characters() {
        assert_eq!(base64_prefix(b"\x00\x00\x00\xff\xff\xff\x01"), "AAAA////");
        assert_eq!(base64_prefix(b"Man"), "TWFu");
        assert_eq!(base64_prefix(b"hello!"), "aGVsbG8h");
        assert_eq!(base64_prefix(b"ab"), "YWI");
    }

    #[test]
    fn sampling_follows_pct() {
        assert!((0..200).all(|_| sampled(100)));
        assert!((0..200).all(|_| !sampled(0)));
        let hits = (0..2000).filter(|_| sampled(50)).count();
        assert!((700..1300).contains(&hits), "{hits}");
    }

    #[test]
    fn envelope_addresses_are_cleaned() {
        assert_eq!(envelope_address(" <a@b.example> "), "a@b.example");
        assert_eq!(envelope_address("<>"), "");
        assert_eq!(envelope_address("a@b.example"), "a@b.example");
    }
}
