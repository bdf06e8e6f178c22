//! JWT verification against keys made here (ES256, Ed25519) and a committed RSA test key
//! (`tests/fixtures/rs256-test-key.pem`, generated with `openssl genrsa 2048` for these tests
//! only, and its JWK).

use super::*;
use crate::sasl::{decode_base64, encode_base64url};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::json;

pub(crate) const ISSUER: &str = "https://id.example.com";
pub(crate) const AUDIENCE: &str = "mail.example.com";

pub(crate) fn options() -> OAuthOptions {
    OAuthOptions {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        username_claim: "email".into(),
        leeway_secs: 60,
        scope: "openid email".into(),
    }
}

/// A signing key and its JWK.
pub(crate) enum Signer {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

pub(crate) struct TestKey {
    pub kid: String,
    pub signer: Signer,
}

impl TestKey {
    pub(crate) fn es256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        TestKey {
            kid: kid.into(),
            signer: Signer::Es256(pair),
        }
    }

    pub(crate) fn ed25519(kid: &str) -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        TestKey {
            kid: kid.into(),
            signer: Signer::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()),
        }
    }

    /// The committed RSA key; its kid is "rsa-test" in the committed JWK.
    pub(crate) fn rs256() -> TestKey {
        let pem = include_str!("../../tests/fixtures/rs256-test-key.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = decode_base64(&body).unwrap();
        TestKey {
            kid: "rsa-test".into(),
            signer: Signer::Rs256(RsaKeyPair::from_pkcs8(&der).unwrap()),
        }
    }

    pub(crate) fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Es256(_) => "ES256",
            Signer::Ed25519(_) => "EdDSA",
            Signer::Rs256(_) => "RS256",
        }
    }

    pub(crate) fn jwk(&self) -> serde_json::Value {
        match &self.signer {
            Signer::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                       "x": encode_base64url(&point[1..33]), "y": encode_base64url(&point[33..65])})
            }
            Signer::Ed25519(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": "EdDSA",
                       "x": encode_base64url(pair.public_key().as_ref())})
            }
            Signer::Rs256(_) => {
                serde_json::from_str(include_str!("../../tests/fixtures/rs256-test-key.jwk.json"))
                    .unwrap()
            }
        }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Es256(pair) => pair.sign(&rng, data).unwrap().as_ref().to_vec(),
            Signer::Ed25519(pair) => pair.sign(data).as_ref().to_vec(),
            Signer::Rs256(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, data, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A JWT with this header and claims, signed by this key.
    pub(crate) fn token_with(
        &self,
        header: serde_json::Value,
        claims: serde_json::Value,
    ) -> String {
        let signed = format!(
            "{}.{}",
            encode_base64url(header.to_string().as_bytes()),
            encode_base64url(claims.to_string().as_bytes())
        );
        let sig = self.sign(signed.as_bytes());
        format!("{signed}.{}", encode_base64url(&sig))
    }

    pub(crate) fn token(&self, claims: serde_json::Value) -> String {
        self.token_with(
            json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }
}

pub(crate) fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

pub(crate) fn claims(email: &str) -> serde_json::Value {
    let now = now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "email": email, "iat": now, "exp": now + 600})
}

fn check(token: &str, keys: &[Jwk]) -> Result<String, &'static str> {
    validate(token, keys, &options(), now())
}

#[test]
fn tokens_signed_with_each_algorithm_verify() {
    let (es, ed, rs) = (
        TestKey::es256("ec1"),
        TestKey::ed25519("ed1"),
        TestKey::rs256(),
    );
    let keys = parse_jwks(&jwks(&[&es, &ed, &rs])).unwrap();
    assert_eq!(keys.len(), 3);
    for key in [&es, &ed, &rs] {
        let token = key.token(claims("alice@example.com"));
        assert_eq!(
            check(&token, &keys).as_deref(),
            Ok("alice@example.com"),
            "{}",
            key.alg()
        );
    }
    // aud as an array.
    let mut c = claims("alice@example.com");
    c["aud"] = json!(["other", AUDIENCE]);
    assert!(check(&es.token(c), &keys).is_ok());
}

