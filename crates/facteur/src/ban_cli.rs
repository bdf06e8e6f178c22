//! `facteur ban ...`: the addresses every role refuses (brute-force bans and the admin's own),
//! while the server runs or not; a running server sees changes within a few seconds.

use anyhow::bail;
use clap::Subcommand;
use facteur_config::Config;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BanCommand {
    /// Bans in force: address (an IPv6 client by its /64), until when, why.
    List,
    /// Refuse ADDRESS everywhere for MINUTES (default 60).
    Add {
        address: String,
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        #[arg(long, default_value = "banned by the administrator")]
        reason: String,
    },
    /// Lift the ban of ADDRESS.
    Remove { address: String },
}

pub fn ban(config: &Config, cmd: BanCommand) -> anyhow::Result<ExitCode> {
    let (dir, _handback) = crate::admin::open(config)?;
    let store = dir.store();
    let key = |address: &str| -> anyhow::Result<String> {
        let bare = address.strip_suffix("/64").unwrap_or(address);
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(facteur_protect::ban_key(ip)),
            Err(_) => bail!("`{address}` is not an IP address"),
        }
    };
    match cmd {
        BanCommand::List => {
            let bans = store.bans()?;
            if bans.is_empty() {
                println!("No address is banned.");
            }
            for b in bans {
                println!(
                    "{}\tuntil {}\t{}",
                    b.address,
                    facteur_model::calendar::rfc5322_date(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_secs(b.until.max(0) as u64)
                    ),
                    b.reason
                );
            }
        }
        BanCommand::Add {
            address,
            minutes,
            reason,
        } => {
            let key = key(&address)?;
            let until = facteur_model::calendar::unix_now() + (minutes.max(1) * 60) as i64;
            store.ban(&key, until, &reason)?;
            println!("{key} is refused by every role for {minutes} minutes.");
        }
        BanCommand::Remove { address } => {
            let key = key(&address)?;
            if !store.unban(&key)? {
                bail!("{key} is not banned (`facteur ban list`)");
            }
            println!("{key} may connect again.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
