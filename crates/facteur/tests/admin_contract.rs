//! The admin contract seen from outside, beyond `cli.rs`: directory changes made by the CLI
//! reach a running server at once (domains, accounts, aliases, quotas, passwords), refusals say
//! what is wrong, `check-config` prints a configuration that reads back to itself, and bind
//! errors name the role's key whichever role fails.

mod harness;

use harness::{Client, Ports, Site, free_port, message};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

/// RCPT TO on a fresh SMTP transaction; returns the reply to RCPT.
fn rcpt(port: u16, to: &str) -> harness::Reply {
    let mut c = Client::hello(port, false).unwrap();
    assert!(c.command("MAIL FROM:<a@remote.test>").unwrap().is("250"));
    c.command(&format!("RCPT TO:<{to}>")).unwrap()
}

/// Delivers one message over SMTP; returns the final reply.
fn deliver(port: u16, to: &[&str], id: &str) -> harness::Reply {
    let mut c = Client::hello(port, false).unwrap();
    let replies = c
        .send_data("a@remote.test", to, &message(id, 512), false)
        .unwrap_or_else(|e| panic!("delivering {id} to {to:?}: {e}"));
    replies.into_iter().next().unwrap()
}

/// A POP3 login with USER/PASS in clear (allowed by the site's configuration): true on +OK.
fn pop3_login(port: u16, user: &str, password: &str) -> bool {
    let mut c = Client::connect(port).unwrap();
    assert!(c.pop_line().unwrap().starts_with("+OK"));
    assert!(c.send(format!("USER {user}\r\n").as_bytes()).is_ok());
    assert!(c.pop_line().unwrap().starts_with("+OK"));
    c.send(format!("PASS {password}\r\n").as_bytes()).unwrap();
    let ok = c.pop_line().unwrap().starts_with("+OK");
    let _ = c.send(b"QUIT\r\n");
    let _ = c.pop_line();
    ok
}

#[test]
fn directory_changes_reach_a_running_server_at_once() {
    let mut site = Site::new("admin-live", "", "");
    site.setup(&["alice@example.test"]);
    let server = site.start();
    let smtp = site.smtp();

    // A domain and an account added while serving.
    let r = rcpt(smtp, "dora@other.test");
    assert!(r.is("550 5.7.1"), "before the domain exists: {r}");
    site.must(&["domain", "add", "other.test"], None);
    let r = rcpt(smtp, "dora@other.test");
    assert!(r.is("550 5.1.1"), "before the account exists: {r}");
    site.must(
        &["account", "add", "Dora@Other.test", "--password-stdin"],
        Some("pw\n"),
    );
    assert!(deliver(smtp, &["dora@other.test"], "<d1@test>").is("250"));
    assert!(deliver(smtp, &["DORA@other.TEST"], "<d2@test>").is("250"));

    // An alias to two accounts in two domains; then one target removed.
    site.must(
        &[
            "alias",
            "add",
            "team@example.test",
            "alice@example.test",
            "dora@other.test",
        ],
        None,
    );
    assert!(deliver(smtp, &["team@example.test"], "<team1@test>").is("250"));
    site.must(
        &["alias", "remove", "team@example.test", "dora@other.test"],
        None,
    );
    let aliases = site.must(&["alias", "list", "example.test"], None);
    assert_eq!(aliases, "team@example.test\talice@example.test\n");
    assert!(deliver(smtp, &["team@example.test"], "<team2@test>").is("250"));
    let alice = site.message_ids("alice@example.test", "INBOX");
    let dora = site.message_ids("dora@other.test", "INBOX");
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert!(alice.contains_key("<team1@test>") && alice.contains_key("<team2@test>"));
    assert_eq!(dora.len(), 3, "{dora:?}");
    assert!(dora.contains_key("<team1@test>") && !dora.contains_key("<team2@test>"));

    // A quota set while serving refuses the next message that cannot fit.
    site.must(&["account", "quota", "alice@example.test", "100"], None);
    let r = rcpt(smtp, "alice@example.test");
    assert!(r.is("552 5.2.2"), "over quota: {r}");
    site.must(&["account", "quota", "alice@example.test", "0"], None);
    assert!(rcpt(smtp, "alice@example.test").is("250"));

    // Removing an account removes its mail and its address; the domain goes last.
    let out = site.cli(&["domain", "remove", "other.test"], None);
    assert!(
        !out.ok && out.stderr.contains("remove them first"),
        "{out:?}"
    );
    site.must(&["account", "remove", "dora@other.test"], None);
    assert!(rcpt(smtp, "dora@other.test").is("550 5.1.1"));
    site.must(&["domain", "remove", "other.test"], None);
    assert!(rcpt(smtp, "dora@other.test").is("550 5.7.1"));
    let accounts = site.must(&["account", "list"], None);
    assert!(!accounts.contains("dora"), "{accounts}");
    drop(server);
    let check = site.check_store();
    assert_eq!(check.messages, 2, "dora's messages went with her account");
}

