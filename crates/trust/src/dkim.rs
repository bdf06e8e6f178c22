//! DKIM for the mail facteur sends: keys, the DNS records that publish them, and signing
//! (RFC 6376).
//!
//! - Keys: RSA of 2048 bits (RFC 8301 §3.2: at least 1024, 2048 recommended) or Ed25519
//!   (RFC 8463), kept as PKCS#8 PEM (for Ed25519 version 1, RFC 8410 §7, which OpenSSL
//!   reads). PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, the older opendkim-genkey output) and
//!   version 2 Ed25519 PKCS#8 (RFC 5958) are read too. RSA keys must have 2048 to 4096 bits: the
//!   cryptographic library signs with nothing smaller.
//! - Records: `v=DKIM1; k=rsa; p=...` (RFC 6376 §3.6.1), cut into character-strings of at
//!   most 255 octets (RFC 1035 §3.3.14) and shown as a zone-file line.
//! - Signing: relaxed/relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4), SHA-256, the
//!   recommended header fields that are present (§5.4.1) with From signed once more than it
//!   appears (§8.15), a t= timestamp, no l= (§8.2). Every key of the domain signs, side by
//!   side (RFC 6376 §4.2; RFC 8463 §5 for RSA with Ed25519; also while a key is rotated).
//!
//! The crypto is mail-auth's canonicalization and signature layout with ring's RSA and Ed25519;
//! keys are parsed once, in [`Signer::new`]. Nothing here panics on any input.

mod encoding;
mod fields;

use mail_auth::common::crypto::{Algorithm as MailAuthAlgorithm, Sha256};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A DKIM key algorithm (RFC 6376 §3.6.1 k= tag; RFC 8463 §3 adds ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// RSA with SHA-256 signatures, `a=rsa-sha256` (RFC 6376 §3.3.1, RFC 8301).
    Rsa,
    /// Ed25519 over the SHA-256 hash, `a=ed25519-sha256` (RFC 8463 §3).
    Ed25519,
}

impl Algorithm {
    /// The k= value of the DNS record: "rsa" or "ed25519".
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DkimError;

    /// "rsa" or "ed25519", in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        if name.eq_ignore_ascii_case("rsa") {
            Ok(Algorithm::Rsa)
        } else if name.eq_ignore_ascii_case("ed25519") {
            Ok(Algorithm::Ed25519)
        } else {
            Err(DkimError::UnknownAlgorithm(s.to_string()))
        }
    }
}

/// What went wrong, in words an administrator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    /// A key algorithm name that is neither "rsa" nor "ed25519".
    #[error("unknown DKIM key algorithm {0:?}: use \"rsa\" or \"ed25519\"")]
    UnknownAlgorithm(String),
    /// A new key could not be made (the system's random source failed).
    #[error("cannot generate a DKIM {algorithm} key: {reason}")]
    Generate {
        /// The algorithm asked for.
        algorithm: Algorithm,
        /// What failed.
        reason: String,
    },
    /// A private key that cannot be used, outside any configuration (see
    /// [`public_key_b64`]).
    #[error("invalid DKIM private key: {0}")]
    InvalidKey(String),
    /// A configured key that cannot be used: named by its DNS record,
    /// `selector._domainkey.domain` (RFC 6376 §3.6.2.1).
    #[error("DKIM key {selector}._domainkey.{domain}: {reason}")]
    BadKey {
        /// The key's selector (s=).
        selector: String,
        /// The signing domain (d=).
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Signing a message failed.
    #[error("DKIM signing with {selector}._domainkey.{domain} failed: {reason}")]
    Sign {
        /// The key's selector (s=).
        selector: String,
        /// The signing domain (d=).
        domain: String,
        /// What failed.
        reason: String,
    },
}

/// A newly generated private key.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The private key as PKCS#8 PEM (RFC 5208 §5, RFC 7468 §10): `-----BEGIN PRIVATE KEY-----`.
    pub private_pem: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("private_pem", &"(secret)")
            .finish()
    }
}

