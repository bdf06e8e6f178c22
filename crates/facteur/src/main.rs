//! The facteur binary: command line, configuration, wiring.
//!
//! The command names and flags here are a contract scripts rely on (docs/architecture.md,
//! "The contract"): extend, never rename.

mod admin;
mod ban_cli;
mod dkim_cli;
mod dkim_signing;
mod dmarc;
mod filters;
mod jwks;
mod privileges;
mod queue_cli;
mod serve;
mod spam_cli;
mod tls;
mod tls_report;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use facteur_config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "facteur", version, about = "An all-in-one mail server")]
struct Cli {
    /// Configuration file (TOML). Without one, the built-in defaults apply.
    #[arg(long, global = true, env = "FACTEUR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: every role with a listen address.
    Serve,
    /// Validate the configuration and print it with every default filled in.
    CheckConfig,
    /// Manage the domains this server receives mail for.
    #[command(subcommand)]
    Domain(admin::DomainCommand),
    /// Manage accounts (mailbox owners).
    #[command(subcommand)]
    Account(admin::AccountCommand),
    /// Manage aliases: ALIAS forwards to one or more local TARGETs; `@domain` is a catch-all.
    #[command(subcommand)]
    Alias(admin::AliasCommand),
    /// Read mailboxes.
    #[command(subcommand)]
    Mailbox(admin::MailboxCommand),
    /// Store maintenance.
    #[command(subcommand)]
    Store(admin::StoreCommand),
    /// Certificates: what is served, until when.
    #[command(subcommand)]
    Tls(admin::TlsCommand),
    /// The outbound queue: list, show, retry, hold, release, delete, bounce.
    #[command(subcommand)]
    Queue(queue_cli::QueueCommand),
    /// Addresses every role refuses: brute-force bans and your own.
    #[command(subcommand)]
    Ban(ban_cli::BanCommand),
    /// The spam classifier: learn messages as spam or ham for an account, score a message.
    #[command(subcommand)]
    Spam(spam_cli::SpamCommand),
    /// DKIM signing keys: generate, show what DNS must publish, rotate, remove.
    #[command(subcommand)]
    Dkim(dkim_cli::DkimCommand),
    /// DMARC aggregate reports: summarise those received, send ours now.
    #[command(subcommand)]
    Dmarc(dmarc::DmarcCommand),
    /// Explain a remote server's reply (from the queue or a bounce) in plain English: what it
    /// means, whose side the problem is on, whether it is retried, and the likely fix.
    Explain(admin::ExplainArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("facteur: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    match cli.command {
        Command::Serve => serve::run(config),
        Command::CheckConfig => {
            print!("{}", config.to_toml());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Domain(c) => admin::domain(&config, c),
        Command::Account(c) => admin::account(&config, c),
        Command::Alias(c) => admin::alias(&config, c),
        Command::Mailbox(c) => admin::mailbox(&config, c),
        Command::Store(c) => admin::store(&config, c),
        Command::Tls(c) => admin::tls(&config, c),
        Command::Explain(a) => admin::explain(a),
        Command::Dkim(c) => dkim_cli::dkim(&config, c),
        Command::Ban(c) => ban_cli::ban(&config, c),
        Command::Spam(c) => spam_cli::spam(&config, c),
        Command::Dmarc(c) => dmarc::dmarc(&config, c),
        Command::Queue(c) => queue_cli::queue(&config, c),
    }
    .with_context(|| match &cli.config {
        Some(p) => format!("with configuration {}", p.display()),
        None => "with the built-in configuration".to_string(),
    })
}

/// Logs go to stderr, one line per event; `FACTEUR_LOG` (or `RUST_LOG`) sets the filter.
fn init_logging() {
    let filter = std::env::var("FACTEUR_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        // rustls warns about clients' quirks (an IP address as SNI): noise for an admin.
        .unwrap_or_else(|_| "info,rustls=error".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
