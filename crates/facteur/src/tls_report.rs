//! SMTP TLS reports (RFC 8460) this server sends: once a day, for each recipient domain that
//! publishes `_smtp._tls.DOMAIN` with a `mailto:` rua, what TLS did when delivering to it the
//! days before (the queue's totals, `queue::tls_report`).

use facteur_directory::Directory;
use facteur_store::Store;
use facteur_trust::tlsrpt::{self, Observation, Reporter};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every hour, reports the UTC days that have ended.
pub async fn run(
    store: Store,
    directory: Directory,
    resolver: facteur_dns::Resolver,
    hostname: String,
    shutdown: facteur_net::Shutdown,
) {
    loop {
        let today = facteur_model::calendar::unix_now().div_euclid(86_400);
        for line in send(&store, &directory, &resolver, &hostname, today).await {
            tracing::info!("{line}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.triggered() => return,
        }
    }
}

/// Sends the reports of the days before `before_day`; a line per report for the log. A domain
/// without a usable record is dropped from the totals all the same (nobody asked).
pub async fn send(
    store: &Store,
    directory: &Directory,
    resolver: &facteur_dns::Resolver,
    hostname: &str,
    before_day: i64,
) -> Vec<String> {
    let rows = match store.tls_results_before(before_day) {
        Ok(r) => r,
        Err(e) => return vec![format!("TLS reports: cannot read the totals: {e}")],
    };
    let mut by_domain: BTreeMap<String, (i64, i64, Vec<Observation>)> = BTreeMap::new();
    for (day, domain, json, count) in rows {
        let Ok(mut o) = serde_json::from_str::<Observation>(&json) else {
            continue;
        };
        o.count = count;
        let entry = by_domain.entry(domain).or_insert((day, day, Vec::new()));
        entry.0 = entry.0.min(day);
        entry.1 = entry.1.max(day);
        entry.2.push(o);
    }
    let reporter = Reporter {
        org_name: hostname.to_string(),
        contact: format!("postmaster@{hostname}"),
        hostname: hostname.to_string(),
    };
    let mut lines = Vec::new();
    for (domain, (first, last, observations)) in by_domain {
        let records = resolver
            .txt(&format!("_smtp._tls.{domain}"))
            .await
            .unwrap_or_default();
        if let Some(rua) = tlsrpt::rua(&records) {
            let (begin, end) = (first * 86_400, (last + 1) * 86_400 - 1);
            match tlsrpt::aggregate(&reporter, &domain, begin, end, &observations) {
                Ok(report) => {
                    for uri in rua {
                        let Some(to) = uri.strip_prefix("mailto:") else {
                            lines.push(format!(
                                "TLS report for {domain} not sent to {uri}: only mailto: is supported"
                            ));
                            continue;
                        };
                        let body = tlsrpt::message(
                            &reporter,
                            &domain,
                            &report,
                            to,
                            std::time::SystemTime::now(),
                        );
                        let queue_id = facteur_model::queue_id();
                        match facteur_queue::submit::submit(
                            store, directory, hostname, &queue_id, "", to, &body,
                        )
                        .await
                        {
                            Ok(()) => lines.push(format!(
                                "TLS report {} for {domain} sent to {to} queue_id={queue_id}",
                                report.report_id
                            )),
                            Err(e) => lines.push(format!("TLS report for {domain} to {to}: {e}")),
                        }
                    }
                }
                Err(e) => lines.push(format!("TLS report for {domain}: {e}")),
            }
        }
        if let Err(e) = store.tls_results_reported(&domain, before_day) {
            lines.push(format!(
                "TLS report for {domain}: cannot drop the totals: {e}"
            ));
        }
    }
    lines
}