/// A new key: RSA 2048 bits (RFC 8301 §3.2) or Ed25519 (RFC 8463), as PKCS#8 PEM.
pub fn generate(algorithm: Algorithm) -> Result<GeneratedKey, DkimError> {
    let failed = |reason: String| DkimError::Generate { algorithm, reason };
    let der = match algorithm {
        Algorithm::Rsa => {
            let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
                .map_err(|e| failed(e.to_string()))?;
            encoding::pkcs1_private_to_pkcs8(pair.private_key())
        }
        Algorithm::Ed25519 => {
            // PKCS#8 version 1 (RFC 8410 §7), which OpenSSL and most tools read; ring's own
            // version 2 document is refused by OpenSSL 3.0.
            let mut seed = [0u8; 32];
            SystemRandom::new()
                .fill(&mut seed)
                .map_err(|_| failed("the system's random source failed".to_string()))?;
            [encoding::ED25519_PKCS8_V1_PREFIX, &seed].concat()
        }
    };
    let private_pem = encoding::pem_encode("PRIVATE KEY", &der);
    // The key must load as any configured key would.
    ParsedKey::parse(algorithm, &private_pem)
        .map_err(|reason| failed(format!("the new key does not load back: {reason}")))?;
    Ok(GeneratedKey {
        algorithm,
        private_pem,
    })
}

/// The p= value of the DNS record for a private key (RFC 6376 §3.6.1): for RSA the
/// SubjectPublicKeyInfo DER in base64, as opendkim-genkey publishes it; for Ed25519 the raw
/// 32-byte public key in base64 (RFC 8463 §4).
pub fn public_key_b64(algorithm: Algorithm, private_pem: &str) -> Result<String, DkimError> {
    let key = ParsedKey::parse(algorithm, private_pem).map_err(DkimError::InvalidKey)?;
    Ok(encoding::base64_encode(&key.public_key_record_bytes()))
}

/// The record text (RFC 6376 §3.6.1): `v=DKIM1; k=rsa; p=MIIB...`, `k=ed25519` for Ed25519.
pub fn txt_record(algorithm: Algorithm, public_b64: &str) -> String {
    format!("v=DKIM1; k={algorithm}; p={}", public_b64.trim())
}

/// The record as character-strings of at most 255 octets each (RFC 1035 §3.3.14; RFC 7208
/// §3.3 for the same rule in SPF): the tags before p= in one string, then p= and its value cut
/// every 255 octets. Concatenated, the pieces are the record (RFC 6376 §3.6.2.2). DNS hosts'
/// forms differ: some take the pieces, some the whole text.
pub fn txt_strings(record: &str) -> Vec<String> {
    let (head, tail) = match record.find("p=") {
        Some(at) if at > 0 => record.split_at(at),
        _ => ("", record),
    };
    let mut pieces = chunk(head);
    pieces.extend(chunk(tail));
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

/// `text` in pieces of at most 255 octets, cut on character boundaries.
fn chunk(mut text: &str) -> Vec<String> {
    const MAX: usize = 255;
    let mut out = Vec::new();
    while !text.is_empty() {
        let mut cut = text.len().min(MAX);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, rest) = text.split_at(cut);
        out.push(piece.to_string());
        text = rest;
    }
    out
}

/// A zone-file line (RFC 1035 §5.1) to paste:
/// `SELECTOR._domainkey.DOMAIN. 3600 IN TXT ( "v=DKIM1; k=rsa; " "p=..." )`, one quoted
/// string per piece of [`txt_strings`], `"` and `\` escaped.
pub fn zone_line(selector: &str, domain: &str, record: &str) -> String {
    let domain = domain.trim().trim_end_matches('.');
    let strings: Vec<String> = txt_strings(record)
        .iter()
        .map(|s| {
            let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        })
        .collect();
    format!(
        "{}._domainkey.{domain}. 3600 IN TXT ( {} )",
        selector.trim(),
        strings.join(" ")
    )
}

/// A key to sign with, as configured.
#[derive(Clone)]
pub struct SigningKey {
    /// The signing domain, d= (RFC 6376 §3.5): the From domain of the mail it signs.
    pub domain: String,
    /// The selector, s= (RFC 6376 §3.1): the record is at `selector._domainkey.domain`.
    pub selector: String,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// The private key, PEM: PKCS#8 (`BEGIN PRIVATE KEY`), or PKCS#1 for RSA
    /// (`BEGIN RSA PRIVATE KEY`).
    pub private_pem: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_pem", &"(secret)")
            .finish()
    }
}

