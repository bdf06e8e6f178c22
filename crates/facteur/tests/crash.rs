//! Crash safety end to end: the server is killed with SIGKILL at a random moment while 16
//! clients deliver over SMTP and LMTP (DATA and BDAT, pipelined; one and two recipients; small
//! messages kept in the database, 300 KiB and 1 MiB ones kept as blob files). After each restart:
//! `store check` finds the store consistent; every message acknowledged for a recipient is in
//! that recipient's INBOX exactly once and byte for byte; nothing is stored twice, nor for an
//! address it was not sent to; temp files the crash left are gone.

mod harness;

use harness::{Client, Rng, Site, message};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNTS: [&str; 3] = [
    "alice@example.test",
    "bob@example.test",
    "carol@example.test",
];
const SMALL: usize = 4 * 1024;
/// Above the default `store.inline_blob_max` (256 KiB): stored as a file under `blobs/`.
const LARGE: usize = 300 * 1024;
/// Long enough to receive that a kill often lands while it is spilled to a temp file.
const HUGE: usize = 1024 * 1024;
const THREADS: usize = 16;
const ROUNDS: usize = 3;
/// Messages a client sends over one connection before it quits and connects again.
const PER_CONNECTION: usize = 25;

/// How one client thread sends.
struct Kind {
    name: &'static str,
    lmtp: bool,
    /// 0: DATA; n: BDAT in n chunks.
    bdat_chunks: usize,
    to: &'static [&'static str],
    size: usize,
}

const KINDS: [Kind; 8] = [
    Kind {
        name: "smtp-data-1rcpt-small",
        lmtp: false,
        bdat_chunks: 0,
        to: &["alice@example.test"],
        size: SMALL,
    },
    Kind {
        name: "smtp-data-2rcpt-small",
        lmtp: false,
        bdat_chunks: 0,
        to: &["alice@example.test", "bob@example.test"],
        size: SMALL,
    },
    Kind {
        name: "smtp-data-1rcpt-huge",
        lmtp: false,
        bdat_chunks: 0,
        to: &["bob@example.test"],
        size: HUGE,
    },
    Kind {
        name: "smtp-bdat-2rcpt-large",
        lmtp: false,
        bdat_chunks: 3,
        to: &["alice@example.test", "carol@example.test"],
        size: LARGE,
    },
    Kind {
        name: "smtp-bdat-1rcpt-small",
        lmtp: false,
        bdat_chunks: 2,
        to: &["carol@example.test"],
        size: SMALL,
    },
    Kind {
        name: "lmtp-data-2rcpt-small",
        lmtp: true,
        bdat_chunks: 0,
        to: &["bob@example.test", "carol@example.test"],
        size: SMALL,
    },
    Kind {
        name: "lmtp-data-2rcpt-large",
        lmtp: true,
        bdat_chunks: 0,
        to: &["carol@example.test", "alice@example.test"],
        size: LARGE,
    },
    Kind {
        name: "lmtp-bdat-1rcpt-small",
        lmtp: true,
        bdat_chunks: 2,
        to: &["alice@example.test"],
        size: SMALL,
    },
];

/// What the clients saw, over all rounds.
#[derive(Default)]
struct Ledger {
    /// Every message a client began to send: its size and recipients.
    sent: HashMap<String, (usize, &'static [&'static str])>,
    /// Per account, the Message-IDs whose delivery to it got a 250.
    acked: HashMap<&'static str, HashSet<String>>,
    /// Replies other than 250 to a complete message: the server never refuses this load.
    refused: Vec<String>,
    /// Acknowledgements in the current round, per kind.
    round: HashMap<&'static str, usize>,
}

