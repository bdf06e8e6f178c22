//! Filter addresses, in the forms admins copy from Sendmail's `INPUT_MAIL_FILTER` (`S=`
//! equate: `unix:/path`, `local:/path`, `inet:port@host`, `inet6:port@host`) and Postfix's
//! `smtpd_milters` (`unix:/path`, `inet:host:port`).

use crate::MilterError;
use std::path::PathBuf;

/// Where a filter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP host (name or address) and port.
    Tcp { host: String, port: u16 },
    /// A Unix-domain socket path.
    Unix(PathBuf),
}

fn bad(address: &str, reason: &'static str) -> MilterError {
    MilterError::Address {
        address: address.to_string(),
        reason,
    }
}

fn port(address: &str, text: &str) -> Result<u16, MilterError> {
    match text.parse::<u16>() {
        Ok(p) if p != 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(bad(address, "the port must be a number from 1 to 65535")),
    }
}

fn host(address: &str, text: &str) -> Result<String, MilterError> {
    let text = text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(bad(address, "the host is missing"));
    }
    if text
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/' || b == b'@')
    {
        return Err(bad(
            address,
            "the host contains characters a host name cannot have",
        ));
    }
    Ok(text.to_string())
}

/// `host:port` with an optional bracketed IPv6 host (`[::1]:8891`).
fn host_port(address: &str, text: &str) -> Result<Endpoint, MilterError> {
    let (h, p) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(address, "an IPv6 host in brackets lacks its ']'"))?;
        let p = after
            .strip_prefix(':')
            .ok_or_else(|| bad(address, "expected :PORT after the host"))?;
        (h, p)
    } else {
        text.rsplit_once(':')
            .ok_or_else(|| bad(address, "expected HOST:PORT or PORT@HOST"))?
    };
    if h.contains(':') && !text.starts_with('[') {
        return Err(bad(
            address,
            "write an IPv6 host in brackets ([::1]:PORT) or as PORT@HOST",
        ));
    }
    Ok(Endpoint::Tcp {
        host: host(address, h)?,
        port: port(address, p)?,
    })
}

impl Endpoint {
    /// Parses a filter address (see [`crate::Milter::parse`]).
    pub fn parse(address: &str) -> Result<Endpoint, MilterError> {
        let text = address.trim();
        if text.is_empty() {
            return Err(bad(address, "the address is empty"));
        }
        if text.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(text)));
        }
        let (scheme, rest) = match text.split_once(':') {
            Some((s, r))
                if ["unix", "local", "inet", "inet6"]
                    .iter()
                    .any(|k| s.eq_ignore_ascii_case(k)) =>
            {
                (s.to_ascii_lowercase(), r)
            }
            _ => (String::new(), text),
        };
        match scheme.as_str() {
            "unix" | "local" => {
                if rest.is_empty() {
                    Err(bad(address, "the socket path is missing"))
                } else {
                    Ok(Endpoint::Unix(PathBuf::from(rest)))
                }
            }
            "inet" | "inet6" => match rest.split_once('@') {
                Some((p, h)) => Ok(Endpoint::Tcp {
                    host: host(address, h)?,
                    port: port(address, p)?,
                }),
                None => host_port(address, rest),
            },
            _ => host_port(address, rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Endpoint {
        Endpoint::Tcp {
            host: h.to_string(),
            port: p,
        }
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(
            Endpoint::parse("inet:8891@127.0.0.1").unwrap(),
            tcp("127.0.0.1", 8891)
        );
        assert_eq!(
            Endpoint::parse("inet:8891@localhost").unwrap(),
            tcp("localhost", 8891)
        );
        assert_eq!(Endpoint::parse("inet6:8891@::1").unwrap(), tcp("::1", 8891));
        assert_eq!(
            Endpoint::parse("inet6:8891@[::1]").unwrap(),
            tcp("::1", 8891)
        );
        assert_eq!(
            Endpoint::parse("inet:localhost:8891").unwrap(),
            tcp("localhost", 8891)
        );
        assert_eq!(
            Endpoint::parse("inet:[::1]:8891").unwrap(),
            tcp("::1", 8891)
        );
        assert_eq!(
            Endpoint::parse("127.0.0.1:11332").unwrap(),
            tcp("127.0.0.1", 11332)
        );
        assert_eq!(
            Endpoint::parse("[2001:db8::1]:25").unwrap(),
            tcp("2001:db8::1", 25)
        );
        assert_eq!(
            Endpoint::parse("unix:/run/opendkim/opendkim.sock").unwrap(),
            Endpoint::Unix("/run/opendkim/opendkim.sock".into())
        );
        assert_eq!(
            Endpoint::parse("local:/var/run/m.sock").unwrap(),
            Endpoint::Unix("/var/run/m.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/run/m.sock").unwrap(),
            Endpoint::Unix("/run/m.sock".into())
        );
        assert_eq!(Endpoint::parse("INET:25@h").unwrap(), tcp("h", 25));
    }

    #[test]
    fn refused_forms() {
        for a in [
            "",
            "unix:",
            "inet:",
            "inet:8891",
            "inet:0@127.0.0.1",
            "inet:99999@127.0.0.1",
            "inet:x@127.0.0.1",
            "inet:8891@",
            "inet:127.0.0.1:",
            "inet:+25@h",
            "::1:8891",
            "[::1]8891",
            "[::1:8891",
            "host name:25",
            "localhost",
        ] {
            let e = Endpoint::parse(a).expect_err(a);
            assert!(e.to_string().contains("invalid milter address"), "{a}: {e}");
        }
    }
}