/// A parsed private key.
enum ParsedKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl ParsedKey {
    /// Reads a PEM private key of the expected algorithm; the error says what is wrong.
    fn parse(algorithm: Algorithm, pem: &str) -> Result<ParsedKey, String> {
        let pem = encoding::pem_decode(pem)?;
        let found = match pem.label.as_str() {
            "PRIVATE KEY" => match encoding::pkcs8_algorithm(&pem.der) {
                Some(oid) if oid == encoding::OID_RSA_ENCRYPTION => Algorithm::Rsa,
                Some(_) => Algorithm::Ed25519,
                None => {
                    return Err("the PKCS#8 key is neither RSA nor Ed25519, or is damaged".into());
                }
            },
            "RSA PRIVATE KEY" => Algorithm::Rsa,
            "ENCRYPTED PRIVATE KEY" => {
                return Err("the key is encrypted: store it without a passphrase \
                            (openssl pkey -in KEY -out KEY.plain)"
                    .into());
            }
            other => {
                return Err(format!(
                    "a PEM \"{other}\" is not a private key: expected \"PRIVATE KEY\""
                ));
            }
        };
        if found != algorithm {
            return Err(format!(
                "this is an {} key, but the algorithm configured is {algorithm}",
                match found {
                    Algorithm::Rsa => "RSA",
                    Algorithm::Ed25519 => "Ed25519",
                }
            ));
        }
        match (algorithm, pem.label.as_str()) {
            (Algorithm::Rsa, "RSA PRIVATE KEY") => RsaKeyPair::from_der(&pem.der)
                .map(ParsedKey::Rsa)
                .map_err(rsa_rejected),
            (Algorithm::Rsa, _) => RsaKeyPair::from_pkcs8(&pem.der)
                .map(ParsedKey::Rsa)
                .map_err(rsa_rejected),
            // Version 1 (openssl genpkey) and version 2 (with the public key) PKCS#8.
            (Algorithm::Ed25519, _) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pem.der)
                .map(ParsedKey::Ed25519)
                .map_err(|e| format!("unusable Ed25519 key ({e})")),
        }
    }

    /// The bytes p= carries, before base64.
    fn public_key_record_bytes(&self) -> Vec<u8> {
        match self {
            ParsedKey::Rsa(pair) => encoding::rsa_public_to_spki(pair.public().as_ref()),
            ParsedKey::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
        }
    }
}

/// ring's reason for refusing an RSA key, explained.
fn rsa_rejected(e: ring::error::KeyRejected) -> String {
    match e.to_string().as_str() {
        "TooSmall" => "the RSA key is smaller than 2048 bits: generate a new one \
                       (RFC 8301 §3.2 recommends 2048)"
            .to_string(),
        "TooLarge" => "the RSA key is larger than 4096 bits, which cannot be used".to_string(),
        other => format!("unusable RSA key ({other})"),
    }
}

/// A key of the signer, parsed.
struct LoadedKey {
    /// Lowercase, without a trailing dot.
    domain: String,
    selector: String,
    algorithm: Algorithm,
    key: ParsedKey,
}

/// A loaded key with the random source RSA blinding needs, as mail-auth's signer wants it.
struct KeyRef<'a> {
    key: &'a ParsedKey,
    rng: &'a SystemRandom,
}

impl mail_auth::common::crypto::SigningKey for KeyRef<'_> {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(512);
        input.write(&mut data);
        match self.key {
            ParsedKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, self.rng, &data, &mut signature)
                    .map_err(|_| crypto_error("the RSA signature could not be computed"))?;
                Ok(signature)
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data, not the data.
            ParsedKey::Ed25519(pair) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, &data);
                Ok(pair.sign(digest.as_ref()).as_ref().to_vec())
            }
        }
    }

    fn algorithm(&self) -> MailAuthAlgorithm {
        match self.key {
            ParsedKey::Rsa(_) => MailAuthAlgorithm::RsaSha256,
            ParsedKey::Ed25519(_) => MailAuthAlgorithm::Ed25519Sha256,
        }
    }
}

fn crypto_error(text: &str) -> mail_auth::Error {
    mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
        text.to_string(),
    ))
}

