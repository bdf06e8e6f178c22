//! The queue's service: takes due recipients, routes them (smarthost, per-domain transport, or
//! MX lookup, RFC 5321 §5.1), hands them over with the SMTP client, records every attempt, and
//! retries, bounces or delays as the replies say.
//!
//! Invariants: a recipient is marked `sent` only after the remote `250` for its message, and
//! never tried again afterwards (each message delivered at most once per remote 250); a 4xx,
//! a network error or a DNS failure defers it on the `queue.retry_secs` schedule; a 5xx, a
//! domain that does not exist, a null MX or the end of `queue.max_age_hours` fails it, and the
//! sender gets one DSN for the recipients that failed together, never when the sender is null.
//! One message is worked on by one task at a time.

use crate::client::{Connection, Envelope, Failure, RecipientParams, Settings};
use crate::dsn;
use crate::route::{Route, RouteError, Target};
use facteur_store::{Attempt, AttemptOutcome, DueMessage, DueRecipient, Store};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Everything the service needs.
pub struct Service {
    pub store: Store,
    pub directory: facteur_directory::Directory,
    pub hostname: String,
    pub options: facteur_config::Queue,
    pub client: Settings,
    pub route: Route,
    /// Wakes the service before its next scan (a message was queued, `queue retry`).
    pub wake: Arc<Notify>,
    /// Tell the sender once when a recipient has waited this long (0: never).
    pub delay_warning: Duration,
    /// Open connections between messages, per host.
    pub pool: crate::pool::Pool,
    /// Deliveries in progress per destination domain.
    pub destinations: Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
    /// Messages sent per destination domain in the current minute.
    pub rates: Mutex<std::collections::HashMap<String, (i64, u32)>>,
    /// TLS outcomes of sessions to MX hosts, for TLS reports (RFC 8460).
    pub tls_report: crate::tls_report::Recorder,
    pub shutdown: facteur_net::Shutdown,
}

