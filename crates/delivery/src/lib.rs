//! Local delivery: one accepted message, filed durably into the INBOX of every account its
//! recipients resolved to.
//!
//! - The message body is one blob for all copies; each copy gets its own prefix with
//!   `Return-Path` (RFC 5321 §4.4) and `Delivered-To` (the final account, as Postfix and
//!   Dovecot write it), stored beside the copy, not in the blob.
//! - Envelope and MIME structure are parsed once, here, and stored with each copy ([`meta`]).
//! - An account reached through several recipients gets one copy.
#![forbid(unsafe_code)]

pub mod meta;

use facteur_directory::Mailbox;
use facteur_model::AccountId;
use facteur_store::{Blob, DeliverError, NewMessage, QueuedMessage, Store, StoreError, Target};

/// One recipient of the transaction and the accounts it resolved to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub mailboxes: Vec<Mailbox>,
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    OverQuota,
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the transport knows about the message.
pub struct Envelope<'a> {
    /// The reverse path, empty for the null sender.
    pub return_path: &'a str,
    pub queue_id: &'a str,
    pub internal_date: i64,
    /// Refuse a copy that would exceed its account's quota. SMTP checked quotas at RCPT time
    /// and has a single reply for all copies, so it files anyway (one overshoot, as Dovecot's
    /// quota grace); LMTP answers per recipient and enforces.
    pub enforce_quota: bool,
    /// Header fields this server adds to every local copy after `Delivered-To`, each ending
    /// CRLF (the MX's Authentication-Results, RFC 8601 §5); empty for none.
    pub added_fields: &'a str,
    /// File the local copies into each account's Junk mailbox (RFC 6154 `\Junk`) instead of
    /// INBOX: a DMARC `p=quarantine` verdict. An account without one gets it in INBOX.
    pub junk: bool,
    /// Per account: more header fields for its copy only (its spam score, which its own
    /// Bayesian statistics changed), and whether its copy goes into its Junk mailbox.
    pub per_account: &'a [(AccountId, String, bool)],
}

/// The result of filing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One outcome per recipient, in order.
    pub outcomes: Vec<Outcome>,
    /// The message's Message-ID, for logs.
    pub message_id: Option<String>,
}

/// Files the message for every recipient.
pub async fn deliver(
    store: &Store,
    blob: Blob,
    envelope: &Envelope<'_>,
    recipients: &[Recipient],
) -> Result<Report, DeliveryError> {
    deliver_and_queue(store, blob, envelope, recipients, None).await
}

/// Files the message for the local recipients and queues it for the remote ones, in one
/// transaction: the caller's `250` covers both or neither.
pub async fn deliver_and_queue(
    store: &Store,
    blob: Blob,
    envelope: &Envelope<'_>,
    recipients: &[Recipient],
    outbound: Option<QueuedMessage>,
) -> Result<Report, DeliveryError> {
    let content = blob.content()?;
    // A message that only leaves is never read from a mailbox: its header is enough (for the
    // Message-ID in the logs); the full parse is for local copies.
    let meta = if recipients.is_empty() {
        meta::parse_header_only(&content)
    } else {
        meta::parse(&content)
    };
    drop(content);
    let mut targets: Vec<Target> = Vec::new();
    let mut target_of: Vec<Vec<usize>> = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        let mut indexes = Vec::new();
        // A recipient that fans out to several accounts (an alias) never fails on one quota.
        let enforce = envelope.enforce_quota && recipient.mailboxes.len() == 1;
        for mailbox in &recipient.mailboxes {
            let index = match targets.iter().position(|t| t.account == mailbox.account) {
                Some(i) => i,
                None => {
                    let mut prefix = trace_prefix(envelope.return_path, &mailbox.address);
                    prefix.extend_from_slice(envelope.added_fields.as_bytes());
                    let own = envelope
                        .per_account
                        .iter()
                        .find(|(a, _, _)| *a == mailbox.account);
                    if let Some((_, fields, _)) = own {
                        prefix.extend_from_slice(fields.as_bytes());
                    }
                    let junk = envelope.junk || own.is_some_and(|(_, _, junk)| *junk);
                    let folder = if junk {
                        store.special_mailbox(mailbox.account, "junk")?
                    } else {
                        None
                    };
                    targets.push(Target {
                        account: mailbox.account,
                        prefix,
                        enforce_quota: enforce,
                        mailbox: folder,
                        flags: String::new(),
                    });
                    targets.len() - 1
                }
            };
            indexes.push(index);
        }
        target_of.push(indexes);
    }
    // Only local copies are searched: a message that only leaves needs no index.
    let (search_text, search_headers) = if targets.is_empty() {
        (String::new(), String::new())
    } else {
        (meta.search_text, meta.search_headers)
    };
    let message = NewMessage {
        blob,
        internal_date: envelope.internal_date,
        envelope: meta.envelope,
        structure: meta.structure,
        headers: meta.headers,
        search_text,
        search_headers,
        queue_id: envelope.queue_id.to_string(),
    };
    let message_id = meta.message_id;
    let filed = store.deliver_and_queue(message, targets, outbound).await?;
    let outcomes = target_of
        .iter()
        .map(|indexes| {
            indexes
                .iter()
                .map(|&i| match &filed[i] {
                    Ok(_) => Outcome::Delivered,
                    Err(DeliverError::OverQuota) => Outcome::OverQuota,
                    Err(e) => Outcome::Failed(e.to_string()),
                })
                .find(|o| *o != Outcome::Delivered)
                .unwrap_or(Outcome::Delivered)
        })
        .collect();
    Ok(Report {
        outcomes,
        message_id,
    })
}

/// `Return-Path` and `Delivered-To` for one copy (RFC 5321 §4.4: the return path is added by
/// the final delivery, in angle brackets, empty for the null sender).
pub fn trace_prefix(return_path: &str, delivered_to: &str) -> Vec<u8> {
    format!("Return-Path: <{return_path}>\r\nDelivered-To: {delivered_to}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_has_return_path_and_delivered_to() {
        assert_eq!(
            trace_prefix("", "bob@example.com"),
            b"Return-Path: <>\r\nDelivered-To: bob@example.com\r\n"
        );
    }
}
