//! IMAP transcripts over TCP against a real server (`facteur_testkit` format), plus:
//! - `imaps` (anywhere): connect to the implicit-TLS listener;
//! - `deliver ADDRESS`: a new message (Subject: New) arrives in the INBOX now, as over SMTP;
//! - `flag ADDRESS MAILBOX UID FLAG`: another session adds FLAG to that message now;
//! - `expunge ADDRESS MAILBOX UID`: another session removes that message now;
//! - `quota ADDRESS BYTES`: the account's quota is set;
//! - `$UIDVALIDITY` in the text stands for alice's INBOX UIDVALIDITY.
//!
//! Fixture: see `common.rs`.

mod common;

use common::*;
use facteur_model::Uid;
use facteur_store::FlagOp;
use facteur_testkit::{Target, play};
use std::path::PathBuf;

const NEW: &str = "From: Eve <eve@example.org>\r\nTo: alice@example.com\r\nSubject: New\r\nMessage-ID: <4@example.org>\r\n\r\nFresh.\r\n";

async fn run(file: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let server = start(file.trim_end_matches(".txt"), settings()).await;
    // `$UIDVALIDITY`: alice's INBOX UIDVALIDITY, which depends on the time of creation.
    let alice = account(&server.store, "alice@example.com");
    let inbox = server
        .store
        .mailbox_by_name(alice, "INBOX")
        .unwrap()
        .unwrap();
    let text = text.replace("$UIDVALIDITY", &inbox.uidvalidity.to_string());
    let implicit = text.lines().any(|l| l.trim() == "imaps");
    let cert = server.dir.join("tls/self-signed.crt");
    let target = Target {
        addr: if implicit { server.imaps } else { server.imap },
        cert: &cert,
        server_name: "mx.example.com",
        implicit_tls: implicit,
    };
    let store = server.store.clone();
    let handle = tokio::runtime::Handle::current();
    play(file, &text, &target, |words, ctx| {
        let mailbox = |address: &str, name: &str| {
            let account = account(&store, address);
            (
                account,
                store.mailbox_by_name(account, name).unwrap().unwrap().id,
            )
        };
        match words {
            ["imaps"] => {}
            ["deliver", address] => {
                let account = account(&store, address);
                let store = store.clone();
                tokio::task::block_in_place(|| {
                    handle.block_on(deliver(&store, account, NEW, 1_704_456_000))
                });
            }
            ["flag", address, name, uid, flag] => {
                let (account, id) = mailbox(address, name);
                store
                    .store_flags(
                        account,
                        id,
                        &[Uid(uid.parse().unwrap())],
                        FlagOp::Add,
                        &[flag.to_string()],
                        None,
                    )
                    .unwrap();
            }
            ["quota", address, bytes] => {
                let a = facteur_model::Address::parse(address).unwrap();
                store.set_quota(&a, bytes.parse().unwrap()).unwrap();
            }
            ["expunge", address, name, uid] => {
                let (account, id) = mailbox(address, name);
                store
                    .expunge(account, id, &[Uid(uid.parse().unwrap())])
                    .unwrap();
            }
            _ => panic!("{ctx}: unknown directive"),
        }
    })
    .await;
    assert!(server.store.check().unwrap().is_consistent());
}

macro_rules! transcripts {
    ($($name:ident => $file:literal;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run($file).await;
            }
        )*
    };
}

transcripts! {
    rfc9051_starttls_and_logindisabled => "01-starttls.txt";
    rfc9051_login_failures_and_authenticate => "02-auth.txt";
    rfc9051_select_fetch_envelope_and_bodystructure => "03-fetch-structure.txt";
    rfc9051_body_sections_partial_and_binary => "04-sections.txt";
    rfc9051_search_keys => "05-search.txt";
    rfc9051_store_copy_expunge_uidplus => "06-store-copy.txt";
    rfc6851_move_with_copyuid => "07-move.txt";
    rfc9051_mailbox_hierarchy_list_extended => "08-mailboxes.txt";
    rfc7162_condstore_unchangedsince_conflict => "09-condstore.txt";
    rfc7162_qresync_vanished => "10-qresync.txt";
    rfc5256_sort_and_thread => "11-sort-thread.txt";
    rfc2177_idle_reports_delivery_and_other_sessions => "12-idle.txt";
    rfc3502_multiappend_and_append_limits => "13-append.txt";
    rfc9051_errors_and_limits => "14-errors.txt";
    rfc9051_imap4rev2_enable_esearch_and_utf8 => "15-rev2.txt";
    extensions_quota_within_unselect_special_use => "16-extensions.txt";
}
