//! The MX's protections through a running server: greylisting (450 4.7.0, then the retry
//! accepted, then the network and domain let through), the connection checks at RCPT and
//! before the greeting, the per-address connection limit, GTUBE scored as spam (filed into
//! Junk, or refused above the reject score), and each account's Bayesian classifier learning
//! from the messages its user moves into and out of Junk over IMAP.

mod harness;

use harness::{Client, Ports, Site, expect, free_port, header};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The connection checks off, so a test sees only what it turns on (the tests' DNS is a
/// closed port: an unknown sender domain would be a temporary failure).
const CHECKS_OFF: &str = "[checks]\nhelo_invalid = \"off\"\nhelo_non_fqdn = \"off\"\n\
    sender_non_fqdn = \"off\"\nrecipient_non_fqdn = \"off\"\nsender_unknown_domain = \"off\"\n\
    reverse_dns_missing = \"off\"\n";

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn message(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{}@sender.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        subject.replace(' ', "-").to_ascii_lowercase()
    )
    .into_bytes()
}

/// MAIL, RCPT, DATA and the message; the reply to the message (after RCPT was accepted).
fn send(port: u16, from: &str, to: &str, message: &[u8]) -> String {
    let mut c = Client::hello(port, false).unwrap();
    let r = c.send_data(from, &[to], message, false).unwrap();
    let _ = c.command("QUIT");
    r[0].to_string()
}

#[test]
fn greylisting_defers_the_first_attempt_and_accepts_the_retry() {
    let mut site = Site::new(
        "greylist",
        "",
        &format!(
            "[protect]\nallow = []\n{CHECKS_OFF}[spam]\nenabled = false\n\
             [greylist]\nenabled = true\ndelay_secs = 2\n"
        ),
    );
    site.setup(&["alice@example.test", "bob@example.test"]);
    let _server = site.start();
    let smtp = site.smtp();
    let mail = message("carol@sender.example", "Greylisted", "hello");

    // RFC 6647 §2.1: an unknown triplet is deferred; so is a retry too soon.
    let first = send(smtp, "carol@sender.example", "alice@example.test", &mail);
    assert!(first.starts_with("450 4.7.0 Greylisted"), "{first}");
    let early = send(smtp, "carol@sender.example", "alice@example.test", &mail);
    assert!(early.starts_with("450 4.7.0"), "{early}");
    assert!(site.subjects("alice@example.test", "INBOX").is_empty());

    // After the delay, the retry is accepted.
    std::thread::sleep(Duration::from_millis(2300));
    let retry = send(smtp, "carol@sender.example", "alice@example.test", &mail);
    assert!(retry.starts_with("250"), "{retry}");
    assert_eq!(site.subjects("alice@example.test", "INBOX").len(), 1);

    // The network and sender domain retried: another sender of the domain, to another
    // recipient, passes at once; another domain is still greylisted.
    let same_domain = send(smtp, "dave@sender.example", "bob@example.test", &mail);
    assert!(same_domain.starts_with("250"), "{same_domain}");
    let other = send(smtp, "eve@other.example", "alice@example.test", &mail);
    assert!(other.starts_with("450 4.7.0"), "{other}");

    let log = site.log();
    assert!(log.contains("greylist=deferred"), "{log}");
    assert!(log.contains("greylist=passed"), "{log}");
    assert!(log.contains("greylist=allowed"), "{log}");
}

