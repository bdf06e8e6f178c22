//! Brute-force bans shared by every protocol: three wrong IMAP passwords ban the address, and
//! then SMTP, POP3 and IMAP all refuse it at connection (`421 4.7.0`, `-ERR [SYS/TEMP]`,
//! `* BYE [UNAVAILABLE]`); `facteur ban list` shows the ban, `ban remove` lifts it for the
//! running server, `ban add` puts one back; the fail2ban log line is still written.

mod harness;

use harness::{Ports, Site, free_port};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The first line the server sends on `port`.
fn first_line(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

/// One IMAP LOGIN with a wrong password; the tagged reply.
fn imap_wrong_login(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    stream
        .write_all(b"a1 LOGIN alice@example.test wrong-password\r\n")
        .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("a1 ") {
            return line;
        }
    }
}

fn wait_for(what: &str, site: &Site, done: impl FnMut() -> bool) {
    site.wait(what, done)
}

#[test]
fn failed_imap_logins_ban_the_address_on_every_protocol() {
    let mut site = Site::with_ports(
        "bans",
        "",
        "[protect]\nallow = []\nban_after = 3\nban_minutes = 30\n\
         [imap]\nplaintext_auth = true\nauth_failure_delay_ms = 10\n\
         [pop3]\nplaintext_auth = true\n",
        Ports {
            smtp: Some(free_port()),
            pop3: Some(free_port()),
            imap: Some(free_port()),
            ..Ports::none()
        },
    );
    site.setup(&["alice@example.test"]);
    let _server = site.start();
    let (smtp, pop3, imap) = (site.smtp(), site.pop3(), site.imap());
    assert!(first_line(smtp).starts_with("220 "));

    for _ in 0..3 {
        assert!(imap_wrong_login(imap).starts_with("a1 NO"));
    }
    // Banned everywhere, with the reason and the end.
    let refused = first_line(smtp);
    assert!(
        refused.starts_with("421 4.7.0 127.0.0.1 is banned until")
            && refused.contains("3 failed logins"),
        "{refused}"
    );
    assert!(
        first_line(pop3).starts_with("-ERR [SYS/TEMP] 127.0.0.1 is banned until"),
        "POP3"
    );
    assert!(
        first_line(imap).starts_with("* BYE [UNAVAILABLE] 127.0.0.1 is banned until"),
        "IMAP"
    );
    let log = site.log();
    assert_eq!(
        log.matches("auth failed service=imap remote=127.0.0.1 user=alice@example.test")
            .count(),
        3,
        "the fail2ban line: {log}"
    );
    // Kept in the store: the CLI sees it.
    wait_for("the ban is kept", &site, || {
        site.cli(&["ban", "list"], None)
            .stdout
            .contains("127.0.0.1\tuntil")
    });
    let list = site.must(&["ban", "list"], None);
    assert!(list.contains("3 failed logins within 10 minutes"), "{list}");

    // Lifted by the admin: the running server lets it in again within seconds.
    site.must(&["ban", "remove", "127.0.0.1"], None);
    wait_for("SMTP greets again", &site, || {
        first_line(smtp).starts_with("220 ")
    });
    assert!(first_line(pop3).starts_with("+OK"));
    // And banned by hand.
    site.must(&["ban", "add", "127.0.0.1", "--minutes", "5"], None);
    wait_for("refused again", &site, || {
        first_line(smtp).starts_with("421 4.7.0")
    });
    assert!(first_line(smtp).contains("banned by the administrator"));
    assert!(site.cli(&["ban", "remove", "192.0.2.1"], None).code == Some(1));
}

/// `protect.connections_per_minute`: every role together; beyond it the same refusal as a
/// ban, with the reason, until the next minute.
#[test]
fn connections_beyond_the_rate_are_refused_by_every_role() {
    let mut site = Site::with_ports(
        "conn-rate",
        "",
        "[protect]\nallow = []\nconnections_per_minute = 4\n[pop3]\nplaintext_auth = true\n",
        Ports {
            smtp: Some(free_port()),
            pop3: Some(free_port()),
            ..Ports::none()
        },
    );
    site.setup(&["alice@example.test"]);
    let _server = site.start();
    // The harness's own probe counted as one; wait for a fresh minute so the count is ours.
    while facteur_model::calendar::unix_now() % 60 > 50 {
        std::thread::sleep(Duration::from_millis(500));
    }
    let minute = facteur_model::calendar::unix_now() / 60;
    let mut lines = Vec::new();
    for i in 0..6 {
        let port = if i % 2 == 0 { site.smtp() } else { site.pop3() };
        lines.push(first_line(port));
    }
    if facteur_model::calendar::unix_now() / 60 == minute {
        let refused: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("too many connections from 127.0.0.1"))
            .collect();
        assert!(!refused.is_empty(), "{lines:?}");
        assert!(lines[0].starts_with("220 "), "{lines:?}");
        assert!(
            lines
                .last()
                .is_some_and(|l| l.starts_with("-ERR [SYS/TEMP] too many connections")),
            "{lines:?}"
        );
    }
}

/// `protect.recipients_per_minute` and `messages_per_minute` on the MX: beyond them, `450
/// 4.7.1` at RCPT (the client tries again later; nothing is lost).
#[test]
fn recipients_and_messages_beyond_the_rate_wait() {
    let mut site = Site::with_ports(
        "send-rate",
        "",
        "[protect]\nallow = []\nmessages_per_minute = 2\nrecipients_per_minute = 3\n",
        Ports {
            smtp: Some(free_port()),
            ..Ports::none()
        },
    );
    site.setup(&["alice@example.test", "bob@example.test"]);
    let _server = site.start();
    while facteur_model::calendar::unix_now() % 60 > 45 {
        std::thread::sleep(Duration::from_millis(500));
    }
    let minute = facteur_model::calendar::unix_now() / 60;
    let mut c = harness::Client::hello(site.smtp(), false).unwrap();
    let mut got = Vec::new();
    // Message 1: one recipient. Message 2: the second and third pass, the fourth waits.
    // Message 3: one message too many.
    let transactions: [&[&str]; 3] = [&["alice"], &["alice", "bob", "alice"], &["bob"]];
    for transaction in transactions {
        assert!(c.command("MAIL FROM:<x@remote.test>").unwrap().is("250"));
        for to in transaction {
            got.push(
                c.command(&format!("RCPT TO:<{to}@example.test>"))
                    .unwrap()
                    .to_string(),
            );
        }
        let _ = c.command("RSET");
    }
    if facteur_model::calendar::unix_now() / 60 == minute {
        assert!(got[..3].iter().all(|r| r.starts_with("250")), "{got:?}");
        assert!(
            got[3].starts_with("450 4.7.1 too many recipients"),
            "{got:?}"
        );
        assert!(got[4].starts_with("450 4.7.1 too many messages"), "{got:?}");
    }
}
