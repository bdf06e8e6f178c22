//! The layering of docs/architecture.md, checked on every `cargo test`: each facteur crate
//! depends only on the facteur crates its row allows, and sans-IO session crates never pull
//! in a runtime, a store or the network.

use std::collections::BTreeMap;
use std::process::Command;

/// crate -> facteur crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("facteur-model", &[]),
    ("facteur-framing", &[]),
    ("facteur-config", &["facteur-model"]),
    ("facteur-net", &["facteur-model"]),
    ("facteur-store", &["facteur-model"]),
    ("facteur-directory", &["facteur-store", "facteur-model"]),
    (
        "facteur-delivery",
        &["facteur-store", "facteur-directory", "facteur-model"],
    ),
    (
        "facteur-smtp-session",
        &["facteur-framing", "facteur-model"],
    ),
    (
        "facteur-pop3-session",
        &["facteur-framing", "facteur-model"],
    ),
    (
        "facteur-smtp-server",
        &[
            "facteur-protect",
            "facteur-trust",
            "facteur-smtp-session",
            "facteur-net",
            "facteur-directory",
            "facteur-delivery",
            "facteur-store",
            "facteur-config",
            "facteur-model",
        ],
    ),
    (
        "facteur-pop3-server",
        &[
            "facteur-pop3-session",
            "facteur-net",
            "facteur-directory",
            "facteur-store",
            "facteur-config",
            "facteur-model",
        ],
    ),
    ("facteur-imap-session", &["facteur-model"]),
    (
        "facteur-queue",
        &[
            "facteur-trust",
            "facteur-smtp-session",
            "facteur-net",
            "facteur-dns",
            "facteur-directory",
            "facteur-delivery",
            "facteur-store",
            "facteur-config",
            "facteur-model",
        ],
    ),
    ("facteur-dns", &["facteur-model"]),
    ("facteur-trust", &["facteur-dns", "facteur-model"]),
    (
        "facteur-protect",
        &[
            "facteur-milter",
            "facteur-scan",
            "facteur-spam",
            "facteur-dns",
            "facteur-net",
            "facteur-store",
            "facteur-model",
        ],
    ),
    ("facteur-milter", &[]),
    ("facteur-scan", &[]),
    ("facteur-spam", &[]),
    (
        "facteur-admin",
        &[
            "facteur-net",
            "facteur-directory",
            "facteur-store",
            "facteur-config",
            "facteur-model",
        ],
    ),
    (
        "facteur-imap-server",
        &[
            "facteur-imap-session",
            "facteur-net",
            "facteur-directory",
            "facteur-delivery",
            "facteur-store",
            "facteur-config",
            "facteur-model",
        ],
    ),
    ("facteur-acme", &["facteur-net", "facteur-config"]),
    ("facteur-testkit", &["facteur-net", "facteur-model"]),
];

/// Crates a sans-IO session must never depend on, directly.
const NOT_IN_SESSIONS: &[&str] = &[
    "tokio",
    "rusqlite",
    "rustls",
    "tokio-rustls",
    "facteur-store",
    "facteur-net",
    "facteur-config",
];

#[test]
fn crates_depend_only_on_what_their_layer_allows() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata = String::from_utf8(out.stdout).unwrap();
    let deps = dependencies(&metadata);
    // The check reads what it should: a known edge is there.
    let server = deps
        .get("facteur-smtp-server")
        .expect("facteur-smtp-server in the metadata");
    assert!(
        server
            .iter()
            .any(|(d, k)| d == "facteur-smtp-session" && k == "normal"),
        "{server:?}"
    );
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for (krate, its_deps) in &deps {
        if krate == "facteur" {
            continue; // the binary wires everything
        }
        let Some(ok) = allowed.get(krate.as_str()) else {
            problems.push(format!("{krate} has no row in the dependency table"));
            continue;
        };
        for (dep, kind) in its_deps {
            if kind != "normal" {
                continue;
            }
            if dep.starts_with("facteur-") && !ok.contains(&dep.as_str()) {
                problems.push(format!(
                    "{krate} depends on {dep}, which its layer does not allow"
                ));
            }
            if krate.ends_with("-session") && NOT_IN_SESSIONS.contains(&dep.as_str()) {
                problems.push(format!("{krate} is sans-IO but depends on {dep}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// (package name -> [(dependency name, kind)]) from `cargo metadata` JSON.
fn dependencies(metadata: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let json: serde_json::Value = serde_json::from_str(metadata).expect("metadata JSON");
    let mut out = BTreeMap::new();
    for package in json["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().unwrap_or_default().to_string();
        if !name.starts_with("facteur") {
            continue;
        }
        let deps = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                (d["name"].as_str().unwrap_or_default().to_string(), kind)
            })
            .collect();
        out.insert(name, deps);
    }
    out
}
