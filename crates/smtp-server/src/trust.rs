//! Email authentication in the SMTP roles: the MX checks what it receives (SPF, DKIM, DMARC,
//! ARC, iprev; `facteur_trust::inbound`) before it accepts the message, and submission signs
//! what local domains send (DKIM, `facteur_trust::dkim`).

use facteur_smtp_session::reply::Reply;
use facteur_store::{BlobWriter, Store};
use facteur_trust::dkim::Signer;
use facteur_trust::inbound::{Action, Checker, Input};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// The signer submission uses, shared with the task that reloads keys: replaced whole.
#[derive(Clone, Default)]
pub struct DkimSigning(Arc<RwLock<Option<Arc<Signer>>>>);

impl DkimSigning {
    pub fn set(&self, signer: Option<Signer>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = signer.map(Arc::new);
    }

    pub fn get(&self) -> Option<Arc<Signer>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the checks decided for a message about to be accepted on the MX.
pub(crate) struct Checked {
    /// The Authentication-Results field for each local copy.
    pub added_fields: String,
    /// File into Junk (DMARC quarantine).
    pub junk: bool,
    /// The results, for the filters after.
    pub results: facteur_model::authresults::AuthResults,
    /// Octets before the message as received in the writer now (our Received field, and an
    /// ARC set when sealed).
    pub prefix_len: usize,
}

/// The MX's checks on the message in `writer` (our Received field first, `trace_len` octets;
/// the rest as received). Refusals come back as the reply to give; a forged
/// Authentication-Results claiming `hostname` is removed by rewriting the writer. When an
/// alias of `forward.0` forwards the message outside, it is ARC-sealed (RFC 8617) with that
/// domain's DKIM key from `forward.1`, so the next hop can see what this one verified.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn check_inbound(
    checker: &Checker,
    store: &Store,
    hostname: &str,
    writer: &mut BlobWriter,
    trace_len: usize,
    client: (IpAddr, &str, &str),
    queue_id: &str,
    forward: Option<(&str, Arc<Signer>)>,
) -> Result<Checked, Reply> {
    let local_error = |e: &dyn std::fmt::Display| {
        tracing::error!(%queue_id, error = %e, "cannot read the message back for its checks");
        facteur_smtp_session::reply::local_error()
    };
    // Read in place (the body is usually in memory); a rewrite replaces the writer after.
    let content = writer.contents().map_err(|e| local_error(&e))?;
    let (trace, message) = content.split_at(trace_len.min(content.len()));
    let (ip, helo, mail_from) = client;
    let verdict = checker
        .check(&Input {
            ip,
            helo,
            mail_from,
            message,
        })
        .await;
    tracing::info!(%queue_id, remote = %ip, from = %format!("<{mail_from}>"), result = %verdict.summary, "authentication");
    if let Some(d) = &verdict.dmarc
        && !d.rua.is_empty()
    {
        note_dmarc(store, d, &verdict.action);
    }
    match verdict.action {
        Action::Reject { code, status, text } | Action::Defer { code, status, text } => {
            return Err(Reply::new(code, parse_status(status), text));
        }
        Action::Junk { .. } | Action::Accept => {}
    }
    // RFC 8601 §5: a field from outside claiming to be ours must not survive.
    let clean = facteur_trust::inbound::remove_forged_results(message, hostname);
    if clean.is_some() {
        tracing::info!(%queue_id, "removed an Authentication-Results field forged with this server's name");
    }
    let message = clean.as_deref().unwrap_or(message);
    let mut seal = None;
    if let Some((domain, signer)) = forward {
        let input = Input {
            ip,
            helo,
            mail_from,
            message,
        };
        match checker.arc_seal(&input, &signer, domain).await {
            Ok(Some(set)) => {
                tracing::info!(%queue_id, %domain, "ARC-sealed for forwarding");
                seal = Some(set);
            }
            Ok(None) => {
                tracing::info!(%queue_id, %domain, "not ARC-sealed: no RSA key for the domain, or a failed chain")
            }
            Err(e) => tracing::warn!(%queue_id, %domain, error = %e, "cannot ARC-seal"),
        }
    }
    let prefix_len = trace.len() + seal.as_ref().map_or(0, |s| s.len());
    let fresh = if clean.is_some() || seal.is_some() {
        let mut fresh = store.blob_writer();
        if let Some(set) = &seal {
            fresh.write(set).map_err(|e| local_error(&e))?;
        }
        fresh.write(trace).map_err(|e| local_error(&e))?;
        fresh.write(message).map_err(|e| local_error(&e))?;
        Some(fresh)
    } else {
        None
    };
    drop(content);
    if let Some(fresh) = fresh {
        *writer = fresh;
    }
    Ok(Checked {
        added_fields: verdict.header,
        junk: matches!(verdict.action, Action::Junk { .. }),
        results: verdict.results,
        prefix_len,
    })
}

