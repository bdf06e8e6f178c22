//! Protection shared by every protocol (docs/architecture.md, layer `protect`).
//!
//! Brute-force bans, as fail2ban does from the logs but in-process: failed logins are counted
//! per client address (an IPv6 client by its /64, the usual size of one site's network) over
//! a sliding window; past the threshold the address is refused by every role at connection
//! time (SMTP `421 4.7.0`, IMAP `* BYE [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`) for a time that
//! doubles with each new ban within a day, up to a maximum. Bans are kept in the store, so they
//! survive a restart and `facteur ban add|remove|list` works from another process (the server
//! reads them again every few seconds). Addresses of the allow list are never banned. The
//! `auth failed service=... remote=... user=...` log line stays, for admins who prefer
//! fail2ban.
#![forbid(unsafe_code)]

pub mod checks;
pub mod filter;

use facteur_store::Store;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often bans are read again from the store (the CLI's changes reach the server).
pub const REFRESH: Duration = Duration::from_secs(5);

/// `[protect]`'s ban settings, converted by the caller.
#[derive(Debug, Clone)]
pub struct BanOptions {
    /// Failed logins from one address within `window` that ban it; 0: never.
    pub after: usize,
    /// Failed logins for one account within `window`, from any address, past which each
    /// further failure for it bans its address at once; 0: not counted.
    pub account_after: usize,
    pub window: Duration,
    /// The first ban's length; each further one within a day doubles it.
    pub first: Duration,
    pub max: Duration,
    /// Networks never banned nor limited.
    pub allow: Vec<Network>,
    /// New connections one address (an IPv6 /64) may open per minute, all roles together
    /// (Postfix `smtpd_client_connection_rate_limit`); 0: no limit.
    pub connections_per_minute: u32,
    /// Per client address (not the allow list): messages and recipients a minute (Postfix
    /// `smtpd_client_message_rate_limit`, `smtpd_client_recipient_rate_limit`); 0: no limit.
    pub messages_per_minute: u32,
    pub recipients_per_minute: u32,
    /// Per authenticated account, wherever it connects from; 0: no limit.
    pub account_messages_per_minute: u32,
    pub account_recipients_per_minute: u32,
    /// Per envelope sender domain, wherever it comes from; 0: no limit.
    pub sender_domain_messages_per_minute: u32,
}

/// An address and prefix length (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// `ip`, `ip/len`; None when not one.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = text.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What a ban is kept under: the IPv4 address, or the IPv6 /64 (`2001:db8:1:2::/64`).
pub fn ban_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let net = std::net::Ipv6Addr::from(u128::from(a) & (u128::MAX << 64));
            format!("{net}/64")
        }
    }
}

#[derive(Default)]
struct State {
    /// Recent failures per ban key.
    failures: HashMap<String, VecDeque<Instant>>,
    /// Recent failures per account name (lower case), from any address.
    account_failures: HashMap<String, VecDeque<Instant>>,
    /// Bans in force: key -> (until, Unix time; reason).
    bans: HashMap<String, (i64, String)>,
    /// When each key was last banned (for the doubling), and how many times within a day.
    history: HashMap<String, (Instant, u32)>,
    /// Connections per key in the current minute: (minute number, count).
    connections: HashMap<String, (u64, u32)>,
    /// Messages and recipients per address key or `account:NAME` in the current minute.
    sending: HashMap<String, (u64, u32, u32)>,
}

/// The bans of this process; installed as the network gate.
pub struct Bans {
    options: BanOptions,
    store: Store,
    state: Mutex<State>,
}

impl Bans {
    /// Bans with `options`, their current list read from `store`.
    pub fn new(options: BanOptions, store: Store) -> Arc<Bans> {
        let bans = Arc::new(Bans {
            options,
            store,
            state: Mutex::default(),
        });
        bans.refresh();
        bans
    }

