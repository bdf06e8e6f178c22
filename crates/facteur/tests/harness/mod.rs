//! End-to-end support: the real `facteur` binary as a child process, with its own data
//! directory, configuration file and loopback ports; the admin CLI; a small synchronous SMTP
//! and LMTP client that reads multi-line replies and can pipeline (RFC 2920).
//!
//! Every wait here is bounded; a server still running when its handle is dropped is killed, so
//! a failing test leaves no process behind.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_facteur");
/// Read and write timeout of every client socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to greet after its start.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nobody listens on right now (the kernel's choice of a free ephemeral port).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind("127.0.0.1:0") {
            return l.local_addr().unwrap().port();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no free loopback port");
}

/// Which roles listen, on which loopback ports (None: the role is disabled).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub smtp: Option<u16>,
    pub lmtp: Option<u16>,
    pub pop3: Option<u16>,
    pub imap: Option<u16>,
    pub submission: Option<u16>,
    pub submissions: Option<u16>,
    pub http: Option<u16>,
    /// The loopback address every role of the site listens on (127.0.0.1 unless a test
    /// needs several machines: 127.0.0.2, 127.0.0.3, ...).
    pub ip: [u8; 4],
}

impl Ports {
    /// Every role off; set the ones a test needs: `Ports { imap: Some(free_port()), ..Ports::none() }`.
    pub fn none() -> Ports {
        Ports {
            smtp: None,
            lmtp: None,
            pop3: None,
            imap: None,
            submission: None,
            submissions: None,
            http: None,
            ip: [127, 0, 0, 1],
        }
    }

    /// SMTP and LMTP on fresh ports, POP3 off.
    pub fn smtp_lmtp() -> Ports {
        Ports {
            smtp: Some(free_port()),
            lmtp: Some(free_port()),
            ..Ports::none()
        }
    }

    fn renew(&mut self) {
        for p in [
            &mut self.smtp,
            &mut self.lmtp,
            &mut self.pop3,
            &mut self.imap,
            &mut self.submission,
            &mut self.submissions,
            &mut self.http,
        ] {
            if p.is_some() {
                *p = Some(free_port());
            }
        }
    }
}

/// One server installation: a directory holding the configuration, the data directory and the
/// server's log. Removed on drop unless the test failed (then its path is printed).
pub struct Site {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub ports: Ports,
    /// Top-level keys, written before `[listen]`.
    top: String,
    /// Whole sections, written after `[listen]`.
    sections: String,
}

impl Site {
    pub fn new(name: &str, top: &str, sections: &str) -> Site {
        Site::with_ports(name, top, sections, Ports::smtp_lmtp())
    }

