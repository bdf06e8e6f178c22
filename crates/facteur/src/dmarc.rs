//! DMARC aggregate reports (RFC 7489 §7.2): the ones this server sends about the mail its MX
//! checked, once a day for the previous UTC day, to each domain's `rua`; and `facteur dmarc
//! reports`, which reads the reports other receivers sent to one of our mailboxes.

use anyhow::bail;
use clap::Subcommand;
use facteur_config::Config;
use facteur_directory::Directory;
use facteur_store::Store;
use facteur_trust::report::{self, Evaluation, Reporter};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum DmarcCommand {
    /// Summarise the aggregate reports received in ACCOUNT's mailbox (default INBOX): per
    /// domain and reporter, how many messages passed, and who sends in your name and fails.
    Reports {
        account: String,
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
    },
    /// Send the pending aggregate reports now, up to this moment, instead of at the next day.
    Send,
}

pub fn dmarc(config: &Config, cmd: DmarcCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = crate::admin::open(config)?;
    let store = dir.store().clone();
    match cmd {
        DmarcCommand::Reports { account, mailbox } => {
            let Some(address) = facteur_model::Address::parse(&account) else {
                bail!("`{account}` is not an address");
            };
            let Some(record) = store.account(&address.domain, &address.folded_local())? else {
                bail!("no account {account}");
            };
            let Some(mb) = store
                .mailboxes(record.id)?
                .into_iter()
                .find(|m| m.name.eq_ignore_ascii_case(&mailbox))
            else {
                bail!("{account} has no mailbox {mailbox}");
            };
            let mut reports = Vec::new();
            let mut unreadable = 0;
            for m in store.messages(mb.id)? {
                let content = store.message_content(mb.id, m.uid)?;
                match report::parse_report_message(&content) {
                    Ok(found) => reports.extend(found),
                    Err(_) => unreadable += 1,
                }
            }
            if reports.is_empty() {
                println!("No DMARC aggregate report in {account}'s {mailbox}.");
            } else {
                print!("{}", report::summary(&reports));
            }
            if unreadable > 0 {
                println!("({unreadable} other message(s) in the mailbox hold no readable report.)");
            }
        }
        DmarcCommand::Send => {
            let resolver = crate::admin::resolver(config);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // Up to and including this second.
            let until = facteur_model::calendar::unix_now() + 1;
            let sent = runtime.block_on(send(
                &store,
                &dir,
                resolver.as_ref(),
                &config.hostname,
                until,
            ));
            for line in &sent {
                println!("{line}");
            }
            if sent.is_empty() {
                println!("No DMARC evaluation waiting to be reported.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every hour, sends the reports of the UTC days that have ended (RFC 7489 §7.2: the default
/// interval is a day).
pub async fn run(
    store: Store,
    directory: Directory,
    resolver: facteur_dns::Resolver,
    hostname: String,
    shutdown: facteur_net::Shutdown,
) {
    loop {
        let now = facteur_model::calendar::unix_now();
        let today = now - now.rem_euclid(86_400);
        for line in send(&store, &directory, Some(&resolver), &hostname, today).await {
            tracing::info!("{line}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.triggered() => return,
        }
    }
}

/// Reports, for each domain with evaluations before `until`, the period since its last report,
/// to every usable `rua` address; returns a line per report for the log.
pub async fn send(
    store: &Store,
    directory: &Directory,
    resolver: Option<&facteur_dns::Resolver>,
    hostname: &str,
    until: i64,
) -> Vec<String> {
    let mut lines = Vec::new();
    let pending = match store.dmarc_pending() {
        Ok(p) => p,
        Err(e) => return vec![format!("DMARC reports: cannot read the evaluations: {e}")],
    };
    let reporter = Reporter {
        org_name: hostname.to_string(),
        email: format!("noreply-dmarc@{hostname}"),
        hostname: hostname.to_string(),
    };
    for (domain, since) in pending {
        let rows = match store.dmarc_evaluations(&domain, until) {
            Ok(r) => r,
            Err(e) => {
                lines.push(format!("DMARC report for {domain}: {e}"));
                continue;
            }
        };
        let evaluations: Vec<Evaluation> = rows
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        let Some(latest) = evaluations.last() else {
            continue;
        };
        let begin = since.max(evaluations.iter().map(|e| e.at).min().unwrap_or(until));
        let end = until - 1;
        if begin > end {
            continue;
        }
        let built = report::aggregate(&reporter, &domain, begin, end, &evaluations);
        let rua = latest.rua.clone();
        match built {
            Ok(r) => {
                for dest in report::destinations(&domain, &rua) {
                    // RFC 7489 §7.1: a destination outside the domain must agree to receive.
                    if let Some(name) = &dest.needs_authorization {
                        let agreed = match resolver {
                            Some(res) => res
                                .txt(name)
                                .await
                                .is_ok_and(|records| report::authorizes(&records)),
                            None => false,
                        };
                        if !agreed {
                            lines.push(format!(
                                "DMARC report for {domain} not sent to {}: no v=DMARC1 record at {name} (RFC 7489 §7.1)",
                                dest.address
                            ));
                            continue;
                        }
                    }
                    if !dest.fits(&r) {
                        lines.push(format!(
                            "DMARC report for {domain} not sent to {}: {} bytes is over its size limit",
                            dest.address,
                            r.size()
                        ));
                        continue;
                    }
                    let body = report::message(
                        &reporter,
                        &domain,
                        &r,
                        &dest.address,
                        std::time::SystemTime::now(),
                    );
                    let queue_id = facteur_model::queue_id();
                    match facteur_queue::submit::submit(
                        store,
                        directory,
                        hostname,
                        &queue_id,
                        "",
                        &dest.address,
                        &body,
                    )
                    .await
                    {
                        Ok(()) => lines.push(format!(
                            "DMARC report {} for {domain} ({} evaluations) sent to {} queue_id={queue_id}",
                            r.report_id,
                            evaluations.len(),
                            dest.address
                        )),
                        Err(e) => lines.push(format!(
                            "DMARC report for {domain} to {}: {e}",
                            dest.address
                        )),
                    }
                }
            }
            Err(e) => lines.push(format!("DMARC report for {domain}: {e}")),
        }
        if let Err(e) = store.dmarc_reported(&domain, until) {
            lines.push(format!("DMARC report for {domain}: cannot record it: {e}"));
        }
    }
    lines
}
