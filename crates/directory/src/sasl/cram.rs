//! CRAM-MD5 (RFC 2195), server side. The client answers the challenge with
//! `user SP hex(HMAC-MD5(secret, challenge))`; facteur keeps, per secret, the HMAC-MD5 states
//! of [`crate::md5::HmacMd5State`] instead of the secret (decision 0013).

use crate::md5::HmacMd5State;
use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 2195 §2: "a presumptively arbitrary string of random digits, a timestamp, and the
/// fully-qualified primary host name of the server", in msg-id form (RFC 1939 §7).
pub fn challenge(hostname: &str) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut random = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .expect("system random generator");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("<{}.{now}@{hostname}>", u64::from_be_bytes(random)).into_bytes()
}

/// Splits the response `user SP digest` (RFC 2195 §2: the digest is 16 octets in lowercase
/// hex). None when malformed.
pub fn parse_response(response: &[u8]) -> Option<(String, [u8; 16])> {
    let text = std::str::from_utf8(response).ok()?;
    let (user, hex) = text.rsplit_once(' ')?;
    if user.is_empty() || hex.len() != 32 || user.chars().any(char::is_control) {
        return None;
    }
    let mut digest = [0u8; 16];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((user.to_string(), digest))
}

/// The HMAC-MD5 states of an account's secrets, labelled like SCRAM's (None: the password;
/// Some(name): an application password).
pub type Secrets = Vec<(Option<String>, HmacMd5State)>;

/// The label of the first secret whose HMAC of the challenge is `digest` (every secret is
/// tried, in constant time each).
pub fn matching_secret(
    challenge: &[u8],
    digest: &[u8; 16],
    secrets: &[(Option<String>, HmacMd5State)],
) -> Option<Option<String>> {
    let mut found = None;
    for (label, state) in secrets {
        if super::scram::constant_time_eq(&state.mac(challenge), digest) && found.is_none() {
            found = Some(label.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2195_example() {
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
        let state = HmacMd5State::new(b"tanstaaftanstaaf");
        let response = b"tim b913a602c7eda7a495b4e6e7334d3890";
        let (user, digest) = parse_response(response).unwrap();
        assert_eq!(user, "tim");
        let hex: String = state
            .mac(challenge)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "b913a602c7eda7a495b4e6e7334d3890");
        let secrets = [
            (Some("other".to_string()), HmacMd5State::new(b"nope")),
            (None, state),
        ];
        assert_eq!(matching_secret(challenge, &digest, &secrets), Some(None));
        assert_eq!(matching_secret(b"<other@host>", &digest, &secrets), None);
        assert!(parse_response(b"tim b913a602c7eda7a495b4e6e7334d38").is_none());
        assert!(parse_response(b"b913a602c7eda7a495b4e6e7334d3890").is_none());
        let c = challenge_text("mx.example.com");
        assert!(c.starts_with('<') && c.ends_with("@mx.example.com>"), "{c}");
    }

    fn challenge_text(host: &str) -> String {
        String::from_utf8(challenge(host)).unwrap()
    }
}
