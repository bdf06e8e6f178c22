//! `facteur spam ...`: teach an account's Bayesian classifier from saved messages (as
//! SpamAssassin's sa-learn), and score a message as the MX would (as `spamassassin -t`).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use facteur_config::Config;
use facteur_model::Address;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SpamCommand {
    /// Learn message files (one RFC 5322 message each, .eml) as spam or as ham for ACCOUNT,
    /// as moving them into or out of its Junk mailbox would.
    Learn {
        account: String,
        /// The messages are spam.
        #[arg(long, conflicts_with = "ham", required_unless_present = "ham")]
        spam: bool,
        /// The messages are not spam.
        #[arg(long)]
        ham: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Score a message file with the built-in rules (and ACCOUNT's classifier with
    /// --account): the X-Spam fields the MX would add, without the authentication and
    /// connection results it would add too.
    Check {
        file: PathBuf,
        #[arg(long)]
        account: Option<String>,
    },
}

pub fn spam(config: &Config, cmd: SpamCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = crate::admin::open(config)?;
    let store = dir.store();
    let account_id = |address: &str| -> anyhow::Result<facteur_model::AccountId> {
        let Some(a) = Address::parse(address) else {
            bail!("`{address}` is not an address");
        };
        match store.account(&a.domain, &a.folded_local())? {
            Some(record) => Ok(record.id),
            None => bail!("no account {address}"),
        }
    };
    match cmd {
        SpamCommand::Learn {
            account,
            spam,
            ham: _,
            files,
        } => {
            let id = account_id(&account)?;
            let (mut learnt, mut known) = (0, 0);
            for file in &files {
                let content =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let digest = ring::digest::digest(&ring::digest::SHA256, &content);
                let key: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                if facteur_protect::filter::learn(store, id, &key, &content, spam)? {
                    learnt += 1;
                } else {
                    known += 1;
                }
            }
            let kind = if spam { "spam" } else { "ham" };
            println!("{learnt} message(s) learnt as {kind} for {account}; {known} already were.");
            let counts = store.bayes_counts(id, &[])?;
            println!(
                "{account} has taught {} spam and {} ham; its classifier counts from {} of each (spam.bayes_min_learned).",
                counts.spam, counts.ham, config.spam.bayes_min_learned
            );
        }
        SpamCommand::Check { file, account } => {
            let content =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut extra = Vec::new();
            if let Some(account) = &account {
                let id = account_id(account)?;
                let tokens = facteur_spam::bayes::tokens(&content);
                let min = config.spam.bayes_min_learned;
                let b = facteur_protect::filter::bayes(store, id, &tokens, min)?;
                match b.probability {
                    Some(p) => {
                        println!("Bayes: spam probability {p:.3} for {account}");
                        extra.extend(facteur_spam::bayes::bayes_hit(p));
                    }
                    None => println!(
                        "Bayes: {account} has taught {} spam and {} ham, fewer than {min} of each; not counted",
                        b.spam, b.ham
                    ),
                }
            }
            let report = facteur_spam::check(&content, extra);
            print!(
                "{}",
                facteur_spam::headers(&report, config.spam.junk_score, &config.hostname)
                    .replace("\r\n", "\n")
            );
            for hit in &report.hits {
                println!("{:>7.1} {:<28} {}", hit.score, hit.name, hit.description);
            }
            let verdict =
                if config.spam.reject_score > 0.0 && report.score >= config.spam.reject_score {
                    "refused at SMTP time (spam.reject_score)"
                } else if report.score >= config.spam.junk_score {
                    "filed into Junk (spam.junk_score)"
                } else {
                    "delivered to INBOX"
                };
            println!("Score {:.1}: {verdict}.", report.score);
        }
    }
    Ok(ExitCode::SUCCESS)
}