#[test]
fn time_issuer_and_audience_are_checked() {
    let es = TestKey::es256("ec1");
    let keys = parse_jwks(&jwks(&[&es])).unwrap();
    let now = now();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims("alice@example.com");
        f(&mut c);
        check(&es.token(c), &keys)
    };
    assert_eq!(with(&|c| c["exp"] = json!(now - 61)), Err("token expired"));
    // Within the leeway.
    assert!(with(&|c| c["exp"] = json!(now - 30)).is_ok());
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        Err("token has no exp claim")
    );
    assert_eq!(
        with(&|c| c["nbf"] = json!(now + 120)),
        Err("token not yet valid")
    );
    assert!(with(&|c| c["nbf"] = json!(now + 30)).is_ok());
    assert_eq!(
        with(&|c| c["iss"] = json!("https://evil.example")),
        Err("token issuer is wrong")
    );
    assert_eq!(
        with(&|c| c["aud"] = json!("other")),
        Err("token audience is wrong")
    );
    assert_eq!(
        with(&|c| c["aud"] = json!(["a", "b"])),
        Err("token audience is wrong")
    );
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("email");
        }),
        Err("token lacks the username claim")
    );
}

#[test]
fn algorithms_signatures_and_keys_are_checked() {
    let es = TestKey::es256("ec1");
    let keys = parse_jwks(&jwks(&[&es])).unwrap();
    let c = claims("alice@example.com");
    let body = format!(
        "{}.{}",
        encode_base64url(json!({"alg": "none"}).to_string().as_bytes()),
        encode_base64url(c.to_string().as_bytes())
    );
    assert_eq!(
        check(&format!("{body}."), &keys),
        Err("token algorithm not allowed")
    );
    // HS256 "signed" with the public key as the HMAC secret: the classic confusion attack.
    let header = encode_base64url(json!({"alg": "HS256", "kid": "ec1"}).to_string().as_bytes());
    let signed = format!("{header}.{}", encode_base64url(c.to_string().as_bytes()));
    let mac = crate::sasl::scram::hmac_sha256(es.jwk().to_string().as_bytes(), signed.as_bytes());
    assert_eq!(
        check(&format!("{signed}.{}", encode_base64url(&mac)), &keys),
        Err("token algorithm not allowed")
    );
    // A signature by another key with the same kid.
    let impostor = TestKey::es256("ec1");
    assert_eq!(
        check(&impostor.token(c.clone()), &keys),
        Err("token signature is invalid")
    );
    // A changed payload.
    let token = es.token(c.clone());
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = encode_base64url(claims("mallory@example.com").to_string().as_bytes());
    parts[1] = &other;
    assert_eq!(
        check(&parts.join("."), &keys),
        Err("token signature is invalid")
    );
    // Unknown kid; no kid with a single key works.
    let unknown = TestKey::es256("ec2");
    let mut forged = unknown.token(c.clone());
    assert_eq!(
        check(&forged, &keys),
        Err("token signed with an unknown key")
    );
    forged = es.token_with(json!({"alg": "ES256"}), c.clone());
    assert!(check(&forged, &keys).is_ok());
    // An ES256 header on an Ed25519 key's token: no ES256 key has that kid.
    let ed = TestKey::ed25519("ed1");
    let both = parse_jwks(&jwks(&[&es, &ed])).unwrap();
    let mixed = ed.token_with(json!({"alg": "ES256", "kid": "ed1"}), c.clone());
    assert_eq!(
        check(&mixed, &both),
        Err("token signed with an unknown key")
    );
    assert_eq!(check("abc", &keys), Err("token is not a signed JWT"));
}

#[test]
fn jwks_parsing_skips_unusable_keys() {
    let es = TestKey::es256("ec1");
    let set = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        es.jwk(),
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
    ]});
    assert_eq!(parse_jwks(&set.to_string()).unwrap().len(), 1);
    assert!(parse_jwks("{").is_err());
    assert!(parse_jwks("{\"no\": 1}").is_err());
    let challenge = error_challenge("invalid_token", &options());
    let v: serde_json::Value = serde_json::from_slice(&challenge).unwrap();
    assert_eq!(
        v,
        json!({"status": "invalid_token", "schemes": "bearer", "scope": "openid email"})
    );
}