    /// Reads the bans in force from the store again (blocking: a small query).
    pub fn refresh(&self) {
        match self.store.bans() {
            Ok(list) => {
                let mut state = self.state();
                state.bans = list
                    .into_iter()
                    .map(|b| (b.address, (b.until, b.reason)))
                    .collect();
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the bans"),
        }
    }

    /// Refreshes every [`REFRESH`] until `shutdown`.
    pub async fn keep_fresh(self: Arc<Self>, shutdown: facteur_net::Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REFRESH) => {}
                _ = shutdown.triggered() => return,
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.refresh()).await;
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.options.allow.iter().any(|n| n.contains(ip))
    }

    /// Records a failed login for `user` at `now`; returns the ban it caused, if any: (key,
    /// until, reason). Failures are counted per address and per account: once an account
    /// has had `account_after` failures within the window from anywhere (guessing spread over
    /// many addresses), each further failure for it bans its address at once.
    fn failure_at(
        &self,
        ip: IpAddr,
        user: &str,
        now: Instant,
        unix: i64,
    ) -> Option<(String, i64, String)> {
        if self.options.after == 0 || self.allowed(ip) {
            return None;
        }
        let key = ban_key(ip);
        let mut state = self.state();
        let window = self.options.window;
        let recent = |times: &mut VecDeque<Instant>| {
            times.push_back(now);
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                times.pop_front();
            }
            times.len()
        };
        let mut attacked = None;
        if self.options.account_after > 0 && !user.is_empty() {
            let account = user.to_lowercase();
            if state.account_failures.len() > 100_000 {
                state
                    .account_failures
                    .retain(|_, t| t.back().is_some_and(|l| now.duration_since(*l) <= window));
            }
            let entry = state.account_failures.entry(account.clone()).or_default();
            let n = recent(entry);
            if n > self.options.account_after {
                attacked = Some((account, n));
            }
        }
        let times = state.failures.entry(key.clone()).or_default();
        let mine = recent(times);
        if mine < self.options.after && attacked.is_none() {
            return None;
        }
        if let Some((account, n)) = &attacked
            && mine < self.options.after
        {
            tracing::warn!(account = %account, failures = n, remote = %key,
                "account under attack: failed logins from many addresses; each new one is banned at its first failure");
        }
        state.failures.remove(&key);
        // Each ban within a day of the last one lasts twice as long.
        let day = Duration::from_secs(86_400);
        let repeat = match state.history.get(&key) {
            Some((last, n)) if now.duration_since(*last) < day => n + 1,
            _ => 0,
        };
        state.history.insert(key.clone(), (now, repeat));
        if state.history.len() > 100_000 {
            state
                .history
                .retain(|_, (last, _)| now.duration_since(*last) < day);
        }
        let length = self
            .options
            .first
            .saturating_mul(1u32.checked_shl(repeat.min(20)).unwrap_or(u32::MAX))
            .min(self.options.max);
        let until = unix + length.as_secs() as i64;
        let minutes = window.as_secs().div_ceil(60);
        let reason = match attacked {
            Some((account, n)) if mine < self.options.after => format!(
                "a failed login for {account}, which had {n} from many addresses within {minutes} minutes"
            ),
            _ => format!("{mine} failed logins within {minutes} minutes"),
        };
        state.bans.insert(key.clone(), (until, reason.clone()));
        Some((key, until, reason))
    }
}

impl Bans {
    /// The connection rate limit at Unix time `now`: counts this connection, and says why it
    /// is refused when the minute's allowance is spent.
    fn over_rate(&self, state: &mut State, key: &str, now: i64) -> Option<String> {
        let limit = self.options.connections_per_minute;
        if limit == 0 {
            return None;
        }
        let minute = (now.max(0) / 60) as u64;
        if state.connections.len() > 100_000 {
            state.connections.retain(|_, (m, _)| *m == minute);
        }
        let entry = state
            .connections
            .entry(key.to_string())
            .or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        (entry.1 > limit).then(|| {
            format!("too many connections from {key}: more than {limit} a minute; try again later")
        })
    }
}

