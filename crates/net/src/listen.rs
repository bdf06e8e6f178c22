//! Binding listen addresses, with errors an admin can act on.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::net::TcpListener;

/// A listen address that could not be bound; Display is the one line the admin sees.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen on {addr} for {role} ({reason}); change or empty `listen.{role}` in the configuration"
)]
pub struct BindError {
    pub role: String,
    pub addr: SocketAddr,
    pub reason: String,
}

/// Binds `addr` for `role`, before privileges are dropped and before any runtime exists.
/// `[::]` falls back to `0.0.0.0` on hosts without IPv6. The listener is non-blocking, ready
/// for `tokio::net::TcpListener::from_std`.
pub fn bind(role: &str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    let listener = bind_any(role, addr)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| error(role, addr, &e))?;
    Ok(listener)
}

fn bind_any(role: &str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    match TcpListener::bind(addr) {
        Ok(l) => Ok(l),
        Err(e)
            if addr.ip().is_unspecified()
                && addr.is_ipv6()
                && e.kind() == ErrorKind::AddrNotAvailable =>
        {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            tracing::warn!(%addr, fallback = %v4, "IPv6 is not available; listening on IPv4 only");
            TcpListener::bind(v4).map_err(|e| error(role, v4, &e))
        }
        Err(e) => Err(error(role, addr, &e)),
    }
}

fn error(role: &str, addr: SocketAddr, e: &std::io::Error) -> BindError {
    let reason = match e.kind() {
        ErrorKind::PermissionDenied => {
            "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE".to_string()
        }
        ErrorKind::AddrInUse => "the port is already in use by another program".to_string(),
        ErrorKind::AddrNotAvailable => "no interface of this machine has that address".to_string(),
        _ => e.to_string(),
    };
    BindError {
        role: role.to_string(),
        addr,
        reason,
    }
}