impl Service {
    /// Works through the queue until shutdown.
    pub async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.options.max_parallel.max(1)));
        let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
        loop {
            let now = now();
            // Messages a crash left finished but not removed: their bounce (if any) is sent
            // again, then they go.
            for id in self.store.queue_finished().unwrap_or_default() {
                if busy.lock().expect("busy set").contains(&id) {
                    continue;
                }
                finish(&self.store, &self.directory, &self.hostname, &id).await;
            }
            let batch = self.options.max_parallel.max(1) * 4;
            let due = match self.store.queue_due(now, batch) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the queue");
                    Vec::new()
                }
            };
            // A full batch means more are due: look again as soon as this one is under way.
            let more = due.len() == batch;
            for message in due {
                if !busy
                    .lock()
                    .expect("busy set")
                    .insert(message.queue_id.clone())
                {
                    continue;
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (me, busy) = (self.clone(), busy.clone());
                tokio::spawn(async move {
                    let id = message.queue_id.clone();
                    me.deliver(message).await;
                    busy.lock().expect("busy set").remove(&id);
                    drop(slot);
                });
            }
            self.pool.close_idle();
            self.tls_report.flush(&self.store, false).await;
            if more {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(self.options.scan_secs.max(1))) => {}
                _ = self.wake.notified() => {}
                _ = self.shutdown.triggered() => {
                    self.tls_report.flush(&self.store, true).await;
                    return;
                }
            }
        }
    }

    /// One message: its due recipients, grouped by destination domain.
    async fn deliver(&self, m: DueMessage) {
        let content = match self.store.queue_content(&m.queue_id) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(queue_id = %m.queue_id, error = %e, "cannot read the queued message");
                return;
            }
        };
        let mut by_domain: BTreeMap<String, Vec<&DueRecipient>> = BTreeMap::new();
        for r in &m.due {
            let domain = r
                .address
                .rsplit_once('@')
                .map_or("", |(_, d)| d)
                .to_ascii_lowercase();
            by_domain.entry(domain).or_default().push(r);
        }
        let mut attempts = Vec::new();
        let mut failed: Vec<(Attempt, &DueRecipient)> = Vec::new();
        let mut delayed: Vec<(Attempt, &DueRecipient)> = Vec::new();
        for (domain, rcpts) in by_domain {
            for (attempt, rcpt) in self.deliver_domain(&m, &domain, &rcpts, &content).await {
                let to = &rcpt.address;
                match attempt.outcome {
                    AttemptOutcome::Sent => {
                        tracing::info!(queue_id = %m.queue_id, to = %format!("<{to}>"),
                        relay = %attempt.host, reply = %attempt.reply, "sent")
                    }
                    AttemptOutcome::Deferred { next_attempt } => {
                        tracing::info!(queue_id = %m.queue_id,
                        to = %format!("<{to}>"), relay = %attempt.host, reply = %attempt.reply,
                        retry_in_secs = next_attempt - now(), "deferred")
                    }
                    AttemptOutcome::Failed => {
                        tracing::warn!(queue_id = %m.queue_id, to = %format!("<{to}>"),
                        relay = %attempt.host, reply = %attempt.reply, "bounced")
                    }
                }
                match attempt.outcome {
                    AttemptOutcome::Failed => failed.push((attempt.clone(), rcpt)),
                    // RFC 3464 `delayed`: once, when the message has waited long enough.
                    AttemptOutcome::Deferred { .. }
                        if !rcpt.delay_notified
                            && self.delay_warning > Duration::ZERO
                            && now() >= m.created + self.delay_warning.as_secs() as i64 =>
                    {
                        delayed.push((attempt.clone(), rcpt));
                    }
                    _ => {}
                }
                attempts.push(attempt);
            }
        }
        let done = match self.store.queue_record_batched(&m.queue_id, attempts).await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(queue_id = %m.queue_id, error = %e, "cannot record the attempts");
                return;
            }
        };
        if !failed.is_empty() {
            self.bounce(&m, &failed, &content).await;
        }
        if !delayed.is_empty() {
            send_dsn(
                &self.store,
                &self.directory,
                &self.hostname,
                &m,
                &delayed,
                &content,
                "delayed",
            )
            .await;
            let positions: Vec<u32> = delayed.iter().map(|(_, r)| r.position).collect();
            if let Err(e) = self.store.queue_delay_notified(&m.queue_id, &positions) {
                tracing::error!(queue_id = %m.queue_id, error = %e, "cannot record the delay notice");
            }
        }
        // All sent: `queue_record` removed it in the same commit. With failures: after the
        // bounce.
        if done
            && !failed.is_empty()
            && let Err(e) = self.store.queue_remove(&m.queue_id)
        {
            tracing::error!(queue_id = %m.queue_id, error = %e, "cannot remove");
        }
        if done {
            tracing::info!(queue_id = %m.queue_id, "removed from the queue");
        }
    }

    /// Tries the destination's hosts in order until one answers for the recipients.
    async fn deliver_domain<'a>(
        &self,
        m: &DueMessage,
        domain: &str,
        rcpts: &[&'a DueRecipient],
        content: &[u8],
    ) -> Vec<(Attempt, &'a DueRecipient)> {
        let all = |host: &str, reply: &str, outcome: AttemptOutcome| {
            rcpts
                .iter()
                .map(|r| {
                    (
                        Attempt {
                            position: r.position,
                            host: host.to_string(),
                            reply: reply.to_string(),
                            outcome: outcome.clone(),
                        },
                        *r,
                    )
                })
                .collect::<Vec<_>>()
        };
        // At most `queue.per_destination` deliveries to one domain at a time (Postfix's
        // default_destination_concurrency_limit): a burst to one provider does not look like
        // an attack to it, nor starve the other destinations.
        let limit = {
            let mut map = self.destinations.lock().expect("destination limits");
            map.entry(domain.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_destination.max(1))))
                .clone()
        };
        let Ok(_turn) = limit.acquire_owned().await else {
            return Vec::new();
        };
        if let Some(wait) = self.over_rate(domain) {
            let reply = format!(
                "not tried: {domain} already got {} messages this minute (queue.per_destination_rate)",
                self.options.per_destination_rate
            );
            return rcpts
                .iter()
                .map(|r| {
                    (
                        Attempt {
                            position: r.position,
                            host: "-".into(),
                            reply: reply.clone(),
                            outcome: AttemptOutcome::Deferred {
                                next_attempt: now() + wait as i64,
                            },
                        },
                        *r,
                    )
                })
                .collect();
        }
        let targets = match self.route.targets(domain).await {
            Ok(t) => t,
            Err(RouteError::Permanent(why)) => return all("-", &why, AttemptOutcome::Failed),
            Err(RouteError::Temporary(why)) => {
                return rcpts
                    .iter()
                    .map(|r| (self.deferral(m, r, "-", &why), *r))
                    .collect();
            }
        };
        let mut last = Failure {
            reply: None,
            message: format!("no host to try for {domain}"),
            permanent: false,
        };
        for target in &targets {
            match self.try_target(m, target, rcpts, content).await {
                Ok(results) => return results,
                Err(f) => {
                    tracing::info!(queue_id = %m.queue_id, host = %target.name, addr = %target.addr, reason = %f, "host failed; trying the next one");
                    last = f;
                }
            }
        }
        let host = targets.last().map_or("-".to_string(), |t| t.shown());
        rcpts
            .iter()
            .map(|r| (self.deferral(m, r, &host, &last.to_string()), *r))
            .collect()
    }

    /// A new session to an MX host, for the TLS report of the recipients' domain (RFC 8460:
    /// the policy domain). Smarthosts and fixed transports are not the domain's MX: not
    /// reported.
    fn observe_tls(&self, m: &DueMessage, target: &Target, outcome: Result<bool, &str>) {
        if self.route.smarthost.is_some() {
            return;
        }
        let Some(domain) = m
            .due
            .first()
            .and_then(|r| r.address.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase())
        else {
            return;
        };
        if self.route.transports.contains_key(&domain) {
            return;
        }
        use facteur_trust::tlsrpt::PolicyType;
        let policy = match target.policy {
            crate::route::Policy::Dane | crate::route::Policy::DaneUnusable => PolicyType::Tlsa,
            crate::route::Policy::MtaSts => PolicyType::Sts,
            crate::route::Policy::Default => PolicyType::NoPolicyFound,
        };
        self.tls_report
            .session(&domain, policy, &target.name, target.addr.ip(), outcome);
    }

    /// One host: the whole transaction. Err when the host could not take a decision (connection,
    /// greeting, TLS, a 4xx to MAIL): the next host is tried.
    async fn try_target<'a>(
        &self,
        m: &DueMessage,
        target: &Target,
        rcpts: &[&'a DueRecipient],
        content: &[u8],
    ) -> Result<Vec<(Attempt, &'a DueRecipient)>, Failure> {
        let mut settings = self.client.clone();
        settings.tls = target.tls;
        if let Some(config) = &target.verified {
            settings.verified = config.clone();
        }
        let key = format!(
            "{}|{}|{:?}|{:?}|{}",
            target.addr,
            target.name,
            target.tls,
            target.policy,
            target.auth.as_ref().map_or("", |(u, _)| u.as_str())
        );
        let mut pooled = self.pool.take(&key);
        let params: Vec<RecipientParams<'_>> = rcpts
            .iter()
            .map(|r| RecipientParams {
                address: &r.address,
                notify: &r.notify,
                orcpt: r.orcpt.as_deref(),
            })
            .collect();
        let env = Envelope {
            from: &m.message.sender,
            recipients: &params,
            envid: m.message.envid.as_deref(),
            ret_full: m.message.ret_full,
            eight_bit: m.message.body_8bit,
            smtputf8: m.message.smtputf8,
        };
        let (conn, sent) = loop {
            let (mut conn, reused) = match pooled.take() {
                Some(c) => (c, true),
                None => {
                    let opened = Connection::open(target.addr, &target.name, &settings).await;
                    self.observe_tls(
                        m,
                        target,
                        opened
                            .as_ref()
                            .map(|c| c.tls)
                            .map_err(|f| f.message.as_str()),
                    );
                    let mut c = opened?;
                    if let Some((user, password)) = &target.auth {
                        c.authenticate(user, password).await?;
                    }
                    (c, false)
                }
            };
            match conn.send(&env, content).await {
                // A kept connection the server has closed meanwhile: a fresh one.
                Err(f) if reused && f.reply.is_none() && !f.permanent => continue,
                other => break (conn, other),
            }
        };
        let host = format!(
            "{} ({})",
            conn.peer,
            target.policy.describe(target.tls, conn.tls)
        );
        let sent = match sent {
            Ok(s) => s,
            Err(f) if f.permanent => {
                // A 5xx to MAIL (or a size/SMTPUTF8 impossibility): final for every recipient.
                return Ok(rcpts
                    .iter()
                    .map(|r| {
                        (
                            Attempt {
                                position: r.position,
                                host: host.clone(),
                                reply: f.to_string(),
                                outcome: AttemptOutcome::Failed,
                            },
                            *r,
                        )
                    })
                    .collect());
            }
            Err(f) => return Err(f),
        };
        // Kept for the next message to this host (RFC 5321 §3.3: several transactions per
        // session); closed after a few idle seconds. The quit, when there is one, comes after
        // our record, so a crash between the remote 250 and the record stays a short window.
        self.pool.put(key, conn);
        let mut out = Vec::with_capacity(rcpts.len());
        for (r, rcpt_reply) in rcpts.iter().zip(&sent.rcpt) {
            let (reply, outcome) = match (rcpt_reply, &sent.data) {
                (Err(refusal), _) if refusal.is_permanent() => {
                    (refusal.to_string(), AttemptOutcome::Failed)
                }
                (Err(refusal), _) => {
                    let d = self.deferral(m, r, &host, &refusal.to_string());
                    out.push((d, *r));
                    continue;
                }
                (Ok(_), Some(data)) if data.is_positive() => {
                    (data.to_string(), AttemptOutcome::Sent)
                }
                (Ok(_), Some(data)) if data.is_permanent() => {
                    (data.to_string(), AttemptOutcome::Failed)
                }
                (Ok(_), Some(data)) => {
                    let d = self.deferral(m, r, &host, &data.to_string());
                    out.push((d, *r));
                    continue;
                }
                (Ok(_), None) => {
                    let d = self.deferral(m, r, &host, "no reply to the message data");
                    out.push((d, *r));
                    continue;
                }
            };
            out.push((
                Attempt {
                    position: r.position,
                    host: host.clone(),
                    reply,
                    outcome,
                },
                *r,
            ));
        }
        Ok(out)
    }

    /// Counts a message to `domain` in the current minute; Some(seconds to wait) when the
    /// minute's allowance (`queue.per_destination_rate`) is used up.
    fn over_rate(&self, domain: &str) -> Option<u64> {
        let rate = self.options.per_destination_rate;
        if rate == 0 {
            return None;
        }
        let minute = now().div_euclid(60);
        let mut map = self.rates.lock().expect("destination rates");
        let (at, count) = map.entry(domain.to_string()).or_insert((minute, 0));
        if *at != minute {
            (*at, *count) = (minute, 0);
        }
        if *count >= rate {
            return Some((60 - now().rem_euclid(60)) as u64);
        }
        *count += 1;
        None
    }

    /// A temporary failure: the next attempt on the schedule, or failure once the message is
    /// older than `max_age_hours`.
    fn deferral(&self, m: &DueMessage, r: &DueRecipient, host: &str, reply: &str) -> Attempt {
        let schedule = &self.options.retry_secs;
        let wait = schedule
            .get(r.attempts as usize)
            .or(schedule.last())
            .copied()
            .unwrap_or(300) as i64;
        let next = now() + wait;
        let expired = next > m.created + self.options.max_age_hours as i64 * 3600;
        Attempt {
            position: r.position,
            host: host.to_string(),
            reply: if expired {
                format!(
                    "{reply} (gave up: in the queue for more than {} hours)",
                    self.options.max_age_hours
                )
            } else {
                reply.to_string()
            },
            outcome: if expired {
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Deferred { next_attempt: next }
            },
        }
    }

    async fn bounce(&self, m: &DueMessage, failed: &[(Attempt, &DueRecipient)], content: &[u8]) {
        send_dsn(
            &self.store,
            &self.directory,
            &self.hostname,
            m,
            failed,
            content,
            "failed",
        )
        .await;
    }
}

