//! Certificates from the outside: `facteur tls status`, SIGHUP reloading a replaced
//! certificate, a broken file keeping the certificate in service.

mod harness;

use harness::{Signal, Site};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes a new self-signed certificate for `name` to `cert`/`key` (a new random serial).
fn new_certificate(cert: &Path, key: &Path, name: &str) {
    let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    std::fs::write(key, made.key_pair.serialize_pem()).unwrap();
    std::fs::write(cert, made.cert.pem()).unwrap();
}

fn wait_for_log(site: &Site, from: usize, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if site.log()[from..].contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn tls_status_and_sighup_reload() {
    let certs: PathBuf =
        std::env::temp_dir().join(format!("facteur-e2e-tls-{}", std::process::id()));
    std::fs::create_dir_all(&certs).unwrap();
    let (cert, key) = (certs.join("mail.crt"), certs.join("mail.key"));
    new_certificate(&cert, &key, "mx.example.test");
    let sections = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nreload_check_secs = 0\n",
        cert.display(),
        key.display()
    );
    let mut site = Site::new("tls", "", &sections);
    let status = site.must(&["tls", "status"], None);
    for expected in [
        "mail.crt",
        "hostnames: mx.example.test",
        "source:    file",
        "days left: ",
        "hint:      ok",
    ] {
        assert!(status.contains(expected), "{expected:?} not in\n{status}");
    }

    let mut server = site.start();
    let from = site.log().len();
    new_certificate(&cert, &key, "mx.example.test");
    server.signal(Signal::Hup);
    // Logged only when the serial changed.
    assert!(
        wait_for_log(&site, from, "certificate reloaded"),
        "{}",
        site.log()
    );

    let from = site.log().len();
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.signal(Signal::Hup);
    assert!(
        wait_for_log(&site, from, "keeping the certificate loaded before"),
        "{}",
        site.log()
    );
    assert!(site.log()[from..].contains("mail.crt"), "{}", site.log());
    assert!(
        server.try_exit().is_none(),
        "a broken file must not stop the server"
    );
    server.signal(Signal::Term);
    assert!(server.wait_exit(Duration::from_secs(20)).is_some());

    // status names the broken file and fails.
    let broken = site.cli(&["tls", "status"], None);
    assert!(
        !broken.ok && broken.stdout.contains("cannot read it"),
        "{}",
        broken.stdout
    );
    let _ = std::fs::remove_dir_all(&certs);
}
