//! Admin commands: domains, accounts, aliases, mailboxes, store checks. They open the store
//! directly (SQLite WAL allows it while the server runs). Run as root, they keep root (to write
//! exports anywhere) and give the data directory back to the service user before and after,
//! so a file SQLite creates (`-wal`, `-shm`) never locks the server out.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use facteur_config::Config;
use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_model::Address;
use facteur_store::{Options as StoreOptions, Store};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Receive mail for NAME.
    Add { name: String },
    /// List local domains.
    List,
    /// Stop receiving mail for NAME (refused while it has accounts or aliases).
    Remove { name: String },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account with its mailboxes (INBOX, Sent, Drafts, Junk, Trash, Archive).
    Add {
        address: String,
        /// Read the password from the first line of standard input; without it a random
        /// password is made and printed.
        #[arg(long)]
        password_stdin: bool,
        /// Quota in bytes (0: none). Default: `directory.default_quota`.
        #[arg(long)]
        quota: Option<u64>,
    },
    /// List accounts, optionally of one domain.
    List { domain: Option<String> },
    /// Delete an account, its mailboxes and its messages.
    Remove { address: String },
    /// Change an account's password.
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an account's quota in bytes (0: none).
    Quota { address: String, bytes: u64 },
    /// Named, revocable passwords for devices and programs, usable wherever the account's
    /// password is.
    #[command(subcommand, name = "app-password")]
    AppPassword(AppPasswordCommand),
}

#[derive(Subcommand)]
pub enum AppPasswordCommand {
    /// Make a new application password NAME for ADDRESS; it is printed once.
    Add { address: String, name: String },
    /// List an account's application passwords (names and last use, never the secrets).
    List { address: String },
    /// Revoke one.
    Remove { address: String, name: String },
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS to each TARGET (local addresses). `@domain` catches all.
    Add {
        alias: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases, optionally of one domain.
    List { domain: Option<String> },
    /// Remove the given targets of ALIAS, or the whole alias when none is given.
    Remove { alias: String, targets: Vec<String> },
}

#[derive(Subcommand)]
pub enum MailboxCommand {
    /// List an account's mailboxes with their counters.
    List { address: String },
    /// Write each message of a mailbox as DIR/<uid>.eml, exactly as a client reads it.
    Export {
        address: String,
        mailbox: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Verify the store: every message has its content, counters and usage agree.
    Check,
}

#[derive(Subcommand)]
pub enum TlsCommand {
    /// Print every certificate: host names, source (file, self-signed, acme), expiry, days
    /// left and what to do. Reads the files; the server may be running or not. Exit status 1
    /// when a certificate is expired or cannot be read.
    Status,
    /// Send the SMTP TLS reports (RFC 8460) now, today's totals included, to the recipient
    /// domains that publish `_smtp._tls` (the server sends them daily by itself).
    SendReports,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The reply, as the queue or the bounce shows it: `"550 5.7.26 Unauthenticated email…"`,
    /// `5.1.1`, `421`, `"connection refused"`. Several words are joined; without any, the reply
    /// (several lines allowed) is read from standard input.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "REPLY"
    )]
    reply: Vec<String>,
}

/// Hands the data directory back to the service user when dropped.
pub(crate) struct Handback<'a>(&'a Config);

impl Drop for Handback<'_> {
    fn drop(&mut self) {
        if let Err(e) = crate::serve::give_data_dir(self.0) {
            eprintln!("facteur: {e:#}");
        }
    }
}

pub(crate) fn open(config: &Config) -> anyhow::Result<(Directory, Handback<'_>)> {
    crate::serve::give_data_dir(config)?;
    let handback = Handback(config);
    let store = Store::open(StoreOptions {
        data_dir: config.data_dir.clone(),
        inline_blob_max: config.store.inline_blob_max,
        group_commit_max: config.store.group_commit_max,
    })
    .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let dir = Directory::new(
        store,
        DirectoryOptions {
            subaddress_separator: config.directory.subaddress_separator.clone(),
            default_quota: config.directory.default_quota,
            auth_cache_ttl: std::time::Duration::ZERO,
        },
    );
    Ok((dir, handback))
}