/// Submission: prepends the DKIM signatures of the From: domain, when it has keys. Signing
/// (RSA) runs on the blocking pool. A failure to sign is logged and the message goes unsigned:
/// refusing it would not help the sender.
pub(crate) async fn sign(
    signer: Arc<Signer>,
    store: &Store,
    writer: BlobWriter,
    domain: &str,
    queue_id: &str,
) -> Result<BlobWriter, Reply> {
    if !signer.signs_for(domain) {
        return Ok(writer);
    }
    let store = store.clone();
    let d = domain.to_string();
    let mut writer = writer;
    let signed = tokio::task::spawn_blocking(move || {
        // The content is read in place; the signed copy is a new writer.
        let mut signed_copy = || -> Result<Option<BlobWriter>, String> {
            let content = writer.contents().map_err(|e| e.to_string())?;
            let fields = signer.sign(&d, &content).map_err(|e| e.to_string())?;
            if fields.is_empty() {
                return Ok(None);
            }
            let mut fresh = store.blob_writer();
            fresh
                .write(&fields)
                .and_then(|_| fresh.write(&content))
                .map_err(|e| e.to_string())?;
            Ok(Some(fresh))
        };
        match signed_copy() {
            Ok(Some(fresh)) => (fresh, Ok(true)),
            Ok(None) => (writer, Ok(false)),
            Err(e) => (writer, Err(e)),
        }
    })
    .await;
    match signed {
        Ok((writer, Ok(done))) => {
            if done {
                tracing::debug!(%queue_id, %domain, "DKIM-signed");
            }
            Ok(writer)
        }
        Ok((writer, Err(e))) => {
            tracing::error!(%queue_id, %domain, error = %e, "cannot DKIM-sign; sending unsigned");
            Ok(writer)
        }
        Err(e) => {
            tracing::error!(%queue_id, error = %e, "the signing task failed");
            Err(facteur_smtp_session::reply::local_error())
        }
    }
}

/// Keeps the evaluation for the domain's aggregate report (RFC 7489 §7.2), with the
/// disposition this server applied.
fn note_dmarc(store: &Store, d: &facteur_trust::inbound::DmarcEvaluation, action: &Action) {
    let applied = match action {
        Action::Reject { status, .. } if *status == "5.7.26" => "reject",
        Action::Junk { .. } => "quarantine",
        _ => "none",
    };
    let evaluation = facteur_trust::report::Evaluation {
        at: facteur_model::calendar::unix_now(),
        source_ip: d.source_ip,
        header_from: d.header_from.clone(),
        envelope_from: d.envelope_from.clone(),
        policy_domain: d.policy_domain.clone(),
        adkim: d.adkim,
        aspf: d.aspf,
        p: d.p.clone(),
        sp: d.sp.clone(),
        pct: d.pct,
        rua: d.rua.clone(),
        disposition: applied.to_string(),
        dkim_aligned: d.dkim_aligned,
        spf_aligned: d.spf_aligned,
        dkim: d.dkim.clone(),
        spf: d.spf.clone(),
    };
    let kept = serde_json::to_string(&evaluation)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            store
                .dmarc_note(evaluation.at, &d.policy_domain, json)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = kept {
        tracing::warn!(error = %e, "cannot keep a DMARC evaluation for the report");
    }
}

/// "5.7.26" as a status; None when malformed.
fn parse_status(status: &str) -> Option<facteur_smtp_session::reply::Status> {
    let mut parts = status.split('.').map(|p| p.parse::<u16>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => {
            Some(facteur_smtp_session::reply::Status(a as u8, b, c))
        }
        _ => None,
    }
}
