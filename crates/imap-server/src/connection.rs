//! One IMAP connection: socket, TLS, framing, timeouts, the session state and command dispatch.

use crate::selected::View;
use crate::{Context, Role, UserIpGuard};
use facteur_directory::{Login, Mailbox, SaslOutcome, sasl};
use facteur_imap_session::parse::CommandBody;
use facteur_imap_session::{Frame, Framer, encode, parse_command};
use facteur_net::Input;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_CHUNK: usize = 16 * 1024;
const MAX_AUTH_FAILURES: u32 = 3;
const MAX_ERRORS: u32 = 20;

pub(crate) struct User {
    pub mailbox: Mailbox,
    _guard: UserIpGuard,
}

pub(crate) enum Flow {
    Continue,
    Close,
    StartTls,
    Compress,
}

pub(crate) struct Session {
    pub ctx: Arc<Context>,
    pub peer: SocketAddr,
    pub tls: bool,
    /// COMPRESS=DEFLATE is active (RFC 4978).
    pub compressed: bool,
    pub out: Vec<u8>,
    pub user: Option<User>,
    pub selected: Option<View>,
    pub pending_fetch: Option<crate::fetch::FetchJob>,
    /// ENABLEd (RFC 5161): IMAP4rev2, UTF8=ACCEPT, CONDSTORE, QRESYNC.
    pub rev2: bool,
    pub utf8: bool,
    pub condstore: bool,
    pub qresync: bool,
    framer: Framer,
    auth_failures: u32,
    pub errors: u32,
    shutdown_seen: bool,
    greeted: bool,
    buf: Vec<u8>,
}

pub async fn handle(stream: TcpStream, peer: SocketAddr, role: Role, ctx: Arc<Context>) {
    tracing::info!(role = role.name(), remote = %peer, "connect");
    let settings = &ctx.settings;
    let max_literal = (settings.max_append_size as usize).max(64 * 1024);
    let mut s = Session {
        ctx: ctx.clone(),
        peer,
        tls: false,
        compressed: false,
        out: Vec::new(),
        user: None,
        selected: None,
        pending_fetch: None,
        rev2: false,
        utf8: false,
        condstore: false,
        qresync: false,
        framer: Framer::new(
            settings.max_line_length,
            max_literal,
            max_literal + settings.max_line_length,
        ),
        auth_failures: 0,
        errors: 0,
        shutdown_seen: false,
        greeted: false,
        buf: vec![0u8; READ_CHUNK],
    };
    let result = if role == Role::Imaps {
        s.over_tls(stream).await
    } else {
        s.plain(stream).await
    };
    let user = s
        .user
        .as_ref()
        .map(|u| u.mailbox.address.clone())
        .unwrap_or_default();
    match result {
        Ok(()) => tracing::info!(role = role.name(), remote = %peer, user, "disconnect"),
        Err(e) => {
            tracing::info!(role = role.name(), remote = %peer, user, reason = %e, "disconnect")
        }
    }
}

