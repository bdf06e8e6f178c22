//! Outbound delivery between two facteur servers on loopback, each the MX of its own domain,
//! with a DNS server on loopback publishing their MX and A records (RFC 5321 §5.1): alice at
//! example.test (127.0.0.2) writes to bob at remote.test (127.0.0.3) through submission; the
//! queue looks up remote.test's MX and delivers on port 25 of 127.0.0.3 (a test port, see
//! `queue.smtp_port`). An unknown user there comes back as a DSN in alice's INBOX that
//! explains itself; a null MX and a domain that does not exist bounce at once; a domain without
//! MX is reached at its own address (implicit MX); while the MX is
//! down the message waits in the queue (`facteur queue list/show` explain why) and goes once
//! it is up.

mod harness;

use harness::{Ports, Site, free_port};

fn wait(what: &str, site: &Site, done: impl FnMut() -> bool) {
    site.wait(what, done)
}

fn submit(site: &Site, to: &[&str], subject: &str) {
    site.submit_as_alice("alice@example.test", to, subject)
}

fn inbox_subjects(site: &Site, account: &str) -> Vec<(String, String)> {
    site.subjects(account, "INBOX")
}

#[test]
fn mail_crosses_between_two_servers_through_mx_and_bounces_explain_themselves() {
    let dns = facteur_testkit::dns::DnsServer::start(([127, 0, 0, 1], 0).into());
    dns.add_mx("example.test", 10, "mx.example.test");
    dns.add_a("mx.example.test", [127, 0, 0, 2].into());
    dns.add_mx("remote.test", 10, "mx.remote.test");
    dns.add_a("mx.remote.test", [127, 0, 0, 3].into());
    dns.add_null_mx("nomail.test");
    // No MX at all: the domain's own address is the implicit MX (RFC 5321 §5.1).
    dns.add_a("implicit.test", [127, 0, 0, 3].into());
    // Both sides deliver MX traffic on this port (standing in for 25).
    let mx_port = free_port();
    let sections = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\n\
         [queue]\nsmtp_port = {mx_port}\nretry_secs = [1]\nscan_secs = 1\n\
         [submission]\nplaintext_auth = true\n",
        dns.addr()
    );
    let mut a = Site::with_ports(
        "outbound-a",
        "",
        &sections,
        Ports {
            submission: Some(free_port()),
            ip: [127, 0, 0, 2],
            ..Ports::none()
        },
    );
    a.must(&["domain", "add", "example.test"], None);
    a.must(
        &["account", "add", "alice@example.test", "--password-stdin"],
        Some("secret\n"),
    );
    let mut b = Site::with_ports(
        "outbound-b",
        "",
        &sections,
        Ports {
            smtp: Some(mx_port),
            ip: [127, 0, 0, 3],
            ..Ports::none()
        },
    );
    b.must(&["domain", "add", "remote.test"], None);
    b.must(&["domain", "add", "implicit.test"], None);
    b.must(
        &["account", "add", "dan@implicit.test", "--password-stdin"],
        Some("secret\n"),
    );
    b.must(
        &["account", "add", "bob@remote.test", "--password-stdin"],
        Some("secret\n"),
    );

    // The receiving side is down at first: the message waits, and the queue says why.
    let _a = a.start();
    submit(&a, &["bob@remote.test"], "while down");
    wait("a failed attempt", &a, || {
        a.cli(&["queue", "list"], None)
            .stdout
            .contains("queued after 1 attempt")
    });
    let list = a.cli(&["queue", "list"], None);
    assert!(list.stdout.contains("<bob@remote.test> queued"), "{list:?}");
    assert!(
        list.stdout.contains("refused") || list.stdout.contains("Connection refused"),
        "{list:?}"
    );
    let id = list
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let show = a.cli(&["queue", "show", &id], None);
    assert!(
        show.stdout.contains("via mx.remote.test [127.0.0.3]"),
        "{show:?}"
    );
    assert!(show.stdout.contains("Retried: yes"), "{show:?}");

    // Up: the retry delivers it through the MX.
    let _b = b.start();
    wait("delivered to bob", &b, || {
        inbox_subjects(&b, "bob@remote.test")
            .iter()
            .any(|(s, _)| s == "while down")
    });
    wait("the queue empties", &a, || {
        a.cli(&["queue", "list"], None).stdout.contains("empty")
    });
    let (_, got) = inbox_subjects(&b, "bob@remote.test").remove(0);
    assert!(
        got.contains("(facteur) with ESMTPA"),
        "submitted with AUTH: {got}"
    );
    assert!(
        got.contains("with ESMTPS id"),
        "crossed over STARTTLS: {got}"
    );

    // An unknown user at the other side, a null MX and a domain that does not exist: one
    // message, three bounces in one DSN, each explained.
    submit(
        &a,
        &[
            "nobody@remote.test",
            "x@nomail.test",
            "y@nowhere.test",
            "bob@remote.test",
            "dan@implicit.test",
        ],
        "mixed",
    );
    wait("the DSN arrives", &a, || {
        !inbox_subjects(&a, "alice@example.test").is_empty()
    });
    let (subject, dsn) = inbox_subjects(&a, "alice@example.test").remove(0);
    assert_eq!(subject, "Undelivered Mail Returned to Sender");
    for (rcpt, status) in [
        ("nobody@remote.test", "5.1.1"),
        ("x@nomail.test", "5.1.10"),
        ("y@nowhere.test", "5.1.2"),
    ] {
        assert!(
            dsn.contains(&format!(
                "Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {status}"
            )),
            "{rcpt} {status}: {dsn}"
        );
    }
    assert!(
        !dsn.contains("Final-Recipient: rfc822; bob@remote.test"),
        "{dsn}"
    );
    assert!(dsn.contains("What it means:"), "{dsn}");
    wait("dan got it through the implicit MX", &b, || {
        inbox_subjects(&b, "dan@implicit.test")
            .iter()
            .any(|(s, _)| s == "mixed")
    });
    assert!(
        !dsn.contains("Final-Recipient: rfc822; dan@implicit.test"),
        "{dsn}"
    );
    wait("bob got the mixed message", &b, || {
        inbox_subjects(&b, "bob@remote.test")
            .iter()
            .any(|(s, _)| s == "mixed")
    });
    let log = a.log();
    assert!(log.contains("bounced"), "{log}");
    assert!(log.contains(" sent "), "{log}");
}
