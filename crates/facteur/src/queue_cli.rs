//! `facteur queue ...`: the outbound queue for admins, in the spirit of Postfix's `mailq`,
//! `postqueue -f` and `postsuper -d/-h/-H`, with every remote reply explained. Works on the
//! store directly, while the server runs or not; the server picks up a retry at its next scan
//! (`queue.scan_secs`).

use anyhow::bail;

/// A line on standard output; a reader that went away (`| grep -q`, `| head`) is no error.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
use clap::Subcommand;
use facteur_config::Config;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Every queued message with its recipients, their state and the last reply (like mailq).
    List,
    /// One message: envelope, recipients, every attempt with the host and its reply explained.
    Show { id: String },
    /// Try now instead of at the next scheduled time (like postqueue -f / -i).
    Retry {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Keep a message from being tried until released (like postsuper -h).
    Hold { id: String },
    /// Let a held message be tried again (like postsuper -H).
    Release { id: String },
    /// Remove without telling the sender (like postsuper -d).
    Delete {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Give up now: the sender gets a bounce (DSN) saying the administrator stopped it.
    Bounce { id: String },
}

fn when(secs: i64) -> String {
    facteur_model::calendar::rfc5322_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64),
    )
}

pub fn queue(config: &Config, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = crate::admin::open(config)?;
    let store = dir.store().clone();
    let missing = |id: &str| -> anyhow::Result<ExitCode> {
        bail!("no message {id} in the queue (`facteur queue list` shows them)")
    };
    match cmd {
        QueueCommand::List => {
            let entries = store.queue_entries()?;
            if entries.is_empty() {
                out!("The queue is empty.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut bytes = 0;
            out!("{:<20} {:>9} {:<31} sender", "queue id", "size", "arrived");
            for e in &entries {
                bytes += e.size;
                let held = if e.held { " (held)" } else { "" };
                let sender = if e.message.sender.is_empty() {
                    "<>".to_string()
                } else {
                    format!("<{}>", e.message.sender)
                };
                out!(
                    "{:<20} {:>9} {:<31} {sender}{held}",
                    e.message.queue_id,
                    e.size,
                    when(e.created)
                );
                for st in &e.states {
                    let next = if st.state == "queued" {
                        format!(", next try {}", when(st.next_attempt))
                    } else {
                        String::new()
                    };
                    out!(
                        "    <{}> {} after {} attempt(s){next}",
                        st.address,
                        st.state,
                        st.attempts
                    );
                    if let Some(reply) = &st.last_reply {
                        let e = facteur_queue::explain::explain(reply);
                        out!("        {reply}");
                        out!("        -> {}", e.summary);
                    }
                }
            }
            out!(
                "-- {} Kbytes in {} messages.",
                bytes.div_ceil(1024),
                entries.len()
            );
        }
        QueueCommand::Show { id } => {
            let Some(e) = store.queue_entry(&id)? else {
                return missing(&id);
            };
            let m = &e.message;
            out!("queue id:  {}", m.queue_id);
            out!("arrived:   {}", when(e.created));
            out!("size:      {} bytes", e.size);
            out!("sender:    <{}>", m.sender);
            if let Some(s) = &m.submitter {
                out!("submitted by: {s}");
            }
            if e.held {
                out!("held:      yes (`facteur queue release {id}` lets it go)");
            }
            out!("recipients:");
            for st in &e.states {
                out!(
                    "  <{}>: {}, {} attempt(s){}",
                    st.address,
                    st.state,
                    st.attempts,
                    if st.state == "queued" {
                        format!(", next try {}", when(st.next_attempt))
                    } else {
                        String::new()
                    }
                );
            }
            let attempts = store.queue_attempts(&id)?;
            if attempts.is_empty() {
                out!("attempts:  none yet");
            } else {
                out!("attempts:");
            }
            for a in attempts {
                out!("  {}  <{}>  via {}", when(a.at), a.address, a.host);
                out!("    reply: {}", a.reply);
                // A 5xx from a smarthost refusing our login (or any 5xx the queue chose to
                // retry) leaves the recipient queued: say what the queue does, not what the
                // code class would suggest.
                let still_queued = e
                    .states
                    .iter()
                    .any(|st| st.address == a.address && st.state == "queued");
                for line in facteur_queue::explain::explain(&a.reply).to_text().lines() {
                    match line.strip_prefix("Retried: no") {
                        Some(_) if still_queued => {
                            out!("    Retried: yes, the recipient is still queued: a refusal of");
                            out!(
                                "      this server's own settings (the relay login) is not final."
                            );
                        }
                        _ => out!("    {line}"),
                    }
                }
            }
        }
        QueueCommand::Retry { id, all } => {
            let n = match (id, all) {
                (Some(id), false) => store.queue_retry_now(Some(&id))?,
                (None, true) => store.queue_retry_now(None)?,
                _ => bail!("name a queue id, or --all"),
            };
            out!(
                "{n} recipient(s) will be tried at the server's next look at the queue (within queue.scan_secs)."
            );
        }
        QueueCommand::Hold { id } => {
            if !store.queue_hold(&id, true)? {
                return missing(&id);
            }
            out!("{id} is held.");
        }
        QueueCommand::Release { id } => {
            if !store.queue_hold(&id, false)? {
                return missing(&id);
            }
            out!("{id} is released.");
        }
        QueueCommand::Delete { id, all } => match (id, all) {
            (Some(id), false) => {
                if !store.queue_remove(&id)? {
                    return missing(&id);
                }
                out!("{id} deleted; the sender was not told.");
            }
            (None, true) => {
                let entries = store.queue_entries()?;
                for e in &entries {
                    store.queue_remove(&e.message.queue_id)?;
                }
                out!("{} message(s) deleted.", entries.len());
            }
            _ => bail!("name a queue id, or --all"),
        },
        QueueCommand::Bounce { id } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let done = runtime.block_on(facteur_queue::service::bounce_now(
                &store,
                &dir,
                &config.hostname,
                &id,
                "554 5.0.0 returned to the sender by the administrator (facteur queue bounce)",
            ))?;
            if !done {
                return missing(&id);
            }
            out!("{id} bounced: the sender gets a delivery report.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
