//! `facteur explain`: a remote reply in plain English, from arguments or standard input, in the
//! shape admins read (summary, meaning, whose side, retried or not, fix, the codes' names).

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_facteur");

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("explain")
        .args(args)
        .env_remove("FACTEUR_CONFIG")
        .env("FACTEUR_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("facteur runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn explain(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().all(|l| l.chars().count() <= 78),
        "a line is wider than 78 columns:\n{stdout}"
    );
    stdout
}

#[test]
fn the_dmarc_seed_example_in_the_documented_shape() {
    let text = explain(
        &[
            "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's \
           DMARC policy",
        ],
        None,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("550 5.7.26: Rejected by DMARC"),
        "{text}"
    );
    assert_eq!(lines[1], "", "{text}");
    let side = text
        .find("\nWhere the problem is: in DNS and configuration")
        .expect(&text);
    let retried = text
        .find("\nRetried: no, a 5xx reply is final.")
        .expect(&text);
    let fix = text.find("\nFix: ").expect(&text);
    let status = text
        .find("\nStatus 5.7.26: Multiple authentication checks failed (RFC 7372)")
        .expect(&text);
    assert!(side < retried && retried < fix && fix < status, "{text}");
    assert!(text.contains("_dmarc.YOUR-DOMAIN"), "{text}");
    assert!(
        text.contains("\nCode 550: Requested action not taken"),
        "{text}"
    );
}

#[test]
fn seed_codes() {
    for (reply, first_line, retried) in [
        (
            "550 5.1.1 User unknown",
            "550 5.1.1: The recipient's address does not exist.",
            "no",
        ),
        (
            "552 5.2.2 Mailbox full",
            "552 5.2.2: The recipient's mailbox is full.",
            "no",
        ),
        (
            "550 5.7.1 Relaying denied",
            "550 5.7.1: Relaying denied",
            "no",
        ),
        (
            "550 5.7.23 SPF check failed",
            "550 5.7.23: Your domain's SPF record",
            "no",
        ),
        (
            "450 4.7.0 Greylisted, try again later",
            "450 4.7.0: Greylisted",
            "yes",
        ),
        (
            "421",
            "421: The recipient's server is temporarily unavailable",
            "yes",
        ),
    ] {
        let text = explain(&[reply], None);
        assert!(text.starts_with(first_line), "{reply}:\n{text}");
        assert!(
            text.contains(&format!("\nRetried: {retried},")),
            "{reply}:\n{text}"
        );
    }
}

#[test]
fn unquoted_words_are_joined() {
    assert_eq!(
        explain(&["550", "5.1.1", "User", "unknown"], None),
        explain(&["550 5.1.1 User unknown"], None)
    );
}

#[test]
fn a_multi_line_reply_on_standard_input() {
    let reply = "421-4.7.0 [203.0.113.5] Our system has detected an unusual rate of\r\n\
                 421-4.7.0 unsolicited mail originating from your IP address. To protect our\r\n\
                 421 4.7.0 users from spam, mail sent from your IP address has been rate limited.\r\n";
    let text = explain(&[], Some(reply));
    assert!(text.starts_with("421 4.7.0: Rate limited"), "{text}");
    assert!(
        text.contains("\nRetried: yes, a 4xx reply is temporary."),
        "{text}"
    );
}

#[test]
fn connection_outcomes_without_a_code() {
    let text = explain(&["port 25 blocked: every MX timed out"], None);
    assert!(
        text.starts_with("4.4.1: Outgoing port 25 seems blocked"),
        "{text}"
    );
    assert!(text.contains("smarthost"), "{text}");
    assert!(text.contains("\nRetried: yes,"), "{text}");
    let text = explain(&["domain not found (NXDOMAIN)"], None);
    assert!(
        text.contains("does not exist") && text.contains("\nRetried: no,"),
        "{text}"
    );
}

#[test]
fn unknown_and_odd_input_is_explained_not_refused() {
    let text = explain(
        &["550 5.7.606 Access denied, banned sending IP [203.0.113.5]"],
        None,
    );
    assert!(text.contains("blocklist"), "{text}");
    assert!(
        text.contains("not a registered status; read as 5.7.x"),
        "{text}"
    );
    let text = explain(&["-ERR not smtp at all"], None);
    assert!(
        text.starts_with("Not a reply facteur recognises."),
        "{text}"
    );
    let text = explain(&[], Some(""));
    assert!(text.starts_with("No reply to explain."), "{text}");
}

#[test]
fn explain_is_listed_in_the_help() {
    let out = Command::new(BIN)
        .arg("--help")
        .env_remove("FACTEUR_CONFIG")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("explain"), "{help}");
}