/// Signs messages of the domains it has keys for. Several keys of one domain sign side by
/// side (RFC 6376 §4.2 multiple signatures; RFC 8463 §5 RSA next to Ed25519; old and new key
/// during a rotation). Cheap to clone; shareable between threads.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<[LoadedKey]>,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| format!("{}._domainkey.{} ({})", k.selector, k.domain, k.algorithm)),
            )
            .finish()
    }
}

impl Signer {
    /// Parses every key once. The error names the first unusable key by its record name,
    /// `selector._domainkey.domain`, and says what is wrong: not PEM, another algorithm than
    /// configured, an RSA key outside 2048-4096 bits, a malformed selector or domain, or the
    /// same selector twice for one domain (both signatures would claim one record).
    pub fn new(keys: &[SigningKey]) -> Result<Signer, DkimError> {
        let mut loaded: Vec<LoadedKey> = Vec::with_capacity(keys.len());
        for k in keys {
            let domain = normalize_domain(&k.domain);
            let selector = k.selector.trim().to_string();
            let bad = |reason: String| DkimError::BadKey {
                selector: selector.clone(),
                domain: domain.clone(),
                reason,
            };
            if let Err(reason) = check_name("domain", &domain) {
                return Err(bad(reason));
            }
            if let Err(reason) = check_name("selector", &selector) {
                return Err(bad(reason));
            }
            if loaded
                .iter()
                .any(|l| l.domain == domain && l.selector.eq_ignore_ascii_case(&selector))
            {
                return Err(bad(
                    "configured twice: each key of a domain needs its own selector".to_string(),
                ));
            }
            let key = ParsedKey::parse(k.algorithm, &k.private_pem).map_err(bad)?;
            loaded.push(LoadedKey {
                domain,
                selector,
                algorithm: k.algorithm,
                key,
            });
        }
        Ok(Signer {
            keys: loaded.into(),
            rng: SystemRandom::new(),
        })
    }

    /// Whether a key signs for `domain` (compared without case, RFC 4343; a trailing dot is
    /// ignored).
    pub fn signs_for(&self, domain: &str) -> bool {
        let domain = normalize_domain(domain);
        self.keys.iter().any(|k| k.domain == domain)
    }

    /// The DKIM-Signature header fields (RFC 6376 §3.5) for `message` (header section and
    /// body, CRLF line ends) signed as `domain` (the From domain, for DMARC alignment,
    /// RFC 7489 §3.1.1), one per key of the domain in configuration order, each ending CRLF,
    /// ready to prepend to the message. Empty when no key signs for `domain`.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let domain = normalize_domain(domain);
        // Relaxed/relaxed: the trailing blank lines of the body never count; signing without
        // them works around mail-auth's canonicalization of such bodies (crate::canonical).
        let trimmed = crate::canonical::without_trailing_blank_lines(message);
        let message = trimmed.as_deref().unwrap_or(message);
        let mut out = Vec::new();
        let mut names: Option<Vec<String>> = None;
        for k in self.keys.iter().filter(|k| k.domain == domain) {
            let names = names.get_or_insert_with(|| fields::names_to_sign(message));
            let signature = DkimSigner::from_key(KeyRef {
                key: &k.key,
                rng: &self.rng,
            })
            .domain(k.domain.as_str())
            .selector(k.selector.as_str())
            .headers(names.iter().map(String::as_str))
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .sign(message)
            .map_err(|e| DkimError::Sign {
                selector: k.selector.clone(),
                domain: k.domain.clone(),
                reason: e.to_string(),
            })?;
            signature.write_header(&mut out);
        }
        Ok(out)
    }
}

impl Signer {
    /// An ARC set (RFC 8617 §4.1: ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results)
    /// for a message this server forwards, sealed as `domain` with its first RSA key
    /// (rsa-sha256, the algorithm every ARC verifier knows), each field ending CRLF, ready to
    /// prepend. None when the domain has no RSA key.
    pub fn arc_seal(
        &self,
        domain: &str,
        message: &mail_auth::AuthenticatedMessage<'_>,
        results: &mail_auth::AuthenticationResults,
        chain: &mail_auth::ArcOutput,
    ) -> Result<Option<Vec<u8>>, DkimError> {
        let domain = normalize_domain(domain);
        let Some(k) = self
            .keys
            .iter()
            .find(|k| k.domain == domain && k.algorithm == Algorithm::Rsa)
        else {
            return Ok(None);
        };
        let names = fields::names_to_sign(message.raw_message());
        let set = mail_auth::arc::ArcSealer::from_key(KeyRef {
            key: &k.key,
            rng: &self.rng,
        })
        .domain(k.domain.as_str())
        .selector(k.selector.as_str())
        .headers(names.iter().map(String::as_str))
        .seal(message, results, chain)
        .map_err(|e| DkimError::Sign {
            selector: k.selector.clone(),
            domain: k.domain.clone(),
            reason: format!("ARC seal: {e}"),
        })?;
        let mut out = Vec::new();
        set.write_header(&mut out);
        Ok(Some(out))
    }
}

