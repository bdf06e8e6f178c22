//! The IMAP test server: a store with example.com, alice (password "secret", three messages
//! in INBOX: a plain one, a nested multipart with a message/rfc822 part, a third for SORT and
//! THREAD) and bob (empty), served on `imap` and `imaps` listeners on 127.0.0.1.
#![allow(dead_code)]

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_imap_server::{Context, Role};
use facteur_model::{AccountId, Address};
use facteur_net::{Shutdown, TlsSettings, load_tls};
use facteur_store::{NewMessage, Options as StoreOptions, Store, Target as Copy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const PLAIN: &str = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Lunch\r\nDate: Mon, 01 Jan 2024 09:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nShall we have lunch?\r\n";

pub const NESTED: &str = "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: Re: Lunch\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <2@example.org>\r\nIn-Reply-To: <1@example.org>\r\nReferences: <1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 at noon?\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf&eacute; at noon?</p>\r\n--inner--\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\nFrom: Carol <carol@example.net>\r\nSubject: Menu\r\nContent-Type: text/plain\r\n\r\nSoup of the day.\r\n--outer\r\nContent-Type: application/pdf; name=\"menu.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"menu.pdf\"\r\n\r\nJVBERi0xLjQ=\r\n--outer--\r\n";

pub const REPORT: &str = "From: Dave <dave@example.org>\r\nTo: alice@example.com\r\nSubject: Quarterly report\r\nDate: Wed, 03 Jan 2024 08:00:00 +0000\r\nMessage-ID: <3@example.org>\r\n\r\nNumbers attached.\r\n";

pub struct TestServer {
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    pub store: Store,
    pub dir: PathBuf,
    pub shutdown: Shutdown,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn deliver(store: &Store, account: AccountId, raw: &str, date: i64) {
    let meta = facteur_delivery::meta::parse(raw.as_bytes());
    let mut w = store.blob_writer();
    w.write(raw.as_bytes()).unwrap();
    let m = NewMessage {
        blob: w.finish().unwrap(),
        internal_date: date,
        envelope: meta.envelope,
        structure: meta.structure,
        headers: meta.headers,
        search_text: meta.search_text,
        search_headers: meta.search_headers,
        queue_id: "Q".into(),
    };
    store
        .deliver(
            m,
            vec![Copy {
                account,
                prefix: vec![],
                enforce_quota: false,
                mailbox: None,
                flags: String::new(),
            }],
        )
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
}

pub fn account(store: &Store, address: &str) -> AccountId {
    let a = Address::parse(address).unwrap();
    store
        .account(&a.domain, &a.folded_local())
        .unwrap()
        .unwrap()
        .id
}

pub async fn start(name: &str, settings: facteur_config::Imap) -> TestServer {
    let dir = std::env::temp_dir().join(format!("facteur-imap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(StoreOptions {
        data_dir: dir.clone(),
        inline_blob_max: 4096,
        group_commit_max: 16,
    })
    .unwrap();
    let directory = Directory::new(
        store.clone(),
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: std::time::Duration::from_secs(60),
        },
    );
    directory.add_domain("example.com").unwrap();
    let alice = directory
        .add_account("alice@example.com", "secret", None)
        .unwrap();
    directory
        .add_account("bob@example.com", "secret", None)
        .unwrap();
    // INTERNALDATEs: 2024-01-01, 02 and 03 at 12:00 UTC.
    for (i, raw) in [PLAIN, NESTED, REPORT].iter().enumerate() {
        deliver(&store, alice, raw, 1_704_110_400 + i as i64 * 86_400).await;
    }
    let tls = load_tls(TlsSettings::SelfSigned {
        hostname: "mx.example.com",
        dir: &dir.join("tls"),
    })
    .unwrap();
    let shutdown = Shutdown::new();
    let ctx = Arc::new(Context::new(
        "mx.example.com".into(),
        settings,
        directory,
        store.clone(),
        Some(tls.acceptor),
        shutdown.clone(),
    ));
    let mut addrs = Vec::new();
    for role in [Role::Imap, Role::Imaps] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        tokio::spawn(facteur_imap_server::serve(listener, role, ctx.clone()));
    }
    TestServer {
        imap: addrs[0],
        imaps: addrs[1],
        store,
        dir,
        shutdown,
    }
}

pub fn settings() -> facteur_config::Imap {
    facteur_config::Imap {
        auth_failure_delay_ms: 10,
        ..facteur_config::Imap::default()
    }
}