impl Session {
    async fn plain(&mut self, mut stream: TcpStream) -> std::io::Result<()> {
        self.greet();
        match self.drive(&mut stream).await? {
            Flow::StartTls => self.over_tls(stream).await,
            Flow::Compress => {
                self.drive(&mut crate::compress::Deflate::new(&mut stream))
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn over_tls(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Ok(());
        };
        let mut tls = match tokio::time::timeout(Duration::from_secs(60), acceptor.accept(stream))
            .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(std::io::Error::other(format!("TLS handshake failed: {e}"))),
            Err(_) => return Err(std::io::Error::other("TLS handshake timed out")),
        };
        self.tls = true;
        if !self.greeted {
            self.greet();
        }
        if let Flow::Compress = self.drive(&mut tls).await? {
            self.drive(&mut crate::compress::Deflate::new(&mut tls))
                .await?;
        }
        let _ = tls.shutdown().await;
        Ok(())
    }

    fn greet(&mut self) {
        self.greeted = true;
        let caps = self.capabilities();
        self.untagged(&format!(
            "OK [CAPABILITY {caps}] {} IMAP ready",
            self.ctx.hostname
        ));
    }

    pub fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "LITERAL+",
        ];
        if self.user.is_none() {
            if !self.tls && self.ctx.tls.is_some() {
                caps.push("STARTTLS");
            }
            let mut caps = caps.join(" ");
            // RFC 9051 §6.2.2: the mechanisms, only where passwords may travel (TLS, or
            // plaintext allowed by the admin); none has channel binding.
            if self.tls || self.ctx.settings.plaintext_auth {
                for m in self.ctx.directory.sasl_mechanisms() {
                    caps.push_str(" AUTH=");
                    caps.push_str(m);
                }
            } else {
                caps.push_str(" LOGINDISABLED");
            }
            return caps;
        }
        caps.extend([
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "SEARCHRES",
            "CONDSTORE",
            "QRESYNC",
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "STATUS=SIZE",
            "UTF8=ACCEPT",
            "OBJECTID",
            "BINARY",
            "MULTIAPPEND",
            "WITHIN",
            "UNAUTHENTICATE",
        ]);
        if !self.compressed {
            caps.push("COMPRESS=DEFLATE");
        }
        format!(
            "{} APPENDLIMIT={}",
            caps.join(" "),
            self.ctx.settings.max_append_size
        )
    }

    pub fn untagged(&mut self, text: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(status.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.ctx.settings.timeout_secs)
    }

    pub async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        let t = self.timeout();
        facteur_net::flush_out(stream, &mut self.out, t).await
    }

    /// Reads more bytes into the framer. Ok(false): the client closed, timed out or the
    /// server is shutting down (a BYE is queued).
    async fn fill<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<bool> {
        self.flush(stream).await?;
        let idle = self.timeout();
        let input = facteur_net::next_input(
            stream,
            &mut self.buf,
            idle,
            &self.ctx.shutdown,
            &mut self.shutdown_seen,
        );
        match input.await? {
            Input::Read(0) => Ok(false),
            Input::Read(n) => {
                let data = self.buf[..n].to_vec();
                self.framer.push(&data);
                Ok(true)
            }
            Input::Shutdown => {
                self.untagged("BYE Server shutting down");
                Ok(false)
            }
            Input::Timeout => {
                self.untagged("BYE Autologout; idle for too long");
                Ok(false)
            }
        }
    }

    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<Flow> {
        loop {
            while let Some(frame) = self.framer.next_frame() {
                let flow = match frame {
                    Frame::Continue => {
                        self.out.extend_from_slice(b"+ Ready for literal data\r\n");
                        self.flush(stream).await?;
                        Flow::Continue
                    }
                    Frame::TooLong { tag, literal } => {
                        self.errors += 1;
                        match (tag, literal) {
                            (Some(tag), true) => {
                                self.tagged(&tag, "NO", "[TOOBIG] Literal too large")
                            }
                            (Some(tag), false) => self.tagged(&tag, "BAD", "Command line too long"),
                            (None, _) => self.untagged("BAD Command line too long"),
                        }
                        Flow::Continue
                    }
                    Frame::Command(bytes) => match parse_command(&bytes) {
                        Ok(cmd) => {
                            let flow = self.execute(&cmd.tag, cmd.body, stream).await?;
                            while self.pending_fetch.is_some() {
                                self.fetch_step();
                                if self.out.len() > 256 * 1024 {
                                    self.flush(stream).await?;
                                }
                            }
                            flow
                        }
                        Err((tag, e)) => {
                            self.errors += 1;
                            match tag {
                                Some(tag) => self.tagged(&tag, "BAD", &format!("{e}")),
                                None => self.untagged(&format!("BAD {e}")),
                            }
                            Flow::Continue
                        }
                    },
                };
                if self.errors >= MAX_ERRORS {
                    self.untagged("BYE Too many errors");
                    self.flush(stream).await?;
                    return Ok(Flow::Close);
                }
                match flow {
                    Flow::Continue => {}
                    Flow::Close => {
                        self.flush(stream).await?;
                        return Ok(Flow::Close);
                    }
                    Flow::StartTls => {
                        self.flush(stream).await?;
                        // RFC 9051 §6.2.1: bytes pipelined after STARTTLS are discarded.
                        self.framer.clear();
                        return Ok(Flow::StartTls);
                    }
                    Flow::Compress => {
                        self.flush(stream).await?;
                        // What follows the OK is compressed; nothing may have been pipelined.
                        self.framer.clear();
                        self.compressed = true;
                        return Ok(Flow::Compress);
                    }
                }
                if self.out.len() > 64 * 1024 {
                    self.flush(stream).await?;
                }
            }
            if !self.fill(stream).await? {
                self.flush(stream).await?;
                return Ok(Flow::Close);
            }
        }
    }

    async fn execute<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        tag: &str,
        body: CommandBody,
        stream: &mut S,
    ) -> std::io::Result<Flow> {
        let authenticated = self.user.is_some();
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.untagged(&format!("CAPABILITY {caps}"));
                self.tagged(tag, "OK", "CAPABILITY completed");
            }
            CommandBody::Noop => {
                self.sync_selected(true);
                self.tagged(tag, "OK", "NOOP completed");
            }
            // RFC 3501 §6.4.1: every change is already durable; CHECK is a NOOP here.
            CommandBody::Check => {
                self.sync_selected(true);
                self.tagged(tag, "OK", "CHECK completed");
            }
            CommandBody::Logout => {
                self.untagged("BYE Logging out");
                self.tagged(tag, "OK", "LOGOUT completed");
                return Ok(Flow::Close);
            }
            CommandBody::Id(fields) => {
                if !fields.is_empty() {
                    let desc: Vec<String> = fields
                        .iter()
                        .take(8)
                        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
                        .collect();
                    tracing::debug!(remote = %self.peer, client = %desc.join(" ").escape_debug(), "client id");
                }
                self.untagged(&format!(
                    "ID (\"name\" \"facteur\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                self.tagged(tag, "OK", "ID completed");
            }
            CommandBody::StartTls => {
                if self.tls || self.compressed || self.ctx.tls.is_none() {
                    self.tagged(tag, "BAD", "STARTTLS not available");
                } else if authenticated {
                    self.tagged(tag, "BAD", "Already authenticated");
                } else {
                    self.tagged(tag, "OK", "Begin TLS negotiation now");
                    return Ok(Flow::StartTls);
                }
            }
            CommandBody::Login { user, password } => {
                if self.may_authenticate(tag) {
                    return self.login(tag, user, password, stream).await;
                }
            }
            CommandBody::Authenticate { mechanism, initial } => {
                if self.may_authenticate(tag) {
                    return self.authenticate(tag, &mechanism, initial, stream).await;
                }
            }
            body if !authenticated => {
                let _ = body;
                self.errors += 1;
                self.tagged(tag, "BAD", "Log in first");
            }
            CommandBody::Unauthenticate => {
                self.selected = None;
                self.user = None;
                self.rev2 = false;
                self.utf8 = false;
                self.condstore = false;
                self.qresync = false;
                self.tagged(tag, "OK", "Unauthenticated");
            }
            CommandBody::Enable(caps) => {
                let mut enabled = Vec::new();
                for c in caps {
                    let on = match c.as_str() {
                        "IMAP4REV2" => {
                            self.rev2 = true;
                            "IMAP4rev2"
                        }
                        "UTF8=ACCEPT" => {
                            self.utf8 = true;
                            "UTF8=ACCEPT"
                        }
                        "CONDSTORE" => {
                            self.condstore = true;
                            "CONDSTORE"
                        }
                        "QRESYNC" => {
                            self.condstore = true;
                            self.qresync = true;
                            "QRESYNC"
                        }
                        _ => continue,
                    };
                    if !enabled.contains(&on) {
                        enabled.push(on);
                    }
                }
                self.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
                self.tagged(tag, "OK", "ENABLE completed");
            }
            CommandBody::Idle => return self.idle(tag, stream).await,
            CommandBody::Compress(mechanism) => {
                if self.compressed {
                    self.tagged(tag, "NO", "[COMPRESSIONACTIVE] Already compressing");
                } else if mechanism != "DEFLATE" {
                    self.tagged(tag, "BAD", "Unknown compression mechanism");
                } else {
                    self.tagged(tag, "OK", "DEFLATE active");
                    return Ok(Flow::Compress);
                }
            }
            body => self.mailbox_command(tag, body).await,
        }
        Ok(Flow::Continue)
    }

    /// LOGIN and AUTHENTICATE: only once, and not in clear unless the admin allows it;
    /// otherwise the refusal is answered here.
    fn may_authenticate(&mut self, tag: &str) -> bool {
        if self.user.is_some() {
            self.tagged(tag, "BAD", "Already authenticated");
            false
        } else if !self.tls && !self.ctx.settings.plaintext_auth {
            self.tagged(
                tag,
                "NO",
                "[PRIVACYREQUIRED] Use STARTTLS or port 993 first",
            );
            false
        } else {
            true
        }
    }

    /// UTF-8 names and strings for clients that enabled IMAP4rev2 or UTF8=ACCEPT.
    pub fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8
    }

    /// LOGIN (RFC 9051 §6.2.3).
    async fn login<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        tag: &str,
        user: String,
        password: String,
        stream: &mut S,
    ) -> std::io::Result<Flow> {
        let directory = self.ctx.directory.clone();
        let verified = {
            let Ok(_slot) = self.ctx.verifications.acquire().await else {
                self.tagged(tag, "NO", "[UNAVAILABLE] Try again later");
                return Ok(Flow::Continue);
            };
            let u = user.clone();
            tokio::task::spawn_blocking(move || directory.authenticate(&u, &password)).await
        };
        match verified {
            Ok(Ok(Some(login))) => Ok(self.logged_in(tag, login)),
            Ok(Ok(None)) => self.auth_failed(tag, &user, stream).await,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "directory lookup failed");
                Ok(self.unavailable(tag))
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication task failed");
                Ok(self.unavailable(tag))
            }
        }
    }

    fn unavailable(&mut self, tag: &str) -> Flow {
        self.tagged(
            tag,
            "NO",
            "[UNAVAILABLE] Temporary failure, try again later",
        );
        Flow::Continue
    }

    /// A verified login becomes the session's user, within the per-user-per-address cap.
    fn logged_in(&mut self, tag: &str, login: Login) -> Flow {
        let Some(guard) = self.ctx.admit(login.mailbox.account, self.peer.ip()) else {
            tracing::warn!(remote = %self.peer, user = %login.mailbox.address, "too many sessions for this user from this address");
            self.tagged(
                tag,
                "NO",
                "[LIMIT] Too many connections for this user from this address",
            );
            return Flow::Continue;
        };
        tracing::info!(remote = %self.peer, user = %login.mailbox.address, via = login.via(), "login");
        self.user = Some(User {
            mailbox: login.mailbox,
            _guard: guard,
        });
        let caps = self.capabilities();
        self.tagged(tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
        Flow::Continue
    }

    async fn auth_failed<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        tag: &str,
        user: &str,
        stream: &mut S,
    ) -> std::io::Result<Flow> {
        facteur_net::log_auth_failure("imap", self.peer.ip(), user);
        self.auth_failures += 1;
        self.flush(stream).await?;
        tokio::time::sleep(Duration::from_millis(
            self.ctx.settings.auth_failure_delay_ms,
        ))
        .await;
        self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.untagged("BYE Too many authentication failures");
            return Ok(Flow::Close);
        }
        Ok(Flow::Continue)
    }

    /// Reads one line for AUTHENTICATE continuations.
    async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            match self.framer.take_line() {
                Some(Ok(line)) => return Ok(Some(line)),
                Some(Err(())) => return Ok(None),
                None => {
                    if !self.fill(stream).await? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2) with SASL-IR (RFC 4959): every mechanism the directory
    /// enables (`Directory::sasl_mechanisms`). Steps run off the runtime's workers (they may
    /// verify an Argon2id hash), one verification slot each.
    async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
        stream: &mut S,
    ) -> std::io::Result<Flow> {
        let Some(mut exchange) = self.ctx.directory.sasl_start(mechanism, &self.ctx.hostname)
        else {
            self.tagged(tag, "NO", "Unsupported authentication mechanism");
            return Ok(Flow::Continue);
        };
        // RFC 4959 §3: "=" is an empty initial response.
        let decode = |raw: &[u8]| -> Option<Vec<u8>> {
            if raw == b"=" {
                return Some(Vec::new());
            }
            sasl::decode_base64(std::str::from_utf8(raw).ok()?)
        };
        let mut response = match initial {
            Some(raw) => match decode(&raw) {
                Some(bytes) => Some(bytes),
                None => {
                    self.tagged(tag, "BAD", "Invalid base64");
                    return Ok(Flow::Continue);
                }
            },
            None => None,
        };
        let mut first = true;
        loop {
            let ctx = self.ctx.clone();
            let outcome = {
                let Ok(_slot) = ctx.verifications.acquire().await else {
                    return Ok(self.unavailable(tag));
                };
                let step = exchange
                    .next_blocking(self.ctx.directory.clone(), first, response.take())
                    .await;
                let Some((back, outcome)) = step else {
                    return Ok(self.unavailable(tag));
                };
                exchange = back;
                outcome
            };
            first = false;
            match outcome {
                SaslOutcome::Challenge(c) => {
                    let line = format!("+ {}\r\n", sasl::encode_base64(&c));
                    self.out.extend_from_slice(line.as_bytes());
                    let Some(answer) = self.read_line(stream).await? else {
                        return Ok(Flow::Close);
                    };
                    // RFC 9051 §6.2.2: "*" cancels the exchange.
                    if answer == b"*" {
                        self.tagged(tag, "BAD", "Authentication cancelled");
                        return Ok(Flow::Continue);
                    }
                    match decode(&answer) {
                        Some(bytes) => response = Some(bytes),
                        None => {
                            self.tagged(tag, "BAD", "Invalid base64");
                            return Ok(Flow::Continue);
                        }
                    }
                }
                SaslOutcome::Success(login) => return Ok(self.logged_in(tag, login)),
                SaslOutcome::Failure { user, reason } => {
                    tracing::debug!(remote = %self.peer, mechanism = exchange.mechanism(), reason, "SASL failure");
                    return self
                        .auth_failed(tag, user.as_deref().unwrap_or_default(), stream)
                        .await;
                }
                SaslOutcome::Unavailable => return Ok(self.unavailable(tag)),
            }
        }
    }

    /// IDLE (RFC 2177, RFC 9051 §6.3.13): changes are pushed as they are committed until DONE.
    async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        tag: &str,
        stream: &mut S,
    ) -> std::io::Result<Flow> {
        self.sync_selected(true);
        self.out.extend_from_slice(b"+ idling\r\n");
        let mut changes = self.ctx.store.subscribe();
        let deadline = tokio::time::Instant::now() + self.timeout();
        loop {
            match self.framer.take_line() {
                Some(Ok(line)) => {
                    if line.eq_ignore_ascii_case(b"DONE") {
                        self.sync_selected(true);
                        self.tagged(tag, "OK", "IDLE terminated");
                    } else {
                        self.errors += 1;
                        self.tagged(tag, "BAD", "Expected DONE");
                    }
                    return Ok(Flow::Continue);
                }
                Some(Err(())) => {
                    self.tagged(tag, "BAD", "Expected DONE");
                    return Ok(Flow::Continue);
                }
                None => {}
            }
            self.flush(stream).await?;
            let mailbox = self.selected.as_ref().map(|v| v.mailbox.id);
            tokio::select! {
                read = stream.read(&mut self.buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(Flow::Close);
                    }
                    let data = self.buf[..n].to_vec();
                    self.framer.push(&data);
                }
                change = changes.recv() => {
                    let relevant = match &change {
                        Ok(c) => Some(change_mailbox(c)) == mailbox,
                        // Events were missed: the sync below finds them by MODSEQ.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            self.untagged("BYE Server shutting down");
                            return Ok(Flow::Close);
                        }
                    };
                    if relevant {
                        // Gather what else was committed at the same time, then report.
                        while changes.try_recv().is_ok() {}
                        self.sync_selected(true);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.untagged("BYE Autologout; idle for too long");
                    return Ok(Flow::Close);
                }
                _ = self.ctx.shutdown.triggered() => {
                    self.untagged("BYE Server shutting down");
                    return Ok(Flow::Close);
                }
            }
        }
    }

    pub fn account(&self) -> facteur_model::AccountId {
        self.user
            .as_ref()
            .map(|u| u.mailbox.account)
            .unwrap_or(facteur_model::AccountId(-1))
    }

    /// A mailbox name as the client wrote it, in the store's form: UTF-8 (modified UTF-7
    /// decoded for IMAP4rev1 clients), `INBOX` in any case folded, no trailing separator.
    pub fn mailbox_name(&self, raw: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut name = if self.utf8_names() || !text.contains('&') {
            text.to_string()
        } else {
            facteur_imap_session::mutf7::decode(text)?
        };
        if name.len() > 1 && name.ends_with('/') {
            name.pop();
        }
        if name.eq_ignore_ascii_case("INBOX") {
            return Some("INBOX".into());
        }
        if name.len() > 6
            && name
                .get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case("INBOX/"))
        {
            name = format!("INBOX/{}", &name[6..]);
        }
        Some(name)
    }

    pub fn write_mailbox(&mut self, name: &str) {
        let utf8 = self.utf8_names();
        encode::mailbox(&mut self.out, name, utf8);
    }
}

pub(crate) fn change_mailbox(c: &facteur_store::Change) -> facteur_model::MailboxId {
    match c {
        facteur_store::Change::MessageAdded { mailbox, .. }
        | facteur_store::Change::FlagsChanged { mailbox, .. }
        | facteur_store::Change::Expunged { mailbox, .. } => *mailbox,
    }
}