/// One DSN to the sender for these failed recipients (RFC 3464), unless the sender is null
/// (RFC 5321 §6.1: no bounce of a bounce) or they asked for none (NOTIFY=NEVER, or NOTIFY
/// without FAILURE, RFC 3461 §4.1).
pub async fn send_dsn(
    store: &Store,
    directory: &facteur_directory::Directory,
    hostname: &str,
    m: &DueMessage,
    failed: &[(Attempt, &DueRecipient)],
    content: &[u8],
    action: &str,
) {
    let sender = &m.message.sender;
    if sender.is_empty() {
        return;
    }
    // RFC 3461 §4.1: NOTIFY names what the sender wants to hear about; without it, failures
    // and (as Postfix does) delays.
    let keyword = if action == "delayed" {
        "DELAY"
    } else {
        "FAILURE"
    };
    let wanted: Vec<&(Attempt, &DueRecipient)> = failed
        .iter()
        .filter(|(_, r)| r.notify.is_empty() || r.notify.iter().any(|n| n == keyword))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let reports: Vec<dsn::RecipientReport<'_>> = wanted
        .iter()
        .map(|(a, r)| dsn::RecipientReport {
            address: &r.address,
            orcpt: r.orcpt.as_deref(),
            action,
            remote_mta: (a.host != "-").then_some(a.host.as_str()),
            diagnostic: &a.reply,
        })
        .collect();
    let queue_id = facteur_model::queue_id();
    let date = facteur_model::calendar::rfc5322_date(std::time::SystemTime::now());
    let body = dsn::build(&dsn::Report {
        hostname,
        to: sender,
        queue_id: &m.queue_id,
        envid: m.message.envid.as_deref(),
        arrival: &facteur_model::calendar::rfc5322_date(
            std::time::UNIX_EPOCH + Duration::from_secs(m.created.max(0) as u64),
        ),
        date: &date,
        message_id: &format!("{queue_id}.dsn@{hostname}"),
        recipients: &reports,
        original: content,
        full: m.message.ret_full == Some(true),
    });
    match crate::submit::submit(store, directory, hostname, &queue_id, "", sender, &body).await {
        Ok(()) => {
            tracing::info!(queue_id = %m.queue_id, dsn = %queue_id, to = %format!("<{sender}>"),
            recipients = reports.len(), "{}", if action == "delayed" { "delay notice sent to the sender" } else { "bounce sent to the sender" })
        }
        Err(e) => tracing::error!(queue_id = %m.queue_id, to = %format!("<{sender}>"), error = %e,
            "cannot send the bounce"),
    }
}

