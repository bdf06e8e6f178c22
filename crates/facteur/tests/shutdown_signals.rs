//! Graceful shutdown across roles and transaction states: SIGINT as SIGTERM, every idle session
//! of SMTP and LMTP told `421 4.3.2`, messages in flight over SMTP and LMTP finishing and
//! stored, the listeners closed at once, and the grace period bounding a stalled client.

mod harness;

use harness::{Client, Signal, Site, message};
use std::time::Duration;

/// Reads until the server closes the connection; true if it does (EOF or reset) in time.
fn closed(c: &mut Client) -> bool {
    loop {
        match c.reply() {
            Ok(_) => continue,
            Err(e) => {
                return e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut;
            }
        }
    }
}

#[test]
fn sigint_tells_every_idle_session_of_every_role() {
    let mut site = Site::new("stop-idle", "", "");
    site.setup(&["alice@example.test"]);
    let mut server = site.start();
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push((
            "smtp after EHLO",
            Client::hello(site.smtp(), false).unwrap(),
        ));
        sessions.push(("lmtp after LHLO", Client::hello(site.lmtp(), true).unwrap()));
    }
    let mut greeted = Client::connect(site.smtp()).unwrap();
    assert!(greeted.reply().unwrap().is("220"));
    sessions.push(("smtp before EHLO", greeted));
    let mut in_transaction = Client::hello(site.smtp(), false).unwrap();
    assert!(
        in_transaction
            .command("MAIL FROM:<a@remote.test>")
            .unwrap()
            .is("250")
    );
    assert!(
        in_transaction
            .command("RCPT TO:<alice@example.test>")
            .unwrap()
            .is("250")
    );
    sessions.push(("smtp between RCPT and DATA", in_transaction));
    let mut lmtp_transaction = Client::hello(site.lmtp(), true).unwrap();
    assert!(
        lmtp_transaction
            .command("MAIL FROM:<a@remote.test>")
            .unwrap()
            .is("250")
    );
    assert!(
        lmtp_transaction
            .command("RCPT TO:<alice@example.test>")
            .unwrap()
            .is("250")
    );
    sessions.push(("lmtp between RCPT and DATA", lmtp_transaction));

    server.signal(Signal::Int);
    for (what, c) in &mut sessions {
        let reply = c
            .reply()
            .unwrap_or_else(|e| panic!("{what}: no 421 before the close: {e}"));
        assert!(reply.is("421 4.3.2"), "{what}: {reply}");
        assert!(closed(c), "{what}: still open after 421");
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after SIGINT");
    assert!(status.success(), "exit status after SIGINT: {status:?}");
    assert!(Client::connect(site.smtp()).is_err(), "SMTP still accepts");
    assert!(Client::connect(site.lmtp()).is_err(), "LMTP still accepts");
    assert_eq!(site.check_store().messages, 0);
}

#[test]
fn messages_in_flight_over_smtp_and_lmtp_finish_and_are_stored() {
    let mut site = Site::new("stop-inflight", "", "");
    site.setup(&["alice@example.test", "bob@example.test"]);
    let mut server = site.start();

    let smtp_body = message("<smtp-in-flight@test>", 64 * 1024);
    let mut smtp = Client::hello(site.smtp(), false).unwrap();
    assert!(smtp.command("MAIL FROM:<a@remote.test>").unwrap().is("250"));
    assert!(
        smtp.command("RCPT TO:<alice@example.test>")
            .unwrap()
            .is("250")
    );
    assert!(smtp.command("DATA").unwrap().is("354"));
    smtp.send(&smtp_body[..1000]).unwrap();

    // Larger than the inline limit: the file-blob path finishes during shutdown too.
    let lmtp_body = message("<lmtp-in-flight@test>", 300 * 1024);
    let mut lmtp = Client::hello(site.lmtp(), true).unwrap();
    assert!(lmtp.command("MAIL FROM:<a@remote.test>").unwrap().is("250"));
    assert!(
        lmtp.command("RCPT TO:<alice@example.test>")
            .unwrap()
            .is("250")
    );
    assert!(
        lmtp.command("RCPT TO:<bob@example.test>")
            .unwrap()
            .is("250")
    );
    assert!(lmtp.command("DATA").unwrap().is("354"));
    lmtp.send(&lmtp_body[..150 * 1024]).unwrap();

    let mut idle = Client::hello(site.smtp(), false).unwrap();
    server.signal(Signal::Term);
    let told = idle.reply().expect("the idle session is told");
    assert!(told.is("421 4.3.2"), "{told}");
    // The listener closes at once, while messages are still in flight.
    let mut refused = false;
    for _ in 0..100 {
        if Client::connect(site.smtp()).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        refused,
        "new SMTP connections are still accepted during shutdown"
    );
    assert!(
        server.try_exit().is_none(),
        "exited with messages in flight"
    );

    smtp.send(&smtp_body[1000..]).unwrap();
    smtp.send(b".\r\n").unwrap();
    let reply = smtp.reply().unwrap();
    assert!(reply.is("250 2.0.0"), "SMTP message in flight: {reply}");
    let next = smtp.command("NOOP").unwrap();
    assert!(next.is("421 4.3.2"), "SMTP after the message: {next}");

    lmtp.send(&lmtp_body[150 * 1024..]).unwrap();
    lmtp.send(b".\r\n").unwrap();
    for rcpt in ["alice", "bob"] {
        let reply = lmtp.reply().unwrap();
        assert!(
            reply.is("250 2.1.5") && reply.last().contains(rcpt),
            "LMTP message in flight, {rcpt}: {reply}"
        );
    }
    let next = lmtp.command("MAIL FROM:<a@remote.test>").unwrap();
    assert!(next.is("421 4.3.2"), "LMTP after the message: {next}");

    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits once the messages are in");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    site.check_store();
    let alice = site.export("alice@example.test", "INBOX");
    assert_eq!(alice.len(), 2);
    assert!(alice.iter().any(|(_, m)| m.ends_with(&smtp_body)));
    assert!(alice.iter().any(|(_, m)| m.ends_with(&lmtp_body)));
    let bob = site.export("bob@example.test", "INBOX");
    assert_eq!(bob.len(), 1);
    assert!(bob[0].1.ends_with(&lmtp_body));
}