impl Bans {
    /// Counts one recipient (and a message when `new_message`) for `key` at Unix time `now`
    /// against `(messages, recipients)` a minute; why it must wait when over.
    fn over_sending(
        &self,
        state: &mut State,
        key: &str,
        limits: (u32, u32),
        new_message: bool,
        now: i64,
    ) -> Option<String> {
        let (max_messages, max_recipients) = limits;
        if max_messages == 0 && max_recipients == 0 {
            return None;
        }
        let minute = (now.max(0) / 60) as u64;
        if state.sending.len() > 100_000 {
            state.sending.retain(|_, (m, _, _)| *m == minute);
        }
        let entry = state
            .sending
            .entry(key.to_string())
            .or_insert((minute, 0, 0));
        if entry.0 != minute {
            *entry = (minute, 0, 0);
        }
        if new_message && max_messages > 0 && entry.1 >= max_messages {
            return Some(format!(
                "too many messages from {key}: more than {max_messages} a minute; try again later"
            ));
        }
        if max_recipients > 0 && entry.2 >= max_recipients {
            return Some(format!(
                "too many recipients from {key}: more than {max_recipients} a minute; try again later"
            ));
        }
        entry.1 += u32::from(new_message);
        entry.2 += 1;
        None
    }
}

impl facteur_net::gate::Gate for Bans {
    fn exempt(&self, ip: IpAddr) -> bool {
        self.allowed(ip)
    }

    fn recipient(&self, sending: &facteur_net::gate::Sending<'_>) -> Option<String> {
        let facteur_net::gate::Sending {
            ip,
            account,
            sender_domain,
            new_message,
        } = *sending;
        let o = &self.options;
        if o.messages_per_minute == 0
            && o.recipients_per_minute == 0
            && o.account_messages_per_minute == 0
            && o.account_recipients_per_minute == 0
            && o.sender_domain_messages_per_minute == 0
        {
            return None;
        }
        let now = facteur_model::calendar::unix_now();
        let mut state = self.state();
        if let Some(account) = account {
            let limits = (
                o.account_messages_per_minute,
                o.account_recipients_per_minute,
            );
            let key = format!("account {}", account.to_ascii_lowercase());
            if let Some(why) = self.over_sending(&mut state, &key, limits, new_message, now) {
                return Some(why);
            }
        }
        if let Some(domain) = sender_domain
            && o.sender_domain_messages_per_minute > 0
        {
            let limits = (o.sender_domain_messages_per_minute, 0);
            let key = format!("sender domain {}", domain.to_ascii_lowercase());
            if let Some(why) = self.over_sending(&mut state, &key, limits, new_message, now) {
                return Some(why);
            }
        }
        if self.allowed(ip) {
            return None;
        }
        let limits = (o.messages_per_minute, o.recipients_per_minute);
        self.over_sending(&mut state, &ban_key(ip), limits, new_message, now)
    }

    fn refused(&self, ip: IpAddr) -> Option<String> {
        if self.allowed(ip) {
            return None;
        }
        let key = ban_key(ip);
        let now = facteur_model::calendar::unix_now();
        let mut state = self.state();
        if let Some((until, reason)) = state.bans.get(&key)
            && *until > now
        {
            return Some(format!(
                "{key} is banned until {} ({reason})",
                facteur_model::calendar::rfc5322_date(
                    std::time::UNIX_EPOCH + Duration::from_secs((*until).max(0) as u64)
                )
            ));
        }
        self.over_rate(&mut state, &key, now)
    }

    fn auth_failed(&self, service: &str, ip: IpAddr, user: &str) {
        let Some((key, until, reason)) = self.failure_at(
            ip,
            user,
            Instant::now(),
            facteur_model::calendar::unix_now(),
        ) else {
            return;
        };
        tracing::warn!(remote = %key, service, until, %reason, "banned: every protocol refuses it until then");
        // Kept in the store off the caller's thread: the caller may be an async task.
        let store = self.store.clone();
        std::thread::spawn(move || {
            if let Err(e) = store.ban(&key, until, &reason) {
                tracing::error!(remote = %key, error = %e, "cannot keep the ban");
            }
        });
    }
}

#[cfg(test)]
mod tests;
