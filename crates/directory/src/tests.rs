use super::*;
use facteur_store::Options as StoreOptions;

struct Fixture {
    dir: Directory,
    path: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, SaslOptions::default())
}

fn fixture_with(name: &str, sasl: SaslOptions) -> Fixture {
    let path = std::env::temp_dir().join(format!("facteur-dir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let store = Store::open(StoreOptions {
        data_dir: path.clone(),
        inline_blob_max: 1024,
        group_commit_max: 8,
    })
    .unwrap();
    let dir = Directory::new(
        store,
        Options {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: std::time::Duration::from_secs(60),
        },
    )
    .with_sasl(sasl);
    dir.add_domain("example.com").unwrap();
    dir.add_domain("example.org").unwrap();
    dir.add_account("alice@example.com", "pw", None).unwrap();
    dir.add_account("bob@example.com", "pw", None).unwrap();
    Fixture { dir, path }
}

fn resolve(f: &Fixture, raw: &str) -> Resolution {
    f.dir.resolve(&Address::parse(raw).unwrap()).unwrap()
}

fn accounts(r: Resolution) -> Vec<String> {
    match r {
        Resolution::Deliver(m) => m.into_iter().map(|m| m.address).collect(),
        other => panic!("expected delivery, got {other:?}"),
    }
}

#[test]
fn accounts_match_case_insensitively_and_by_subaddress() {
    let f = fixture("case");
    assert_eq!(
        accounts(resolve(&f, "ALICE@Example.Com")),
        ["alice@example.com"]
    );
    assert_eq!(
        accounts(resolve(&f, "alice+lists@example.com")),
        ["alice@example.com"]
    );
    assert_eq!(resolve(&f, "carol@example.com"), Resolution::UnknownUser);
    assert_eq!(resolve(&f, "+tag@example.com"), Resolution::UnknownUser);
    assert_eq!(resolve(&f, "alice@example.net"), Resolution::NotLocal);
}

#[test]
fn relay_tricks_in_local_parts_are_refused() {
    let f = fixture("tricks");
    for raw in [
        "alice%example.net@example.com",
        "example.net!alice@example.com",
    ] {
        assert_eq!(resolve(&f, raw), Resolution::RelayAttempt, "{raw}");
    }
    let quoted = Address {
        local: "alice@example.net".into(),
        domain: Domain::parse("example.com").unwrap(),
    };
    assert_eq!(f.dir.resolve(&quoted).unwrap(), Resolution::RelayAttempt);
}

#[test]
fn aliases_expand_recursively_dedupe_and_catch_all() {
    let f = fixture("alias");
    f.dir
        .add_alias(
            "team@example.com",
            &["alice@example.com".into(), "bob@example.com".into()],
        )
        .unwrap();
    f.dir
        .add_alias(
            "all@example.org",
            &["team@example.com".into(), "alice@example.com".into()],
        )
        .unwrap();
    f.dir
        .add_alias(
            "alice@example.com",
            &["alice@example.com".into(), "bob@example.com".into()],
        )
        .unwrap();
    assert_eq!(
        accounts(resolve(&f, "all@example.org")),
        ["alice@example.com", "bob@example.com"]
    );
    assert_eq!(
        accounts(resolve(&f, "Team+x@example.com")),
        ["alice@example.com", "bob@example.com"]
    );
    assert_eq!(
        accounts(resolve(&f, "alice@example.com")),
        ["alice@example.com", "bob@example.com"]
    );
    assert_eq!(resolve(&f, "nobody@example.org"), Resolution::UnknownUser);
    f.dir
        .add_alias("@example.org", &["bob@example.com".into()])
        .unwrap();
    assert_eq!(
        accounts(resolve(&f, "nobody@example.org")),
        ["bob@example.com"]
    );
    // An alias loop ends instead of recursing forever.
    f.dir
        .add_alias("x@example.org", &["y@example.org".into()])
        .unwrap();
    f.dir
        .add_alias("y@example.org", &["x@example.org".into()])
        .unwrap();
    assert_eq!(resolve(&f, "x@example.org"), Resolution::UnknownUser);
}

