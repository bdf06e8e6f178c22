//! Messages facteur writes itself (DSNs, delay notices): delivered like any other, into the
//! local mailbox when the recipient is local, through the queue otherwise, from the null
//! reverse path.

use facteur_delivery::{Envelope, Outcome, Recipient};
use facteur_directory::{Directory, Resolution};
use facteur_model::Address;
use facteur_store::{QueuedMessage, QueuedRecipient, Store};

/// Files or queues `body` for `to`, from `from` (empty: the null sender), under a Received
/// header naming this server (RFC 5321 §4.4).
pub async fn submit(
    store: &Store,
    directory: &Directory,
    hostname: &str,
    queue_id: &str,
    from: &str,
    to: &str,
    body: &[u8],
) -> Result<(), String> {
    let received = format!(
        "Received: by {hostname} (facteur) id {queue_id}\r\n\tfor <{to}>; {}\r\n",
        facteur_model::calendar::rfc5322_date(std::time::SystemTime::now())
    );
    let mut writer = store.blob_writer();
    writer
        .write(received.as_bytes())
        .map_err(|e| e.to_string())?;
    writer.write(body).map_err(|e| e.to_string())?;
    let blob = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // A bounce for a message this server forwarded goes to the SRS address it made: back to
    // the original sender instead (the same reversal the MX does for bounces from outside).
    let reversed = srs_original(store, to);
    let to = reversed.as_deref().unwrap_or(to);
    let address = Address::parse(to).ok_or_else(|| format!("`{to}` is not an address"))?;
    let queue = |addresses: Vec<String>| {
        Some(QueuedMessage {
            queue_id: queue_id.to_string(),
            sender: from.to_string(),
            recipients: addresses
                .into_iter()
                .map(|address| QueuedRecipient {
                    address,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    };
    let (recipients, outbound) = match directory.resolve(&address).map_err(|e| e.to_string())? {
        Resolution::Deliver(mailboxes) => (vec![Recipient { mailboxes }], None),
        Resolution::NotLocal => (Vec::new(), queue(vec![to.to_string()])),
        // An alias that forwards: its local copies, and the rest through the queue.
        Resolution::Forward { local, remote } => {
            let recipients = if local.is_empty() {
                Vec::new()
            } else {
                vec![Recipient { mailboxes: local }]
            };
            (recipients, queue(remote))
        }
        Resolution::UnknownUser | Resolution::RelayAttempt => {
            return Err(format!("{to} is a local address that no account receives"));
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let envelope = Envelope {
        return_path: from,
        queue_id,
        internal_date: now,
        enforce_quota: false,
        added_fields: "",
        junk: false,
        per_account: &[],
    };
    let report = facteur_delivery::deliver_and_queue(store, blob, &envelope, &recipients, outbound)
        .await
        .map_err(|e| e.to_string())?;
    match report.outcomes.iter().find(|o| **o != Outcome::Delivered) {
        Some(o) => Err(format!("{o:?}")),
        None => Ok(()),
    }
}

/// The original sender behind one of our SRS addresses (RFC-less SRS scheme, `trust::srs`),
/// when `to` is one and its hash and age check out.
fn srs_original(store: &Store, to: &str) -> Option<String> {
    if !facteur_trust::srs::Srs::is_srs(to) {
        return None;
    }
    let domain = Address::parse(to)?.domain;
    if !store.domain_exists(&domain).ok()? {
        return None;
    }
    let secret = store.server_secret_get("srs").ok()??;
    facteur_trust::srs::Srs::new(vec![secret], domain.as_str(), 21)
        .reverse(to)
        .ok()
}
