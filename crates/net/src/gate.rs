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
    /// One more recipient from `ip` (and the authenticated `account`, if any); `new_message`
    /// for the first recipient of a transaction. Why it must wait, when a rate is spent.
    fn recipient(&self, ip: IpAddr, account: Option<&str>, new_message: bool) -> Option<String> {
        let _ = (ip, account, new_message);
        None
    }
}

/// [`Gate::recipient`] of the installed gate; None without one.
pub fn recipient(ip: IpAddr, account: Option<&str>, new_message: bool) -> Option<String> {
    get().and_then(|g| g.recipient(ip.to_canonical(), account, new_message))
}

static GATE: OnceLock<Arc<dyn Gate>> = OnceLock::new();

/// Installs the process's gate; the first call wins.
pub fn install(gate: Arc<dyn Gate>) {
    let _ = GATE.set(gate);
}

pub(crate) fn get() -> Option<&'static Arc<dyn Gate>> {
    GATE.get()
}
