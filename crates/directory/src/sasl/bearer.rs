//! The client messages of XOAUTH2 (Google's format) and OAUTHBEARER (RFC 7628 §3.1).

/// A decoded bearer message: the user it names (if any) and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerMessage {
    pub user: Option<String>,
    pub token: String,
}

/// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A` (Google's "XOAUTH2 protocol" page).
pub fn parse_xoauth2(message: &[u8]) -> Option<BearerMessage> {
    let text = std::str::from_utf8(message).ok()?;
    let body = text.strip_suffix("\x01\x01")?;
    let (mut user, mut token) = (None, None);
    for field in body.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u.to_string());
        } else if let Some(a) = field.strip_prefix("auth=") {
            token = Some(bearer_token(a)?);
        } else {
            return None;
        }
    }
    let user = user.filter(|u| !u.is_empty() && !u.chars().any(char::is_control))?;
    Some(BearerMessage {
        user: Some(user),
        token: token?,
    })
}

/// OAUTHBEARER (RFC 7628 §3.1):
/// `client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep`, `kvpair = key "=" value kvsep`,
/// the gs2-header of RFC 5801 §4 with an optional `a=` authzid (the user).
pub fn parse_oauthbearer(message: &[u8]) -> Option<BearerMessage> {
    let text = std::str::from_utf8(message).ok()?;
    // RFC 7628 §3.1: no channel binding ("p=" is refused, "n" and "y" accepted).
    let rest = text
        .strip_prefix("n,")
        .or_else(|| text.strip_prefix("y,"))?;
    let (authzid, rest) = rest.split_once(',')?;
    let user = match authzid {
        "" => None,
        a => Some(decode_saslname(a.strip_prefix("a=")?)?),
    };
    let body = rest.strip_prefix('\x01')?.strip_suffix("\x01\x01")?;
    let mut token = None;
    for pair in body.split('\x01') {
        // key = 1*(ALPHA); value = *(VCHAR / SP / HTAB / CR / LF)
        let (key, value) = pair.split_once('=')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        if key == "auth" {
            token = Some(bearer_token(value)?);
        }
    }
    Some(BearerMessage {
        user,
        token: token?,
    })
}

/// `auth-value = "Bearer" 1*SP b64token` (RFC 6750 §2.1; the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<String> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.chars().all(b64token))
        .then(|| token.to_string())
}

/// RFC 5801 §4 saslname: "=2C" is ',' and "=3D" is '='.
fn decode_saslname(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        out.push(match rest.get(i..i + 3)? {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty() && !out.chars().any(char::is_control)).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_messages() {
        let m = parse_xoauth2(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01").unwrap();
        assert_eq!(m.user.as_deref(), Some("someuser@example.com"));
        assert_eq!(m.token, "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
        assert!(parse_xoauth2(b"user=a@b\x01auth=Basic abc\x01\x01").is_none());
        assert!(parse_xoauth2(b"user=a@b\x01auth=Bearer abc\x01").is_none());
        assert!(parse_xoauth2(b"auth=Bearer abc\x01\x01").is_none());
    }

    #[test]
    fn oauthbearer_messages_rfc7628_section4_1() {
        let m = parse_oauthbearer(b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01").unwrap();
        assert_eq!(m.user.as_deref(), Some("user@example.com"));
        assert_eq!(m.token, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
        let m = parse_oauthbearer(b"n,,\x01auth=Bearer abc\x01\x01").unwrap();
        assert_eq!(m.user, None);
        assert!(parse_oauthbearer(b"p=tls-unique,,\x01auth=Bearer abc\x01\x01").is_none());
        assert!(parse_oauthbearer(b"\x01").is_none());
        assert!(parse_oauthbearer(b"n,,\x01host=x\x01\x01").is_none());
    }
}