#[test]
fn a_new_password_works_at_once_and_the_old_one_stops() {
    let mut ports = Ports::smtp_lmtp();
    ports.pop3 = Some(free_port());
    let mut site = Site::with_ports(
        "admin-passwd",
        "",
        "[pop3]\nplaintext_auth = true\nauth_failure_delay_ms = 0\n",
        ports,
    );
    site.setup(&["alice@example.test"]);
    let _server = site.start();
    let pop3 = site.pop3();
    assert!(pop3_login(pop3, "alice@example.test", "secret"));
    // Logged in once: a cached verification must not outlive the password.
    site.must(
        &[
            "account",
            "passwd",
            "alice@example.test",
            "--password-stdin",
        ],
        Some("another secret\n"),
    );
    assert!(!pop3_login(pop3, "alice@example.test", "secret"));
    assert!(pop3_login(pop3, "alice@example.test", "another secret"));
    // A generated password is printed once and works.
    let out = site.must(&["account", "passwd", "alice@example.test"], None);
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password in {out}"));
    assert!(pop3_login(pop3, "alice@example.test", generated));
    assert!(!pop3_login(pop3, "alice@example.test", "another secret"));
    // An empty line is no password.
    let out = site.cli(
        &[
            "account",
            "passwd",
            "alice@example.test",
            "--password-stdin",
        ],
        Some("\n"),
    );
    assert!(!out.ok && out.stderr.contains("no password"), "{out:?}");
}

#[test]
fn refusals_say_what_is_wrong() {
    let site = Site::new("admin-refusals", "", "");
    site.setup(&["alice@example.test"]);
    let cases: &[(&[&str], &str)] = &[
        (&["domain", "remove", "nowhere.test"], "unknown domain"),
        (&["domain", "add", "not a domain"], "not a domain"),
        (&["account", "remove", "nobody@example.test"], "no account"),
        (
            &["account", "quota", "nobody@example.test", "10"],
            "no account",
        ),
        (
            &[
                "mailbox",
                "export",
                "nobody@example.test",
                "INBOX",
                "--out",
                "/tmp/x",
            ],
            "no account",
        ),
        (
            &[
                "mailbox",
                "export",
                "alice@example.test",
                "Nope",
                "--out",
                "/tmp/x",
            ],
            "no mailbox Nope",
        ),
        (
            &["alias", "add", "x@nowhere.test", "alice@example.test"],
            "unknown domain",
        ),
    ];
    for (args, expected) in cases {
        let out = site.cli(args, None);
        assert!(!out.ok, "facteur {args:?} succeeded: {}", out.stdout);
        assert!(
            out.stderr.contains(expected),
            "facteur {args:?}: expected {expected:?} in {}",
            out.stderr
        );
        assert!(
            out.stderr.lines().count() == 1,
            "facteur {args:?}: one line expected: {}",
            out.stderr
        );
    }
    let out = site.cli(&["account", "add", "ALICE@EXAMPLE.TEST"], None);
    assert!(!out.ok && out.stderr.contains("exists already"), "{out:?}");
    let out = site.cli(
        &["alias", "add", "team@example.test", "alice@example.test"],
        None,
    );
    assert!(out.ok, "{out:?}");
    let out = site.cli(
        &["alias", "add", "Team@example.test", "alice@example.test"],
        None,
    );
    assert!(!out.ok && out.stderr.contains("exists already"), "{out:?}");
    // The six mailboxes of a new account.
    let list = site.must(&["mailbox", "list", "alice@example.test"], None);
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"],
        "{list}"
    );
    assert!(list.lines().all(|l| l.contains("\tmessages=0\t")), "{list}");
}