/// Mail whose sender domain is authenticated (SPF pass here, against a DNS server on
/// loopback) skips greylisting when the domain is known good: listed by the admin, or learnt
/// when an authenticated message of it retried once. An unauthenticated sender of the same
/// domain is still greylisted.
#[test]
fn authenticated_mail_of_known_good_domains_skips_greylisting() {
    let dns = facteur_testkit::dns::DnsServer::start(([127, 0, 0, 1], 0).into());
    dns.add_txt("listed.example", "v=spf1 ip4:127.0.0.1 -all");
    dns.add_mx("listed.example", 10, "mx.listed.example");
    dns.add_txt("learnt.example", "v=spf1 ip4:127.0.0.1 -all");
    dns.add_mx("learnt.example", 10, "mx.learnt.example");
    dns.add_txt("forged.example", "v=spf1 ip4:192.0.2.1 -all");
    dns.add_mx("forged.example", 10, "mx.forged.example");
    let mut site = Site::new(
        "greylist-auth",
        "",
        &format!(
            "[dns]\nnameservers = [\"{}\"]\ntimeout_secs = 2\n\
             [protect]\nallow = []\n{CHECKS_OFF}[spam]\nenabled = false\n\
             [greylist]\nenabled = true\ndelay_secs = 1\nknown_domains = [\"listed.example\"]\n",
            dns.addr()
        ),
    );
    site.setup(&["alice@example.test", "bob@example.test"]);
    let _server = site.start();
    let smtp = site.smtp();
    let from = |d: &str| format!("news@{d}");

    // A domain the admin listed, SPF pass: accepted at the first attempt.
    let r = send(
        smtp,
        &from("listed.example"),
        "alice@example.test",
        &message(&from("listed.example"), "Listed", "hello"),
    );
    assert!(r.starts_with("250"), "{r}");

    // Another authenticated domain: greylisted once; after its retry it is known good, and
    // its next message, to another recipient, passes at once.
    let m = message(&from("learnt.example"), "Learnt", "hello");
    let r = send(smtp, &from("learnt.example"), "alice@example.test", &m);
    assert!(r.starts_with("450 4.7.0"), "{r}");
    std::thread::sleep(Duration::from_millis(1300));
    let r = send(smtp, &from("learnt.example"), "alice@example.test", &m);
    assert!(r.starts_with("250"), "{r}");
    let r = send(smtp, "other@learnt.example", "bob@example.test", &m);
    assert!(r.starts_with("250"), "{r}");

    // SPF fails for this one: not authenticated, greylisted.
    let r = send(
        smtp,
        &from("forged.example"),
        "alice@example.test",
        &message(&from("forged.example"), "Forged", "hello"),
    );
    assert!(r.starts_with("450 4.7.0"), "{r}");
    let log = site.log();
    assert!(
        log.contains("greylist=skipped (authenticated listed.example)"),
        "{log}"
    );
}