/// A message with no recipient left to try: the DSN for its failed recipients, then removal.
/// Also the end of `bounce_now`.
async fn finish(
    store: &Store,
    directory: &facteur_directory::Directory,
    hostname: &str,
    queue_id: &str,
) {
    let Ok(Some(entry)) = store.queue_entry(queue_id) else {
        return;
    };
    let failed: Vec<DueRecipient> = entry
        .message
        .recipients
        .iter()
        .zip(&entry.states)
        .enumerate()
        .filter(|(_, (_, st))| st.state == "failed")
        .map(|(i, (r, st))| DueRecipient {
            position: i as u32,
            address: r.address.clone(),
            attempts: st.attempts,
            notify: r.notify.clone(),
            orcpt: r.orcpt.clone(),
            delay_notified: true,
        })
        .collect();
    if !failed.is_empty() {
        let replies: Vec<Attempt> = failed
            .iter()
            .zip(entry.states.iter().filter(|st| st.state == "failed"))
            .map(|(r, st)| Attempt {
                position: r.position,
                host: "-".into(),
                reply: st.last_reply.clone().unwrap_or_default(),
                outcome: AttemptOutcome::Failed,
            })
            .collect();
        let content = store
            .queue_content(queue_id)
            .ok()
            .flatten()
            .unwrap_or_default();
        let m = DueMessage {
            queue_id: queue_id.to_string(),
            message: entry.message.clone(),
            created: entry.created,
            size: entry.size,
            due: failed.clone(),
        };
        let pairs: Vec<(Attempt, &DueRecipient)> = replies.into_iter().zip(&failed).collect();
        send_dsn(store, directory, hostname, &m, &pairs, &content, "failed").await;
    }
    match store.queue_remove(queue_id) {
        Ok(_) => tracing::info!(%queue_id, "removed from the queue"),
        Err(e) => tracing::error!(%queue_id, error = %e, "cannot remove"),
    }
}

/// `facteur queue bounce ID`: every waiting recipient fails now with `reason`, the sender gets
/// a DSN, and the message leaves the queue. False when there is no such message.
pub async fn bounce_now(
    store: &Store,
    directory: &facteur_directory::Directory,
    hostname: &str,
    queue_id: &str,
    reason: &str,
) -> Result<bool, facteur_store::StoreError> {
    if store.queue_fail_all(queue_id, reason)? == 0
        && !store.queue_finished()?.iter().any(|id| id == queue_id)
    {
        return Ok(false);
    }
    finish(store, directory, hostname, queue_id).await;
    Ok(true)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
