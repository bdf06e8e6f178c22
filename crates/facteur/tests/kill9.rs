//! Crash safety (standard 1): under load from concurrent clients the server is killed with
//! SIGKILL at a random moment; after a restart every message that got a `250` is stored exactly
//! once, nothing is stored twice, and `store check` finds the store consistent. Three rounds:
//! one recipient, two recipients, and messages large enough to be blob files.

mod common;

use common::{Env, Smtp, message};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Round {
    recipients: &'static [&'static str],
    size: usize,
}

const ROUNDS: [Round; 3] = [
    Round {
        recipients: &["alice@example.test"],
        size: 4096,
    },
    Round {
        recipients: &["alice@example.test", "bob@example.test"],
        size: 4096,
    },
    Round {
        recipients: &["bob@example.test"],
        size: 300 * 1024,
    },
];

#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() {
    let env = Env::new("kill9", "");
    env.setup(&["alice@example.test", "bob@example.test"]);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut acked: HashMap<&str, HashSet<String>> = HashMap::new();
    for (r, round) in ROUNDS.iter().enumerate() {
        let mut server = env.serve();
        let done = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut clients = Vec::new();
        for t in 0..16 {
            let (done, port) = (done.clone(), env.smtp);
            clients.push(std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let Ok(mut c) = Smtp::connect(port) else {
                    return;
                };
                if !c.reply().starts_with("220") || !c.command("EHLO load.test").starts_with("250")
                {
                    return;
                }
                for n in 0..10_000 {
                    if Instant::now() > deadline {
                        return;
                    }
                    let id = format!("<r{r}-t{t}-{n}@test>");
                    let reply = c.message(
                        "load@remote.test",
                        round.recipients,
                        &message(&id, round.size),
                    );
                    if !reply.starts_with("250") {
                        return;
                    }
                    done.lock().unwrap().push(id);
                }
            }));
        }
        // xorshift: a kill between 300 and 1500 ms into the load.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 1200));
        server.kill().unwrap();
        server.wait().unwrap();
        for c in clients {
            c.join().unwrap();
        }
        let round_acked = done.lock().unwrap().clone();
        assert!(
            !round_acked.is_empty(),
            "round {r}: no message was acknowledged before the kill"
        );
        for rcpt in round.recipients {
            acked
                .entry(rcpt)
                .or_default()
                .extend(round_acked.iter().cloned());
        }

        let mut server = env.serve();
        let (ok, out, _) = env.cli(&["store", "check"], None);
        assert!(ok, "round {r}: store check failed after the kill: {out}");
        for (account, ids) in &acked {
            let stored = env.message_ids(account);
            let mut count: HashMap<&str, usize> = HashMap::new();
            for id in &stored {
                *count.entry(id).or_default() += 1;
            }
            for (id, n) in &count {
                assert_eq!(*n, 1, "round {r}: {id} stored {n} times for {account}");
            }
            for id in ids {
                assert!(
                    count.contains_key(id.as_str()),
                    "round {r}: acknowledged {id} lost for {account}"
                );
            }
            println!(
                "round {r}: {account}: {} acknowledged, {} stored",
                ids.len(),
                stored.len()
            );
        }
        server.kill().unwrap();
        server.wait().unwrap();
    }
}
