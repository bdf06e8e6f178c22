//! SCRAM-SHA-256 (RFC 5802, RFC 7677), server side without channel binding, plus a small
//! client used by tests and tools.
//!
//! Limits, on purpose (decision 0013):
//! - no channel binding: gs2 flags `n` and `y` are accepted; `p=` is refused with the RFC's
//!   `channel-binding-not-supported` (RFC 5802 §6, §7 `server-error-value`). facteur does not
//!   advertise SCRAM-SHA-256-PLUS, so a `y` client is not downgraded (RFC 5802 §6).
//! - SASLprep (RFC 4013) is reduced to refusing control characters in the user name; user
//!   names are mail addresses. Passwords are used as the UTF-8 bytes they were set with; a
//!   client that normalizes a non-ASCII password differently will fail to log in.
//! - the user name must be the account's address; an authzid (`a=`) must name the same
//!   user (facteur has no proxy authorization).

use super::{decode_base64, encode_base64};
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// RFC 7677 §4: the iteration count SHOULD be at least 4096.
pub const ITERATIONS: u32 = 4096;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;

/// StoredKey and ServerKey of one secret (RFC 5802 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

/// RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i) (PBKDF2-HMAC-SHA-256),
/// ClientKey := HMAC(SaltedPassword, "Client Key"), StoredKey := H(ClientKey),
/// ServerKey := HMAC(SaltedPassword, "Server Key").
pub fn derive_keys(password: &[u8], salt: &[u8], iterations: u32) -> Keys {
    let salted = salted_password(password, salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    Keys {
        stored_key: sha256(&client_key),
        server_key: hmac_sha256(&salted, b"Server Key"),
    }
}

fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations.max(1)).expect("non-zero"),
        salt,
        password,
        &mut out,
    );
    out
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().expect("32-byte HMAC-SHA-256")
}

fn sha256(data: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("32-byte SHA-256")
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the server knows of the user named in client-first: the account's salt and the
/// keys of each of its secrets (label None: the password; Some(name): an application
/// password). An unknown user gets a made-up salt and no keys, so it fails like a wrong
/// password, at the end (RFC 5802 §5.1 lets a server hide whether the user exists).
#[derive(Debug, Clone)]
pub struct UserKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub secrets: Vec<(Option<String>, Keys)>,
}

/// Why an exchange failed; the text is RFC 5802 §7's `server-error-value` where one fits.
pub type ScramError = &'static str;

#[derive(Debug)]
enum State {
    Start,
    /// server-first sent.
    First {
        user: String,
        gs2_header: String,
        nonce: String,
        auth_prefix: String,
        keys: UserKeys,
    },
    Done,
}

/// The server side of one exchange.
#[derive(Debug)]
pub struct Server {
    state: State,
    server_nonce: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    pub fn new() -> Server {
        Server {
            state: State::Start,
            server_nonce: None,
        }
    }

    /// Tests only: the server's part of the nonce, instead of a random one.
    pub fn with_nonce(nonce: &str) -> Server {
        Server {
            state: State::Start,
            server_nonce: Some(nonce.to_string()),
        }
    }

    /// The user named by the client-first message (for logs), once parsed.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::First { user, .. } => Some(user),
            _ => None,
        }
    }

    /// client-first-message -> server-first-message (RFC 5802 §5.1, §7). `lookup` maps the
    /// user name to its keys; its error aborts the exchange.
    pub fn client_first<E>(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Result<UserKeys, E>,
    ) -> Result<Result<Vec<u8>, ScramError>, E> {
        let parsed = match parse_client_first(message) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let keys = lookup(&parsed.user)?;
        let server_nonce = self.server_nonce.take().unwrap_or_else(random_nonce);
        let nonce = format!("{}{server_nonce}", parsed.client_nonce);
        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
        let server_first = format!(
            "r={nonce},s={},i={}",
            encode_base64(&keys.salt),
            keys.iterations
        );
        // AuthMessage := client-first-message-bare + "," + server-first-message + "," + ...
        let auth_prefix = format!("{},{server_first},", parsed.bare);
        self.state = State::First {
            user: parsed.user,
            gs2_header: parsed.gs2_header,
            nonce,
            auth_prefix,
            keys,
        };
        Ok(Ok(server_first.into_bytes()))
    }

    /// client-final-message -> server-final-message (`v=`) and the label of the secret whose
    /// proof matched, or the failure (RFC 5802 §5.1, §7).
    pub fn client_final(
        &mut self,
        message: &[u8],
    ) -> Result<(Vec<u8>, Option<String>), ScramError> {
        let State::First {
            gs2_header,
            nonce,
            auth_prefix,
            keys,
            ..
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err("other-error");
        };
        let text = std::str::from_utf8(message).map_err(|_| "invalid-encoding")?;
        // client-final-message = client-final-message-without-proof "," proof
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("invalid-encoding")?;
        let mut attrs = without_proof.split(',');
        // channel-binding = "c=" base64: gs2-header and no cbind-data without channel binding.
        let binding = attrs
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .and_then(decode_base64)
            .ok_or("invalid-encoding")?;
        if binding != gs2_header.as_bytes() {
            return Err("channel-bindings-dont-match");
        }
        if attrs.next().and_then(|r| r.strip_prefix("r=")) != Some(nonce.as_str()) {
            return Err("other-error");
        }
        // RFC 5802 §5.1: "m" is reserved; other extensions are ignored.
        if attrs.any(|a| a.starts_with("m=")) {
            return Err("extensions-not-supported");
        }
        let proof = decode_base64(proof).ok_or("invalid-encoding")?;
        if proof.len() != 32 {
            return Err("invalid-proof");
        }
        let auth_message = format!("{auth_prefix}{without_proof}");
        // RFC 5802 §3: ClientSignature := HMAC(StoredKey, AuthMessage);
        // ClientKey := ClientProof XOR ClientSignature; valid when H(ClientKey) == StoredKey.
        // Every secret of the account shares the salt, so any of them may be the one.
        let mut matched = None;
        for (label, k) in &keys.secrets {
            let signature = hmac_sha256(&k.stored_key, auth_message.as_bytes());
            let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
            if constant_time_eq(&sha256(&client_key), &k.stored_key) && matched.is_none() {
                matched = Some((label.clone(), k.server_key));
            }
        }
        let (label, server_key) = matched.ok_or("invalid-proof")?;
        // ServerSignature := HMAC(ServerKey, AuthMessage); verifier = "v=" base64.
        let verifier = hmac_sha256(&server_key, auth_message.as_bytes());
        Ok((
            format!("v={}", encode_base64(&verifier)).into_bytes(),
            label,
        ))
    }
}