#[test]
fn aliases_forward_outside_beside_local_copies() {
    let f = fixture("remote");
    f.dir
        .add_alias("fwd@example.com", &["Someone@elsewhere.example".into()])
        .unwrap();
    assert_eq!(
        resolve(&f, "fwd@example.com"),
        Resolution::Forward {
            local: Vec::new(),
            remote: vec!["Someone@elsewhere.example".into()],
        }
    );
    // Through another alias, with a local copy kept, duplicates once.
    f.dir
        .add_alias(
            "team@example.com",
            &[
                "fwd@example.com".into(),
                "alice@example.com".into(),
                "someone@elsewhere.example".into(),
            ],
        )
        .unwrap();
    let Resolution::Forward { local, remote } = resolve(&f, "team@example.com") else {
        panic!("a forward expected");
    };
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].address, "alice@example.com");
    assert_eq!(remote, vec!["Someone@elsewhere.example".to_string()]);
    assert!(
        f.dir
            .add_alias("x@example.com", &["not an address".into()])
            .is_err()
    );
}

#[test]
fn passwords_are_argon2id_and_verify() {
    let hash = hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(verify_password(&hash, "correct horse"));
    assert!(!verify_password(&hash, "wrong"));
    assert!(!verify_password("garbage", "x"));
    let f = fixture("pw");
    assert!(f.dir.add_account("carol@example.com", "", None).is_err());
    assert!(
        f.dir
            .add_account("carol@example.net", "pw", None)
            .unwrap_err()
            .to_string()
            .contains("unknown domain")
    );
}

#[test]
fn authenticate_checks_password_and_folds_case() {
    let f = fixture("auth");
    let m = f
        .dir
        .authenticate("Alice@Example.com", "pw")
        .unwrap()
        .unwrap();
    assert_eq!(m.mailbox.address, "alice@example.com");
    assert_eq!(m.app_password, None);
    assert!(
        f.dir
            .authenticate("alice@example.com", "wrong")
            .unwrap()
            .is_none()
    );
    assert!(
        f.dir
            .authenticate("nobody@example.com", "pw")
            .unwrap()
            .is_none()
    );
    assert!(
        f.dir
            .authenticate("not an address", "pw")
            .unwrap()
            .is_none()
    );
}

#[test]
fn application_passwords_log_in_and_can_be_revoked() {
    let f = fixture("app");
    let phone = f
        .dir
        .add_app_password("alice@example.com", "phone")
        .unwrap();
    assert_eq!(phone.len(), 24);
    assert!(
        f.dir
            .add_app_password("alice@example.com", "phone")
            .is_err(),
        "names are unique"
    );
    assert!(
        f.dir
            .add_app_password("alice@example.com", "bad name")
            .is_err()
    );
    let login = f
        .dir
        .authenticate("alice@example.com", &phone)
        .unwrap()
        .unwrap();
    assert_eq!(login.app_password.as_deref(), Some("phone"));
    assert!(
        f.dir
            .authenticate("bob@example.com", &phone)
            .unwrap()
            .is_none(),
        "only for its account"
    );
    let listed = f.dir.list_app_passwords("alice@example.com").unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used.is_some());
    assert!(
        f.dir
            .authenticate("alice@example.com", "pw")
            .unwrap()
            .is_some(),
        "the main password still works"
    );
    f.dir
        .remove_app_password("alice@example.com", "phone")
        .unwrap();
    assert!(
        f.dir
            .authenticate("alice@example.com", &phone)
            .unwrap()
            .is_none()
    );
    assert!(
        f.dir
            .remove_app_password("alice@example.com", "phone")
            .is_err()
    );
}

mod sasl_exchanges;

/// Submission's sender rule: own address, subaddresses, aliases that deliver to the account;
/// never a catch-all, never someone else's alias.
#[test]
fn may_send_as_own_address_subaddresses_and_delivering_aliases_only() {
    let f = fixture("sender");
    let dir = &f.dir;
    dir.add_alias(
        "sales@example.com",
        &["alice@example.com".into(), "bob@example.com".into()],
    )
    .unwrap();
    dir.add_alias("billing@example.com", &["bob@example.com".into()])
        .unwrap();
    dir.add_alias("@example.com", &["alice@example.com".into()])
        .unwrap();
    let alice = match resolve(&f, "alice@example.com") {
        Resolution::Deliver(mut m) => m.remove(0),
        other => panic!("{other:?}"),
    };
    let may = |a: &str| {
        dir.may_send_as(&alice, &Address::parse(a).unwrap())
            .unwrap()
    };
    assert!(may("alice@example.com"));
    assert!(may("Alice@Example.COM"));
    assert!(may("alice+lists@example.com"));
    assert!(may("sales@example.com"));
    assert!(may("sales+q4@example.com"));
    assert!(!may("billing@example.com"), "an alias of someone else");
    assert!(!may("bob@example.com"));
    assert!(!may("anyone@example.com"), "the catch-all lends no names");
    assert!(!may("alice@example.org"), "a local domain, not her address");
    assert!(!may("alice@elsewhere.example"));
}
