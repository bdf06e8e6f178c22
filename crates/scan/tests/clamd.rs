//! facteur-scan against the real ClamAV daemon (Debian package clamav-daemon), with a
//! test-only signature database: the MD5 hash signature of the EICAR test file, written into a
//! temporary directory. No freshclam, no downloaded database. Skipped when /usr/sbin/clamd is
//! absent, except with FACTEUR_REQUIRE_INTEROP=1.

mod common;

use common::{Daemon, TempDir, free_port, interop_binary};
use facteur_scan::{ClamVerdict, Clamd, ScanError};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The 68-octet EICAR anti-virus test file, assembled at run time so that this source file
/// itself is not taken for it.
fn eicar() -> Vec<u8> {
    let mut file = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$".to_vec();
    file.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    file
}

const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";

fn md5_hex(path: &std::path::Path) -> String {
    let output = Command::new("md5sum")
        .arg(path)
        .output()
        .expect("run md5sum (coreutils)");
    assert!(output.status.success(), "md5sum failed");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// RFC 4648 §4 base64, lines of 76 characters ending in CRLF (RFC 2045 §6.8).
fn base64_lines(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                text.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    let mut out = String::new();
    for line in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// A message whose attachment is the EICAR file in base64, after a text part long enough
/// that the stream goes out in several INSTREAM chunks.
fn infected_message() -> Vec<u8> {
    let filler = "All work and no play makes a dull message.\r\n".repeat(5000);
    format!(
        "From: <sender@example.org>\r\nTo: <rcpt@example.net>\r\nSubject: quarterly figures\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <eicar-1@example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{filler}\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"figures.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}--b1--\r\n",
        base64_lines(&eicar())
    )
    .into_bytes()
}

fn clean_message() -> Vec<u8> {
    b"From: <sender@example.org>\r\nTo: <rcpt@example.net>\r\nSubject: lunch\r\n\
      Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <clean-1@example.org>\r\n\r\n\
      Shall we meet at noon?\r\n"
        .to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Starts clamd on `dir` with a TCP and a unix socket, and waits (60 s at most) until it
/// answers PING. Returns the daemon and the time it took.
async fn start_clamd(
    binary: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
) -> (Daemon, Duration) {
    let db = dir.join("db");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&db).expect("db dir");
    std::fs::create_dir_all(&tmp).expect("tmp dir");

    let sample = dir.join("eicar.com");
    std::fs::write(&sample, eicar()).expect("write sample");
    assert_eq!(eicar().len(), 68);
    assert_eq!(
        md5_hex(&sample),
        EICAR_MD5,
        "the EICAR file is not the expected one"
    );
    // ClamAV hash signature: MD5:size:name (signatures.md, "File hash signatures").
    std::fs::write(
        db.join("test.hdb"),
        format!("{EICAR_MD5}:68:Eicar-Test-Signature\n"),
    )
    .expect("write database");

    let config = dir.join("clamd.conf");
    std::fs::write(
        &config,
        format!(
            "Foreground yes\nDatabaseDirectory {db}\nTemporaryDirectory {tmp}\n\
             TCPSocket {port}\nTCPAddr 127.0.0.1\nLocalSocket {sock}\n\
             PidFile {dir}/clamd.pid\nStreamMaxLength 1M\nLogTime yes\n",
            db = db.display(),
            tmp = tmp.display(),
            sock = dir.join("clamd.sock").display(),
            dir = dir.display(),
        ),
    )
    .expect("write clamd.conf");

    let log = dir.join("clamd.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let started = Instant::now();
    let child = Command::new(binary)
        .arg(format!("--config-file={}", config.display()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start clamd");
    let mut daemon = Daemon {
        child,
        name: "clamd",
        log,
    };
    let probe =
        Clamd::parse(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).expect("address");
    for _ in 0..600 {
        daemon.assert_running();
        if probe.ping().await.is_ok() {
            return (daemon, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "clamd did not answer PING within 60 s; its output:\n{}",
        daemon.log()
    );
}

#[tokio::test]
async fn real_clamd_over_tcp_and_unix_socket() {
    let Some(binary) = interop_binary("/usr/sbin/clamd", "clamav-daemon") else {
        return;
    };
    let dir = TempDir::new("clamd");
    let port = free_port();
    let (daemon, startup) = start_clamd(&binary, dir.path(), port).await;
    eprintln!("clamd answered PING {} ms after start", startup.as_millis());
    assert!(
        startup < Duration::from_secs(30),
        "clamd took {startup:?} to start with a one-signature database"
    );

    let timeout = Duration::from_secs(30);
    let unix = format!("unix:{}", dir.path().join("clamd.sock").display());
    let clients = [
        Clamd::parse(&format!("tcp:127.0.0.1:{port}"), timeout).expect("tcp address"),
        Clamd::parse(&unix, timeout).expect("unix address"),
    ];
    let message = infected_message();
    assert!(
        message.len() > 3 * 64 * 1024,
        "the message spans several chunks"
    );
    assert!(
        !contains(&message, &eicar()),
        "the EICAR file is only in base64 in the message"
    );
    for clamd in &clients {
        let at = clamd.address();
        clamd.ping().await.unwrap_or_else(|e| panic!("{at}: {e}"));
        let version = clamd
            .version()
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(version.starts_with("ClamAV "), "{at}: {version}");

        match clamd.scan(&eicar()).await {
            Ok(ClamVerdict::Infected(name)) => assert!(name.contains("Eicar"), "{at}: {name}"),
            other => panic!("{at}: EICAR file: {other:?}"),
        }
        // clamd decodes the MIME structure and hashes the decoded attachment.
        match clamd.scan(&message).await {
            Ok(ClamVerdict::Infected(name)) => assert!(name.contains("Eicar"), "{at}: {name}"),
            other => panic!("{at}: message with an EICAR attachment: {other:?}"),
        }
        assert_eq!(
            clamd
                .scan(&clean_message())
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}")),
            ClamVerdict::Clean,
            "{at}: clean message"
        );
        // Just under StreamMaxLength: accepted and clean.
        let big = vec![b'a'; 1024 * 1024 - 1024];
        assert_eq!(
            clamd
                .scan(&big)
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}")),
            ClamVerdict::Clean,
            "{at}: stream under the limit"
        );

        // Over StreamMaxLength (1 MiB): clamd answers and closes while we are still sending.
        let huge = vec![b'a'; 3 * 1024 * 1024];
        match clamd.scan(&huge).await {
            Err(error @ ScanError::Answered { .. }) => {
                assert_eq!(
                    error.to_string(),
                    format!("clamd at {at} answered: INSTREAM size limit exceeded")
                );
            }
            other => panic!("{at}: stream over the limit: {other:?}"),
        }
        // The daemon carries on.
        assert_eq!(
            clamd
                .scan(&clean_message())
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}")),
            ClamVerdict::Clean
        );
    }
    let log = daemon.log();
    assert!(log.contains("FOUND"), "clamd logged its detections:\n{log}");
    drop(daemon);
}
