//! Crash safety of submission: the server is killed with SIGKILL at a random moment while
//! authenticated clients submit messages for a local and two remote recipients (small ones kept
//! in the database, 300 KiB ones as blob files). After each restart `store check` is clean and
//! every message answered `250` is in the local recipient's INBOX exactly once, byte for byte;
//! at the end the outbound queue holds each acknowledged message exactly once, for exactly its
//! remote recipients, and nothing that was not sent.

mod harness;

use harness::{Client, Ports, Rng, Site, expect, free_port, message};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOCAL: &str = "bob@example.test";
const REMOTE: [&str; 2] = ["x@remote.test", "y@other.test"];
const THREADS: usize = 8;
const ROUNDS: usize = 2;
/// `\0alice@example.test\0secret`, base64.
const ALICE: &str = "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=";

#[derive(Default)]
struct Ledger {
    sent: HashMap<String, usize>,
    acked: HashSet<String>,
    refused: Vec<String>,
    round: usize,
}

#[test]
fn submitted_messages_survive_sigkill_in_mailbox_and_queue_exactly_once() {
    let ports = Ports {
        submission: Some(free_port()),
        ..Ports::none()
    };
    // Loopback test clients speak without TLS; the harness messages come from a fixed
    // address, so the sender rule is off: this test is about durability.
    let mut site = Site::with_ports(
        "submission-crash",
        "",
        // The queue keeps the remote recipients: their host refuses connections (port 9 on
        // loopback), so each attempt defers them for an hour; no DNS is asked.
        "[submission]\nplaintext_auth = true\ncheck_sender = false\n\
         [queue]\nretry_secs = [3600]\n\
         transports = { \"remote.test\" = \"127.0.0.1:9\", \"other.test\" = \"127.0.0.1:9\" }\n",
        ports,
    );
    site.setup(&["alice@example.test", LOCAL]);
    let mut rng = Rng::from_time();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = site.start();
    for round in 0..ROUNDS {
        ledger.lock().unwrap().round = 0;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ledger, stop) = (ledger.clone(), stop.clone());
                let port = site.submission();
                std::thread::spawn(move || load(round, t, port, &ledger, &stop))
            })
            .collect();
        let started = Instant::now();
        while ledger.lock().unwrap().round == 0 && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = rng.between(200, 1200);
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client thread");
        }
        {
            let l = ledger.lock().unwrap();
            assert!(l.refused.is_empty(), "refused under load: {:?}", l.refused);
            assert!(
                l.round > 0,
                "round {round}: nothing acknowledged before the kill"
            );
            println!(
                "round {round}: killed {delay} ms in, {} acknowledged",
                l.round
            );
        }
        server = site.start();
        site.check_store();
        verify_mailbox(&site, &ledger.lock().unwrap(), round);
    }
    server.signal(harness::Signal::Term);
    server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after SIGTERM");
    site.check_store();
    verify_queue(&site, &ledger.lock().unwrap());
}

fn verify_mailbox(site: &Site, ledger: &Ledger, round: usize) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (name, text) in site.export(LOCAL, "INBOX") {
        let head = String::from_utf8_lossy(&text[..text.len().min(4096)]);
        let id = harness::header(&head, "Message-ID").expect("Message-ID");
        let size = *ledger
            .sent
            .get(&id)
            .unwrap_or_else(|| panic!("round {round}: {name} holds {id}, never sent"));
        assert!(text.ends_with(&submitted(&id, size, &head)), "{id} differs");
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "round {round}: stored twice: {twice:?}");
    let lost: Vec<_> = ledger
        .acked
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "round {round}: acknowledged but lost: {lost:?}"
    );
}

/// The queue, read with the store library once the server is stopped.
fn verify_queue(site: &Site, ledger: &Ledger) {
    let store = facteur_store::Store::open(facteur_store::Options {
        data_dir: site.data_dir(),
        inline_blob_max: 256 * 1024,
        group_commit_max: 1,
    })
    .unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for entry in store.queue_entries().unwrap() {
        let content = store
            .queue_content(&entry.message.queue_id)
            .unwrap()
            .expect("queued content");
        let head = String::from_utf8_lossy(&content[..content.len().min(4096)]);
        let id = harness::header(&head, "Message-ID").expect("Message-ID");
        let size = *ledger.sent.get(&id).expect("queued message was sent");
        assert!(
            content.ends_with(&submitted(&id, size, &head)),
            "queued {id} differs"
        );
        let to: Vec<&str> = entry
            .message
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(to, REMOTE, "{id} queued for the wrong recipients");
        assert!(
            entry.states.iter().all(|s| s.state == "queued"),
            "{:?}",
            entry.states
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "queued twice: {twice:?}");
    let lost: Vec<_> = ledger
        .acked
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not queued: {lost:?}");
    println!(
        "queue: {} acknowledged, {} queued",
        ledger.acked.len(),
        seen.len()
    );
}

/// The message as sent, with the Date field submission adds at the end of its header
/// (RFC 6409 §8.3: the harness's messages have none).
fn submitted(id: &str, size: usize, stored_head: &str) -> Vec<u8> {
    let date = harness::header(stored_head, "Date").expect("a Date was added");
    let sent = message(id, size);
    let end = sent.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let mut out = sent[..end].to_vec();
    out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    out.extend_from_slice(&sent[end..]);
    out
}

fn load(round: usize, t: usize, port: u16, ledger: &Mutex<Ledger>, stop: &AtomicBool) {
    let size = if t % 4 == 3 { 300 * 1024 } else { 4 * 1024 };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    let to = [LOCAL, REMOTE[0], REMOTE[1]];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 100_000 {
        let Ok(mut c) = Client::hello(port, false) else {
            return;
        };
        if c.command(&format!("AUTH PLAIN {ALICE}"))
            .and_then(|r| expect(r, "235"))
            .is_err()
        {
            return;
        }
        for _ in 0..20 {
            if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                return;
            }
            let id = format!("<s{round}-t{t}-{n}@test>");
            n += 1;
            let body = message(&id, size);
            ledger.lock().unwrap().sent.insert(id.clone(), size);
            let Ok(replies) = c.send_data("alice@example.test", &to, &body, false) else {
                return;
            };
            let mut l = ledger.lock().unwrap();
            if replies[0].code == 250 {
                l.acked.insert(id);
                l.round += 1;
            } else {
                l.refused.push(format!("{id}: {}", replies[0]));
                return;
            }
        }
        let _ = c.command("QUIT");
    }
}
