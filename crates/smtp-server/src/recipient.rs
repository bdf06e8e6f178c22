//! Answering RCPT: on the MX, local domains only (never a relay), known users only, quota
//! respected; on submission, an authenticated client's other recipients go to the queue.
//!
//! RFC 5321 §3.6.1 and the seeds' admin guides: mail for other domains from an unauthenticated
//! client is refused with `550 5.7.1`; unknown local users get `550 5.1.1` (RFC 3463 X.1.1).

use crate::Context;
use facteur_directory::{Mailbox, Resolution};
use facteur_model::{Address, Domain};
use facteur_smtp_session::{RcptTo, Verdict, reply};

/// Where an accepted recipient's copy goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// Local delivery to these accounts.
    Local(Vec<Mailbox>),
    /// Another domain: the outbound queue (submission only).
    Remote,
    /// An alias that forwards outside: copies for `local` accounts, and `remote` addresses
    /// queued (with the envelope sender rewritten by SRS on the MX). Also a bounce coming back
    /// to one of our SRS addresses, on its way to the original sender.
    Forward {
        local: Vec<Mailbox>,
        remote: Vec<String>,
    },
}

impl Route {
    /// The accounts that get a copy here, if any.
    pub fn local(&self) -> Option<&Vec<Mailbox>> {
        match self {
            Route::Local(m) => Some(m),
            Route::Forward { local, .. } if !local.is_empty() => Some(local),
            _ => None,
        }
    }
}

pub fn check(ctx: &Context, rcpt: &RcptTo, declared_size: Option<u64>) -> Verdict<Route> {
    let m = &rcpt.recipient;
    let shown = m.to_string();
    let resolution = if m.domain.is_empty() {
        postmaster(ctx)
    } else {
        match Domain::parse(&m.domain) {
            // Address literals and the like are never local here.
            None => Ok(Resolution::NotLocal),
            Some(domain) => ctx.directory.resolve(&Address {
                local: m.local.clone(),
                domain,
            }),
        }
    };
    let mailboxes = match resolution {
        Ok(Resolution::Deliver(mailboxes)) => mailboxes,
        Ok(Resolution::Forward { local, remote }) => {
            return Verdict::Accept(Route::Forward { local, remote });
        }
        // A bounce (or reply) to an address our SRS rewriting made: back to the original
        // sender, if the address is genuine and recent.
        Ok(Resolution::UnknownUser)
            if ctx.srs.is_some() && facteur_trust::srs::Srs::is_srs(&shown) =>
        {
            let srs = ctx
                .srs
                .as_ref()
                .expect("checked above")
                .for_domain(&m.domain);
            return match srs.reverse(&shown) {
                Ok(original) => {
                    tracing::info!(recipient = %shown, to = %original, "SRS address: forwarded back to the original sender");
                    Verdict::Accept(Route::Forward {
                        local: Vec::new(),
                        remote: vec![original],
                    })
                }
                Err(e) => {
                    tracing::info!(recipient = %shown, reason = %e, "SRS address refused");
                    Verdict::Reject(reply::no_such_user(&shown))
                }
            };
        }
        Ok(Resolution::UnknownUser) => return Verdict::Reject(reply::no_such_user(&shown)),
        // RFC 6409 §4.3: an authenticated submission may go anywhere. An address literal is
        // not routed (a valid domain is needed for MX lookup).
        Ok(Resolution::NotLocal)
            if ctx.role.is_submission() && Domain::parse(&m.domain).is_some() =>
        {
            return Verdict::Accept(Route::Remote);
        }
        Ok(Resolution::NotLocal | Resolution::RelayAttempt) => {
            return Verdict::Reject(reply::relay_denied(&shown));
        }
        Err(e) => {
            tracing::error!(recipient = %shown, error = %e, "directory lookup failed");
            return Verdict::Reject(reply::local_error());
        }
    };
    if let [single] = mailboxes.as_slice() {
        match ctx.directory.quota(single) {
            // RFC 1870 §5: with SIZE declared, refuse what cannot fit; otherwise refuse once full.
            Ok(Some((used, quota))) if quota > 0 && used + declared_size.unwrap_or(1) > quota => {
                return Verdict::Reject(reply::over_quota(&shown));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(recipient = %shown, error = %e, "quota lookup failed");
                return Verdict::Reject(reply::local_error());
            }
        }
    }
    Verdict::Accept(Route::Local(mailboxes))
}

/// RFC 5321 §4.5.1: `<Postmaster>` without a domain reaches the postmaster of this host, or of
/// the first local domain that has one.
fn postmaster(ctx: &Context) -> facteur_directory::Result<Resolution> {
    let mut domains = vec![ctx.hostname.clone()];
    domains.extend(ctx.directory.list_domains()?);
    for d in domains {
        let Some(domain) = Domain::parse(&d) else {
            continue;
        };
        if let Resolution::Deliver(m) = ctx.directory.resolve(&Address {
            local: "postmaster".into(),
            domain,
        })? {
            return Ok(Resolution::Deliver(m));
        }
    }
    Ok(Resolution::UnknownUser)
}
