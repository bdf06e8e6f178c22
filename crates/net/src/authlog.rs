//! The failed-login log line every protocol writes, in the one stable format fail2ban's filter
//! matches (`etc/fail2ban/filter.d/facteur.conf`).

use std::net::IpAddr;

/// Logs `auth failed service=SERVICE remote=IP user=NAME` at WARN.
pub fn log_auth_failure(service: &str, remote: IpAddr, user: &str) {
    tracing::warn!(
        "auth failed service={service} remote={remote} user={}",
        sanitize(user)
    );
    if let Some(gate) = crate::gate::get() {
        gate.auth_failed(service, remote, user);
    }
}

/// A user name fit for one log line: printable, without spaces, bounded.
fn sanitize(user: &str) -> String {
    let clean: String = user
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .take(128)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_names_cannot_forge_log_fields() {
        assert_eq!(super::sanitize("a b\nremote=1.2.3.4"), "abremote=1.2.3.4");
        assert_eq!(super::sanitize(""), "-");
    }
}
