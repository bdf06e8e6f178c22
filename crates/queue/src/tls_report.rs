//! What outbound TLS did, per recipient domain and day, for TLS reports (RFC 8460): each
//! session to an MX host counts as a success (TLS as the policy asks) or a failure of a
//! TLS-related kind; the totals are kept in memory and added to the store once a minute.

use facteur_store::Store;
use facteur_trust::tlsrpt::{Observation, PolicyType, ResultType, classify};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the totals go to the store.
const FLUSH: Duration = Duration::from_secs(60);

/// Session counts keyed by (day, policy domain, observation JSON with count 0).
type Totals = HashMap<(i64, String, String), u64>;

/// Totals since the last flush, and when that was.
#[derive(Default)]
pub struct Recorder {
    totals: Mutex<(Totals, Option<Instant>)>,
}

impl Recorder {
    /// One session to `mx` at `ip` for `domain` under `policy`: `outcome` is Ok(true) for TLS,
    /// Ok(false) for a session without TLS, Err(text) for a failure before the transaction.
    pub fn session(
        &self,
        domain: &str,
        policy: PolicyType,
        mx: &str,
        ip: std::net::IpAddr,
        outcome: Result<bool, &str>,
    ) {
        let (result, detail) = match outcome {
            Ok(true) => (ResultType::Success, String::new()),
            Ok(false) => (ResultType::StarttlsNotSupported, String::new()),
            Err(text) => match classify(policy, text) {
                Some(r) => (r, text.to_string()),
                // Refused connections, timeouts: not a TLS matter (RFC 8460 §4.3.2).
                None => return,
            },
        };
        let observation = Observation {
            policy_domain: domain.to_ascii_lowercase(),
            policy_type: policy,
            policy_strings: Vec::new(),
            mx_host: (result != ResultType::Success).then(|| mx.to_string()),
            receiving_ip: (result != ResultType::Success).then_some(ip),
            result,
            count: 0,
            detail,
        };
        let Ok(key) = serde_json::to_string(&observation) else {
            return;
        };
        let day = facteur_model::calendar::unix_now().div_euclid(86_400);
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        *totals
            .0
            .entry((day, observation.policy_domain, key))
            .or_insert(0) += 1;
    }

    /// Adds the totals to the store when a minute has passed since the last time (or `now`).
    pub async fn flush(&self, store: &Store, now: bool) {
        let rows: Vec<(i64, String, String, u64)> = {
            let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
            let last = *totals.1.get_or_insert_with(Instant::now);
            if totals.0.is_empty() || (!now && last.elapsed() < FLUSH) {
                return;
            }
            totals.1 = Some(Instant::now());
            totals
                .0
                .drain()
                .map(|((day, domain, key), count)| (day, domain, key, count))
                .collect()
        };
        let store = store.clone();
        let added = tokio::task::spawn_blocking(move || store.tls_results_add(&rows)).await;
        if let Ok(Err(e)) | Err(e) =
            added.map_err(|e| facteur_store::StoreError::Conflict(e.to_string()))
        {
            tracing::warn!(error = %e, "cannot keep the TLS report totals");
        }
    }
}