#[test]
fn check_config_output_reads_back_to_itself() {
    let site = Site::new("admin-config", "", "");
    let check = |path: &std::path::Path| {
        harness::run(
            Command::new(harness::BIN).args(["--config", harness::path_str(path), "check-config"]),
            None,
        )
    };
    let source = site.dir.join("source.toml");
    std::fs::write(
        &source,
        "hostname = \"mx.example.test\"\ndata_dir = \"/var/lib/facteur-test\"\n\
         bind_failure = \"continue\"\n[listen]\nsmtp = [\"[::1]:2525\", \"127.0.0.1:2526\"]\n\
         pop3 = []\n[tls]\ncert = \"/etc/x/cert.pem\"\nkey = \"/etc/x/key.pem\"\n\
         [pop3]\nexpire_days = 0\nlogin_delay_secs = 60\n[directory]\nsubaddress_separator = \"\"\n\
         [store]\ninline_blob_max = 1000\n",
    )
    .unwrap();
    let first = check(&source);
    assert!(first.ok, "{first:?}");
    for expected in [
        "bind_failure = \"continue\"",
        "\"[::1]:2525\"",
        "pop3 = []",
        "expire_days = 0",
        "login_delay_secs = 60",
        "subaddress_separator = \"\"",
        "inline_blob_max = 1000",
        "shutdown_grace_secs = 30",
    ] {
        assert!(
            first.stdout.contains(expected),
            "{expected} missing:\n{}",
            first.stdout
        );
    }
    let printed = site.dir.join("printed.toml");
    std::fs::write(&printed, &first.stdout).unwrap();
    let second = check(&printed);
    assert!(second.ok, "{second:?}");
    assert_eq!(
        first.stdout, second.stdout,
        "the printed configuration reads differently"
    );

    let empty = site.dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let defaults = check(&empty);
    assert!(
        defaults.stdout.contains("data_dir = \"./facteur-data\""),
        "{defaults:?}"
    );
    std::fs::write(&printed, &defaults.stdout).unwrap();
    assert_eq!(check(&printed).stdout, defaults.stdout);
}

