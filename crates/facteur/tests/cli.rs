//! The admin verbs' contract (docs/architecture.md): domains, accounts, aliases and
//! application passwords, with errors that say what is wrong.

mod harness;

use harness::Site;

#[test]
fn domains_accounts_aliases_lifecycle() {
    let site = Site::new("cli-lifecycle", "", "");
    site.must(&["domain", "add", "Example.TEST"], None);
    let dup = site.cli(&["domain", "add", "example.test"], None);
    assert!(
        !dup.ok && dup.stderr.contains("exists already"),
        "{}",
        dup.stderr
    );
    assert_eq!(site.must(&["domain", "list"], None), "example.test\n");
    site.must(
        &["account", "add", "alice@example.test", "--password-stdin"],
        Some("pw\n"),
    );
    let generated = site.must(&["account", "add", "bob@example.test"], None);
    assert!(
        generated
            .lines()
            .any(|l| l.starts_with("password: ") && l.len() > 20),
        "{generated}"
    );
    assert!(
        site.must(&["account", "list"], None)
            .contains("alice@example.test\tused=0\tquota=none")
    );
    site.must(
        &[
            "alias",
            "add",
            "team@example.test",
            "alice@example.test",
            "bob@example.test",
        ],
        None,
    );
    let aliases = site.must(&["alias", "list"], None);
    assert!(
        aliases.contains("team@example.test\talice@example.test")
            && aliases.contains("team@example.test\tbob@example.test")
    );
    // A target in another domain: the alias forwards there.
    site.must(
        &["alias", "add", "fwd@example.test", "x@elsewhere.test"],
        None,
    );
    assert!(
        site.must(&["alias", "list"], None)
            .contains("fwd@example.test\tx@elsewhere.test")
    );
    site.must(&["alias", "remove", "fwd@example.test"], None);
    let in_use = site.cli(&["domain", "remove", "example.test"], None);
    assert!(
        !in_use.ok && in_use.stderr.contains("remove them first"),
        "{}",
        in_use.stderr
    );
    site.must(&["alias", "remove", "team@example.test"], None);
    site.must(&["account", "remove", "alice@example.test"], None);
    site.must(&["account", "remove", "bob@example.test"], None);
    site.must(&["domain", "remove", "example.test"], None);
    assert_eq!(site.must(&["domain", "list"], None), "");
}

#[test]
fn application_passwords_are_printed_once_listed_and_revoked() {
    let site = Site::new("cli-app", "", "");
    site.setup(&["alice@example.test"]);
    let out = site.must(
        &[
            "account",
            "app-password",
            "add",
            "alice@example.test",
            "phone",
        ],
        None,
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("secret printed")
        .to_string();
    assert_eq!(secret.len(), 24);
    let dup = site.cli(
        &[
            "account",
            "app-password",
            "add",
            "alice@example.test",
            "phone",
        ],
        None,
    );
    assert!(!dup.ok && dup.stderr.contains("already"), "{}", dup.stderr);
    let list = site.must(
        &["account", "app-password", "list", "alice@example.test"],
        None,
    );
    assert!(
        list.starts_with("phone\tcreated=")
            && list.contains("last_used=never")
            && !list.contains(&secret),
        "{list}"
    );
    site.must(
        &[
            "account",
            "app-password",
            "remove",
            "alice@example.test",
            "phone",
        ],
        None,
    );
    assert_eq!(
        site.must(
            &["account", "app-password", "list", "alice@example.test"],
            None
        ),
        ""
    );
}
