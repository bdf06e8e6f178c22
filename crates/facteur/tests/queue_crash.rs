//! Crash safety of the outbound queue: server A (127.0.0.2) delivers queued messages through
//! MX to server B (127.0.0.3); A is killed with SIGKILL at a random moment while it delivers,
//! then restarted. Every message A acknowledged reaches every recipient at B; nothing is lost.
//! A message can reach B twice only if A was killed between B's 250 and A's record of it: at
//! most the messages in flight at the kill (`queue.max_parallel`), never more.

mod harness;

use harness::{Client, Ports, Rng, Site, expect, free_port, message};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const ALICE: &str = "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="; // \0alice@example.test\0secret
const TO: [&str; 2] = ["bob@remote.test", "carol@remote.test"];
const MESSAGES: usize = 150;
const PARALLEL: usize = 8;

#[test]
fn queued_messages_survive_sigkill_and_arrive_once() {
    let dns = facteur_testkit::dns::DnsServer::start(([127, 0, 0, 1], 0).into());
    dns.add_mx("remote.test", 10, "mx.remote.test");
    dns.add_a("mx.remote.test", [127, 0, 0, 3].into());
    let mx_port = free_port();
    let sections = format!(
        "[dns]\nnameservers = [\"{}\"]\n[queue]\nsmtp_port = {mx_port}\nretry_secs = [1]\n\
         scan_secs = 1\nmax_parallel = {PARALLEL}\n[submission]\nplaintext_auth = true\ncheck_sender = false\n",
        dns.addr()
    );
    let mut b = Site::with_ports(
        "queue-crash-b",
        "",
        &sections,
        Ports {
            smtp: Some(mx_port),
            ip: [127, 0, 0, 3],
            ..Ports::none()
        },
    );
    b.must(&["domain", "add", "remote.test"], None);
    for who in TO {
        b.must(
            &["account", "add", who, "--password-stdin"],
            Some("secret\n"),
        );
    }
    let _b = b.start();
    let mut a = Site::with_ports(
        "queue-crash-a",
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
    let mut server = a.start();

    // Submit from a second thread while the queue delivers; each 250 is an acknowledgement
    // the queue must honour. The kill comes at a random moment during both.
    let port = a.submission();
    let submitter = std::thread::spawn(move || {
        let (mut acked, mut tried) = (Vec::new(), Vec::new());
        let Ok(mut c) = Client::connect_at([127, 0, 0, 2], port) else {
            return (acked, tried);
        };
        let hello = c
            .reply()
            .and_then(|r| expect(r, "220"))
            .and_then(|_| c.command("EHLO client.test"))
            .and_then(|r| expect(r, "250"))
            .and_then(|_| c.command(&format!("AUTH PLAIN {ALICE}")))
            .and_then(|r| expect(r, "235"));
        if hello.is_err() {
            return (acked, tried);
        }
        for n in 0..MESSAGES {
            let id = format!("<q{n}@test>");
            tried.push(id.clone());
            match c.send_data("alice@example.test", &TO, &message(&id, 32 * 1024), false) {
                Ok(r) if r[0].is("250") => acked.push(id),
                _ => break,
            }
        }
        let _ = c.command("QUIT");
        (acked, tried)
    });
    let delay = Rng::from_time().between(150, 900);
    std::thread::sleep(Duration::from_millis(delay));
    server.kill();
    // A message the kill cut off before its 250 was read may still have been committed: it
    // may arrive, but nothing else may.
    let (acked, tried) = submitter.join().unwrap();
    assert!(!acked.is_empty(), "nothing acknowledged before the kill");
    let delivered_before = count(&b, TO[0]).values().sum::<usize>();
    println!(
        "killed {delay} ms in: {} acknowledged, {delivered_before} at bob so far",
        acked.len()
    );
    a.check_store();
    let _server = a.start();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !a.cli(&["queue", "list"], None).stdout.contains("empty") {
        assert!(
            Instant::now() < deadline,
            "the queue never emptied:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for who in TO {
        let seen = count(&b, who);
        let lost: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
        assert!(lost.is_empty(), "{who} never got {lost:?}");
        let extra: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            extra.len() <= PARALLEL,
            "{who}: {} messages arrived twice, more than were in flight: {extra:?}",
            extra.len()
        );
        assert!(
            seen.keys().all(|id| tried.contains(id)),
            "{who} got a message nobody sent"
        );
        println!(
            "{who}: {} acknowledged, {} distinct arrived, {} twice",
            acked.len(),
            seen.len(),
            extra.len()
        );
    }
}

fn count(site: &Site, account: &str) -> HashMap<String, usize> {
    site.message_ids(account, "INBOX")
}