#[test]
fn configuration_errors_name_file_line_and_key() {
    let site = Site::new("admin-config-errors", "", "");
    let cases = [
        (
            "hostname = \"mx.example.test\"\nbogus = 1\n",
            "line 2",
            "bogus",
        ),
        ("[listen]\nimap4 = [\"127.0.0.1:143\"]\n", "line 2", "imap4"),
        (
            "[smtp]\nmax_line_length = 100\n",
            "",
            "smtp.max_line_length",
        ),
        ("hostname = \"not a host\"\n", "", "hostname"),
        ("[listen]\nsmtp = [\"nonsense\"]\n", "line 2", "nonsense"),
    ];
    for (i, (text, line, key)) in cases.iter().enumerate() {
        let path = site.dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = harness::run(
            Command::new(harness::BIN).args(["--config", harness::path_str(&path), "check-config"]),
            None,
        );
        assert!(!out.ok, "{text:?} accepted");
        assert!(
            out.stderr.contains(&format!("bad{i}.toml"))
                && out.stderr.contains(line)
                && out.stderr.contains(key),
            "{text:?}: {}",
            out.stderr
        );
    }
    // `serve` refuses a bad file too, before binding anything (no role would bind here anyway).
    let path = site.dir.join("bad-serve.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\n[listen]\nsmtp = []\nlmtp = []\npop3 = []\npop3s = []\nimap = []\nimaps = []\n\
             submission = []\nsubmissions = []\nhttp = []\n[smtp]\nmax_recipient = 3\n",
            site.data_dir().display()
        ),
    )
    .unwrap();
    let out = harness::run_within(
        Command::new(harness::BIN).args(["--config", harness::path_str(&path), "serve"]),
        Duration::from_secs(20),
        &site.dir,
    )
    .expect("serve with a bad configuration ends by itself");
    assert!(
        !out.ok && out.stderr.contains("line 13") && out.stderr.contains("max_recipient"),
        "{out:?}"
    );
    let missing = site.dir.join("missing.toml");
    let out = harness::run(
        Command::new(harness::BIN).args(["--config", harness::path_str(&missing), "check-config"]),
        None,
    );
    assert!(!out.ok && out.stderr.contains("missing.toml"), "{out:?}");
}

#[test]
fn a_taken_lmtp_port_names_listen_lmtp() {
    let site = Site::new("admin-bind-lmtp", "", "");
    site.setup(&[]);
    let _taken = TcpListener::bind(("127.0.0.1", site.lmtp())).unwrap();
    let out = site
        .cli_within(&["serve"], Duration::from_secs(20))
        .expect("serve ends by itself when a port is taken");
    assert!(!out.ok, "serve started with its LMTP port taken");
    assert!(
        out.stderr.contains("listen.lmtp") && out.stderr.contains(&site.lmtp().to_string()),
        "{}",
        out.stderr
    );
    // Nothing else was left listening.
    assert!(Client::connect(site.smtp()).is_err());
}

#[test]
fn with_bind_failure_continue_the_other_role_delivers() {
    let mut site = Site::new("admin-bind-continue", "bind_failure = \"continue\"", "");
    site.setup(&["alice@example.test"]);
    let _taken = TcpListener::bind(("127.0.0.1", site.lmtp())).unwrap();
    let mut server = site.start();
    assert!(deliver(site.smtp(), &["alice@example.test"], "<still@test>").is("250"));
    assert!(server.try_exit().is_none(), "serve exited");
    assert!(site.log().contains("listen.lmtp"), "{}", site.log());
    server.signal(harness::Signal::Term);
    let status = server.wait_exit(Duration::from_secs(20)).expect("exit");
    assert!(status.success(), "{status:?}");
    assert_eq!(site.message_ids("alice@example.test", "INBOX").len(), 1);

    // Every port taken: nothing to serve, so it stops and says so.
    let _smtp_taken = TcpListener::bind(("127.0.0.1", site.smtp())).unwrap();
    let out = site
        .cli_within(&["serve"], Duration::from_secs(20))
        .expect("serve ends by itself without any listener");
    assert!(!out.ok, "serve ran without any listener: {out:?}");
    assert!(out.stderr.contains("listen"), "{}", out.stderr);
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    let site = Site::new("admin-config-type", "", "");
    let path = site.dir.join("typed.toml");
    std::fs::write(
        &path,
        "hostname = \"mx.example.test\"\nshutdown_grace_secs = \"ten\"\n",
    )
    .unwrap();
    let out = harness::run(
        Command::new(harness::BIN).args(["--config", harness::path_str(&path), "check-config"]),
        None,
    );
    assert!(!out.ok);
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("shutdown_grace_secs"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreadable_configuration_is_explained_once() {
    let site = Site::new("admin-config-missing", "", "");
    let missing = site.dir.join("missing.toml");
    let out = harness::run(
        Command::new(harness::BIN).args(["--config", harness::path_str(&missing), "check-config"]),
        None,
    );
    assert!(!out.ok);
    assert_eq!(
        out.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        out.stderr
    );
}