pub fn domain(config: &Config, cmd: DomainCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = open(config)?;
    match cmd {
        DomainCommand::Add { name } => {
            let d = dir.add_domain(&name)?;
            println!("domain {d} added");
        }
        DomainCommand::List => dir.list_domains()?.iter().for_each(|d| println!("{d}")),
        DomainCommand::Remove { name } => {
            dir.remove_domain(&name)?;
            println!("domain {name} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn account(config: &Config, cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = open(config)?;
    match cmd {
        AccountCommand::Add {
            address,
            password_stdin,
            quota,
        } => {
            let (password, generated) = password(password_stdin)?;
            dir.add_account(&address, &password, quota)?;
            println!("account {address} added");
            if generated {
                println!("password: {password}");
            }
        }
        AccountCommand::List { domain } => {
            for a in dir.list_accounts(domain.as_deref())? {
                let quota = if a.quota_bytes == 0 {
                    "none".to_string()
                } else {
                    a.quota_bytes.to_string()
                };
                println!("{}\tused={}\tquota={quota}", a.address, a.used_bytes);
            }
        }
        AccountCommand::Remove { address } => {
            dir.remove_account(&address)?;
            println!("account {address} removed with its mail");
        }
        AccountCommand::Passwd {
            address,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            dir.set_password(&address, &password)?;
            println!("password of {address} changed");
            if generated {
                println!("password: {password}");
            }
        }
        AccountCommand::Quota { address, bytes } => {
            dir.set_quota(&address, bytes)?;
            println!("quota of {address} set to {bytes} bytes");
        }
        AccountCommand::AppPassword(AppPasswordCommand::Add { address, name }) => {
            let secret = dir.add_app_password(&address, &name)?;
            println!("application password {name} added for {address}");
            println!("password: {secret}");
        }
        AccountCommand::AppPassword(AppPasswordCommand::List { address }) => {
            for p in dir.list_app_passwords(&address)? {
                let used = p
                    .last_used
                    .map_or_else(|| "never".to_string(), |t| t.to_string());
                println!("{}\tcreated={}\tlast_used={used}", p.name, p.created);
            }
        }
        AccountCommand::AppPassword(AppPasswordCommand::Remove { address, name }) => {
            dir.remove_app_password(&address, &name)?;
            println!("application password {name} of {address} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn alias(config: &Config, cmd: AliasCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = open(config)?;
    match cmd {
        AliasCommand::Add { alias, targets } => {
            dir.add_alias(&alias, &targets)?;
            println!("alias {alias} -> {}", targets.join(", "));
        }
        AliasCommand::List { domain } => {
            for a in dir.list_aliases(domain.as_deref())? {
                println!("{}\t{}", a.source, a.target);
            }
        }
        AliasCommand::Remove { alias, targets } => {
            dir.remove_alias(&alias, &targets)?;
            println!("alias {alias} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn mailbox(config: &Config, cmd: MailboxCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = open(config)?;
    let store = dir.store();
    let address_of = |raw: &str| -> anyhow::Result<facteur_store::AccountRecord> {
        let a = Address::parse(raw).with_context(|| format!("`{raw}` is not an address"))?;
        store
            .account(&a.domain, &a.folded_local())?
            .with_context(|| format!("no account {raw}"))
    };
    match cmd {
        MailboxCommand::List { address } => {
            let account = address_of(&address)?;
            for m in store.mailboxes(account.id)? {
                println!(
                    "{}\tmessages={}\tuidvalidity={}\tuidnext={}\thighestmodseq={}\t{}",
                    m.name,
                    m.messages,
                    m.uidvalidity,
                    m.uidnext,
                    m.highest_modseq,
                    m.special_use.as_deref().unwrap_or("")
                );
            }
        }
        MailboxCommand::Export {
            address,
            mailbox,
            out,
        } => {
            let account = address_of(&address)?;
            let found = store.mailboxes(account.id)?.into_iter().find(|m| {
                m.name == mailbox || (m.name == "INBOX" && mailbox.eq_ignore_ascii_case("inbox"))
            });
            let Some(found) = found else {
                bail!("{address} has no mailbox {mailbox}")
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let messages = store.messages(found.id)?;
            for m in &messages {
                let path = out.join(format!("{}.eml", m.uid));
                std::fs::write(&path, store.message_content(found.id, m.uid)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{} messages written to {}", messages.len(), out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn store(config: &Config, cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = open(config)?;
    match cmd {
        StoreCommand::Check => {
            let report = dir.store().check()?;
            println!(
                "messages={} blobs={} unreferenced_files={} errors={}",
                report.messages,
                report.blobs,
                report.unreferenced_files,
                report.errors.len()
            );
            for e in &report.errors {
                println!("error: {e}");
            }
            Ok(if report.is_consistent() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `[dns]` as the resolver's options (the server's and the commands' lookups).
pub fn dns_options(config: &Config) -> facteur_dns::ResolverOptions {
    facteur_dns::ResolverOptions {
        nameservers: config.dns.nameservers.clone(),
        timeout: std::time::Duration::from_secs(config.dns.timeout_secs),
        attempts: config.dns.attempts,
    }
}

/// The resolver of `[dns]`, for the commands' DNS checks; None when it cannot be set up.
pub fn resolver(config: &Config) -> Option<facteur_dns::Resolver> {
    facteur_dns::Resolver::new(&dns_options(config)).ok()
}

pub fn tls(config: &Config, cmd: TlsCommand) -> anyhow::Result<ExitCode> {
    if let TlsCommand::SendReports = cmd {
        let (dir, _handback) = open(config)?;
        let Some(resolver) = resolver(config) else {
            anyhow::bail!("key `dns`: no resolver");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let tomorrow = facteur_model::calendar::unix_now().div_euclid(86_400) + 1;
        let lines = runtime.block_on(crate::tls_report::send(
            dir.store(),
            &dir,
            &resolver,
            &config.hostname,
            tomorrow,
        ));
        for line in &lines {
            println!("{line}");
        }
        if lines.is_empty() {
            println!("No TLS report to send.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now();
    let mut specs = crate::tls::specs(config);
    let acme = facteur_acme::Options::from_config(config);
    if let Some(a) = &acme {
        specs.push(a.spec());
    }
    let mut ok = true;
    for (i, spec) in specs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", spec.cert.display());
        match facteur_net::certs::read_status(spec) {
            Ok(s) => {
                let days = s.info.days_left(now);
                ok &= !s.info.expired(now);
                println!("  hostnames: {}", s.hostnames().join(", "));
                println!("  source:    {}", s.spec.source);
                println!("  issuer:    {}", s.info.issuer);
                println!("  not after: {}", s.info.not_after_text());
                println!("  days left: {days}");
                println!("  hint:      {}", s.hint(now));
            }
            Err(e) => {
                println!("  source:    {}", spec.source);
                let hint = match spec.source {
                    facteur_net::CertSource::SelfSigned if !spec.cert.exists() => {
                        "not made yet: `facteur serve` makes it at start".to_string()
                    }
                    facteur_net::CertSource::Acme if !spec.cert.exists() => format!(
                        "not obtained yet for {}: `facteur serve` requests it (read its log)",
                        acme.as_ref()
                            .map(|a| a.hostnames.join(", "))
                            .unwrap_or_default()
                    ),
                    _ => {
                        ok = false;
                        format!("cannot read it: {e}")
                    }
                };
                println!("  hint:      {hint}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let reply = if args.reply.is_empty() {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            bail!("give the reply to explain, e.g. facteur explain \"550 5.1.1 User unknown\"");
        }
        std::io::read_to_string(std::io::stdin()).context("reading the reply")?
    } else {
        args.reply.join(" ")
    };
    print!("{}", facteur_queue::explain::explain(&reply).to_text());
    Ok(ExitCode::SUCCESS)
}

/// The password from stdin's first line, or a new random one.
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            bail!("no password on standard input");
        }
        return Ok((pw, false));
    }
    Ok((facteur_directory::generate_password(), true))
}