    pub fn with_ports(name: &str, top: &str, sections: &str, ports: Ports) -> Site {
        use std::os::unix::fs::PermissionsExt;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("facteur-e2e-{name}-{}-{nanos}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // As root, facteur drops to an unprivileged user that must reach the data directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let site = Site {
            config: dir.join("facteur.toml"),
            dir,
            ports,
            top: top.to_string(),
            sections: sections.to_string(),
        };
        site.write_config();
        site
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn smtp(&self) -> u16 {
        self.ports.smtp.expect("SMTP enabled")
    }

    pub fn lmtp(&self) -> u16 {
        self.ports.lmtp.expect("LMTP enabled")
    }

    pub fn pop3(&self) -> u16 {
        self.ports.pop3.expect("POP3 enabled")
    }

    pub fn imap(&self) -> u16 {
        self.ports.imap.expect("IMAP enabled")
    }

    pub fn submission(&self) -> u16 {
        self.ports.submission.expect("submission enabled")
    }

    fn write_config(&self) {
        let ip = std::net::Ipv4Addr::from(self.ports.ip);
        let role = |p: Option<u16>| match p {
            Some(p) => format!("[\"{ip}:{p}\"]"),
            None => "[]".to_string(),
        };
        // A grace period long enough for the tests' messages in flight, unless `top` sets one.
        let grace = if self.top.contains("shutdown_grace_secs") {
            ""
        } else {
            "shutdown_grace_secs = 10\n"
        };
        // mx.example.test unless `top` names the host.
        let hostname = if self.top.contains("hostname") {
            ""
        } else {
            "hostname = \"mx.example.test\"\n"
        };
        // Tests never ask the internet: without a `[dns]` of the test's own (a DNS server on
        // loopback), lookups go to a closed loopback port, and the MX's SPF/DKIM/DMARC checks,
        // which would only wait for it, are off unless the test configures `[auth]`.
        let dns = match (
            self.sections.contains("[dns]"),
            self.sections.contains("[auth]"),
        ) {
            (true, _) => "",
            (false, true) => "[dns]\nnameservers = [\"127.0.0.1:9\"]\n",
            (false, false) => "[dns]\nnameservers = [\"127.0.0.1:9\"]\n[auth]\nenabled = false\n",
        };
        // Nor does the MX's unknown-sender-domain check (a temporary failure without DNS),
        // for clients off the allow list, unless the test configures `[checks]`.
        let dns = if self.sections.contains("[dns]") || self.sections.contains("[checks]") {
            dns.to_string()
        } else {
            format!("{dns}[checks]\nsender_unknown_domain = \"off\"\n")
        };
        let text = format!(
            "{hostname}data_dir = \"{}\"\n{grace}{}\n\
             [listen]\nsmtp = {}\nlmtp = {}\npop3 = {}\npop3s = []\nimap = {}\nimaps = []\n\
             submission = {}\nsubmissions = {}\nhttp = {}\n{}\n{dns}",
            self.data_dir().display(),
            self.top,
            role(self.ports.smtp),
            role(self.ports.lmtp),
            role(self.ports.pop3),
            role(self.ports.imap),
            role(self.ports.submission),
            role(self.ports.submissions),
            role(self.ports.http),
            self.sections,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Runs `facteur --config <site> ARGS`, feeding `stdin`.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run(
            Command::new(BIN)
                .arg("--config")
                .arg(&self.config)
                .args(args),
            stdin,
        )
    }

    /// Like `cli` for a command that may not end by itself (`serve`): killed after `within`,
    /// then None.
    pub fn cli_within(&self, args: &[&str], within: Duration) -> Option<Output> {
        run_within(
            Command::new(BIN)
                .arg("--config")
                .arg(&self.config)
                .args(args),
            within,
            &self.dir,
        )
    }

    /// Like `cli`, but the command must succeed; returns its standard output.
    pub fn must(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.ok,
            "facteur {args:?} failed ({:?}): {}{}",
            out.code, out.stdout, out.stderr
        );
        out.stdout
    }

    /// Adds domain `example.test` and the accounts, each with password `secret`.
    pub fn setup(&self, accounts: &[&str]) {
        self.must(&["domain", "add", "example.test"], None);
        for a in accounts {
            self.must(&["account", "add", a, "--password-stdin"], Some("secret\n"));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// Starts `serve` and waits (bounded) for the greeting of its first role. When a port was
    /// taken between choosing and binding it, the ports are chosen again (a few times).
    pub fn start(&mut self) -> Server {
        for _ in 0..5 {
            let log_start = self.log().len();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("serve.log"))
                .unwrap();
            let child = Command::new(BIN)
                .arg("--config")
                .arg(&self.config)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut server = Server { child, exit: None };
            let port = self
                .ports
                .smtp
                .or(self.ports.lmtp)
                .or(self.ports.submission)
                .or(self.ports.pop3)
                .or(self.ports.imap)
                .expect("a role to wait for");
            let prefix = if self.ports.smtp.is_some()
                || self.ports.lmtp.is_some()
                || self.ports.submission.is_some()
            {
                "220"
            } else if self.ports.pop3.is_some() {
                "+OK"
            } else {
                "* OK"
            };
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline && server.try_exit().is_none() {
                if greets_at(self.ports.ip, port, prefix) {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let exited = server.try_exit().is_some();
            server.kill();
            let log = self.log();
            let this_run = log.get(log_start..).unwrap_or("");
            if exited && this_run.contains("already in use") {
                eprintln!("a port was taken before the server bound it; choosing others");
                self.ports.renew();
                self.write_config();
                continue;
            }
            panic!("the server did not start within {START_TIMEOUT:?}:\n{this_run}");
        }
        panic!("could not find free ports for the server");
    }

    /// Message-IDs in an account's mailbox, from `mailbox export`, with how often each occurs.
    /// Every exported file must carry the trace headers before the message.
    pub fn message_ids(&self, account: &str, mailbox: &str) -> HashMap<String, usize> {
        let mut count = HashMap::new();
        for (_, text) in self.export(account, mailbox) {
            let text = String::from_utf8_lossy(&text);
            let id = header(&text, "Message-ID").unwrap_or_else(|| {
                panic!("an exported message of {account} has no Message-ID:\n{text:.400}")
            });
            *count.entry(id).or_insert(0) += 1;
        }
        count
    }

    /// Waits (30 s at most) until `done`; on timeout, fails with `what` and the server's log.
    pub fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out: {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (Subject, whole text) of every message of `account`'s `mailbox`.
    pub fn subjects(&self, account: &str, mailbox: &str) -> Vec<(String, String)> {
        self.export(account, mailbox)
            .into_iter()
            .map(|(_, text)| {
                let text = String::from_utf8_lossy(&text).into_owned();
                (header(&text, "Subject").unwrap_or_default(), text)
            })
            .collect()
    }

    /// alice@example.test (password `secret`) submits a small message with `from` in From:
    /// to `to` on this site's submission port; the 250 is checked.
    pub fn submit_as_alice(&self, from: &str, to: &[&str], subject: &str) {
        // \0alice@example.test\0secret
        const ALICE: &str = "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=";
        let mut c = Client::connect_at(self.ports.ip, self.submission()).unwrap();
        expect(c.reply().unwrap(), "220").unwrap();
        expect(c.command("EHLO client.test").unwrap(), "250").unwrap();
        expect(c.command(&format!("AUTH PLAIN {ALICE}")).unwrap(), "235").unwrap();
        let body = format!(
            "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\n\r\nhello\r\n",
            to.join(", ")
        );
        let r = c
            .send_data("alice@example.test", to, body.as_bytes(), false)
            .unwrap();
        assert!(r[0].is("250"), "{}", r[0]);
        let _ = c.command("QUIT");
    }

    /// `mailbox export` into a fresh directory; returns (file name, content) of every file.
    pub fn export(&self, account: &str, mailbox: &str) -> Vec<(String, Vec<u8>)> {
        let out = self.dir.join(format!("export-{account}-{mailbox}"));
        let _ = std::fs::remove_dir_all(&out);
        self.must(
            &[
                "mailbox",
                "export",
                account,
                mailbox,
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        );
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&out).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                name.ends_with(".eml") && name[..name.len() - 4].parse::<u32>().is_ok(),
                "unexpected exported file {name}"
            );
            let text = std::fs::read(entry.path()).unwrap();
            // Delivered mail carries its trace headers; IMAP APPENDs (Drafts) do not.
            assert!(
                mailbox != "INBOX" || text.starts_with(b"Return-Path: "),
                "{name} does not start with Return-Path"
            );
            let head = String::from_utf8_lossy(&text[..text.len().min(4096)]).into_owned();
            assert!(
                mailbox != "INBOX"
                    || header(&head, "Delivered-To").is_some()
                        && header(&head, "Received").is_some(),
                "{name} lacks its trace headers:\n{head:.600}"
            );
            files.push((name, text));
        }
        files.sort_by_key(|(name, _)| name[..name.len() - 4].parse::<u32>().unwrap());
        files
    }

    /// `store check`: the process must succeed and report no error.
    pub fn check_store(&self) -> Check {
        let out = self.cli(&["store", "check"], None);
        let check = Check::parse(&out.stdout)
            .unwrap_or_else(|| panic!("unexpected store check output: {out:?}"));
        assert!(
            out.ok && check.errors == 0,
            "the store is inconsistent: {}{}",
            out.stdout,
            out.stderr
        );
        check
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The first line of `store check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub messages: u64,
    pub blobs: u64,
    pub unreferenced_files: u64,
    pub errors: u64,
}

impl Check {
    fn parse(stdout: &str) -> Option<Check> {
        let first = stdout.lines().next()?;
        let mut fields = HashMap::new();
        for pair in first.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            fields.insert(k, v.parse::<u64>().ok()?);
        }
        Some(Check {
            messages: *fields.get("messages")?,
            blobs: *fields.get("blobs")?,
            unreferenced_files: *fields.get("unreferenced_files")?,
            errors: *fields.get("errors")?,
        })
    }
}

/// The value of the first header field `name` (case-insensitive), up to the end of the header,
/// unfolded (RFC 5322 §2.2.3: continuation lines joined with a space).
pub fn header(text: &str, name: &str) -> Option<String> {
    let mut lines = text.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            let mut value = v.trim().to_string();
            while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
            }
            return Some(value);
        }
    }
    None
}

/// True when something listens on `port` and its first line starts with `prefix`.
pub fn greets(port: u16, prefix: &str) -> bool {
    greets_at([127, 0, 0, 1], port, prefix)
}

pub fn greets_at(ip: [u8; 4], port: u16, prefix: &str) -> bool {
    let Ok(stream) = TcpStream::connect((std::net::Ipv4Addr::from(ip), port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(prefix)
}

#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading (a refused argument): ignore a broken pipe.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` without input, its output going through files in `scratch`; None (after killing
/// it) when it is still running after `within`.
pub fn run_within(cmd: &mut Command, within: Duration, scratch: &Path) -> Option<Output> {
    let (out_path, err_path) = (scratch.join("run.stdout"), scratch.join("run.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    status.map(|status| Output {
        ok: status.success(),
        code: status.code(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    })
}

/// A running `facteur serve`; killed (SIGKILL) and reaped on drop if still running.
pub struct Server {
    child: Child,
    exit: Option<ExitStatus>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().unwrap();
        }
        self.exit
    }

    /// SIGKILL: the process ends without any chance to clean up.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            self.exit = Some(self.child.wait().unwrap());
        }
    }

    pub fn signal(&mut self, signal: Signal) {
        assert!(self.try_exit().is_none(), "the server exited already");
        send_signal(self.pid(), signal);
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Term,
    Int,
    Hup,
}

/// kill(2) on a child; libc is already a dependency of the binary, so no `kill` program needed.
#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: Signal) {
    let number = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Int => libc::SIGINT,
        Signal::Hup => libc::SIGHUP,
    };
    // SAFETY: kill(2) with the pid of a child not yet reaped and a valid signal number.
    let sent = unsafe { libc::kill(pid as libc::pid_t, number) };
    assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
}

/// One SMTP, LMTP or POP3 reply: its code (0 for POP3) and its lines without CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn last(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }

    pub fn is(&self, prefix: &str) -> bool {
        self.last().starts_with(prefix)
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines.join(" / "))
    }
}