#[test]
fn the_grace_period_bounds_a_stalled_message() {
    let mut site = Site::new("stop-stalled", "shutdown_grace_secs = 1", "");
    site.setup(&["alice@example.test"]);
    let mut server = site.start();
    let mut c = Client::hello(site.smtp(), false).unwrap();
    assert!(c.command("MAIL FROM:<a@remote.test>").unwrap().is("250"));
    assert!(c.command("RCPT TO:<alice@example.test>").unwrap().is("250"));
    assert!(c.command("DATA").unwrap().is("354"));
    c.send(&message("<stalled@test>", 4096)[..2000]).unwrap();
    server.signal(Signal::Term);
    // Never finished: the server gives up on it after the grace period and still exits cleanly.
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("a stalled client holds the server past its grace period");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert!(closed(&mut c), "the stalled session was not closed");
    assert!(site.log().contains("grace period over"), "{}", site.log());
    assert_eq!(site.check_store().messages, 0);
}

#[test]
fn a_session_whose_message_finished_is_told_without_another_command() {
    let mut site = Site::new("stop-after-message", "", "");
    site.setup(&["alice@example.test"]);
    let mut server = site.start();
    let body = message("<then-idle@test>", 8192);
    let mut c = Client::hello(site.smtp(), false).unwrap();
    assert!(c.command("MAIL FROM:<a@remote.test>").unwrap().is("250"));
    assert!(c.command("RCPT TO:<alice@example.test>").unwrap().is("250"));
    assert!(c.command("DATA").unwrap().is("354"));
    c.send(&body[..4096]).unwrap();
    server.signal(Signal::Term);
    std::thread::sleep(Duration::from_millis(200));
    c.send(&body[4096..]).unwrap();
    c.send(b".\r\n").unwrap();
    assert!(c.reply().unwrap().is("250 2.0.0"));
    // Idle now, as the sessions told at once when the signal came: no command is sent.
    let told = c.reply();
    assert!(
        told.as_ref().is_ok_and(|r| r.is("421 4.3.2")),
        "the now idle session was not told: {told:?}"
    );
    let status = server.wait_exit(Duration::from_secs(20)).expect("exit");
    assert!(status.success(), "{status:?}");
    assert!(
        !site.log().contains("grace period over"),
        "shutdown waited for an idle session:\n{}",
        site.log()
    );
}

#[test]
fn a_bdat_message_in_flight_finishes() {
    let mut site = Site::new("stop-bdat", "", "");
    site.setup(&["alice@example.test"]);
    let mut server = site.start();
    let body = message("<bdat-in-flight@test>", 8192);
    let mut c = Client::hello(site.smtp(), false).unwrap();
    assert!(c.command("MAIL FROM:<a@remote.test>").unwrap().is("250"));
    assert!(c.command("RCPT TO:<alice@example.test>").unwrap().is("250"));
    c.send(b"BDAT 4096\r\n").unwrap();
    c.send(&body[..4096]).unwrap();
    assert!(c.reply().unwrap().is("250"));
    server.signal(Signal::Term);
    std::thread::sleep(Duration::from_millis(200));
    c.send(format!("BDAT {} LAST\r\n", body.len() - 4096).as_bytes())
        .unwrap();
    c.send(&body[4096..]).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.is("250 2.0.0"), "the BDAT message in flight: {reply}");
    assert!(c.command("NOOP").unwrap().is("421 4.3.2"));
    let status = server.wait_exit(Duration::from_secs(20)).expect("exit");
    assert!(status.success(), "{status:?}");
    let ids = site.message_ids("alice@example.test", "INBOX");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids.contains_key("<bdat-in-flight@test>"));
}