struct ClientFirst {
    gs2_header: String,
    bare: String,
    user: String,
    client_nonce: String,
}

/// RFC 5802 §7: client-first-message = gs2-header client-first-message-bare.
fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| "invalid-encoding")?;
    // gs2-cbind-flag = ("p=" cb-name) / "n" / "y" (RFC 5802 §7, RFC 5801 §4).
    let rest = match text.as_bytes().first() {
        Some(b'n' | b'y') if text.as_bytes().get(1) == Some(&b',') => &text[2..],
        Some(b'p') if text.starts_with("p=") => return Err("channel-binding-not-supported"),
        _ => return Err("invalid-encoding"),
    };
    // [ authzid ] ",": authzid = "a=" saslname.
    let (authzid, bare) = rest.split_once(',').ok_or("invalid-encoding")?;
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=").ok_or("invalid-encoding")?,
        )?),
    };
    let gs2_header = text[..text.len() - bare.len()].to_string();
    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    if bare.starts_with("m=") {
        return Err("extensions-not-supported");
    }
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|u| u.strip_prefix("n="))
        .ok_or("invalid-encoding")?;
    let user = decode_saslname(user)?;
    let client_nonce = attrs
        .next()
        .and_then(|r| r.strip_prefix("r="))
        .ok_or("invalid-encoding")?;
    // nonce = "r=" c-nonce; c-nonce = printable (%x21-2B / %x2D-7E).
    if client_nonce.is_empty()
        || !client_nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err("invalid-encoding");
    }
    if user.is_empty() {
        return Err("invalid-username-encoding");
    }
    if authzid.is_some_and(|a| !a.eq_ignore_ascii_case(&user)) {
        return Err("other-error");
    }
    Ok(ClientFirst {
        gs2_header,
        bare: bare.to_string(),
        user,
        client_nonce: client_nonce.to_string(),
    })
}

/// RFC 5802 §5.1: "=2C" is ',' and "=3D" is '='; any other '=' fails the exchange. SASLprep
/// (RFC 4013) is limited to refusing control characters (§2.3 of RFC 4013 prohibits them).
fn decode_saslname(raw: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("invalid-username-encoding"),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.chars().any(char::is_control) {
        return Err("invalid-username-encoding");
    }
    Ok(out)
}

fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// 18 random bytes, base64: 24 printable characters without ','.
fn random_nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 18];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("system random generator");
    encode_base64(&bytes)
}

/// A random salt for a new account.
pub fn random_salt() -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut salt = vec![0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .expect("system random generator");
    salt
}

/// The client side, for tests and tools (no channel binding, gs2 flag `n`).
pub struct Client {
    password: String,
    bare: String,
    nonce: String,
    server_signature: Option<[u8; 32]>,
}

impl Client {
    pub fn new(user: &str, password: &str, nonce: &str) -> Client {
        Client {
            password: password.to_string(),
            bare: format!("n={},r={nonce}", encode_saslname(user)),
            nonce: nonce.to_string(),
            server_signature: None,
        }
    }

    /// client-first-message.
    pub fn first(&self) -> String {
        format!("n,,{}", self.bare)
    }

