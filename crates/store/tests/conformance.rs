//! Store conformance: the behaviour every backend must show (directory, delivery with group
//! commit, quota, blobs inline and as files, consistency check, garbage collection).

use facteur_model::{Address, Domain};
use facteur_store::{Change, DeliverError, NewMessage, Options, Store, Target};
use std::path::PathBuf;

struct TempStore {
    store: Store,
    dir: PathBuf,
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_store(name: &str, inline_blob_max: u64) -> TempStore {
    let dir = std::env::temp_dir().join(format!("facteur-conf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(Options {
        data_dir: dir.clone(),
        inline_blob_max,
        group_commit_max: 64,
    })
    .unwrap();
    TempStore { store, dir }
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

fn message(store: &Store, body: &[u8]) -> NewMessage {
    let mut w = store.blob_writer();
    w.write(body).unwrap();
    NewMessage {
        blob: w.finish().unwrap(),
        internal_date: 1_700_000_000,
        envelope: "{}".into(),
        structure: "{}".into(),
        headers: "[]".into(),
        search_text: String::new(),
        search_headers: String::new(),
        queue_id: "Q1".into(),
    }
}

fn target(account: facteur_model::AccountId, prefix: &str) -> Target {
    Target {
        account,
        prefix: prefix.as_bytes().to_vec(),
        enforce_quota: true,
        mailbox: None,
        flags: String::new(),
    }
}

#[test]
fn directory_round_trip() {
    let t = temp_store("dir", 1024);
    let s = &t.store;
    let d = Domain::parse("Example.COM").unwrap();
    s.add_domain(&d).unwrap();
    assert!(
        s.add_domain(&d)
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
    let id = s
        .add_account(&addr("Alice@example.com"), "hash", 0)
        .unwrap();
    assert!(
        s.add_account(&addr("alice@EXAMPLE.com"), "hash", 0)
            .is_err(),
        "case-insensitive duplicate"
    );
    let err = s
        .add_account(&addr("bob@unknown.example"), "h", 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown domain"), "{err}");
    let rec = s.account(&d, "alice").unwrap().unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.address, "alice@example.com");
    let names: Vec<_> = s
        .mailboxes(id)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        ["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"]
    );
    s.add_alias(&d, "postmaster", "alice@example.com").unwrap();
    s.add_alias(&d, "", "alice@example.com").unwrap();
    assert_eq!(
        s.alias_targets(&d, "postmaster").unwrap(),
        ["alice@example.com"]
    );
    assert!(s.remove_domain(&d).is_err(), "domain in use");
    s.remove_alias(&d, "postmaster", &[]).unwrap();
    s.remove_alias(&d, "", &[]).unwrap();
    s.remove_account(&addr("alice@example.com")).unwrap();
    s.remove_domain(&d).unwrap();
    assert!(s.list_domains().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_get_distinct_uids_and_events() {
    let t = temp_store("deliver", 1024);
    let s = t.store.clone();
    s.add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let a = s.add_account(&addr("a@example.com"), "h", 0).unwrap();
    let b = s.add_account(&addr("b@example.com"), "h", 0).unwrap();
    let mut events = s.subscribe();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Every other message is large enough to be a file blob.
            let body = if i % 2 == 0 {
                vec![b'x'; 10]
            } else {
                vec![b'y'; 5000 + i]
            };
            let m = message(&s, &body);
            s.deliver(m, vec![target(a, "P: a\r\n"), target(b, "P: b\r\n")])
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        let outcomes = task.await.unwrap();
        assert!(outcomes.iter().all(|o| o.is_ok()));
    }
    let inbox = s.mailboxes(a).unwrap()[0].clone();
    assert_eq!(inbox.messages, 50);
    assert_eq!(inbox.uidnext.0, 51);
    let uids: Vec<u32> = s
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| m.uid.0)
        .collect();
    assert_eq!(uids, (1..=50).collect::<Vec<_>>());
    let content = s.message_content(inbox.id, facteur_model::Uid(1)).unwrap();
    assert!(content.starts_with(b"P: a\r\n"));
    let mut added = 0;
    while let Ok(Change::MessageAdded { .. }) = events.try_recv() {
        added += 1;
    }
    assert_eq!(added, 100);
    let report = s.check().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.messages, 100);
    // 25 identical small bodies share one blob; 25 distinct large ones are files.
    assert_eq!(report.blobs, 26);
    s.remove_account(&addr("a@example.com")).unwrap();
    s.remove_account(&addr("b@example.com")).unwrap();
    let report = s.check().unwrap();
    assert_eq!(
        (report.blobs, report.unreferenced_files),
        (0, 0),
        "{report:?}"
    );
}

#[tokio::test]
async fn quota_refuses_only_enforced_copies() {
    let t = temp_store("quota", 1024);
    let s = &t.store;
    s.add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let a = s.add_account(&addr("a@example.com"), "h", 100).unwrap();
    let first = s
        .deliver(message(s, &[b'z'; 80]), vec![target(a, "")])
        .await
        .unwrap();
    assert!(first[0].is_ok());
    let second = s
        .deliver(message(s, &[b'z'; 80]), vec![target(a, "")])
        .await
        .unwrap();
    assert_eq!(second[0], Err(DeliverError::OverQuota));
    let lenient = Target {
        enforce_quota: false,
        mailbox: None,
        flags: String::new(),
        ..target(a, "")
    };
    let third = s
        .deliver(message(s, &[b'z'; 80]), vec![lenient])
        .await
        .unwrap();
    assert!(third[0].is_ok());
    assert!(s.check().unwrap().is_consistent());
}

#[test]
fn check_reports_a_missing_blob_file() {
    let t = temp_store("check", 0);
    let s = &t.store;
    s.add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let a = s.add_account(&addr("a@example.com"), "h", 0).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let m = message(s, b"file blob");
    let hash = m.blob.hash.to_hex();
    rt.block_on(s.deliver(m, vec![target(a, "")])).unwrap();
    assert!(s.check().unwrap().is_consistent());
    std::fs::remove_file(t.dir.join("blobs").join(&hash[..2]).join(&hash)).unwrap();
    let report = s.check().unwrap();
    assert_eq!(report.errors.len(), 1, "{report:?}");
}

#[test]
fn unreferenced_blob_files_are_counted_then_removed() {
    let t = temp_store("orphans", 0);
    let s = &t.store;
    // A finished file blob that no delivery committed: what a crash after the rename leaves.
    let mut w = s.blob_writer();
    w.write(b"never committed").unwrap();
    let orphan = w.finish().unwrap();
    let path = t
        .dir
        .join("blobs")
        .join(&orphan.hash.to_hex()[..2])
        .join(orphan.hash.to_hex());
    assert!(path.exists());
    let report = s.check().unwrap();
    assert!(report.is_consistent());
    assert_eq!(report.unreferenced_files, 1);
    assert_eq!(s.remove_unreferenced_files().unwrap(), 1);
    assert!(!path.exists());
    assert_eq!(s.check().unwrap().unreferenced_files, 0);
}

#[tokio::test]
async fn expunge_logs_uids_frees_quota_and_blobs() {
    let t = temp_store("expunge", 16);
    let s = &t.store;
    s.add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let a = s.add_account(&addr("a@example.com"), "h", 0).unwrap();
    let b = s.add_account(&addr("b@example.com"), "h", 0).unwrap();
    let shared = s
        .deliver(
            message(s, b"shared body, a file blob"),
            vec![target(a, ""), target(b, "")],
        )
        .await
        .unwrap();
    s.deliver(
        message(s, b"second message, also a file"),
        vec![target(a, "")],
    )
    .await
    .unwrap();
    let inbox = shared[0].as_ref().unwrap().mailbox;
    let mut events = s.subscribe();
    let removed = s
        .expunge(
            a,
            inbox,
            &[
                facteur_model::Uid(1),
                facteur_model::Uid(2),
                facteur_model::Uid(9),
            ],
        )
        .unwrap();
    assert_eq!(removed, [facteur_model::Uid(1), facteur_model::Uid(2)]);
    match events.try_recv().unwrap() {
        Change::Expunged { uids, modseq, .. } => {
            assert_eq!(uids.len(), 2);
            assert_eq!(s.mailboxes(a).unwrap()[0].highest_modseq, modseq);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.mailboxes(a).unwrap()[0].messages, 0);
    assert_eq!(s.list_accounts(None).unwrap()[0].used_bytes, 0);
    let report = s.check().unwrap();
    // b still holds the shared blob; the second message's file is gone.
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!((report.blobs, report.unreferenced_files), (1, 0));
    assert!(
        s.expunge(b, inbox, &[facteur_model::Uid(1)]).is_err(),
        "another account's mailbox"
    );
}

/// A deleted mailbox's id and UIDVALIDITY are never given to another mailbox, even to one of
/// the same name created at once, even in another account: a session or an event still naming
/// the old mailbox can never reach the new one.
#[test]
fn mailbox_ids_and_uidvalidity_are_never_reused() {
    let t = temp_store("reuse", 1024);
    let s = &t.store;
    s.add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let alice = s
        .add_account(&addr("alice@example.com"), "hash", 0)
        .unwrap();
    let old = s.create_mailbox(alice, "Projects", None).unwrap();
    let old_row = s.mailbox_by_name(alice, "Projects").unwrap().unwrap();
    s.delete_mailbox(alice, old).unwrap();
    let again = s.create_mailbox(alice, "Projects", None).unwrap();
    let again_row = s.mailbox_by_name(alice, "Projects").unwrap().unwrap();
    assert_ne!(old, again);
    assert_ne!(old_row.uidvalidity, again_row.uidvalidity);
    s.delete_mailbox(alice, again).unwrap();
    let bob = s.add_account(&addr("bob@example.com"), "hash", 0).unwrap();
    let ids: Vec<_> = s
        .mailbox_list(bob)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert!(!ids.contains(&old) && !ids.contains(&again), "{ids:?}");
}

/// A message for local and remote recipients: the copies and the queue row commit together;
/// the queue keeps the blob alive after the local copy is expunged.
#[tokio::test]
async fn queued_message_commits_with_local_copies_and_keeps_its_blob() {
    use facteur_store::{QueuedMessage, QueuedRecipient};
    let t = temp_store("queue", 16);
    let s = &t.store;
    s.add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let a = s.add_account(&addr("a@example.com"), "h", 0).unwrap();
    let queued = QueuedMessage {
        queue_id: "Q1".into(),
        sender: "a@example.com".into(),
        envid: Some("env1".into()),
        ret_full: Some(false),
        submitter: Some("a@example.com".into()),
        recipients: vec![
            QueuedRecipient {
                address: "x@remote.example".into(),
                notify: vec!["FAILURE".into(), "DELAY".into()],
                orcpt: Some("rfc822;x@remote.example".into()),
            },
            QueuedRecipient {
                address: "y@other.example".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let body = b"Subject: out\r\n\r\nto the world, as a file blob\r\n";
    let outcomes = s
        .deliver_and_queue(message(s, body), vec![target(a, "")], Some(queued.clone()))
        .await
        .unwrap();
    let inbox = outcomes[0].as_ref().unwrap().mailbox;
    let entries = s.queue_entries().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.message.recipients, queued.recipients);
    assert_eq!(e.message.envid.as_deref(), Some("env1"));
    assert_eq!(e.message.ret_full, Some(false));
    assert_eq!(e.size, body.len() as u64);
    assert!(
        e.states
            .iter()
            .all(|r| r.state == "queued" && r.attempts == 0)
    );
    s.expunge(a, inbox, &[facteur_model::Uid(1)]).unwrap();
    assert_eq!(s.queue_content("Q1").unwrap().unwrap(), body);
    let report = s.check().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.blobs, 1);
    // A remote-only message: no local copy at all.
    let mut only = queued.clone();
    only.queue_id = "Q2".into();
    let outcomes = s
        .deliver_and_queue(message(s, b"remote only"), vec![], Some(only))
        .await
        .unwrap();
    assert!(outcomes.is_empty());
    assert_eq!(s.queue_entries().unwrap().len(), 2);
    assert_eq!(s.queue_content("Q2").unwrap().unwrap(), b"remote only");
    assert_eq!(s.queue_content("nope").unwrap(), None);
}

/// The queue's life: due recipients, attempts recorded per recipient, deferral, retry now,
/// hold, failure, removal with the blob.
#[tokio::test]
async fn queue_attempts_deferrals_hold_and_removal() {
    use facteur_store::{Attempt, AttemptOutcome, QueuedMessage, QueuedRecipient};
    let t = temp_store("queue-life", 16);
    let s = &t.store;
    let queued = QueuedMessage {
        queue_id: "Q1".into(),
        sender: "a@example.com".into(),
        recipients: vec![
            QueuedRecipient {
                address: "x@remote.example".into(),
                ..Default::default()
            },
            QueuedRecipient {
                address: "y@remote.example".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    s.deliver_and_queue(
        message(s, b"to the world, a file blob"),
        vec![],
        Some(queued),
    )
    .await
    .unwrap();
    let now = i64::MAX / 2;
    let due = s.queue_due(now, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].due.len(), 2);
    let done = s
        .queue_record(
            "Q1",
            &[
                Attempt {
                    position: 0,
                    host: "mx.remote.example [192.0.2.1]".into(),
                    reply: "250 2.0.0 ok".into(),
                    outcome: AttemptOutcome::Sent,
                },
                Attempt {
                    position: 1,
                    host: "mx.remote.example [192.0.2.1]".into(),
                    reply: "450 4.7.0 greylisted".into(),
                    outcome: AttemptOutcome::Deferred {
                        next_attempt: now + 1000,
                    },
                },
            ],
        )
        .unwrap();
    assert!(!done);
    assert!(
        s.queue_due(now, 10).unwrap().is_empty(),
        "deferred until later"
    );
    assert_eq!(s.queue_retry_now(Some("Q1")).unwrap(), 1);
    let due = s.queue_due(i64::MAX / 2 + 2000, 10).unwrap();
    assert_eq!(due[0].due.len(), 1);
    assert_eq!(due[0].due[0].address, "y@remote.example");
    assert_eq!(due[0].due[0].attempts, 1);
    assert!(s.queue_hold("Q1", true).unwrap());
    assert!(s.queue_due(now + 2000, 10).unwrap().is_empty(), "held");
    assert!(s.queue_hold("Q1", false).unwrap());
    let done = s
        .queue_record(
            "Q1",
            &[Attempt {
                position: 1,
                host: "mx.remote.example [192.0.2.1]".into(),
                reply: "550 5.1.1 no such user".into(),
                outcome: AttemptOutcome::Failed,
            }],
        )
        .unwrap();
    assert!(done);
    let attempts = s.queue_attempts("Q1").unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[2].reply, "550 5.1.1 no such user");
    let states: Vec<String> = s.queue_entries().unwrap()[0]
        .states
        .iter()
        .map(|r| r.state.clone())
        .collect();
    assert_eq!(states, ["sent", "failed"]);
    assert!(s.queue_remove("Q1").unwrap());
    assert!(!s.queue_remove("Q1").unwrap());
    let report = s.check().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.blobs, 0, "the blob went with the message");
}

const GREY: facteur_store::GreylistTimes = facteur_store::GreylistTimes {
    delay: 0,
    window: 3600,
    allow: 86_400,
};

#[test]
fn greylisting_defers_then_passes_then_allows() {
    use facteur_store::Greylisted;
    let t = temp_store("greylist", 0);
    let store = &t.store;
    let triplets = ["192.0.2.0/24 a@example.org b@example.com".to_string()];
    let slow = facteur_store::GreylistTimes { delay: 300, ..GREY };
    let first = store.greylist(
        &triplets,
        "net k",
        &["domain example.org".to_string()],
        slow,
    );
    assert_eq!(first.unwrap(), Greylisted::Defer(300));
    // Too early: still deferred, with the time left.
    match store.greylist(&triplets, "net k", &[], slow).unwrap() {
        Greylisted::Defer(n) => assert!((299..=300).contains(&n), "{n}"),
        other => panic!("{other:?}"),
    }
    // Without a delay the retry passes, and the network and domain are remembered.
    assert!(!store.greylist_allowed("domain example.org").unwrap());
    let again = store.greylist(
        &triplets,
        "net k",
        &["domain example.org".to_string()],
        GREY,
    );
    assert_eq!(again.unwrap(), Greylisted::Passed);
    assert!(store.greylist_allowed("domain example.org").unwrap());
    let other = ["192.0.2.0/24 a@example.org c@example.com".to_string()];
    assert_eq!(
        store.greylist(&other, "net k", &[], slow).unwrap(),
        Greylisted::Allowed
    );
}

#[test]
fn bayes_learns_and_relearns() {
    let t = temp_store("bayes", 0);
    let store = &t.store;
    store
        .add_domain(&Domain::parse("example.com").unwrap())
        .unwrap();
    let account = store.add_account(&addr("u@example.com"), "h", 0).unwrap();
    store.bayes_learn(account, "m1", &[1, 2], true).unwrap();
    assert!(!store.bayes_learn(account, "m1", &[1, 2], true).unwrap());
    store.bayes_learn(account, "m2", &[2, 3], false).unwrap();
    let c = store.bayes_counts(account, &[1, 2, 3, 4]).unwrap();
    assert_eq!((c.spam, c.ham), (1, 1));
    assert_eq!(c.tokens, vec![(1, 0), (1, 1), (0, 1), (0, 0)]);
    // Moved out of Junk: m1 becomes ham.
    assert!(store.bayes_learn(account, "m1", &[1, 2], false).unwrap());
    let c = store.bayes_counts(account, &[1, 2, 3]).unwrap();
    assert_eq!((c.spam, c.ham), (0, 2));
    assert_eq!(c.tokens, vec![(0, 1), (0, 2), (0, 1)]);
    // Many tokens (read in chunks), repeated and absent ones, large hash values.
    let many: Vec<u64> = (0..300u64).map(|i| u64::MAX - i * 7).collect();
    store
        .bayes_learn(account, "m3", &many[..250], true)
        .unwrap();
    let mut asked = many.clone();
    asked.push(many[0]);
    asked.push(2);
    let c = store.bayes_counts(account, &asked).unwrap();
    assert_eq!(c.tokens.len(), 302);
    assert!(c.tokens[..250].iter().all(|&t| t == (1, 0)));
    assert!(c.tokens[250..300].iter().all(|&t| t == (0, 0)));
    assert_eq!(c.tokens[300], (1, 0));
    assert_eq!(c.tokens[301], (0, 2));
}
