//! Shared support for the binary's tests: a data directory, a config on free loopback ports,
//! the admin CLI, a running server, and a minimal synchronous SMTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_facteur");

pub struct Env {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub smtp: u16,
    pub lmtp: u16,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    /// A data directory reachable by the unprivileged user facteur switches to as root.
    pub fn new(name: &str, extra: &str) -> Env {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("facteur-bin-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (smtp, lmtp) = (free_port(), free_port());
        let config = dir.join("facteur.toml");
        std::fs::write(
            &config,
            format!(
                "hostname = \"mx.example.test\"\ndata_dir = \"{}\"\nshutdown_grace_secs = 10\n{extra}\n\
                 [listen]\nsmtp = [\"127.0.0.1:{smtp}\"]\nlmtp = [\"127.0.0.1:{lmtp}\"]\npop3 = []\npop3s = []\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        Env {
            dir,
            config,
            smtp,
            lmtp,
        }
    }

    /// Runs an admin command; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    pub fn must(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.cli(args, stdin);
        assert!(ok, "facteur {args:?} failed: {err}");
        out
    }

    pub fn setup(&self, accounts: &[&str]) {
        self.must(&["domain", "add", "example.test"], None);
        for a in accounts {
            self.must(&["account", "add", a, "--password-stdin"], Some("secret\n"));
        }
    }

    /// Starts `serve` and waits (bounded) for its SMTP greeting.
    pub fn serve(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = Smtp::connect(self.smtp)
                && c.reply().starts_with("220")
            {
                return child;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "server did not start: {}",
            std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
        );
    }

    /// Message-IDs of every message in an account's INBOX, as exported.
    pub fn message_ids(&self, account: &str) -> Vec<String> {
        let out = self.dir.join(format!("export-{account}"));
        let _ = std::fs::remove_dir_all(&out);
        self.must(
            &[
                "mailbox",
                "export",
                account,
                "INBOX",
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        );
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&out).unwrap() {
            let text = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&text);
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .expect("Message-ID header");
            ids.push(id.to_string());
        }
        ids
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }
}

/// A minimal SMTP client: one command at a time, replies read in full.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Smtp {
    pub fn connect(port: u16) -> std::io::Result<Smtp> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Smtp {
            reader: BufReader::new(stream.try_clone()?),
            stream,
        })
    }

    /// The last line of the next reply; empty when the connection failed.
    pub fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return String::new(),
                Ok(_) if line.as_bytes().get(3) == Some(&b'-') => continue,
                Ok(_) => return line.trim_end().to_string(),
            }
        }
    }

    pub fn send(&mut self, data: &[u8]) -> bool {
        self.stream.write_all(data).is_ok()
    }

    pub fn command(&mut self, line: &str) -> String {
        if !self.send(format!("{line}\r\n").as_bytes()) {
            return String::new();
        }
        self.reply()
    }

    /// MAIL, RCPT..., DATA, body; returns the final reply (empty on a broken connection).
    pub fn message(&mut self, from: &str, to: &[&str], body: &[u8]) -> String {
        if !self
            .command(&format!("MAIL FROM:<{from}>"))
            .starts_with("250")
        {
            return String::new();
        }
        for rcpt in to {
            if !self
                .command(&format!("RCPT TO:<{rcpt}>"))
                .starts_with("250")
            {
                return String::new();
            }
        }
        if !self.command("DATA").starts_with("354") {
            return String::new();
        }
        if !self.send(body) || !self.send(b".\r\n") {
            return String::new();
        }
        self.reply()
    }
}

/// A message with the given Message-ID and `size` bytes of body.
pub fn message(id: &str, size: usize) -> Vec<u8> {
    let mut m =
        format!("From: load@remote.test\r\nSubject: test\r\nMessage-ID: {id}\r\n\r\n").into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn data_dir(env: &Env) -> &Path {
    &env.dir
}