    /// client-final-message for this server-first-message; None when it is malformed or its
    /// nonce does not extend ours.
    pub fn last(&mut self, server_first: &str) -> Option<String> {
        let mut attrs = server_first.split(',');
        let nonce = attrs.next()?.strip_prefix("r=")?;
        let salt = decode_base64(attrs.next()?.strip_prefix("s=")?)?;
        let iterations: u32 = attrs.next()?.strip_prefix("i=")?.parse().ok()?;
        if !nonce.starts_with(&self.nonce) {
            return None;
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let salted = salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let signature = hmac_sha256(&sha256(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac_sha256(&salted, b"Server Key");
        self.server_signature = Some(hmac_sha256(&server_key, auth_message.as_bytes()));
        Some(format!("{without_proof},p={}", encode_base64(&proof)))
    }

    /// True when server-final-message proves the server knows our keys.
    pub fn verify(&self, server_final: &str) -> bool {
        match (self.server_signature, server_final.strip_prefix("v=")) {
            (Some(expected), Some(v)) => {
                decode_base64(v).is_some_and(|v| constant_time_eq(&v, &expected))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    fn rfc7677_user() -> UserKeys {
        let salt = decode_base64(SALT).unwrap();
        UserKeys {
            secrets: vec![(None, derive_keys(b"pencil", &salt, 4096))],
            salt,
            iterations: 4096,
        }
    }

    fn lookup(name: &str) -> Result<UserKeys, ()> {
        assert_eq!(name, "user");
        Ok(rfc7677_user())
    }

    #[test]
    fn rfc7677_section3_example() {
        let mut server = Server::with_nonce(SERVER_NONCE);
        let first = server
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", lookup)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        assert_eq!(server.user(), Some("user"));
        let (last, label) = server
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert_eq!(label, None);
    }

    #[test]
    fn the_client_reproduces_the_rfc7677_example() {
        let mut client = Client::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = client
            .last("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(client.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        assert!(!client.verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
    }

    #[test]
    fn a_wrong_proof_or_nonce_fails() {
        let mut server = Server::with_nonce(SERVER_NONCE);
        server
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", lookup)
            .unwrap()
            .unwrap();
        // The proof of "pencil2".
        let mut client = Client::new("user", "pencil2", "rOprNGfwEbeRWgbNEkqO");
        let last = client
            .last(&format!(
                "r=rOprNGfwEbeRWgbNEkqO{SERVER_NONCE},s={SALT},i=4096"
            ))
            .unwrap();
        assert_eq!(server.client_final(last.as_bytes()), Err("invalid-proof"));

        let mut server = Server::with_nonce(SERVER_NONCE);
        server
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", lookup)
            .unwrap()
            .unwrap();
        let forged =
            "c=biws,r=rOprNGfwEbeRWgbNEkqOother,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(server.client_final(forged.as_bytes()), Err("other-error"));
    }

    #[test]
    fn gs2_flags_and_malformed_messages() {
        let first = |m: &[u8]| {
            Server::with_nonce("x")
                .client_first(m, lookup)
                .unwrap()
                .map(|_| ())
        };
        assert_eq!(
            first(b"p=tls-unique,,n=user,r=abc"),
            Err("channel-binding-not-supported")
        );
        assert_eq!(first(b"y,,n=user,r=abc"), Ok(()));
        assert_eq!(first(b"n,a=user,n=user,r=abc"), Ok(()));
        assert_eq!(first(b"n,a=other,n=user,r=abc"), Err("other-error"));
        assert_eq!(
            first(b"n,,m=ext,n=user,r=abc"),
            Err("extensions-not-supported")
        );
        assert_eq!(first(b"n,,n=us=er,r=abc"), Err("invalid-username-encoding"));
        assert_eq!(
            first(b"n,,n=us\x01er,r=abc"),
            Err("invalid-username-encoding")
        );
        assert_eq!(first(b"n,,n=user,r=a,bc"), Ok(()));
        assert_eq!(first(b"n,,n=user"), Err("invalid-encoding"));
        assert_eq!(first(b"x,,n=user,r=abc"), Err("invalid-encoding"));
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");

        // With the `y` flag the channel binding must carry "y,,".
        let mut server = Server::with_nonce(SERVER_NONCE);
        server
            .client_first(b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO", lookup)
            .unwrap()
            .unwrap();
        let biws = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA";
        assert_eq!(
            server.client_final(biws.as_bytes()),
            Err("channel-bindings-dont-match")
        );
    }

    #[test]
    fn any_secret_of_the_account_may_prove() {
        let salt = decode_base64(SALT).unwrap();
        let keys = UserKeys {
            secrets: vec![
                (None, derive_keys(b"pencil", &salt, 4096)),
                (
                    Some("phone".into()),
                    derive_keys(b"app-secret", &salt, 4096),
                ),
            ],
            salt,
            iterations: 4096,
        };
        let mut client = Client::new("user", "app-secret", "clientnonce");
        let mut server = Server::new();
        let first = server
            .client_first(client.first().as_bytes(), |_| Ok::<_, ()>(keys))
            .unwrap()
            .unwrap();
        let last = client.last(std::str::from_utf8(&first).unwrap()).unwrap();
        let (v, label) = server.client_final(last.as_bytes()).unwrap();
        assert_eq!(label.as_deref(), Some("phone"));
        assert!(client.verify(std::str::from_utf8(&v).unwrap()));
    }
}