#[test]
fn connection_checks_refuse_what_the_admin_made_hard_rules() {
    let mut site = Site::new(
        "checks",
        "",
        &format!(
            "[protect]\nallow = []\n{}[spam]\nenabled = false\n[smtp]\nmax_connections_per_ip = 2\n",
            CHECKS_OFF
                .replace("helo_non_fqdn = \"off\"", "helo_non_fqdn = \"reject\"")
                .replace(
                    "recipient_non_fqdn = \"off\"",
                    "recipient_non_fqdn = \"reject\"\npregreet_wait_ms = 400"
                )
        ),
    );
    site.setup(&["alice@example.test"]);
    let _server = site.start();
    let smtp = site.smtp();

    // A HELO name without a dot: 504 5.5.2 at RCPT (Postfix's smtpd_delay_reject).
    let mut c = Client::connect(smtp).unwrap();
    expect(c.reply().unwrap(), "220").unwrap();
    expect(c.command("EHLO localhost").unwrap(), "250").unwrap();
    expect(
        c.command("MAIL FROM:<carol@sender.example>").unwrap(),
        "250",
    )
    .unwrap();
    let r = c.command("RCPT TO:<alice@example.test>").unwrap();
    assert!(
        r.is("504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"),
        "{r}"
    );
    // A proper name passes, a recipient without a domain dot does not.
    expect(c.command("EHLO client.sender.example").unwrap(), "250").unwrap();
    expect(
        c.command("MAIL FROM:<carol@sender.example>").unwrap(),
        "250",
    )
    .unwrap();
    expect(c.command("RCPT TO:<alice@example.test>").unwrap(), "250").unwrap();
    let r = c.command("RCPT TO:<bob@intranet>").unwrap();
    assert!(r.is("504 5.5.2"), "{r}");
    let _ = c.command("QUIT");

    // An early talker: it speaks before the greeting and is refused.
    let mut early = TcpStream::connect(("127.0.0.1", smtp)).unwrap();
    early
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    early.write_all(b"EHLO bot.example\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(early).read_line(&mut line).unwrap();
    assert!(line.starts_with("554 5.5.1"), "{line}");

    // Two connections at a time from one address; the third is refused, and once one
    // closes, a new one is accepted again.
    let mut one = Client::connect(smtp).unwrap();
    expect(one.reply().unwrap(), "220").unwrap();
    let mut two = Client::connect(smtp).unwrap();
    expect(two.reply().unwrap(), "220").unwrap();
    let mut three = Client::connect(smtp).unwrap();
    let r = three.reply().unwrap();
    assert!(r.is("421 4.7.0 too many connections from 127.0.0.1"), "{r}");
    let _ = one.command("QUIT");
    drop(one);
    site.wait("a connection slot to free up", || {
        let mut again = Client::connect(smtp).unwrap();
        again.reply().is_ok_and(|r| r.is("220"))
    });
    let _ = two.command("QUIT");
    let log = site.log();
    assert!(log.contains("early talker refused"), "{log}");
}

#[test]
fn gtube_is_filed_into_junk_and_refused_above_the_reject_score() {
    let mut site = Site::new(
        "gtube",
        "",
        &format!("{CHECKS_OFF}[spam]\nreject_score = 0\n"),
    );
    site.setup(&["alice@example.test"]);
    let server = site.start();
    let smtp = site.smtp();
    let r = send(
        smtp,
        "carol@sender.example",
        "alice@example.test",
        &message("carol@sender.example", "Spam test", GTUBE),
    );
    assert!(r.starts_with("250"), "{r}");
    let r = send(
        smtp,
        "carol@sender.example",
        "alice@example.test",
        &message(
            "carol@sender.example",
            "Lunch on Friday",
            "Shall we meet at noon by the library?",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let junk = site.subjects("alice@example.test", "Junk");
    assert_eq!(junk.len(), 1, "{junk:?}");
    assert_eq!(junk[0].0, "Spam test");
    assert_eq!(header(&junk[0].1, "X-Spam-Flag").as_deref(), Some("YES"));
    let status = header(&junk[0].1, "X-Spam-Status").unwrap();
    assert!(status.starts_with("Yes, score="), "{status}");
    assert!(status.contains("GTUBE"), "{status}");
    let inbox = site.subjects("alice@example.test", "INBOX");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(header(&inbox[0].1, "X-Spam-Flag").is_none());
    let status = header(&inbox[0].1, "X-Spam-Status").unwrap();
    assert!(status.starts_with("No, score="), "{status}");
    drop(server);

    // With a reject score, GTUBE is refused during the session: the sender knows.
    let mut strict = Site::new("gtube-reject", "", &format!("{CHECKS_OFF}[spam]\n"));
    strict.setup(&["alice@example.test"]);
    let _server = strict.start();
    let r = send(
        strict.smtp(),
        "carol@sender.example",
        "alice@example.test",
        &message("carol@sender.example", "Spam test", GTUBE),
    );
    assert!(r.starts_with("550 5.7.1 Message refused as spam"), "{r}");
    assert!(strict.subjects("alice@example.test", "INBOX").is_empty());
    assert!(strict.subjects("alice@example.test", "Junk").is_empty());
}

/// A minimal IMAP client: one command, its tagged reply (the untagged lines before it).
struct Imap {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    tag: u32,
}

impl Imap {
    fn login(port: u16) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut imap = Imap {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            tag: 0,
        };
        let mut greeting = String::new();
        imap.reader.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let r = imap.run("LOGIN alice@example.test secret");
        assert!(r.contains(" OK"), "{r}");
        imap
    }

    fn run(&mut self, command: &str) -> String {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.stream
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .unwrap();
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "{all}");
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }
}

const SPAMMY: [&str; 4] = [
    "Replica watches and designer bags at outlet prices, genuine luxury replica watches shipped fast",
    "Luxury replica watches clearance: designer replica handbags, outlet watches, fast shipping worldwide",
    "Outlet prices on replica watches this week only, luxury designer bags and replica watches",
    "Designer replica watches outlet, luxury bags, clearance prices, replica watches shipped",
];

const HAMMY: [&str; 4] = [
    "The school trip to the museum is on Thursday; please sign the permission form for the class",
    "Reminder for parents: the class museum trip needs the signed permission form by Thursday",
    "Thursday museum visit with the class: permission form, packed lunch and school bus times",
    "The class trip permission form for the museum visit on Thursday is attached, school office",
];

#[test]
fn bayes_learns_from_messages_moved_into_and_out_of_junk() {
    let mut site = Site::with_ports(
        "bayes",
        "",
        &format!(
            "{CHECKS_OFF}[spam]\nreject_score = 0\nbayes_min_learned = 3\n\
             [imap]\nplaintext_auth = true\n"
        ),
        Ports {
            smtp: Some(free_port()),
            imap: Some(free_port()),
            ..Ports::none()
        },
    );
    site.setup(&["alice@example.test"]);
    let _server = site.start();
    let smtp = site.smtp();
    // Three of each kind arrive in INBOX (UIDs 1-3 spam, 4-6 ham): nothing marks them yet.
    for (i, body) in SPAMMY[..3].iter().chain(&HAMMY[..3]).enumerate() {
        let m = message("carol@sender.example", &format!("Message {i}"), body);
        let r = send(smtp, "carol@sender.example", "alice@example.test", &m);
        assert!(r.starts_with("250"), "{r}");
    }
    assert_eq!(site.subjects("alice@example.test", "INBOX").len(), 6);
    for (_, text) in site.subjects("alice@example.test", "INBOX") {
        let status = header(&text, "X-Spam-Status").unwrap();
        assert!(!status.contains("BAYES"), "not learnt yet: {status}");
    }

    // The user files the spam into Junk; the ham goes there by mistake and comes back out
    // (learnt as spam, then as ham: relearnt, not counted twice).
    let mut imap = Imap::login(site.imap());
    assert!(imap.run("SELECT INBOX").contains(" OK"));
    assert!(imap.run("UID MOVE 1:3 Junk").contains(" OK"));
    assert!(imap.run("UID MOVE 4:6 Junk").contains(" OK"));
    assert!(imap.run("SELECT Junk").contains(" OK"));
    let r = imap.run("UID MOVE 4:6 INBOX");
    assert!(r.contains(" OK"), "{r}");
    let _ = imap.run("LOGOUT");
    // Learnt in order, off the sessions: the three hams end as hams (a message moved on
    // before its turn is learnt by the later move only).
    site.wait("the classifier to learn", || {
        site.log().matches("kind=spam").count() >= 3 && site.log().matches("kind=ham").count() >= 3
    });

    // New mail like the spam goes into Junk on the strength of Bayes alone; like the ham,
    // into INBOX.
    let r = send(
        smtp,
        "carol@sender.example",
        "alice@example.test",
        &message("carol@sender.example", "New offer", SPAMMY[3]),
    );
    assert!(r.starts_with("250"), "{r}");
    let r = send(
        smtp,
        "carol@sender.example",
        "alice@example.test",
        &message("carol@sender.example", "Museum", HAMMY[3]),
    );
    assert!(r.starts_with("250"), "{r}");
    let junk = site.subjects("alice@example.test", "Junk");
    let offer = junk
        .iter()
        .find(|(s, _)| s == "New offer")
        .unwrap_or_else(|| panic!("not in Junk: {junk:?}"));
    let status = header(&offer.1, "X-Spam-Status").unwrap();
    assert!(status.contains("BAYES_9"), "{status}");
    let inbox = site.subjects("alice@example.test", "INBOX");
    let museum = inbox
        .iter()
        .find(|(s, _)| s == "Museum")
        .unwrap_or_else(|| panic!("not in INBOX: {inbox:?}"));
    let status = header(&museum.1, "X-Spam-Status").unwrap();
    assert!(status.contains("BAYES_0"), "{status}");
}

/// `facteur spam learn` teaches an account from files, as sa-learn does; `spam check` shows
/// the score, the rules that fired and where the message would go.
#[test]
fn spam_learn_and_check_from_the_command_line() {
    let site = Site::with_ports(
        "spam-cli",
        "",
        "[spam]\nbayes_min_learned = 3\n",
        Ports::none(),
    );
    site.setup(&["alice@example.test"]);
    let write = |name: &str, subject: &str, body: &str| {
        let path = site.dir.join(name);
        std::fs::write(&path, message("carol@sender.example", subject, body)).unwrap();
        path.display().to_string()
    };
    let spam: Vec<String> = SPAMMY[..3]
        .iter()
        .enumerate()
        .map(|(i, b)| write(&format!("spam{i}.eml"), &format!("Offer {i}"), b))
        .collect();
    let ham: Vec<String> = HAMMY[..3]
        .iter()
        .enumerate()
        .map(|(i, b)| write(&format!("ham{i}.eml"), &format!("School {i}"), b))
        .collect();
    let mut args = vec!["spam", "learn", "--spam", "alice@example.test"];
    args.extend(spam.iter().map(String::as_str));
    let out = site.must(&args, None);
    assert!(out.contains("3 message(s) learnt as spam"), "{out}");
    // Learnt once: the same files again change nothing.
    let out = site.must(&args, None);
    assert!(out.contains("0 message(s) learnt as spam"), "{out}");
    let mut args = vec!["spam", "learn", "--ham", "alice@example.test"];
    args.extend(ham.iter().map(String::as_str));
    let out = site.must(&args, None);
    assert!(out.contains("has taught 3 spam and 3 ham"), "{out}");

    let new = write("new.eml", "Offer 4", SPAMMY[3]);
    let out = site.must(
        &["spam", "check", "--account", "alice@example.test", &new],
        None,
    );
    assert!(out.contains("BAYES_99"), "{out}");
    assert!(out.contains("filed into Junk"), "{out}");
    let gtube = write("gtube.eml", "Test", GTUBE);
    let out = site.must(&["spam", "check", &gtube], None);
    assert!(out.contains("X-Spam-Flag: YES"), "{out}");
    assert!(out.contains("refused at SMTP time"), "{out}");
    // Not an account: said plainly.
    let out = site.cli(
        &["spam", "learn", "--spam", "nobody@example.test", &new],
        None,
    );
    assert!(!out.ok);
    assert!(
        out.stderr.contains("no account nobody@example.test"),
        "{}",
        out.stderr
    );
}

/// clamd unreachable: the admin's choice. `tempfail` (the default) answers 451 4.7.1, so the
/// sender retries and nothing unscanned gets in; `accept` lets the message through, logged.
#[test]
fn unreachable_clamd_follows_the_admins_choice() {
    for (on_error, expect) in [("tempfail", "451 4.7.1"), ("accept", "250")] {
        let mut site = Site::new(
            &format!("clamd-{on_error}"),
            "",
            &format!(
                "{CHECKS_OFF}[spam]\nenabled = false\n\
                 [antivirus]\nclamd = \"127.0.0.1:9\"\ntimeout_secs = 5\non_error = \"{on_error}\"\n"
            ),
        );
        site.setup(&["alice@example.test"]);
        let _server = site.start();
        let r = send(
            site.smtp(),
            "carol@sender.example",
            "alice@example.test",
            &message("carol@sender.example", "Scan me", "hello"),
        );
        assert!(r.starts_with(expect), "{on_error}: {r}");
        let log = site.log();
        assert!(log.contains("virus scan failed"), "{log}");
        assert!(log.contains("virus=unscanned"), "{log}");
    }
}
