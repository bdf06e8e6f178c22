//! What the queue's integration tests share: stores, a test CA, facteur's MX role on a
//! listener, a message put in the queue.

use facteur_directory::{Directory, Options as DirectoryOptions};
use facteur_net::Shutdown;
use facteur_store::{Options as StoreOptions, QueuedMessage, QueuedRecipient, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct Dir(pub PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn store(dir: &Path, domain: &str, user: &str) -> (Store, Directory) {
    let store = Store::open(StoreOptions {
        data_dir: dir.to_path_buf(),
        inline_blob_max: 4096,
        group_commit_max: 8,
    })
    .unwrap();
    let directory = Directory::new(
        store.clone(),
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_ttl: Duration::ZERO,
        },
    );
    directory.add_domain(domain).unwrap();
    directory
        .add_account(&format!("{user}@{domain}"), "secret", None)
        .unwrap();
    (store, directory)
}

/// A CA, and a certificate it signed for `names`, written to `dir`; returns (ca, cert, key).
pub fn certificates(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "facteur test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    // The chain: the leaf, then the CA (RFC 7672 §3.1.2 wants the trust anchor sent).
    std::fs::write(&paths.1, leaf_cert.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

pub fn mx(
    store: &Store,
    directory: &Directory,
    tls: Option<tokio_rustls::TlsAcceptor>,
    listener: tokio::net::TcpListener,
    shutdown: &Shutdown,
) {
    let ctx = Arc::new(facteur_smtp_server::Context {
        role: facteur_smtp_server::Role::Smtp,
        hostname: "mx.remote.test".into(),
        settings: facteur_config::Smtp::default(),
        submission: facteur_config::Submission::default(),
        directory: directory.clone(),
        store: store.clone(),
        tls,
        shutdown: shutdown.clone(),
        queued: None,
        auth: None,
        dkim: Default::default(),
        srs: None,
        filter: None,
    });
    tokio::spawn(facteur_smtp_server::serve(listener, ctx));
}

pub async fn queue(store: &Store, id: &str, to: &str) {
    let mut w = store.blob_writer();
    w.write(format!("From: alice@example.test\r\nSubject: {id}\r\n\r\nhello\r\n").as_bytes())
        .unwrap();
    let envelope = facteur_delivery::Envelope {
        return_path: "alice@example.test",
        queue_id: id,
        internal_date: 0,
        enforce_quota: false,
        added_fields: "",
        junk: false,
        per_account: &[],
    };
    let outbound = QueuedMessage {
        queue_id: id.into(),
        sender: "alice@example.test".into(),
        recipients: vec![QueuedRecipient {
            address: to.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    facteur_delivery::deliver_and_queue(store, w.finish().unwrap(), &envelope, &[], Some(outbound))
        .await
        .unwrap();
}

/// The queue service of `store`, routing by `route`, verifying with `verified`; retries an
/// hour later, so a test sees exactly one attempt per message.
pub fn service(
    store: &Store,
    directory: Directory,
    route: facteur_queue::route::Route,
    verified: Arc<rustls::ClientConfig>,
    shutdown: &Shutdown,
) -> Arc<facteur_queue::service::Service> {
    use facteur_queue::client::{Settings, Timeouts, TlsMode, opportunistic_tls};
    Arc::new(facteur_queue::service::Service {
        store: store.clone(),
        directory,
        hostname: "mx.example.test".into(),
        options: facteur_config::Queue {
            retry_secs: vec![3600],
            scan_secs: 1,
            ..Default::default()
        },
        client: Settings {
            helo: "mx.example.test".into(),
            tls: TlsMode::Opportunistic,
            verified,
            opportunistic: opportunistic_tls(),
            timeouts: Timeouts::default(),
            source: None,
        },
        route,
        wake: Arc::default(),
        delay_warning: Duration::ZERO,
        pool: Default::default(),
        destinations: Default::default(),
        rates: Default::default(),
        tls_report: Default::default(),
        shutdown: shutdown.clone(),
    })
}

/// Waits until every message of `ids` has an attempt or has left the queue.
pub async fn wait_tried(store: &Store, ids: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let queued: Vec<String> = store
            .queue_entries()
            .unwrap()
            .iter()
            .map(|e| e.message.queue_id.clone())
            .collect();
        let tried = ids.iter().all(|id| {
            !queued.iter().any(|q| q == id)
                || !store.queue_attempts(id).unwrap_or_default().is_empty()
        });
        if tried {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every message was tried: {queued:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
