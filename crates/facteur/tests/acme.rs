//! ACME end to end with the binary: `facteur serve` with an `[acme]` section against Debian's
//! pebble on loopback. At start it obtains a certificate for its hostname over HTTP-01, the
//! challenge answered by its own `http` role, and installs it: a client of `submissions` sees
//! pebble's certificate. A SIGHUP makes it check again; with `renew_before_days` above the
//! certificate's lifetime it renews, and a new connection sees the new certificate while the
//! server keeps running. `facteur tls status` reports it. Skipped, saying so, only when pebble
//! is not installed (`.ci/run` installs it).

mod harness;

use harness::{Ports, Signal, Site, free_port};
use std::time::{Duration, Instant};

/// The leaf `submissions` presents for the server's name: (issuer, serial).
fn presented(port: u16) -> (String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let der = rt.block_on(facteur_testkit::leaf_certificate(
        ([127, 0, 0, 1], port).into(),
        "mx.example.test",
    ));
    let info = facteur_net::CertInfo::parse(&der).unwrap();
    (info.issuer, info.serial)
}

/// Waits until `submissions` presents a certificate other than `before` issued by pebble.
fn wait_for_new(port: u16, before: &str, site: &Site) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (issuer, serial) = presented(port);
        if issuer.contains("Pebble") && serial != before {
            return serial;
        }
        assert!(
            Instant::now() < deadline,
            "no new pebble certificate within 60 s (issuer {issuer}); log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn certificate_obtained_at_start_and_renewed_on_sighup_without_restart() {
    if !facteur_testkit::pebble::available() {
        assert!(
            std::env::var("FACTEUR_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "pebble is not installed (FACTEUR_REQUIRE_INTEROP=1)"
        );
        eprintln!("SKIPPED: pebble is not installed (apt-get install pebble)");
        return;
    }
    let ports = Ports {
        submission: Some(free_port()),
        submissions: Some(free_port()),
        http: Some(free_port()),
        ..Ports::none()
    };
    let scratch = std::env::temp_dir().join(format!("facteur-e2e-pebble-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    // pebble validates HTTP-01 on the http role's port of 127.0.0.1 (its DNS says so).
    let pebble = facteur_testkit::pebble::Pebble::start(&scratch, ports.http.unwrap(), free_port());
    {
        use std::os::unix::fs::PermissionsExt;
        // The server reads the CA file after dropping privileges.
        std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&pebble.ca_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut site = Site::with_ports(
        "acme",
        "",
        &format!(
            "[acme]\ndirectory = \"{}\"\nca_file = \"{}\"\ncontact = [\"postmaster@example.test\"]\n\
             renew_before_days = 100000\n",
            pebble.directory_url,
            pebble.ca_file.display()
        ),
        ports,
    );
    site.setup(&[]);
    let mut server = site.start();
    let port = site.ports.submissions.unwrap();
    let first = wait_for_new(port, "", &site);
    let status = site.cli(&["tls", "status"], None);
    assert!(
        status.stdout.contains("acme") && status.stdout.contains("mx.example.test"),
        "{status:?}"
    );
    server.signal(Signal::Hup);
    let second = wait_for_new(port, &first, &site);
    assert_ne!(first, second);
    let log = site.log();
    assert!(log.contains("ACME"), "{log}");
    server.signal(Signal::Term);
    server.wait_exit(Duration::from_secs(20)).expect("exit");
    drop(pebble);
    let _ = std::fs::remove_dir_all(&scratch);
}
