//! Debian's `pebble` (an RFC 8555 test CA) on loopback for ACME tests, with
//! `pebble-challtestsrv` as its DNS server answering every A query with 127.0.0.1, so the
//! names under test resolve to the server under test. Nothing leaves the machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether pebble and its DNS companion are installed.
pub fn available() -> bool {
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    on_path("pebble") && on_path("pebble-challtestsrv")
}

/// A loopback port free for TCP and UDP (the DNS server takes both).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running pebble; killed on drop.
pub struct Pebble {
    /// The ACME directory URL.
    pub directory_url: String,
    /// The CA of pebble's own HTTPS endpoint (the ACME client must trust it).
    pub ca_file: PathBuf,
    processes: Vec<Child>,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.processes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Pebble {
    /// Starts pebble in `dir` (logs there too), validating HTTP-01 on `http_port` and
    /// TLS-ALPN-01 on `tls_port` of 127.0.0.1; returns once its API accepts connections.
    pub fn start(dir: &Path, http_port: u16, tls_port: u16) -> Pebble {
        std::fs::create_dir_all(dir).unwrap();
        let ca_file = https_certificate(dir);
        let (api, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let config = format!(
            r#"{{"pebble": {{"listenAddress": "127.0.0.1:{api}", "managementListenAddress": "127.0.0.1:{management}",
  "certificate": "{}", "privateKey": "{}", "httpPort": {http_port}, "tlsPort": {tls_port},
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        );
        std::fs::write(dir.join("pebble.json"), config).unwrap();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let mut pebble = Pebble {
            directory_url: format!("https://127.0.0.1:{api}/dir"),
            ca_file,
            processes: Vec::new(),
        };
        // DNS only: every A query is 127.0.0.1, no AAAA; its own challenge servers are off.
        pebble.processes.push(
            Command::new("pebble-challtestsrv")
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .args(["-dns01", &format!("127.0.0.1:{dns}")])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .stdout(log("challtestsrv.log"))
                .stderr(log("challtestsrv.err"))
                .spawn()
                .unwrap(),
        );
        pebble.processes.push(
            Command::new("pebble")
                .arg("-config")
                .arg(dir.join("pebble.json"))
                .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0")
                .stdout(log("pebble.log"))
                .stderr(log("pebble.err"))
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", api)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble did not start; see {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pebble
    }
}

/// A CA and a certificate for 127.0.0.1 it signed, for pebble's own HTTPS; returns the CA file.
fn https_certificate(dir: &Path) -> PathBuf {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "facteur test ACME server CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
    dir.join("ca.pem")
}
