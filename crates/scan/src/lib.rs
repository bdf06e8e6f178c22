//! Clients for the outside scanners a mail server hands messages to:
//!
//! - [`Clamd`]: ClamAV's daemon, through its `INSTREAM` command (clamd(8), "COMMANDS");
//! - [`Spamd`]: SpamAssassin's daemon, through the SPAMC/SPAMD protocol (`spamd/PROTOCOL` in the
//!   SpamAssassin sources);
//! - [`Rspamd`]: rspamd's normal worker, through its HTTP `/checkv2` endpoint (rspamd
//!   documentation, "Rspamd protocol").
//!
//! Every client is built once from the configured address and a timeout, and is cheap to share:
//! each call opens its own connection. Each call is bounded: the connection must be made within
//! the connect timeout, the whole exchange must end within the overall timeout, and every reply
//! is read up to a fixed number of bytes. Failures are [`ScanError`]s whose messages name the
//! scanner and its address, e.g. `clamd at unix:/run/clamav/clamd.ctl: connection refused`.
//!
//! Addresses are written `unix:/path/to/socket`, `tcp:HOST:PORT` or `HOST:PORT` (IPv6 literals
//! in brackets: `[::1]:3310`); rspamd also takes an URL, `http://127.0.0.1:11333`.
#![forbid(unsafe_code)]

pub mod clamd;
mod conn;
pub mod rspamd;
pub mod spamd;

pub use clamd::{ClamVerdict, Clamd};
pub use rspamd::{Rspamd, RspamdAction, RspamdMeta, RspamdVerdict};
pub use spamd::{Spamd, SpamdVerdict};

use std::time::Duration;

/// Connect timeout used when none is set: the overall timeout, but no more than this.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a scanner could not give a verdict.
///
/// `service` is the scanner's name (`clamd`, `spamd`, `rspamd`) and `address` its address as
/// configured, so that each message stands on its own in a log. None of these is a verdict on
/// the message: a caller that must not let mail through unscanned answers with a temporary
/// failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The configured address or timeout cannot be used.
    #[error("{service} at {address:?} cannot be used: {reason}")]
    Config {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request cannot be sent as asked (a user name or envelope value the protocol cannot
    /// carry, such as one with a line break).
    #[error("{service} at {address}: the request cannot be sent: {reason}")]
    InvalidRequest {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// What is wrong with the request.
        reason: String,
    },
    /// The connection could not be made.
    #[error("{service} at {address}: {detail}")]
    Connect {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// Why, e.g. "connection refused".
        detail: String,
    },
    /// The connection was not made within the connect timeout.
    #[error("{service} at {address}: could not connect within {}", human_duration(*.limit))]
    ConnectTimeout {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// The connect timeout.
        limit: Duration,
    },
    /// The exchange did not end within the overall timeout.
    #[error("{service} at {address}: no answer within {}", human_duration(*.limit))]
    Timeout {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// The overall timeout.
        limit: Duration,
    },
    /// The connection broke during the exchange.
    #[error("{service} at {address}: {detail}")]
    Io {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// What was being done and what happened.
        detail: String,
    },
    /// The scanner answered with an error of its own instead of a verdict.
    #[error("{service} at {address} answered: {message}")]
    Answered {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// The scanner's own words, control characters escaped.
        message: String,
    },
    /// The reply does not follow the protocol.
    #[error("{service} at {address} sent a reply that cannot be understood: {detail}")]
    Protocol {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The reply is longer than the client accepts.
    #[error("{service} at {address} sent a reply longer than {limit} bytes")]
    ReplyTooLarge {
        /// Scanner name.
        service: &'static str,
        /// The address as configured.
        address: String,
        /// The bound that was passed.
        limit: usize,
    },
}

impl ScanError {
    /// True for [`ScanError::Timeout`] and [`ScanError::ConnectTimeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ScanError::Timeout { .. } | ScanError::ConnectTimeout { .. }
        )
    }
}

/// "30 s" for whole seconds, "250 ms" otherwise.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Scanner-supplied text made safe for an error message or a log line: invalid UTF-8 replaced,
/// control characters escaped, cut at `max` characters.
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500 ms");
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable(b"a\r\nb\0", 100), "a\\r\\nb\\u{0}");
        assert_eq!(printable(b"abcdef", 3), "abc…");
        assert_eq!(printable(b"\xffok", 10), "\u{fffd}ok");
    }
}