#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() {
    let mut site = Site::new("crash", "", "");
    site.setup(&ACCOUNTS);
    let mut rng = Rng::from_time();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = site.start();
    for round in 0..ROUNDS {
        ledger.lock().unwrap().round.clear();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ledger, stop) = (ledger.clone(), stop.clone());
                let ports = (site.smtp(), site.lmtp());
                std::thread::spawn(move || load(round, t, ports, &ledger, &stop))
            })
            .collect();
        // A consistency check of the live store, from a second process, under load.
        let live_check = {
            let config = site.config.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                harness::run(
                    std::process::Command::new(harness::BIN)
                        .arg("--config")
                        .arg(&config)
                        .args(["store", "check"]),
                    None,
                )
            })
        };
        // The load is under way once a message is acknowledged; the kill comes at a random
        // moment after that.
        let started = Instant::now();
        while ledger.lock().unwrap().round.is_empty() && started.elapsed() < Duration::from_secs(15)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = rng.between(300, 1500);
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
        let tmp_after_kill = list_dir(&site.data_dir().join("tmp"));
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client thread");
        }
        let live = live_check.join().unwrap();
        assert!(
            live.ok && live.stdout.starts_with("messages=") && live.stdout.contains(" errors=0"),
            "round {round}: store check under load: {live:?}"
        );
        {
            let l = ledger.lock().unwrap();
            let mut kinds: Vec<_> = l.round.iter().collect();
            kinds.sort();
            println!(
                "round {round}: killed {delay} ms into the load, {} temp files left; \
                 acknowledged {kinds:?}",
                tmp_after_kill.len()
            );
            assert!(
                l.refused.is_empty(),
                "the server refused messages under load: {:?}",
                l.refused
            );
            assert!(
                l.round.values().sum::<usize>() > 0,
                "round {round}: no message was acknowledged before the kill"
            );
        }

        server = site.start();
        let leftovers: Vec<_> = list_dir(&site.data_dir().join("tmp"))
            .intersection(&tmp_after_kill)
            .cloned()
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: temp files of the killed server survived the restart: {leftovers:?}"
        );
        let check = site.check_store();
        println!("round {round}: after restart: {check:?}");
        verify(&site, &ledger.lock().unwrap(), round);
    }
    // The last restart ends gracefully; the store stays consistent without a server.
    server.signal(harness::Signal::Term);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    site.check_store();
    verify(&site, &ledger.lock().unwrap(), ROUNDS);
}

/// Every account's INBOX against the ledger.
fn verify(site: &Site, ledger: &Ledger, round: usize) {
    for account in ACCOUNTS {
        let files = site.export(account, "INBOX");
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (name, text) in &files {
            let head = String::from_utf8_lossy(&text[..text.len().min(4096)]);
            let id = harness::header(&head, "Message-ID")
                .unwrap_or_else(|| panic!("round {round}: {account} {name} has no Message-ID"));
            let Some((size, to)) = ledger.sent.get(&id) else {
                panic!("round {round}: {account} holds {id}, which no client sent");
            };
            assert!(
                to.contains(&account),
                "round {round}: {account} holds {id}, sent to {to:?} only"
            );
            assert!(
                text.ends_with(&message(&id, *size)),
                "round {round}: {account} {name} ({id}) differs from what was sent"
            );
            *seen.entry(id).or_insert(0) += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "round {round}: {account} holds messages more than once: {twice:?}"
        );
        let acked = ledger.acked.get(account).cloned().unwrap_or_default();
        let mut lost: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
        lost.sort();
        assert!(
            lost.is_empty(),
            "round {round}: {account} lost {} acknowledged messages: {lost:?}",
            lost.len()
        );
        println!(
            "round {round}: {account}: {} acknowledged, {} stored",
            acked.len(),
            seen.len()
        );
    }
}

/// One client thread: messages of its kind until an error, `stop`, or a bound.
fn load(round: usize, t: usize, ports: (u16, u16), ledger: &Mutex<Ledger>, stop: &AtomicBool) {
    let kind = &KINDS[t % KINDS.len()];
    let port = if kind.lmtp { ports.1 } else { ports.0 };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 100_000 {
        let Ok(mut c) = Client::hello(port, kind.lmtp) else {
            return;
        };
        for _ in 0..PER_CONNECTION {
            if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                return;
            }
            let id = format!("<r{round}-t{t}-{n}@test>");
            n += 1;
            let body = message(&id, kind.size);
            ledger
                .lock()
                .unwrap()
                .sent
                .insert(id.clone(), (kind.size, kind.to));
            let sent = if kind.bdat_chunks > 0 {
                c.send_bdat(
                    "load@remote.test",
                    kind.to,
                    &body,
                    kind.bdat_chunks,
                    kind.lmtp,
                )
            } else {
                c.send_data("load@remote.test", kind.to, &body, kind.lmtp)
            };
            let Ok(replies) = sent else {
                // Killed during the transaction: no acknowledgement.
                return;
            };
            let mut l = ledger.lock().unwrap();
            for (i, reply) in replies.iter().enumerate() {
                // SMTP: one reply for every recipient; LMTP: one per recipient, in order.
                let rcpts = if kind.lmtp { &kind.to[i..=i] } else { kind.to };
                if reply.code == 250 {
                    for r in rcpts {
                        l.acked.entry(r).or_default().insert(id.clone());
                    }
                    *l.round.entry(kind.name).or_insert(0) += 1;
                } else {
                    l.refused.push(format!("{id} to {rcpts:?}: {reply}"));
                    return;
                }
            }
        }
        let _ = c.command("QUIT");
    }
}

fn list_dir(dir: &std::path::Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
