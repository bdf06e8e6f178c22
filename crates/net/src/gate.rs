//! The process's gate: who may connect at all, and who hears of failed logins. The protection
//! layer (brute-force bans, `crates/protect`) installs it once at start; every role's accept
//! loop asks it, and every protocol's failed login reaches it through [`crate::log_auth_failure`].
//! Without one (tests of a single role), everyone may connect.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

pub trait Gate: Send + Sync {
    /// Why `ip` may not connect now (e.g. "banned until 14:05 UTC after 10 failed logins"), or
    /// None.
    fn refused(&self, ip: IpAddr) -> Option<String>;
    /// A failed login on `service` from `ip` for `user`.
    fn auth_failed(&self, service: &str, ip: IpAddr, user: &str);
    /// One more recipient; why it must wait, when a rate is spent.
    fn recipient(&self, sending: &Sending<'_>) -> Option<String> {
        let _ = sending;
        None
    }
    /// True when `ip` is on the allow list: no per-address limit nor check applies to it.
    fn exempt(&self, ip: IpAddr) -> bool {
        let _ = ip;
        false
    }
}

/// A recipient about to be accepted, for the rates of [`Gate::recipient`].
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    pub ip: IpAddr,
    /// The authenticated account, if any.
    pub account: Option<&'a str>,
    /// The domain of the envelope sender; None for the null sender.
    pub sender_domain: Option<&'a str>,
    /// The first recipient of a transaction (a new message).
    pub new_message: bool,
}

/// [`Gate::recipient`] of the installed gate; None without one.
pub fn recipient(sending: &Sending<'_>) -> Option<String> {
    let sending = Sending {
        ip: sending.ip.to_canonical(),
        ..*sending
    };
    get().and_then(|g| g.recipient(&sending))
}

/// [`Gate::exempt`] of the installed gate; false without one.
pub fn exempt(ip: IpAddr) -> bool {
    get().is_some_and(|g| g.exempt(ip.to_canonical()))
}

static GATE: OnceLock<Arc<dyn Gate>> = OnceLock::new();

/// Installs the process's gate; the first call wins.
pub fn install(gate: Arc<dyn Gate>) {
    let _ = GATE.set(gate);
}

pub(crate) fn get() -> Option<&'static Arc<dyn Gate>> {
    GATE.get()
}
