//! `facteur serve`: bind every role, drop privileges, open the store, run until SIGTERM/SIGINT.
//!
//! Shutdown (the contract): stop accepting, answer `421 4.3.2` to the next command of
//! every session, let messages in flight finish (up to `shutdown_grace_secs`), exit. A message
//! is only acknowledged once committed, so stopping at any point loses nothing accepted.

use crate::privileges;
use anyhow::Context as _;
use facteur_config::{BindFailure, Config};
use facteur_directory::{Directory, OAuthOptions, Options as DirectoryOptions, SaslOptions};
use facteur_net::Shutdown;
use facteur_smtp_server::Context;
use facteur_store::{Options as StoreOptions, Store};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub fn run(config: Config) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "key `data_dir`: cannot create {}",
            config.data_dir.display()
        )
    })?;
    // Certificates and ports first: both may need root.
    let tls = crate::tls::load(&config)?;
    // The relay password is read before privileges go (the file may be root's only).
    let smarthost_password = match config
        .queue
        .smarthost
        .as_ref()
        .and_then(|s| s.password_file.as_ref())
    {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| {
                    format!(
                        "key `queue.smarthost.password_file`: cannot read {}",
                        path.display()
                    )
                })?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ),
        None => None,
    };
    let mut listeners = Vec::new();
    let roles = [
        (Role::Smtp, &config.listen.smtp),
        (Role::Lmtp, &config.listen.lmtp),
        (Role::Pop3, &config.listen.pop3),
        (Role::Pop3s, &config.listen.pop3s),
        (Role::Imap, &config.listen.imap),
        (Role::Imaps, &config.listen.imaps),
        (Role::Submission, &config.listen.submission),
        (Role::Submissions, &config.listen.submissions),
        (Role::Http, &config.listen.http),
    ];
    for (role, addrs) in roles {
        for addr in addrs {
            match facteur_net::bind(role.name(), addr.0) {
                Ok(l) => listeners.push((role, l)),
                Err(e) if config.bind_failure == BindFailure::Continue => {
                    tracing::error!("{e}; continuing without it (bind_failure = \"continue\")");
                }
                Err(e) => {
                    eprintln!("facteur: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    if listeners.is_empty() {
        anyhow::bail!("no role has a listen address; set at least one under [listen]");
    }
    become_unprivileged(&config)?;
    let store = Store::open(StoreOptions {
        data_dir: config.data_dir.clone(),
        inline_blob_max: config.store.inline_blob_max,
        group_commit_max: config.store.group_commit_max,
    })
    .context("opening the store")?;
    store.clean_temp_files();
    match store.remove_unreferenced_files() {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed blob files a crash left unreferenced"),
        Err(e) => tracing::warn!(error = %e, "could not look for unreferenced blob files"),
    }
    let directory = Directory::new(
        store.clone(),
        DirectoryOptions {
            subaddress_separator: config.directory.subaddress_separator.clone(),
            default_quota: config.directory.default_quota,
            auth_cache_ttl: std::time::Duration::from_secs(config.directory.auth_cache_secs),
        },
    )
    .with_sasl(SaslOptions {
        cram_md5: config.directory.cram_md5,
        oauth: config.oauth.as_ref().map(|o| OAuthOptions {
            issuer: o.issuer.clone(),
            audience: o.audience.clone(),
            username_claim: o.username_claim.clone(),
            leeway_secs: o.leeway_secs,
            scope: o.scope.clone(),
        }),
    });
    let jwks_url = config
        .oauth
        .as_ref()
        .and_then(|o| o.jwks_url.as_deref())
        .map(crate::jwks::check_url)
        .transpose()?;
    if let Some(path) = config.oauth.as_ref().and_then(|o| o.jwks_file.as_ref()) {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("key `oauth.jwks_file`: cannot read {}", path.display()))?;
        let keys = directory
            .set_jwks(&text)
            .with_context(|| format!("key `oauth.jwks_file`: {}", path.display()))?;
        if keys == 0 {
            tracing::warn!(path = %path.display(), "oauth.jwks_file holds no usable key: XOAUTH2 and OAUTHBEARER will refuse every token");
        } else {
            tracing::info!(path = %path.display(), keys, "OAuth issuer keys loaded");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let stop = StopSignals::catch()?;
        let shutdown = Shutdown::new();
        tls.spawn()?;
        let dns_options = crate::admin::dns_options(&config);
        let resolver = facteur_dns::Resolver::new(&dns_options).context("key `dns`")?;
        // The MX's SPF, DKIM, DMARC, ARC and iprev checks (decision 0020).
        let auth = if config.auth.enabled {
            use facteur_trust::inbound::{Checker, Policy, SpfFailAction};
            let spf_fail = match config.auth.spf_fail.as_str() {
                "reject" => SpfFailAction::Reject,
                "tag" => SpfFailAction::Tag,
                other => anyhow::bail!(
                    "key `auth.spf_fail`: `{other}`: use \"reject\" (550 5.7.23) or \"tag\""
                ),
            };
            let policy = Policy {
                spf_fail,
                dmarc_enforce: config.auth.dmarc_enforce,
                arc: config.auth.arc,
                iprev: config.auth.iprev,
                defer_on_temperror: config.auth.defer_on_temperror,
            };
            Some(
                Checker::new(&dns_options, &config.hostname, policy)
                    .map_err(anyhow::Error::msg)
                    .context("key `auth`")?,
            )
        } else {
            None
        };
        tokio::spawn(crate::tls_report::run(
            store.clone(),
            directory.clone(),
            resolver.clone(),
            config.hostname.clone(),
            shutdown.clone(),
        ));
        if auth.is_some() {
            tokio::spawn(crate::dmarc::run(
                store.clone(),
                directory.clone(),
                resolver.clone(),
                config.hostname.clone(),
                shutdown.clone(),
            ));
        }
        // SRS for forwarded mail: one key per installation, made at first start.
        let srs = if config.forwarding.srs {
            let mut fresh = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
                .map_err(|_| anyhow::anyhow!("no randomness for the SRS key"))?;
            Some(facteur_smtp_server::SrsSettings {
                secrets: vec![store.server_secret("srs", &fresh)?],
                max_age_days: config.forwarding.srs_max_age_days,
            })
        } else {
            None
        };
        // Brute-force bans for every role (decision 0021).
        let mut allow = Vec::new();
        for raw in &config.protect.allow {
            allow.push(facteur_protect::Network::parse(raw).ok_or_else(|| {
                anyhow::anyhow!(
                    "key `protect.allow`: `{raw}` is not an address or network like \"192.0.2.0/24\""
                )
            })?);
        }
        let bans = facteur_protect::Bans::new(
            facteur_protect::BanOptions {
                after: config.protect.ban_after,
                account_after: config.protect.ban_account_after,
                window: Duration::from_secs(config.protect.ban_window_minutes.max(1) * 60),
                first: Duration::from_secs(config.protect.ban_minutes.max(1) * 60),
                max: Duration::from_secs(config.protect.ban_max_hours.max(1) * 3600),
                allow,
                connections_per_minute: config.protect.connections_per_minute,
                messages_per_minute: config.protect.messages_per_minute,
                recipients_per_minute: config.protect.recipients_per_minute,
                account_messages_per_minute: config.protect.account_messages_per_minute,
                account_recipients_per_minute: config.protect.account_recipients_per_minute,
                sender_domain_messages_per_minute: config
                    .protect
                    .sender_domain_messages_per_minute,
            },
            store.clone(),
        );
        facteur_net::gate::install(bans.clone());
        tokio::spawn(bans.keep_fresh(shutdown.clone()));
        let filter = crate::filters::build(&config, &store, resolver.clone())?;
        let dkim = facteur_smtp_server::DkimSigning::default();
        if config.dkim.sign {
            tokio::spawn(crate::dkim_signing::maintain(
                store.clone(),
                dkim.clone(),
                resolver.clone(),
                config.dkim.clone(),
                shutdown.clone(),
            ));
        }
        let verified = facteur_queue::client::verified_tls(None).map_err(anyhow::Error::msg)?;
        let mut route = facteur_queue::route::Route::from_config(
            &config.queue,
            smarthost_password,
            Some(resolver.clone()),
        )
        .map_err(anyhow::Error::msg)?;
        if config.queue.mta_sts {
            route.mta_sts = Some(Arc::new(facteur_queue::mta_sts::MtaSts::new(
                resolver,
                verified.clone(),
                443,
            )));
        }
        let queue_wake = Arc::new(tokio::sync::Notify::new());
        let outbound = Arc::new(facteur_queue::service::Service {
            store: store.clone(),
            directory: directory.clone(),
            hostname: config.hostname.clone(),
            options: config.queue.clone(),
            client: facteur_queue::client::Settings {
                helo: config.hostname.clone(),
                tls: facteur_queue::client::TlsMode::Opportunistic,
                verified,
                opportunistic: facteur_queue::client::opportunistic_tls(),
                timeouts: Default::default(),
                source: config.queue.source_address,
            },
            route,
            wake: queue_wake.clone(),
            delay_warning: Duration::from_secs(config.queue.delay_warning_hours * 3600),
            pool: Default::default(),
            destinations: Default::default(),
            rates: Default::default(),
            tls_report: Default::default(),
            shutdown: shutdown.clone(),
        });
        let queue_task = tokio::spawn(outbound.run());
        if let Some(uri) = jwks_url {
            tokio::spawn(crate::jwks::refresh(directory.clone(), uri));
        }
        tracing::info!(
            hostname = %config.hostname, data_dir = %config.data_dir.display(), tls = %tls.source,
            "facteur {} started", env!("CARGO_PKG_VERSION")
        );
        let pop3 = Arc::new(facteur_pop3_server::Context::new(
            config.hostname.clone(),
            config.pop3.clone(),
            directory.clone(),
            store.clone(),
            Some(tls.acceptor.clone()),
            shutdown.clone(),
        ));
        let imap = Arc::new(
            facteur_imap_server::Context::new(
                config.hostname.clone(),
                config.imap.clone(),
                directory.clone(),
                store.clone(),
                Some(tls.acceptor.clone()),
                shutdown.clone(),
            )
            .with_junk_training(crate::filters::junk_training(
                filter.clone(),
                store.clone(),
            )),
        );
        let http = Arc::new(facteur_admin::Context {
            directory: directory.clone(),
            clients: facteur_admin::autoconfig::Settings::from_config(&config),
            // RFC 8555 §8.3: the ACME client publishes, the http role answers.
            acme: Some({
                let challenges = tls.challenges.clone();
                Arc::new(move |token: &str| challenges.response(token))
            }),
            shutdown: shutdown.clone(),
        });
        let mut tasks = Vec::new();
        for (role, std_listener) in listeners {
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            let smtp = |role| {
                Arc::new(Context {
                    role,
                    hostname: config.hostname.clone(),
                    settings: config.smtp.clone(),
                    submission: config.submission.clone(),
                    queued: Some(queue_wake.clone()),
                    auth: (role == facteur_smtp_server::Role::Smtp)
                        .then(|| auth.clone())
                        .flatten(),
                    dkim: dkim.clone(),
                    srs: srs.clone(),
                    filter: Some(filter.clone()),
                    directory: directory.clone(),
                    store: store.clone(),
                    tls: Some(tls.acceptor.clone()),
                    shutdown: shutdown.clone(),
                })
            };
            tasks.push(match role {
                Role::Smtp => tokio::spawn(facteur_smtp_server::serve(
                    listener,
                    smtp(facteur_smtp_server::Role::Smtp),
                )),
                Role::Lmtp => tokio::spawn(facteur_smtp_server::serve(
                    listener,
                    smtp(facteur_smtp_server::Role::Lmtp),
                )),
                Role::Pop3 => tokio::spawn(facteur_pop3_server::serve(
                    listener,
                    facteur_pop3_server::Role::Pop3,
                    pop3.clone(),
                )),
                Role::Pop3s => tokio::spawn(facteur_pop3_server::serve(
                    listener,
                    facteur_pop3_server::Role::Pop3s,
                    pop3.clone(),
                )),
                Role::Imap => tokio::spawn(facteur_imap_server::serve(
                    listener,
                    facteur_imap_server::Role::Imap,
                    imap.clone(),
                )),
                Role::Imaps => tokio::spawn(facteur_imap_server::serve(
                    listener,
                    facteur_imap_server::Role::Imaps,
                    imap.clone(),
                )),
                Role::Submission => tokio::spawn(facteur_smtp_server::serve(
                    listener,
                    smtp(facteur_smtp_server::Role::Submission),
                )),
                Role::Submissions => tokio::spawn(facteur_smtp_server::serve(
                    listener,
                    smtp(facteur_smtp_server::Role::Submissions),
                )),
                Role::Http => tokio::spawn(facteur_admin::serve(listener, http.clone())),
            });
        }
        stop.wait().await;
        tracing::info!(sessions = shutdown.live_sessions(), "shutting down");
        shutdown.trigger();
        for t in tasks {
            let _ = t.await;
        }
        let _ = queue_task.await;
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        if tokio::time::timeout(grace, shutdown.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = shutdown.live_sessions(),
                "grace period over; closing remaining sessions"
            );
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Every listening role, named as in `[listen]`.
#[derive(Debug, Clone, Copy)]
enum Role {
    Smtp,
    Lmtp,
    Pop3,
    Pop3s,
    Imap,
    Imaps,
    Submission,
    Submissions,
    Http,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Smtp => "smtp",
            Role::Lmtp => "lmtp",
            Role::Pop3 => "pop3",
            Role::Pop3s => "pop3s",
            Role::Imap => "imap",
            Role::Imaps => "imaps",
            Role::Submission => "submission",
            Role::Submissions => "submissions",
            Role::Http => "http",
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made: made before any listener
/// accepts, so a signal that comes while the roles start is a clean shutdown, not the default
/// action (an immediate exit).
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn catch() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// As root: give the data directory to the service user and become that user.
fn become_unprivileged(config: &Config) -> anyhow::Result<()> {
    if !privileges::is_root() {
        return Ok(());
    }
    if config.run_as == "root" {
        tracing::warn!("run_as = \"root\": keeping root privileges for the whole run");
        return Ok(());
    }
    let Some(user) = give_data_dir(config)? else {
        return Ok(());
    };
    if let Err(e) = privileges::check_reachable(&config.data_dir, &user) {
        if !config.run_as.is_empty() {
            return Err(e);
        }
        // The quick start (`./facteur-data` under root's home) must still come up; say plainly
        // what to change to run unprivileged.
        tracing::warn!("{e:#}; STAYING ROOT for this run");
        return Ok(());
    }
    privileges::drop_to(&user)?;
    tracing::info!(user = %user.name, "running unprivileged");
    Ok(())
}

/// As root: creates the data directory and gives it to the service user; returns that user.
pub fn give_data_dir(config: &Config) -> anyhow::Result<Option<privileges::User>> {
    if !privileges::is_root() || config.run_as == "root" {
        return Ok(None);
    }
    let user = privileges::target_user(&config.run_as)?;
    std::fs::create_dir_all(&config.data_dir)?;
    privileges::chown_tree(&config.data_dir, &user)?;
    Ok(Some(user))
}
