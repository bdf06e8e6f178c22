//! SASL mechanisms, sans-IO (RFC 4422), shared by POP3 (RFC 5034), IMAP and submission:
//! PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login, what Outlook and many phones send).
//! Both carry the password itself, so protocols offer them only over TLS.
//!
//! Also SCRAM-SHA-256 (RFC 5802, RFC 7677), CRAM-MD5 (RFC 2195, off by default), XOAUTH2 and
//! OAUTHBEARER (RFC 7628). Drivers use [`crate::Directory::sasl_start`] and the
//! [`SaslExchange`] it returns; this module holds the codecs (base64, PLAIN, ...).

pub mod bearer;
pub mod cram;
mod exchange;
pub mod scram;

pub use exchange::{SaslExchange, SaslOutcome};

/// Credentials decoded from a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Who is authenticating.
    pub authcid: String,
    /// Whom to act as; empty or equal to `authcid` (facteur has no proxy authorization).
    pub authzid: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed PLAIN message")]
    Malformed,
    #[error("authorization identity differs from the authentication identity")]
    ProxyDenied,
}

/// The mechanisms these settings enable, in the order servers list them.
pub(crate) fn exchange_mechanisms(
    options: &crate::SaslOptions,
) -> impl Iterator<Item = exchange::Mechanism> + '_ {
    use exchange::Mechanism;
    Mechanism::ALL.into_iter().filter(|m| match m {
        Mechanism::CramMd5 => options.cram_md5,
        Mechanism::OAuthBearer | Mechanism::XOAuth2 => options.oauth.is_some(),
        _ => true,
    })
}

/// Decodes a PLAIN response `base64(authzid NUL authcid NUL passwd)` (RFC 4616 §2).
pub fn plain(response_b64: &str) -> Result<Credentials, SaslError> {
    decode_plain(&decode_base64(response_b64.trim()).ok_or(SaslError::Base64)?)
}

fn decode_plain(raw: &[u8]) -> Result<Credentials, SaslError> {
    let text = String::from_utf8(raw.to_vec()).map_err(|_| SaslError::Malformed)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::ProxyDenied);
    }
    Ok(Credentials {
        authcid: authcid.into(),
        authzid: authzid.into(),
        password: password.into(),
    })
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn encode_base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4), as SASL uses; None on any invalid input.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// base64url without padding (RFC 4648 §5, as JOSE uses it, RFC 7515 §2); None on any
/// invalid input, padding included.
pub fn decode_base64url(s: &str) -> Option<Vec<u8>> {
    if s.contains(['+', '/', '=']) || s.len() % 4 == 1 {
        return None;
    }
    let mut standard: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    decode_base64(&standard)
}

/// base64url without padding (RFC 7515 §2).
pub fn encode_base64url(data: &[u8]) -> String {
    encode_base64(data)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decodes_rfc4616_examples() {
        // "\0tim\0tanstaaftanstaaf" (RFC 4616 §4).
        let c = plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
        assert_eq!(
            (c.authcid.as_str(), c.password.as_str()),
            ("tim", "tanstaaftanstaaf")
        );
        // "Ursel\0Kurt\0xipj3plmq": a different authzid is refused.
        assert_eq!(
            plain("VXJzZWwAS3VydAB4aXBqM3BsbXE="),
            Err(SaslError::ProxyDenied)
        );
        assert_eq!(plain("not base64!"), Err(SaslError::Base64));
        assert_eq!(plain("AGFsaWNl"), Err(SaslError::Malformed)); // "\0alice"
    }

    #[test]
    fn base64_round_trips() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            b"Username:",
        ] {
            let e = encode_base64(data);
            assert_eq!(decode_base64(&e).unwrap(), data, "{e}");
        }
        assert_eq!(encode_base64(b"Password:"), "UGFzc3dvcmQ6");
    }

    #[test]
    fn base64url_round_trips_without_padding() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"\xfb\xff\xfe"] {
            let e = encode_base64url(data);
            assert!(!e.contains(['=', '+', '/']), "{e}");
            assert_eq!(decode_base64url(&e).unwrap(), data, "{e}");
        }
        assert_eq!(encode_base64url(b"\xfb\xff"), "-_8");
        assert!(decode_base64url("Zg==").is_none());
        assert!(decode_base64url("+/8").is_none());
        assert!(decode_base64url("Z").is_none());
    }

    #[test]
    fn base64_padding_rules() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert!(decode_base64("Zg=").is_none());
        assert!(decode_base64("Zg==Zm9v").is_none());
        assert!(decode_base64("Z===").is_none());
    }
}
