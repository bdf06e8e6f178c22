//! Interop with a real filter: Debian's OpenDKIM (package `opendkim`, keys from
//! `opendkim-genkey` of `opendkim-tools`) in milter mode on a loopback port. It signs a message
//! from an internal client (the DKIM-Signature it asks to insert is applied with `apply`), then
//! verifies the signed message from an external client, its public key served by its own
//! `TestDNSData` (no DNS): with the default simple/simple canonicalization a pass proves that
//! the header fields and body were replayed byte for byte and that `apply` wrote the new
//! field as signed. A body changed after signing must fail.
//!
//! Without /usr/sbin/opendkim the test prints `SKIPPED:` and passes, unless
//! FACTEUR_REQUIRE_INTEROP=1, where it fails.

use facteur_milter::{Milter, Modification, Outcome, Transaction, Verdict, apply};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OPENDKIM: &str = "/usr/sbin/opendkim";
const GENKEY: &str = "/usr/sbin/opendkim-genkey";
const SELECTOR: &str = "facteur";

/// Kills and reaps the filter, and removes the work directory, even when the test panics.
struct Guard {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> bool {
    let present = Path::new(OPENDKIM).exists() && Path::new(GENKEY).exists();
    if !present {
        assert!(
            std::env::var("FACTEUR_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "opendkim is not installed (FACTEUR_REQUIRE_INTEROP=1): apt-get install opendkim opendkim-tools"
        );
        println!("SKIPPED: opendkim not installed (apt-get install opendkim opendkim-tools)");
    }
    present
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The TXT record text of `opendkim-genkey`'s `SELECTOR.txt` (its quoted strings joined).
fn record(zone_file: &str) -> String {
    let mut out = String::new();
    let mut rest = zone_file;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        out.push_str(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// Starts OpenDKIM (sign for 127.0.0.1, verify for others) and waits until it listens.
fn start(guard: &mut Guard) -> u16 {
    let dir = guard.dir.clone();
    let out = Command::new(GENKEY)
        .arg("-D")
        .arg(&dir)
        .args(["-d", "example.org", "-s", SELECTOR])
        .output()
        .expect("run opendkim-genkey");
    assert!(out.status.success(), "opendkim-genkey: {out:?}");
    let txt = std::fs::read_to_string(dir.join(format!("{SELECTOR}.txt"))).expect("key record");
    let record = record(&txt);
    assert!(record.contains("p="), "record: {record}");
    std::fs::write(
        dir.join("dns"),
        format!("{SELECTOR}._domainkey.example.org {record}\n"),
    )
    .expect("write dns data");
    let port = free_port();
    let conf = format!(
        "Mode sv\n\
         Domain example.org\n\
         Selector {SELECTOR}\n\
         KeyFile {key}\n\
         Socket inet:{port}@127.0.0.1\n\
         Background no\n\
         Syslog no\n\
         InternalHosts 127.0.0.1\n\
         AuthservID facteur-test\n\
         RequireSafeKeys no\n\
         Diagnostics yes\n\
         TestDNSData file:{dns}\n",
        key = dir.join(format!("{SELECTOR}.private")).display(),
        dns = dir.join("dns").display(),
    );
    std::fs::write(dir.join("opendkim.conf"), conf).expect("write config");
    let log = std::fs::File::create(dir.join("opendkim.log")).expect("log file");
    let child = Command::new(OPENDKIM)
        .arg("-f")
        .arg("-x")
        .arg(dir.join("opendkim.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start opendkim");
    guard.child = Some(child);
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return port;
        }
        if let Some(status) = guard
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            let log = std::fs::read_to_string(dir.join("opendkim.log")).unwrap_or_default();
            panic!("opendkim exited ({status}): {log}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "opendkim not listening on port {port} after 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn transaction<'a>(
    client: &str,
    recipients: &'a [String],
    message: &'a [u8],
    queue_id: &'a str,
) -> Transaction<'a> {
    Transaction {
        client_ip: client.parse().expect("ip"),
        client_port: 40000,
        client_name: "client.example.org",
        server_addr: Some("127.0.0.1:25".parse().expect("addr")),
        helo: "client.example.org",
        mail_from: "someone@example.org",
        mail_args: &[],
        recipients,
        message,
        queue_id,
        hostname: "mx.example.net",
        auth: None,
        tls: None,
    }
}

/// The value of the header field `name` a filter asked to add or insert.
fn added<'o>(outcome: &'o Outcome, name: &str) -> Option<&'o str> {
    outcome.modifications.iter().find_map(|m| match m {
        Modification::AddHeader { name: n, value }
        | Modification::InsertHeader { name: n, value, .. }
            if n.eq_ignore_ascii_case(name) =>
        {
            Some(value.as_str())
        }
        _ => None,
    })
}

const MESSAGE: &[u8] = b"From: Someone <someone@example.org>\r\n\
To: Friend <friend@example.net>\r\n\
Subject: Interop  test with a\r\n\
\x20folded subject\r\n\
Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n\
Message-ID: <interop-1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Hello,\r\n\
\r\n\
a body with  double  spaces, trailing space \r\n\
and a last line.\r\n";

#[tokio::test]
async fn opendkim_signs_and_verifies() {
    if !installed() {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "facteur-milter-opendkim-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("work dir");
    let mut guard = Guard { child: None, dir };
    let port = start(&mut guard);
    let milter = Milter::parse(
        &format!("inet:{port}@127.0.0.1"),
        Duration::from_secs(5),
        Duration::from_secs(10),
    )
    .expect("address");
    let recipients = vec!["friend@example.net".to_string()];

    // Signing: the client is an internal host.
    let signing = milter
        .check(&transaction("127.0.0.1", &recipients, MESSAGE, "SIGN1"))
        .await
        .expect("opendkim answers");
    assert!(
        matches!(signing.verdict, Verdict::Continue | Verdict::Accept),
        "{:?}",
        signing.verdict
    );
    let signature = added(&signing, "DKIM-Signature")
        .unwrap_or_else(|| panic!("no DKIM-Signature asked for: {:?}", signing.modifications));
    let compact: String = signature.split_whitespace().collect();
    assert!(compact.contains("d=example.org;"), "{signature}");
    assert!(compact.contains(&format!("s={SELECTOR};")), "{signature}");
    // Every field it signs reached it, the one after the folded Subject too; the z= copy
    // (Diagnostics) shows the fold as received.
    assert!(compact.contains("h=From:To:Subject:Date;"), "{signature}");
    assert!(compact.contains("a=0D=0A=20folded="), "{signature}");
    println!("signing modifications: {:?}", signing.modifications);
    let signed = apply(MESSAGE, &signing.modifications);
    let text = String::from_utf8(signed.clone()).expect("ascii");
    assert!(text.contains("DKIM-Signature:"), "{text}");
    assert!(text.ends_with(std::str::from_utf8(&MESSAGE[MESSAGE.len() - 60..]).unwrap()));
    assert!(!text.contains("\r\n\r\n\r\n"), "{text}");
    assert!(
        text.split("\r\n")
            .all(|l| !l.contains('\r') && !l.contains('\n')),
        "bare CR or LF in {text:?}"
    );

    // Verification: the same filter, from an external client.
    let verifying = milter
        .check(&transaction("192.0.2.44", &recipients, &signed, "VERIFY1"))
        .await
        .expect("opendkim answers");
    let results = added(&verifying, "Authentication-Results")
        .unwrap_or_else(|| panic!("no Authentication-Results: {:?}", verifying.modifications));
    println!("verification: {results}");
    assert!(results.contains("dkim=pass"), "{results}");
    assert!(results.contains("header.d=example.org"), "{results}");

    // The body changed after signing: the signature must fail.
    let tampered = [&signed[..signed.len() - 2], b"!\r\n"].concat();
    let failing = milter
        .check(&transaction(
            "192.0.2.44",
            &recipients,
            &tampered,
            "VERIFY2",
        ))
        .await
        .expect("opendkim answers");
    let results = added(&failing, "Authentication-Results")
        .unwrap_or_else(|| panic!("no Authentication-Results: {:?}", failing.modifications));
    println!("tampered: {results}");
    assert!(
        results.contains("dkim=fail") || results.contains("dkim=neutral"),
        "{results}"
    );
    drop(guard);
}