/// A synchronous client for SMTP and LMTP: writes what it is given, reads whole replies.
pub struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> std::io::Result<Client> {
        Client::connect_at([127, 0, 0, 1], port)
    }

    pub fn connect_at(ip: [u8; 4], port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect((std::net::Ipv4Addr::from(ip), port))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::with_capacity(64 * 1024, stream.try_clone()?),
            stream,
        })
    }

    /// Connects, reads the greeting and says EHLO (or LHLO).
    pub fn hello(port: u16, lmtp: bool) -> std::io::Result<Client> {
        let mut c = Client::connect(port)?;
        expect(c.reply()?, "220")?;
        let verb = if lmtp { "LHLO" } else { "EHLO" };
        expect(c.command(&format!("{verb} client.test"))?, "250")?;
        Ok(c)
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Reads one reply: `250-...` lines continue it, `250 ...` ends it.
    pub fn reply(&mut self) -> std::io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = (&mut self.reader).take(4096).read_until(b'\n', &mut raw)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {lines:?}"),
                ));
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_string();
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| std::io::Error::other(format!("not a reply line: {line:?}")))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    /// Reads a POP3 status line.
    pub fn pop_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_string())
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn command(&mut self, line: &str) -> std::io::Result<Reply> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Sends MAIL, every RCPT and DATA in one write (RFC 2920), checks their replies, then sends
    /// the message (which must end with CRLF and need no dot-stuffing) and returns the replies
    /// to it: one for SMTP, one per recipient for LMTP.
    pub fn send_data(
        &mut self,
        from: &str,
        to: &[&str],
        message: &[u8],
        lmtp: bool,
    ) -> std::io::Result<Vec<Reply>> {
        let mut head = format!("MAIL FROM:<{from}> SIZE={}\r\n", message.len());
        for rcpt in to {
            head.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        }
        head.push_str("DATA\r\n");
        self.send(head.as_bytes())?;
        expect(self.reply()?, "250")?;
        for _ in to {
            expect(self.reply()?, "250")?;
        }
        expect(self.reply()?, "354")?;
        self.send(message)?;
        self.send(b".\r\n")?;
        self.final_replies(to.len(), lmtp)
    }

    /// Like `send_data` with CHUNKING (RFC 3030): the whole transaction, the message in
    /// `chunks` BDAT chunks, in one write; the last chunk's reply(ies) are returned.
    pub fn send_bdat(
        &mut self,
        from: &str,
        to: &[&str],
        message: &[u8],
        chunks: usize,
        lmtp: bool,
    ) -> std::io::Result<Vec<Reply>> {
        let mut out = format!("MAIL FROM:<{from}>\r\n").into_bytes();
        for rcpt in to {
            out.extend_from_slice(format!("RCPT TO:<{rcpt}>\r\n").as_bytes());
        }
        let step = message.len().div_ceil(chunks.max(1)).max(1);
        let pieces: Vec<&[u8]> = message.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let last = if i + 1 == pieces.len() { " LAST" } else { "" };
            out.extend_from_slice(format!("BDAT {}{last}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
        }
        self.send(&out)?;
        expect(self.reply()?, "250")?;
        for _ in to {
            expect(self.reply()?, "250")?;
        }
        for _ in 1..pieces.len() {
            expect(self.reply()?, "250")?;
        }
        self.final_replies(to.len(), lmtp)
    }

    fn final_replies(&mut self, recipients: usize, lmtp: bool) -> std::io::Result<Vec<Reply>> {
        let n = if lmtp { recipients } else { 1 };
        (0..n).map(|_| self.reply()).collect()
    }
}

/// `reply` if it starts with `prefix`, otherwise an error naming it.
pub fn expect(reply: Reply, prefix: &str) -> std::io::Result<Reply> {
    if reply.is(prefix) {
        Ok(reply)
    } else {
        Err(std::io::Error::other(format!(
            "expected {prefix}, got {reply}"
        )))
    }
}

/// A test message: `size` bytes or a little more, whose body is a function of its Message-ID,
/// so what a mailbox holds can be compared byte for byte with what was sent. No line starts
/// with a dot, so it travels in DATA unchanged.
pub fn message(id: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: <load@remote.test>\r\nTo: <rcpt@example.test>\r\nSubject: test {id}\r\n\
         Message-ID: {id}\r\n\r\n"
    )
    .into_bytes();
    let mut line = 0u64;
    while m.len() < size {
        m.extend_from_slice(
            format!("{id} line {line:08} abcdefghijklmnopqrstuvwxyz 0123456789\r\n").as_bytes(),
        );
        line += 1;
    }
    m
}

/// xorshift64: random enough for kill delays, reproducible from the seed it prints.
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> Rng {
        let seed = std::env::var("FACTEUR_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        println!("seed {seed} (FACTEUR_TEST_SEED={seed} repeats it)");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform enough in `lo..hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
