//! OAuth 2.0 bearer tokens for XOAUTH2 and OAUTHBEARER (RFC 7628): JWT access tokens (RFC
//! 7519) signed with JWS (RFC 7515) by the configured issuer, verified with the keys of its
//! JWKS (RFC 7517). Only asymmetric algorithms are accepted (RFC 7518 §3.1 names): RS256,
//! ES256 and EdDSA with Ed25519 (RFC 8037); never `none` nor HS* (a shared secret would let
//! anyone holding the JWKS mint tokens).
//!
//! facteur only verifies tokens; it never fetches keys itself (the server loads the JWKS file
//! at start and the URL through [`crate::Directory::set_jwks`]).

use crate::sasl::decode_base64url;
use ring::signature;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// Settings of `[oauth]`.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// The required `iss` claim (RFC 7519 §4.1.1).
    pub issuer: String,
    /// Required in the `aud` claim, a string or an array (RFC 7519 §4.1.3).
    pub audience: String,
    /// The claim holding the account's address (default `email`).
    pub username_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Sent in the error challenge (RFC 7628 §3.2.2 `scope`).
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    /// Modulus and exponent, big-endian (RFC 7518 §6.3.1).
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point 0x04 || x || y (RFC 7518 §6.2.1).
    P256(Vec<u8>),
    /// RFC 8037 §2: `x` is the 32-byte public key.
    Ed25519(Vec<u8>),
}

impl PublicKey {
    fn alg(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "RS256",
            PublicKey::P256(_) => "ES256",
            PublicKey::Ed25519(_) => "EdDSA",
        }
    }
}

/// One usable key of the JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

/// Parses a JWK Set (RFC 7517 §5); keys facteur cannot use for signatures (symmetric `oct`
/// keys, other curves, `use` other than `sig`, an `alg` that does not fit) are skipped.
pub fn parse_jwks(json: &str) -> Result<Vec<Jwk>, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWK Set: no \"keys\" array")?;
    Ok(keys.iter().filter_map(parse_jwk).collect())
}

fn parse_jwk(v: &Value) -> Option<Jwk> {
    let field = |name: &str| v.get(name).and_then(Value::as_str);
    let bytes = |name: &str| field(name).and_then(decode_base64url);
    // RFC 7517 §4.2: "use" is "sig" or "enc".
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let key = match (field("kty")?, field("crv")) {
        ("RSA", _) => PublicKey::Rsa {
            n: bytes("n")?,
            e: bytes("e")?,
        },
        ("EC", Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            PublicKey::P256([&[0x04][..], &x, &y].concat())
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return None;
            }
            PublicKey::Ed25519(x)
        }
        _ => return None,
    };
    // RFC 7517 §4.4: when present, "alg" names the one algorithm the key is for.
    if field("alg").is_some_and(|a| a != key.alg()) {
        return None;
    }
    Some(Jwk {
        kid: field("kid").map(str::to_string),
        key,
    })
}

/// Verifies a JWT access token and returns the value of the username claim. The error is a
/// reason for logs (never the token).
pub fn validate(
    token: &str,
    keys: &[Jwk],
    options: &OAuthOptions,
    now: u64,
) -> Result<String, &'static str> {
    // RFC 7515 §7.1 compact serialization: header.payload.signature, base64url each.
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token is not a signed JWT");
    };
    let header: Value = decode_base64url(header_b64)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("token header is malformed")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
    // RFC 8725 §3.1: accept only the algorithms facteur expects; never "none" or HMAC.
    if !matches!(alg, "RS256" | "ES256" | "EdDSA") {
        return Err("token algorithm not allowed");
    }
    // RFC 7515 §4.1.11: a "crit" header names extensions we would have to understand.
    if header.get("crit").is_some() {
        return Err("token has critical header parameters");
    }
    // RFC 7515 §4.1.4: "kid" picks the key; without it, the only key for this algorithm.
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&Jwk> = keys.iter().filter(|k| k.key.alg() == alg).collect();
    let key = match kid {
        Some(kid) => candidates
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or("token signed with an unknown key")?,
        None if candidates.len() == 1 => &candidates[0],
        None => return Err("token names no key and the JWKS has several"),
    };
    let signature = decode_base64url(signature_b64).ok_or("token signature is malformed")?;
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let verified = match &key.key {
        // RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256.
        PublicKey::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signed,
            &signature,
        ),
        // RFC 7518 §3.4: ECDSA P-256 SHA-256, signature R || S (64 bytes).
        PublicKey::P256(point) => {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, &signature)
        }
        // RFC 8037 §3.1: EdDSA with Ed25519.
        PublicKey::Ed25519(x) => {
            signature::UnparsedPublicKey::new(&signature::ED25519, x).verify(signed, &signature)
        }
    };
    verified.map_err(|_| "token signature is invalid")?;
    let claims: Value = decode_base64url(payload_b64)
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or("token claims are malformed")?;
    check_claims(&claims, options, now)
}

/// RFC 7519 §4.1: exp (required here), nbf, iss, aud; then the username claim.
fn check_claims(claims: &Value, options: &OAuthOptions, now: u64) -> Result<String, &'static str> {
    let time = |name: &str| claims.get(name).map(|v| v.as_f64().ok_or("bad time claim"));
    // §4.1.4: the token must not be accepted on or after exp (plus the leeway).
    let exp = time("exp").ok_or("token has no exp claim")??;
    if now as f64 >= exp + options.leeway_secs as f64 {
        return Err("token expired");
    }
    // §4.1.5: nor before nbf (minus the leeway).
    if let Some(nbf) = time("nbf").transpose()?
        && (now + options.leeway_secs) as f64 <= nbf
    {
        return Err("token not yet valid");
    }
    // §4.1.1: iss, compared as a case-sensitive string.
    if claims.get("iss").and_then(Value::as_str) != Some(options.issuer.as_str()) {
        return Err("token issuer is wrong");
    }
    // §4.1.3: aud is a string or an array of strings, one of them ours.
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == options.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(options.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err("token audience is wrong");
    }
    claims
        .get(&options.username_claim)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or("token lacks the username claim")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The error challenge after a failed token (RFC 7628 §3.2.2; Google's XOAUTH2 uses the same
/// JSON with `status` "401").
pub fn error_challenge(status: &str, options: &OAuthOptions) -> Vec<u8> {
    serde_json::json!({
        "status": status,
        "schemes": "bearer",
        "scope": options.scope,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
pub(crate) mod tests;
