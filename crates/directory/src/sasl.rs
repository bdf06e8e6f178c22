//! SASL mechanisms, sans-IO (RFC 4422), shared by POP3 (RFC 5034), IMAP and submission.
//! PLAIN (RFC 4616) only: every exchange runs over TLS, where PLAIN is what clients use.

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

/// Decodes a PLAIN response `base64(authzid NUL authcid NUL passwd)` (RFC 4616 §2).
pub fn plain(response_b64: &str) -> Result<Credentials, SaslError> {
    let raw = decode_base64(response_b64.trim()).ok_or(SaslError::Base64)?;
    let text = String::from_utf8(raw).map_err(|_| SaslError::Malformed)?;
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
