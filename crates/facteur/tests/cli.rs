//! The admin contract (docs/architecture.md): verbs, errors that say what is wrong, commands
//! that work while the server runs, configuration and bind errors that name the key.

mod common;

use common::{Env, Smtp, message, wait_exit};
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn domains_accounts_aliases() {
    let env = Env::new("cli", "");
    env.must(&["domain", "add", "Example.TEST"], None);
    let (ok, _, err) = env.cli(&["domain", "add", "example.test"], None);
    assert!(!ok && err.contains("exists already"), "{err}");
    assert_eq!(env.must(&["domain", "list"], None), "example.test\n");
    let (ok, _, err) = env.cli(
        &["account", "add", "x@unknown.test", "--password-stdin"],
        Some("pw\n"),
    );
    assert!(!ok && err.contains("unknown domain"), "{err}");
    env.must(
        &["account", "add", "alice@example.test", "--password-stdin"],
        Some("pw\n"),
    );
    let (ok, _, err) = env.cli(
        &["account", "add", "Alice@example.test", "--password-stdin"],
        Some("pw\n"),
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    let generated = env.must(&["account", "add", "bob@example.test"], None);
    assert!(
        generated
            .lines()
            .any(|l| l.starts_with("password: ") && l.len() > 20),
        "{generated}"
    );
    assert!(
        env.must(&["account", "list"], None)
            .contains("alice@example.test\tused=0\tquota=none")
    );
    env.must(
        &[
            "account",
            "passwd",
            "alice@example.test",
            "--password-stdin",
        ],
        Some("new\n"),
    );
    env.must(
        &[
            "alias",
            "add",
            "team@example.test",
            "alice@example.test",
            "bob@example.test",
        ],
        None,
    );
    let aliases = env.must(&["alias", "list"], None);
    assert!(
        aliases.contains("team@example.test\talice@example.test")
            && aliases.contains("team@example.test\tbob@example.test")
    );
    let (ok, _, err) = env.cli(
        &["alias", "add", "fwd@example.test", "x@elsewhere.test"],
        None,
    );
    assert!(!ok && err.contains("not in a local domain"), "{err}");
    let (ok, _, err) = env.cli(&["domain", "remove", "example.test"], None);
    assert!(!ok && err.contains("remove them first"), "{err}");
    env.must(&["alias", "remove", "team@example.test"], None);
    env.must(&["account", "remove", "alice@example.test"], None);
    env.must(&["account", "remove", "bob@example.test"], None);
    env.must(&["domain", "remove", "example.test"], None);
    assert_eq!(env.must(&["domain", "list"], None), "");
}

#[test]
fn admin_commands_work_while_serving() {
    let env = Env::new("cli-live", "");
    env.must(&["domain", "add", "example.test"], None);
    let mut server = env.serve();
    env.must(
        &["account", "add", "late@example.test", "--password-stdin"],
        Some("pw\n"),
    );
    let mut c = Smtp::connect(env.smtp).unwrap();
    c.reply();
    c.command("EHLO client.test");
    let reply = c.message(
        "a@remote.test",
        &["late@example.test"],
        &message("<live@test>", 100),
    );
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(env.message_ids("late@example.test"), ["<live@test>"]);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn check_config_prints_defaults_and_names_bad_keys() {
    let env = Env::new("cli-config", "");
    let empty = env.dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--config", empty.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("data_dir = \"./facteur-data\""));
    let bad = env.dir.join("bad.toml");
    std::fs::write(
        &bad,
        "hostname = \"mx.example.test\"\n[smtp]\nmax_recipient = 3\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("line 3") && err.contains("max_recipient"),
        "{err}"
    );
}

#[test]
fn a_taken_port_names_the_key_and_exits_unless_told_to_continue() {
    let env = Env::new("cli-bind", "");
    env.must(&["domain", "add", "example.test"], None);
    let _taken = TcpListener::bind(("127.0.0.1", env.smtp)).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--config", env.config.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("listen.smtp") && err.contains("already in use"),
        "{err}"
    );

    let tolerant = Env::new("cli-bind-continue", "bind_failure = \"continue\"");
    tolerant.must(&["domain", "add", "example.test"], None);
    let _taken = TcpListener::bind(("127.0.0.1", tolerant.smtp)).unwrap();
    let mut server = std::process::Command::new(common::BIN)
        .args(["--config", tolerant.config.to_str().unwrap(), "serve"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut greeted = false;
    for _ in 0..100 {
        if let Ok(mut c) = Smtp::connect(tolerant.lmtp)
            && c.reply().starts_with("220")
        {
            greeted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(greeted, "the LMTP role did not come up");
    assert!(
        wait_exit(&mut server, Duration::from_millis(200)).is_none(),
        "serve exited"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn application_passwords_are_printed_once_listed_and_revoked() {
    let env = Env::new("cli-app", "");
    env.setup(&["alice@example.test"]);
    let out = env.must(
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
    let (ok, _, err) = env.cli(
        &[
            "account",
            "app-password",
            "add",
            "alice@example.test",
            "phone",
        ],
        None,
    );
    assert!(!ok && err.contains("already"), "{err}");
    let list = env.must(
        &["account", "app-password", "list", "alice@example.test"],
        None,
    );
    assert!(
        list.starts_with("phone\tcreated=")
            && list.contains("last_used=never")
            && !list.contains(&secret),
        "{list}"
    );
    env.must(
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
        env.must(
            &["account", "app-password", "list", "alice@example.test"],
            None
        ),
        ""
    );
}
