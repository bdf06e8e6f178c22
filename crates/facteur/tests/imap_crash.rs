//! IMAP APPEND is answered `OK` only once the message is durable: the server is killed with
//! SIGKILL at a random moment while clients APPEND (single and MULTIAPPEND, small and large
//! messages). After each restart: `store check` finds the store consistent, and every message
//! acknowledged with `OK [APPENDUID ...]` is in the mailbox exactly once, byte for byte.

mod harness;

use harness::{Ports, Rng, Site, free_port};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 6;
const ROUNDS: usize = 2;

fn body(id: &str, size: usize) -> Vec<u8> {
    let mut m =
        format!("From: a@example.net\r\nSubject: {id}\r\nMessage-ID: <{id}>\r\n\r\n").into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// One APPEND (or MULTIAPPEND of two) with non-synchronizing literals; the IDs acknowledged.
fn append(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    tag: usize,
    msgs: &[(String, Vec<u8>)],
) -> Option<bool> {
    let mut cmd = format!("a{tag} APPEND Drafts").into_bytes();
    for (_, m) in msgs {
        cmd.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
        cmd.extend_from_slice(m);
    }
    cmd.extend_from_slice(b"\r\n");
    stream.write_all(&cmd).ok()?;
    let prefix = format!("a{tag} ");
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.starts_with(&prefix) {
            return Some(line.starts_with(&format!("a{tag} OK [APPENDUID ")));
        }
    }
}

#[test]
fn appended_messages_survive_sigkill_exactly_once() {
    let ports = Ports {
        imap: Some(free_port()),
        ..Ports::none()
    };
    let mut site = Site::with_ports(
        "imap-crash",
        "",
        "[imap]\nplaintext_auth = true\nmax_connections_per_user_ip = 100\n",
        ports,
    );
    site.setup(&["alice@example.test"]);
    let mut rng = Rng::from_time();
    let acknowledged: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let mut server = site.start();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let round_acks = Arc::new(Mutex::new(0usize));
        let mut threads = Vec::new();
        for t in 0..THREADS {
            let (stop, acks, count) = (stop.clone(), acknowledged.clone(), round_acks.clone());
            let port = site.imap();
            threads.push(std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut greeting = String::new();
                    if reader.read_line(&mut greeting).unwrap_or(0) == 0 {
                        return;
                    }
                    if stream
                        .write_all(b"l LOGIN alice@example.test secret\r\n")
                        .is_err()
                    {
                        return;
                    }
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("l OK") {
                        return;
                    }
                    for _ in 0..20 {
                        n += 1;
                        let size = if n.is_multiple_of(5) {
                            400 * 1024
                        } else {
                            3 * 1024
                        };
                        let count_msgs = if t.is_multiple_of(2) { 1 } else { 2 };
                        let msgs: Vec<(String, Vec<u8>)> = (0..count_msgs)
                            .map(|k| {
                                let id = format!("r{round}t{t}n{n}k{k}@crash.test");
                                let b = body(&id, size);
                                (id, b)
                            })
                            .collect();
                        match append(&mut stream, &mut reader, n, &msgs) {
                            Some(true) => {
                                let mut a = acks.lock().unwrap();
                                for (id, b) in msgs {
                                    a.insert(id, b);
                                }
                                *count.lock().unwrap() += 1;
                            }
                            Some(false) => {}
                            None => return,
                        }
                    }
                }
            }));
        }
        let started = Instant::now();
        while *round_acks.lock().unwrap() == 0 && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = rng.between(20, 400);
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            *round_acks.lock().unwrap() > 0,
            "round {round}: nothing acknowledged"
        );
        server = site.start();
        let check = site.check_store();
        assert_eq!(check.errors, 0, "round {round}: {check:?}");
        // Every acknowledged message is there once, byte for byte.
        let stored: HashMap<String, Vec<u8>> = site
            .export("alice@example.test", "Drafts")
            .into_iter()
            .map(|(_, content)| {
                let text = String::from_utf8_lossy(&content).into_owned();
                let id = harness::header(&text, "Message-ID").expect("Message-ID");
                (id, content)
            })
            .collect();
        let ids = site.message_ids("alice@example.test", "Drafts");
        let acks = acknowledged.lock().unwrap();
        for (id, content) in acks.iter() {
            let key = format!("<{id}>");
            assert_eq!(
                ids.get(&key),
                Some(&1),
                "round {round}: {id} acknowledged, stored {:?} times",
                ids.get(&key)
            );
            let got = stored.get(&key).expect("exported");
            assert!(got.ends_with(content), "round {round}: {id} differs");
        }
        let unique: HashSet<&String> = ids.keys().collect();
        println!(
            "round {round}: killed {delay} ms in; {} acknowledged, {} stored",
            acks.len(),
            unique.len()
        );
    }
}