/// Lowercase, trimmed, without a trailing dot.
fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A domain or selector must be dot-separated labels of letters, digits, hyphens and
/// underscores (RFC 6376 §3.1, §3.5 d=; A-labels for international names, RFC 5890), or the
/// DKIM-Signature tag list and the DNS query would break.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !ok || name.len() > 253 {
        return Err(format!(
            "the {what} {name:?} is not a DNS name (letters, digits, '-', '_' between dots; \
             international names in their xn-- form)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer_with(algorithm: Algorithm, pem: &str) -> Result<Signer, DkimError> {
        Signer::new(&[SigningKey {
            domain: "example.org".to_string(),
            selector: "s".to_string(),
            algorithm,
            private_pem: pem.to_string(),
        }])
    }

    #[test]
    fn pkcs1_rsa_keys_are_read() {
        let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048).unwrap();
        let pkcs1 = encoding::pem_encode("RSA PRIVATE KEY", pair.private_key());
        let pkcs8 = encoding::pem_encode(
            "PRIVATE KEY",
            &encoding::pkcs1_private_to_pkcs8(pair.private_key()),
        );
        assert_eq!(
            public_key_b64(Algorithm::Rsa, &pkcs1).unwrap(),
            public_key_b64(Algorithm::Rsa, &pkcs8).unwrap()
        );
        // mail-auth's PKCS#1 public key, wrapped, is what p= carries.
        assert_eq!(
            public_key_b64(Algorithm::Rsa, &pkcs1).unwrap(),
            encoding::base64_encode(&encoding::rsa_public_to_spki(pair.public_key()))
        );
        let signer = signer_with(Algorithm::Rsa, &pkcs1).unwrap();
        assert!(
            !signer
                .sign("example.org", b"From: a@example.org\r\n\r\nx\r\n")
                .unwrap()
                .is_empty()
        );
        // CRLF line ends in the PEM file are fine.
        assert!(signer_with(Algorithm::Rsa, &pkcs1.replace('\n', "\r\n")).is_ok());
    }

    #[test]
    fn small_rsa_keys_are_refused_with_a_reason() {
        let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(1024).unwrap();
        let pem = encoding::pem_encode("RSA PRIVATE KEY", pair.private_key());
        let err = signer_with(Algorithm::Rsa, &pem).unwrap_err().to_string();
        assert!(err.contains("s._domainkey.example.org"), "{err}");
        assert!(err.contains("2048"), "{err}");
    }

    #[test]
    fn ed25519_pkcs8_v2_keys_are_read() {
        let v2 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pem = encoding::pem_encode("PRIVATE KEY", v2.as_ref());
        let public = public_key_b64(Algorithm::Ed25519, &pem).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(v2.as_ref()).unwrap();
        assert_eq!(public, encoding::base64_encode(pair.public_key().as_ref()));
        assert!(signer_with(Algorithm::Ed25519, &pem).is_ok());
    }

    #[test]
    fn generated_ed25519_keys_are_pkcs8_v1() {
        let key = generate(Algorithm::Ed25519).unwrap();
        let der = encoding::pem_decode(&key.private_pem).unwrap().der;
        assert_eq!(der.len(), 48);
        assert!(der.starts_with(encoding::ED25519_PKCS8_V1_PREFIX));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("domain", "example.org").is_ok());
        assert!(check_name("selector", "s_2025-a.b").is_ok());
        for bad in [
            "",
            ".",
            "a..b",
            "a b",
            "a;b",
            "a=b",
            "é.org",
            &"a".repeat(64),
        ] {
            assert!(check_name("domain", bad).is_err(), "{bad}");
        }
    }
}
