//! Email authentication end to end, between two facteur servers on loopback and a DNS server
//! on loopback publishing SPF, DKIM and DMARC records: alice at example.test (127.0.0.2)
//! writes through submission, her server signs with the keys `facteur dkim generate` made
//! (RSA and Ed25519), and bob's MX (remote.test, 127.0.0.3) finds SPF, both DKIM signatures and
//! DMARC passing in the Authentication-Results it adds. Mail forged in example.test's name,
//! straight to the MX from an address SPF does not allow and unsigned, is refused with
//! `550 5.7.26` (DMARC p=reject); a domain with p=quarantine lands in Junk; an
//! Authentication-Results field forged with the MX's own name is removed. Bob's server sends
//! the DMARC aggregate report to example.test's `rua`, alice's MX, where `facteur dmarc reports`
//! names the failing source. A rotation makes new selectors that sign once the server sees them
//! in DNS.

mod harness;

use harness::{Client, Ports, Site, expect, free_port};
use std::time::{Duration, Instant};

const ALICE: &str = "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="; // \0alice@example.test\0secret

fn wait(what: &str, site: &Site, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out: {what}\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn submit(site: &Site, subject: &str) {
    let mut c = Client::connect_at(site.ports.ip, site.submission()).unwrap();
    expect(c.reply().unwrap(), "220").unwrap();
    expect(c.command("EHLO client.test").unwrap(), "250").unwrap();
    expect(c.command(&format!("AUTH PLAIN {ALICE}")).unwrap(), "235").unwrap();
    let body = format!(
        "From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: {subject}\r\n\r\nhello\r\n"
    );
    let r = c
        .send_data(
            "alice@example.test",
            &["bob@remote.test"],
            body.as_bytes(),
            false,
        )
        .unwrap();
    assert!(r[0].is("250"), "{}", r[0]);
    let _ = c.command("QUIT");
}

/// Straight to the MX, as a forger (or a sender without authentication) would.
fn inject(port: u16, from: &str, header_from: &str, extra: &str, subject: &str) -> String {
    let mut c = Client::connect_at([127, 0, 0, 3], port).unwrap();
    expect(c.reply().unwrap(), "220").unwrap();
    expect(c.command("EHLO forger.test").unwrap(), "250").unwrap();
    let body = format!(
        "{extra}From: {header_from}\r\nTo: bob@remote.test\r\nSubject: {subject}\r\n\r\nhello\r\n"
    );
    let r = c
        .send_data(from, &["bob@remote.test"], body.as_bytes(), false)
        .unwrap();
    let _ = c.command("QUIT");
    r[0].to_string()
}

fn messages(site: &Site, mailbox: &str) -> Vec<(String, String)> {
    site.export("bob@remote.test", mailbox)
        .into_iter()
        .map(|(_, text)| {
            let text = String::from_utf8_lossy(&text).into_owned();
            (harness::header(&text, "Subject").unwrap_or_default(), text)
        })
        .collect()
}

/// The TXT records of `facteur dkim generate/rotate` output: (owner, text).
fn records(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter(|l| l.contains("._domainkey.") && l.contains(" TXT "))
        .map(|l| {
            let owner = l.split_whitespace().next().unwrap().to_string();
            let text: String = l.split('"').skip(1).step_by(2).collect::<Vec<_>>().concat();
            (owner, text)
        })
        .collect()
}

#[test]
fn signed_mail_passes_and_forged_mail_is_refused_or_quarantined() {
    let dns = facteur_testkit::dns::DnsServer::start(([127, 0, 0, 1], 0).into());
    dns.add_mx("remote.test", 10, "mx.remote.test");
    dns.add_a("mx.remote.test", [127, 0, 0, 3].into());
    dns.add_txt("example.test", "v=spf1 ip4:127.0.0.2 -all");
    dns.add_txt(
        "_dmarc.example.test",
        "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@example.test",
    );
    // Aggregate reports about example.test come back to its MX.
    dns.add_mx("example.test", 10, "mx.example.test");
    dns.add_a("mx.example.test", [127, 0, 0, 2].into());
    dns.add_txt("quar.test", "v=spf1 ip4:127.0.0.2 -all");
    dns.add_txt("_dmarc.quar.test", "v=DMARC1; p=quarantine");
    let mx_port = free_port();
    let sections = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\n\
         [queue]\nsmtp_port = {mx_port}\nretry_secs = [1]\nscan_secs = 1\n\
         [submission]\nplaintext_auth = true\n",
        dns.addr()
    );
    // Alice's server leaves from its own address, the one its SPF record names.
    let sections_a = sections.replace("[queue]\n", "[queue]\nsource_address = \"127.0.0.2\"\n");
    let mut a = Site::with_ports(
        "auth-a",
        "hostname = \"mx.example.test\"",
        &sections_a,
        Ports {
            submission: Some(free_port()),
            smtp: Some(mx_port),
            ip: [127, 0, 0, 2],
            ..Ports::none()
        },
    );
    a.must(&["domain", "add", "example.test"], None);
    for account in ["alice@example.test", "dmarc@example.test"] {
        a.must(
            &["account", "add", account, "--password-stdin"],
            Some("secret\n"),
        );
    }
    let generated = a.must(&["dkim", "generate", "example.test"], None);
    let published = records(&generated);
    assert_eq!(published.len(), 2, "an RSA and an Ed25519 key: {generated}");
    for (owner, text) in &published {
        assert!(text.starts_with("v=DKIM1; k="), "{text}");
        dns.add_txt(owner, text);
    }
    // `dkim show` finds both records in DNS.
    let show = a.must(&["dkim", "show", "example.test"], None);
    assert_eq!(show.matches("DNS: published").count(), 2, "{show}");

    let mut b = Site::with_ports(
        "auth-b",
        "hostname = \"mx.remote.test\"",
        &sections,
        Ports {
            smtp: Some(mx_port),
            ip: [127, 0, 0, 3],
            ..Ports::none()
        },
    );
    b.must(&["domain", "add", "remote.test"], None);
    b.must(
        &["account", "add", "bob@remote.test", "--password-stdin"],
        Some("secret\n"),
    );
    let _a = a.start();
    let _b = b.start();

    // Signed by alice's server, checked by bob's.
    submit(&a, "signed");
    wait("the signed message arrives", &b, || {
        messages(&b, "INBOX").iter().any(|(s, _)| s == "signed")
    });
    let (_, got) = messages(&b, "INBOX")
        .into_iter()
        .find(|(s, _)| s == "signed")
        .unwrap();
    let results = harness::header(&got, "Authentication-Results").expect(&got);
    assert!(results.starts_with("mx.remote.test;"), "{results}");
    assert!(results.contains("spf=pass"), "{results}");
    assert!(results.contains("dmarc=pass"), "{results}");
    assert_eq!(results.matches("dkim=pass").count(), 2, "{results}");
    assert!(got.matches("DKIM-Signature:").count() == 2, "{got}");
    // Above our Received field: Return-Path, Delivered-To, Authentication-Results.
    let ar = got.find("Authentication-Results:").unwrap();
    assert!(ar < got.find("Received:").unwrap(), "{got}");

    // Forged in example.test's name from an address SPF does not list, unsigned: DMARC
    // p=reject, refused at the end of DATA (RFC 7372 §3.2).
    let reply = inject(
        mx_port,
        "ceo@example.test",
        "ceo@example.test",
        "",
        "forged",
    );
    assert!(reply.starts_with("550 5.7.26"), "{reply}");
    assert!(b.log().contains("550 5.7.26"), "{}", b.log());

    // p=quarantine: delivered into Junk, with the verdict.
    let reply = inject(
        mx_port,
        "news@quar.test",
        "news@quar.test",
        "",
        "quarantined",
    );
    assert!(reply.starts_with("250"), "{reply}");
    let junk = messages(&b, "Junk");
    let (_, q) = junk
        .iter()
        .find(|(s, _)| s == "quarantined")
        .unwrap_or_else(|| panic!("not in Junk: {junk:?}"));
    assert!(
        harness::header(q, "Authentication-Results")
            .unwrap()
            .contains("dmarc=fail"),
        "{q}"
    );
    assert!(
        !messages(&b, "INBOX")
            .iter()
            .any(|(s, _)| s == "quarantined")
    );

    // A field forged with the MX's name is removed; another server's is kept. (SPF none,
    // no DMARC record: accepted.)
    let reply = inject(
        mx_port,
        "someone@elsewhere.test",
        "someone@elsewhere.test",
        "Authentication-Results: mx.remote.test; dmarc=pass header.from=elsewhere.test\r\n\
         Authentication-Results: other.test; spf=pass\r\n",
        "forged results",
    );
    assert!(reply.starts_with("250"), "{reply}");
    let (_, f) = messages(&b, "INBOX")
        .into_iter()
        .find(|(s, _)| s == "forged results")
        .unwrap();
    assert_eq!(
        f.matches("Authentication-Results: mx.remote.test").count(),
        1,
        "{f}"
    );
    assert!(!f.contains("dmarc=pass header.from=elsewhere.test"), "{f}");
    assert!(
        f.contains("Authentication-Results: other.test; spf=pass"),
        "{f}"
    );

    // The DMARC aggregate report about example.test (one pass from 127.0.0.2, one reject from
    // 127.0.0.1) goes from bob's server to the rua mailbox at alice's, which summarises it.
    let sent = b.must(&["dmarc", "send"], None);
    assert!(
        sent.contains("for example.test") && sent.contains("sent to dmarc@example.test"),
        "{sent}"
    );
    wait("the report arrives", &a, || {
        !a.export("dmarc@example.test", "INBOX").is_empty()
    });
    let summary = a.must(&["dmarc", "reports", "dmarc@example.test"], None);
    assert!(summary.contains("example.test"), "{summary}");
    assert!(
        summary.contains("mx.remote.test"),
        "the reporter: {summary}"
    );
    assert!(
        summary.contains("127.0.0.1"),
        "the failing source: {summary}"
    );
    // Reported once: nothing waits any more.
    assert!(
        b.must(&["dmarc", "send"], None)
            .contains("No DMARC evaluation waiting")
    );

    // Rotation: new selectors wait for DNS; once published, the server switches (at its
    // next look: a restart looks at once) and signs with them.
    let rotated = a.must(&["dkim", "rotate", "example.test"], None);
    let fresh = records(&rotated);
    assert_eq!(fresh.len(), 2, "{rotated}");
    assert!(fresh.iter().all(|r| !published.contains(r)), "{rotated}");
    // Not in DNS yet: `dkim show` says so, and exits 1 for scripts.
    let show = a.cli(&["dkim", "show", "example.test"], None);
    assert_eq!(show.code, Some(1), "{show:?}");
    assert_eq!(
        show.stdout.matches("waiting for its DNS record").count(),
        2,
        "{show:?}"
    );
    assert_eq!(show.stdout.matches("DNS: MISSING").count(), 2, "{show:?}");
    for (owner, text) in &fresh {
        dns.add_txt(owner, text);
    }
    drop(_a);
    let _a = a.start();
    wait("the rotation completes", &a, || {
        a.cli(&["dkim", "show", "example.test"], None)
            .stdout
            .matches("retired; keep its DNS record")
            .count()
            == 2
    });
    submit(&a, "after rotation");
    wait("the message signed with the new keys arrives", &b, || {
        messages(&b, "INBOX")
            .iter()
            .any(|(s, _)| s == "after rotation")
    });
    let (_, got) = messages(&b, "INBOX")
        .into_iter()
        .find(|(s, _)| s == "after rotation")
        .unwrap();
    let new_selector = fresh[0].0.split('.').next().unwrap();
    assert!(got.contains(&format!("s={new_selector}")), "{got}");
    let results = harness::header(&got, "Authentication-Results").unwrap();
    assert_eq!(results.matches("dkim=pass").count(), 2, "{results}");
}
