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
use std::time::Duration;

fn wait(what: &str, site: &Site, done: impl FnMut() -> bool) {
    site.wait(what, done)
}

fn submit(site: &Site, subject: &str) {
    submit_to(site, "bob@remote.test", subject);
}

fn submit_to(site: &Site, to: &str, subject: &str) {
    site.submit_as_alice("Alice <alice@example.test>", &[to], subject)
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
    messages_of(site, "bob@remote.test", mailbox)
}

fn messages_of(site: &Site, account: &str, mailbox: &str) -> Vec<(String, String)> {
    site.subjects(account, mailbox)
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

/// Forwarding outside: bob's server has `fwd@remote.test -> carol@far.test, bob@remote.test`.
/// The copy to carol leaves with an SRS envelope sender in remote.test, so SPF at far.test's
/// MX (a third server) passes for remote.test, DKIM still passes for example.test, and DMARC
/// passes; bob keeps his copy. A forward whose destination refuses the recipient produces a
/// bounce to the SRS address, which bob's server reverses: alice gets the DSN. Bob's server
/// ARC-seals what it forwards (RFC 8617), and far.test's MX verifies the seal.
#[test]
fn forwarded_mail_keeps_passing_and_its_bounces_find_the_sender() {
    let dns = facteur_testkit::dns::DnsServer::start(([127, 0, 0, 1], 0).into());
    for (domain, ip) in [("example.test", 2), ("remote.test", 3), ("far.test", 4)] {
        dns.add_mx(domain, 10, &format!("mx.{domain}"));
        dns.add_a(&format!("mx.{domain}"), [127, 0, 0, ip].into());
        dns.add_txt(domain, &format!("v=spf1 ip4:127.0.0.{ip} -all"));
    }
    dns.add_txt("_dmarc.example.test", "v=DMARC1; p=reject");
    // far.test asks for TLS reports (RFC 8460).
    dns.add_txt(
        "_smtp._tls.far.test",
        "v=TLSRPTv1; rua=mailto:tlsrpt@far.test",
    );
    let mx_port = free_port();
    let site = |name: &str, host: &str, ip: u8, submission: bool| {
        Site::with_ports(
            name,
            &format!("hostname = \"{host}\""),
            &format!(
                "[dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\n\
                 [queue]\nsmtp_port = {mx_port}\nretry_secs = [1]\nscan_secs = 1\n\
                 source_address = \"127.0.0.{ip}\"\n\
                 [submission]\nplaintext_auth = true\n",
                dns.addr()
            ),
            Ports {
                submission: submission.then(free_port),
                smtp: Some(mx_port),
                ip: [127, 0, 0, ip],
                ..Ports::none()
            },
        )
    };
    let mut a = site("fwd-a", "mx.example.test", 2, true);
    a.must(&["domain", "add", "example.test"], None);
    a.must(
        &["account", "add", "alice@example.test", "--password-stdin"],
        Some("secret\n"),
    );
    for (owner, text) in records(&a.must(&["dkim", "generate", "example.test"], None)) {
        dns.add_txt(&owner, &text);
    }
    let mut b = site("fwd-b", "mx.remote.test", 3, false);
    b.must(&["domain", "add", "remote.test"], None);
    b.must(
        &["account", "add", "bob@remote.test", "--password-stdin"],
        Some("secret\n"),
    );
    b.must(
        &[
            "alias",
            "add",
            "fwd@remote.test",
            "carol@far.test",
            "bob@remote.test",
        ],
        None,
    );
    b.must(
        &["alias", "add", "lost@remote.test", "nobody@far.test"],
        None,
    );
    // Keys for remote.test: bob's server ARC-seals what it forwards with them.
    for (owner, text) in records(&b.must(&["dkim", "generate", "remote.test"], None)) {
        dns.add_txt(&owner, &text);
    }
    let mut c = site("fwd-c", "mx.far.test", 4, false);
    c.must(&["domain", "add", "far.test"], None);
    for account in ["carol@far.test", "tlsrpt@far.test"] {
        c.must(
            &["account", "add", account, "--password-stdin"],
            Some("secret\n"),
        );
    }
    let (_a, mut b_server, _c) = (a.start(), b.start(), c.start());

    submit_to(&a, "fwd@remote.test", "forwarded");
    wait("carol gets the forwarded copy", &c, || {
        messages_of(&c, "carol@far.test", "INBOX")
            .iter()
            .any(|(s, _)| s == "forwarded")
    });
    let (_, got) = messages_of(&c, "carol@far.test", "INBOX").remove(0);
    let results = harness::header(&got, "Authentication-Results").expect(&got);
    assert!(
        results.contains("spf=pass smtp.mailfrom=\"SRS0=") && results.contains("@remote.test\""),
        "SPF checked the forwarder's SRS address: {results}"
    );
    assert_eq!(results.matches("dkim=pass").count(), 2, "{results}");
    assert!(results.contains("dmarc=pass"), "{results}");
    // RFC 8617: the forwarder's seal, verified by the next hop.
    assert!(results.contains("arc=pass"), "{results}");
    let seal = harness::header(&got, "ARC-Seal").expect(&got);
    assert!(
        seal.contains("i=1") && seal.contains("d=remote.test"),
        "{seal}"
    );
    let aar = harness::header(&got, "ARC-Authentication-Results").unwrap();
    assert!(
        aar.contains("mx.remote.test") && aar.contains("dkim=pass"),
        "{aar}"
    );
    let return_path = harness::header(&got, "Return-Path").unwrap();
    assert!(return_path.starts_with("<SRS0="), "{return_path}");
    assert!(
        messages(&b, "INBOX").iter().any(|(s, _)| s == "forwarded"),
        "bob keeps his copy"
    );

    // far.test has no nobody: the bounce goes to the SRS address, and back to alice.
    submit_to(&a, "lost@remote.test", "lost");
    wait("alice gets the bounce", &a, || {
        messages_of(&a, "alice@example.test", "INBOX")
            .iter()
            .any(|(s, _)| s == "Undelivered Mail Returned to Sender")
    });
    let (_, dsn) = messages_of(&a, "alice@example.test", "INBOX")
        .into_iter()
        .find(|(s, _)| s == "Undelivered Mail Returned to Sender")
        .unwrap();
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@far.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Original-Recipient: rfc822;lost@remote.test"),
        "the address alice used: {dsn}"
    );
    assert!(b.log().contains("SRS"), "{}", b.log());

    // Bob's server stops (its TLS totals are kept at shutdown) and sends its TLS report for
    // far.test: sessions over STARTTLS (one or two: the connection may be reused), no policy,
    // no failure.
    b_server.signal(harness::Signal::Term);
    assert!(b_server.wait_exit(Duration::from_secs(20)).is_some());
    let sent = b.must(&["tls", "send-reports"], None);
    assert!(
        sent.contains("TLS report") && sent.contains("for far.test sent to tlsrpt@far.test"),
        "{sent}"
    );
    // Queued; it leaves when the server runs again.
    let _b = b.start();
    wait("far.test gets the TLS report", &c, || {
        !c.export("tlsrpt@far.test", "INBOX").is_empty()
    });
    let (_, report) = c.export("tlsrpt@far.test", "INBOX").remove(0);
    let report = String::from_utf8_lossy(&report).into_owned();
    assert_eq!(
        harness::header(&report, "TLS-Report-Domain").as_deref(),
        Some("far.test"),
        "{report}"
    );
    assert!(report.contains("application/tlsrpt+gzip"), "{report}");
    let json = gunzip_attachment(&report);
    assert!(
        json.contains("\"policy-type\":\"no-policy-found\""),
        "{json}"
    );
    assert!(
        json.contains("\"total-successful-session-count\":"),
        "{json}"
    );
    assert!(
        !json.contains("\"total-successful-session-count\":0"),
        "{json}"
    );
    assert!(json.contains("\"total-failure-session-count\":0"), "{json}");
}

/// The base64 body of the report's `.json.gz` part, decoded and gunzipped.
fn gunzip_attachment(message: &str) -> String {
    let start = message.find(".json.gz").expect("an attachment");
    let body_start = message[start..].find("\r\n\r\n").unwrap() + start + 4;
    let body_end = message[body_start..].find("\r\n--").unwrap() + body_start;
    let mut bits = Vec::new();
    let (mut acc, mut n) = (0u32, 0);
    for c in message[body_start..body_end].bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            bits.push((acc >> n) as u8);
        }
    }
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bits[..]), &mut json).unwrap();
    json
}
