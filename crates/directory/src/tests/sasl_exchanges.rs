//! Whole SASL exchanges through `Directory::sasl_start`, as drivers run them.

use super::*;
use crate::oauth::tests::{TestKey, claims, jwks, options};
use crate::sasl::scram;

fn challenge(outcome: SaslOutcome) -> Vec<u8> {
    match outcome {
        SaslOutcome::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn success(outcome: SaslOutcome) -> Login {
    match outcome {
        SaslOutcome::Success(login) => login,
        other => panic!("expected success, got {other:?}"),
    }
}

fn failure(outcome: SaslOutcome) -> (Option<String>, &'static str) {
    match outcome {
        SaslOutcome::Failure { user, reason } => (user, reason),
        other => panic!("expected failure, got {other:?}"),
    }
}

/// A SCRAM-SHA-256 exchange as a client with this password would run it.
fn scram_login(dir: &Directory, user: &str, password: &str) -> SaslOutcome {
    let mut x = dir.sasl_start("scram-sha-256", "mx.example.com").unwrap();
    assert_eq!(x.mechanism(), "SCRAM-SHA-256");
    assert!(challenge(x.start(dir, None)).is_empty());
    let mut client = scram::Client::new(user, password, "fyko+d2lbbFgONRv9qkxdawL");
    let first = match x.step(dir, client.first().as_bytes()) {
        SaslOutcome::Challenge(c) => String::from_utf8(c).unwrap(),
        other => return other,
    };
    let last = client.last(&first).unwrap();
    match x.step(dir, last.as_bytes()) {
        SaslOutcome::Challenge(v) => {
            assert!(client.verify(std::str::from_utf8(&v).unwrap()));
            x.step(dir, b"")
        }
        other => other,
    }
}

#[test]
fn scram_logs_in_with_the_password_or_an_application_password() {
    let f = fixture("scram");
    let login = success(scram_login(&f.dir, "alice@example.com", "pw"));
    assert_eq!(login.mailbox.address, "alice@example.com");
    assert_eq!(login.app_password, None);
    assert_eq!(login.mechanism, Some("SCRAM-SHA-256"));
    assert_eq!(login.via(), "password/SCRAM-SHA-256");

    let phone = f
        .dir
        .add_app_password("alice@example.com", "phone")
        .unwrap();
    let login = success(scram_login(&f.dir, "alice@example.com", &phone));
    assert_eq!(login.app_password.as_deref(), Some("phone"));
    assert_eq!(login.via(), "app-password:phone/SCRAM-SHA-256");
    // The password still works beside it, and a new password replaces the old one's keys.
    success(scram_login(&f.dir, "alice@example.com", "pw"));
    f.dir.set_password("alice@example.com", "new pw").unwrap();
    failure(scram_login(&f.dir, "alice@example.com", "pw"));
    success(scram_login(&f.dir, "alice@example.com", "new pw"));
    success(scram_login(&f.dir, "alice@example.com", &phone));
    f.dir
        .remove_app_password("alice@example.com", "phone")
        .unwrap();
    failure(scram_login(&f.dir, "alice@example.com", &phone));
}

#[test]
fn scram_with_a_wrong_proof_or_an_unknown_user_fails_at_the_end() {
    let f = fixture("scram-bad");
    assert_eq!(
        failure(scram_login(&f.dir, "alice@example.com", "wrong")),
        (Some("alice@example.com".into()), "invalid-proof")
    );
    assert_eq!(
        failure(scram_login(&f.dir, "bob@example.com", "pw2")),
        (Some("bob@example.com".into()), "invalid-proof")
    );
    // An unknown user gets a salt like anyone, the same at each attempt.
    let salt_of = |user: &str| {
        let mut x = f.dir.sasl_start("SCRAM-SHA-256", "mx").unwrap();
        let first = challenge(x.start(&f.dir, Some(format!("n,,n={user},r=abc").as_bytes())));
        let text = String::from_utf8(first).unwrap();
        text.split(',').nth(1).unwrap().to_string()
    };
    assert_eq!(salt_of("nobody@example.com"), salt_of("nobody@example.com"));
    assert_ne!(salt_of("nobody@example.com"), salt_of("alice@example.com"));
    assert_eq!(
        failure(scram_login(&f.dir, "nobody@example.com", "pw")),
        (Some("nobody@example.com".into()), "invalid-proof")
    );
    // A fixed server nonce (tests): server-first is then fully predictable.
    let mut x = f
        .dir
        .sasl_start("SCRAM-SHA-256", "mx")
        .unwrap()
        .with_scram_nonce("SERVERNONCE");
    let first = challenge(x.start(&f.dir, Some(b"n,,n=alice@example.com,r=abc")));
    let first = String::from_utf8(first).unwrap();
    assert!(first.starts_with("r=abcSERVERNONCE,s="), "{first}");
    assert!(first.ends_with(",i=4096"), "{first}");
    // RFC 5802 §6: channel binding asked for, not supported.
    let mut x = f.dir.sasl_start("SCRAM-SHA-256", "mx").unwrap();
    assert_eq!(
        failure(x.start(
            &f.dir,
            Some(b"p=tls-server-end-point,,n=alice@example.com,r=abc")
        ))
        .1,
        "channel-binding-not-supported"
    );
}

#[test]
fn accounts_made_before_schema_5_get_their_secrets_at_the_first_password_login() {
    let f = fixture("upgrade");
    // What an account of schema 4 looks like: a hash and no SASL secrets.
    let carol = Address::parse("carol@example.com").unwrap();
    let id = f
        .dir
        .store()
        .add_account(&carol, &hash_password("old pw").unwrap(), 0)
        .unwrap();
    assert_eq!(f.dir.store().account_secrets(id).unwrap().salt, None);
    assert_eq!(
        failure(scram_login(&f.dir, "carol@example.com", "old pw")).1,
        "invalid-proof"
    );
    let mut x = f.dir.sasl_start("PLAIN", "mx").unwrap();
    let login = success(x.start(&f.dir, Some(b"\0carol@example.com\0old pw")));
    assert_eq!(login.via(), "password/PLAIN");
    let secrets = f.dir.store().account_secrets(id).unwrap();
    assert_eq!(secrets.salt.as_ref().unwrap().iterations, 4096);
    assert!(secrets.password.scram.is_some());
    assert_eq!(secrets.password.cram_md5, None, "CRAM-MD5 is off");
    success(scram_login(&f.dir, "carol@example.com", "old pw"));
}

#[test]
fn plain_and_login_mechanisms() {
    let f = fixture("plain");
    let mut x = f.dir.sasl_start("PLAIN", "mx").unwrap();
    assert!(challenge(x.start(&f.dir, None)).is_empty());
    success(x.step(&f.dir, b"\0alice@example.com\0pw"));
    let mut x = f.dir.sasl_start("PLAIN", "mx").unwrap();
    assert_eq!(
        failure(x.start(&f.dir, Some(b"\0alice@example.com\0nope"))),
        (Some("alice@example.com".into()), "wrong password")
    );
    let mut x = f.dir.sasl_start("PLAIN", "mx").unwrap();
    assert_eq!(
        failure(x.start(&f.dir, Some(b""))).1,
        "malformed PLAIN message"
    );

    let mut x = f.dir.sasl_start("login", "mx").unwrap();
    assert_eq!(challenge(x.start(&f.dir, None)), b"Username:");
    assert_eq!(challenge(x.step(&f.dir, b"bob@example.com")), b"Password:");
    assert_eq!(
        success(x.step(&f.dir, b"pw")).mailbox.address,
        "bob@example.com"
    );
    let mut x = f.dir.sasl_start("LOGIN", "mx").unwrap();
    assert_eq!(
        challenge(x.start(&f.dir, Some(b"bob@example.com"))),
        b"Password:"
    );
    assert_eq!(
        failure(x.step(&f.dir, b"")),
        (Some("bob@example.com".into()), "malformed LOGIN password")
    );
    assert!(f.dir.sasl_start("GSSAPI", "mx").is_none());
}

#[test]
fn cram_md5_is_off_by_default() {
    let f = fixture("cram-off");
    assert_eq!(f.dir.sasl_mechanisms(), ["SCRAM-SHA-256", "PLAIN", "LOGIN"]);
    assert!(f.dir.sasl_start("CRAM-MD5", "mx").is_none());
    assert!(f.dir.sasl_start("XOAUTH2", "mx").is_none());
    assert!(f.dir.sasl_start("OAUTHBEARER", "mx").is_none());
}

#[test]
fn cram_md5_rfc2195_example_and_secrets() {
    let f = fixture_with(
        "cram",
        SaslOptions {
            cram_md5: true,
            oauth: None,
        },
    );
    assert_eq!(
        f.dir.sasl_mechanisms(),
        ["SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5"]
    );
    f.dir
        .add_account("tim@example.com", "tanstaaftanstaaf", None)
        .unwrap();
    let rfc_challenge = b"<1896.697170952@postoffice.reston.mci.net>";
    let cram = |user: &str, digest: &str| {
        let mut x = f
            .dir
            .sasl_start("CRAM-MD5", "mx.example.com")
            .unwrap()
            .with_cram_challenge(rfc_challenge);
        assert_eq!(challenge(x.start(&f.dir, None)), rfc_challenge);
        x.step(&f.dir, format!("{user} {digest}").as_bytes())
    };
    // RFC 2195 §2: tim / tanstaaftanstaaf.
    let login = success(cram("tim@example.com", "b913a602c7eda7a495b4e6e7334d3890"));
    assert_eq!(login.via(), "password/CRAM-MD5");
    assert_eq!(
        failure(cram("tim@example.com", "b913a602c7eda7a495b4e6e7334d3891")),
        (Some("tim@example.com".into()), "wrong CRAM-MD5 digest")
    );
    assert_eq!(
        failure(cram(
            "nobody@example.com",
            "b913a602c7eda7a495b4e6e7334d3890"
        ))
        .1,
        "wrong CRAM-MD5 digest"
    );
    // A random challenge by default, naming the host.
    let mut x = f.dir.sasl_start("CRAM-MD5", "mx.example.com").unwrap();
    let c = String::from_utf8(challenge(x.start(&f.dir, None))).unwrap();
    assert!(c.starts_with('<') && c.ends_with("@mx.example.com>"), "{c}");
    // An initial response to a server-first mechanism fails (RFC 4422 §3.3).
    let mut x = f.dir.sasl_start("CRAM-MD5", "mx").unwrap();
    failure(x.start(&f.dir, Some(b"tim@example.com 00")));

    // Alice was made with CRAM-MD5 on; her application passwords get states too.
    let hmac = |secret: &str| -> String {
        crate::md5::HmacMd5State::new(secret.as_bytes())
            .mac(rfc_challenge)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let phone = f
        .dir
        .add_app_password("alice@example.com", "phone")
        .unwrap();
    let login = success(cram("alice@example.com", &hmac(&phone)));
    assert_eq!(login.app_password.as_deref(), Some("phone"));
    success(cram("alice@example.com", &hmac("pw")));

    // An account made while CRAM-MD5 was off gets its states at its next password login.
    let carol = Address::parse("carol@example.com").unwrap();
    f.dir
        .store()
        .add_account(&carol, &hash_password("c pw").unwrap(), 0)
        .unwrap();
    failure(cram("carol@example.com", &hmac("c pw")));
    assert!(
        f.dir
            .authenticate("carol@example.com", "c pw")
            .unwrap()
            .is_some()
    );
    success(cram("carol@example.com", &hmac("c pw")));
}

fn oauth_fixture(name: &str) -> (Fixture, TestKey) {
    let f = fixture_with(
        name,
        SaslOptions {
            cram_md5: false,
            oauth: Some(options()),
        },
    );
    let key = TestKey::es256("k1");
    assert_eq!(f.dir.set_jwks(&jwks(&[&key])).unwrap(), 1);
    (f, key)
}

#[test]
fn xoauth2_succeeds_or_fails_with_the_error_challenge() {
    let (f, key) = oauth_fixture("xoauth2");
    assert_eq!(
        f.dir.sasl_mechanisms(),
        ["SCRAM-SHA-256", "PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2"]
    );
    let token = key.token(claims("alice@example.com"));
    let message = |user: &str, token: &str| format!("user={user}\x01auth=Bearer {token}\x01\x01");
    let mut x = f.dir.sasl_start("XOAUTH2", "mx").unwrap();
    let login = success(x.start(
        &f.dir,
        Some(message("Alice@Example.com", &token).as_bytes()),
    ));
    assert_eq!(login.mailbox.address, "alice@example.com");
    assert_eq!(login.via(), "oauth/XOAUTH2");
    // Without an initial response: an empty challenge first.
    let mut x = f.dir.sasl_start("XOAUTH2", "mx").unwrap();
    assert!(challenge(x.start(&f.dir, None)).is_empty());
    success(x.step(&f.dir, message("alice@example.com", &token).as_bytes()));

    // A token for alice presented as bob: the JSON error, an empty answer, then failure.
    let mut x = f.dir.sasl_start("XOAUTH2", "mx").unwrap();
    let error = challenge(x.start(&f.dir, Some(message("bob@example.com", &token).as_bytes())));
    let json: serde_json::Value = serde_json::from_slice(&error).unwrap();
    assert_eq!(json["status"], "401");
    assert_eq!(json["schemes"], "bearer");
    assert_eq!(json["scope"], "openid email");
    assert_eq!(
        failure(x.step(&f.dir, b"")),
        (Some("bob@example.com".into()), "token is for another user")
    );
    // A valid token for an address without an account.
    let ghost = key.token(claims("ghost@example.com"));
    let mut x = f.dir.sasl_start("XOAUTH2", "mx").unwrap();
    challenge(x.start(
        &f.dir,
        Some(message("ghost@example.com", &ghost).as_bytes()),
    ));
    assert_eq!(failure(x.step(&f.dir, b"")).1, "token names no account");
    // Malformed: fails at once.
    let mut x = f.dir.sasl_start("XOAUTH2", "mx").unwrap();
    failure(x.start(&f.dir, Some(b"user=alice@example.com")));
}

#[test]
fn oauthbearer_succeeds_or_fails_with_the_error_challenge() {
    let (f, key) = oauth_fixture("oauthbearer");
    let message = |gs2: &str, token: &str| {
        format!("{gs2}\x01host=mx.example.com\x01port=993\x01auth=Bearer {token}\x01\x01")
    };
    let token = key.token(claims("alice@example.com"));
    let mut x = f.dir.sasl_start("OAUTHBEARER", "mx").unwrap();
    let login = success(x.start(
        &f.dir,
        Some(message("n,a=alice@example.com,", &token).as_bytes()),
    ));
    assert_eq!(login.via(), "oauth/OAUTHBEARER");
    // Without a=, the token's claim names the user.
    let mut x = f.dir.sasl_start("OAUTHBEARER", "mx").unwrap();
    success(x.start(&f.dir, Some(message("n,,", &token).as_bytes())));

    // An expired token: RFC 7628 §3.2.2 error, the client's %x01, then failure.
    let mut expired = claims("alice@example.com");
    expired["exp"] = serde_json::json!(crate::oauth::now() - 3600);
    let mut x = f.dir.sasl_start("OAUTHBEARER", "mx").unwrap();
    let error = challenge(x.start(
        &f.dir,
        Some(message("n,a=alice@example.com,", &key.token(expired)).as_bytes()),
    ));
    let json: serde_json::Value = serde_json::from_slice(&error).unwrap();
    assert_eq!(json["status"], "invalid_token");
    assert_eq!(
        failure(x.step(&f.dir, b"\x01")),
        (Some("alice@example.com".into()), "token expired")
    );
    // A key the server does not know; then with the JWKS replaced, it is known.
    let other = TestKey::ed25519("k2");
    let token2 = other.token(claims("alice@example.com"));
    let mut x = f.dir.sasl_start("OAUTHBEARER", "mx").unwrap();
    challenge(x.start(&f.dir, Some(message("n,,", &token2).as_bytes())));
    assert_eq!(
        failure(x.step(&f.dir, b"\x01")).1,
        "token signed with an unknown key"
    );
    assert_eq!(f.dir.set_jwks(&jwks(&[&key, &other])).unwrap(), 2);
    let mut x = f.dir.sasl_start("OAUTHBEARER", "mx").unwrap();
    success(x.start(&f.dir, Some(message("n,,", &token2).as_bytes())));
    assert!(f.dir.set_jwks("not json").is_err());
    // Channel binding is refused.
    let mut x = f.dir.sasl_start("OAUTHBEARER", "mx").unwrap();
    failure(x.start(&f.dir, Some(message("p=tls-unique,,", &token).as_bytes())));
}
