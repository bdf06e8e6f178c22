//! The POP3 state machine.

use facteur_framing::{LineBuffer, Next};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    /// STLS can be offered (a certificate is loaded).
    pub tls_available: bool,
    /// USER/PASS and AUTH PLAIN allowed without TLS (off by default: the admin must opt in).
    pub plaintext_auth: bool,
    /// RFC 2449 §6.7 EXPIRE: days retrieved messages are kept; Some(0) deletes at QUIT.
    pub expire_days: Option<u32>,
    /// RFC 2449 §6.8 LOGIN-DELAY in seconds.
    pub login_delay_secs: Option<u32>,
    /// SASL mechanisms offered once login is allowed, upper case.
    pub sasl_mechanisms: Vec<String>,
    pub max_line_length: usize,
    /// Failed logins before the connection is closed.
    pub max_auth_failures: u32,
    pub max_errors: u32,
}

/// One message of the maildrop as seen at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    /// Exact octets RETR sends (before dot-stuffing).
    pub size: u64,
    /// RFC 1939 §7 unique-id: stable forever, 1-70 printable characters.
    pub uidl: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginResult {
    Accepted(Vec<Message>),
    BadCredentials,
    /// Another POP3 session holds the maildrop (RFC 2449 §8.1.2 IN-USE).
    InUse,
    /// RFC 2449 §8.1.1 LOGIN-DELAY.
    TooSoon,
    /// Our failure (RFC 3206 SYS/TEMP).
    Failed,
}

/// What QUIT asks the driver to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    pub deleted: Vec<u32>,
    pub retrieved: Vec<u32>,
}

#[derive(Debug)]
pub enum Event {
    /// Bytes to write.
    Reply(Vec<u8>),
    /// The `+OK` is queued: flush it, upgrade the stream, call `tls_started`.
    StartTls,
    /// USER/PASS: answer with `login_result`.
    Authenticate {
        user: String,
        password: String,
    },
    /// A step of an AUTH exchange (RFC 5034): the client's base64 response (`None` when a
    /// first step has no initial response). Answer `sasl_challenge` or `login_result`.
    Sasl {
        mechanism: String,
        response: Option<String>,
        first: bool,
    },
    /// Answer with `fetched(content)`; None when the message is gone.
    Fetch {
        uid: u32,
    },
    /// QUIT in TRANSACTION: remove these messages, then answer `updated(ok)`.
    Update(UpdateRequest),
    /// A failed login was answered: the driver delays before reading on.
    AuthFailed {
        user: String,
    },
    Close,
}

struct Maildrop {
    messages: Vec<Message>,
    deleted: Vec<bool>,
    retrieved: Vec<bool>,
}

impl Maildrop {
    fn live(&self) -> impl Iterator<Item = (usize, &Message)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    fn totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size))
    }

    /// The index of message number `arg`, or the error text.
    fn index(&self, arg: &str) -> Result<usize, &'static str> {
        let n: usize = arg.trim().parse().map_err(|_| "invalid message number")?;
        if n == 0 || n > self.messages.len() {
            return Err("no such message");
        }
        if self.deleted[n - 1] {
            return Err("message is deleted");
        }
        Ok(n - 1)
    }
}

enum Pending {
    Retr,
    Top(usize),
}

enum State {
    Authorization {
        user: Option<String>,
        /// The SASL mechanism whose exchange awaits the client's next response.
        sasl: Option<String>,
    },
    AwaitLogin,
    Transaction(Maildrop),
    AwaitFetch(Maildrop, usize, Pending),
    AwaitUpdate,
    AwaitTls,
    Closed,
}

pub struct Session {
    config: Config,
    state: State,
    lines: LineBuffer,
    events: VecDeque<Event>,
    tls: bool,
    auth_failures: u32,
    errors: u32,
    pending_user: String,
}

impl Session {
    pub fn new(config: Config, tls: bool) -> Session {
        let lines = LineBuffer::new(config.max_line_length);
        let mut s = Session {
            config,
            state: State::Authorization {
                user: None,
                sasl: None,
            },
            lines,
            events: VecDeque::new(),
            tls,
            auth_failures: 0,
            errors: 0,
            pending_user: String::new(),
        };
        let greeting = format!("+OK {} POP3 facteur ready", s.config.hostname);
        s.line(&greeting);
        s
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The user being authenticated or logged in, for logs.
    pub fn user(&self) -> &str {
        &self.pending_user
    }

    pub fn receive(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Closed | State::AwaitTls) {
            return;
        }
        self.lines.push(bytes);
    }

    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            let ready = matches!(
                self.state,
                State::Authorization { .. } | State::Transaction(_)
            );
            if !ready || !self.step() {
                return None;
            }
        }
    }

    /// The 10-minute autologout (RFC 1939 §3) fired: close without entering UPDATE.
    pub fn timed_out(&mut self) {
        self.line("-ERR autologout; idle for too long");
        self.close();
    }

    /// Shutdown: sessions in AUTHORIZATION or TRANSACTION end now, without UPDATE.
    pub fn shutdown(&mut self) {
        if matches!(
            self.state,
            State::Authorization { .. } | State::Transaction(_)
        ) {
            self.line("-ERR [SYS/TEMP] server shutting down, try again later");
            self.close();
        }
    }

    pub fn tls_started(&mut self) {
        self.tls = true;
        self.lines.clear();
        self.state = State::Authorization {
            user: None,
            sasl: None,
        };
    }

    pub fn login_result(&mut self, result: LoginResult) {
        debug_assert!(matches!(self.state, State::AwaitLogin));
        self.state = State::Authorization {
            user: None,
            sasl: None,
        };
        match result {
            LoginResult::Accepted(messages) => {
                let n = messages.len();
                let drop = Maildrop {
                    deleted: vec![false; n],
                    retrieved: vec![false; n],
                    messages,
                };
                let (count, size) = drop.totals();
                self.line(&format!(
                    "+OK maildrop has {count} messages ({size} octets)"
                ));
                self.state = State::Transaction(drop);
            }
            LoginResult::BadCredentials => {
                self.auth_failures += 1;
                self.line("-ERR [AUTH] Authentication failed");
                self.events.push_back(Event::AuthFailed {
                    user: self.pending_user.clone(),
                });
                if self.auth_failures >= self.config.max_auth_failures {
                    self.line("-ERR [AUTH] too many failures, closing");
                    self.close();
                }
            }
            LoginResult::InUse => {
                self.line("-ERR [IN-USE] maildrop is locked by another POP3 session")
            }
            LoginResult::TooSoon => {
                self.line("-ERR [LOGIN-DELAY] logged in too recently, try later")
            }
            LoginResult::Failed => self.line("-ERR [SYS/TEMP] cannot open the maildrop, try later"),
        }
    }

    pub fn fetched(&mut self, content: Option<Vec<u8>>) {
        let State::AwaitFetch(mut drop, index, pending) =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            debug_assert!(false, "fetched without a pending fetch");
            return;
        };
        match content {
            None => self.line("-ERR message was removed by another session"),
            Some(content) => {
                let body = match pending {
                    Pending::Retr => {
                        drop.retrieved[index] = true;
                        content.as_slice()
                    }
                    Pending::Top(lines) => top(&content, lines),
                };
                let mut out = format!("+OK {} octets\r\n", drop.messages[index].size).into_bytes();
                dot_stuff(body, &mut out);
                self.events.push_back(Event::Reply(out));
            }
        }
        self.state = State::Transaction(drop);
    }

    pub fn updated(&mut self, ok: bool, left: usize) {
        if ok {
            self.line(&format!(
                "+OK {} POP3 facteur signing off ({left} messages left)",
                self.config.hostname
            ));
        } else {
            self.line("-ERR [SYS/TEMP] some deleted messages were not removed");
        }
        self.close();
    }

    fn line(&mut self, text: &str) {
        self.events
            .push_back(Event::Reply(format!("{text}\r\n").into_bytes()));
    }

    fn close(&mut self) {
        self.events.push_back(Event::Close);
        self.state = State::Closed;
    }

    fn error(&mut self, text: &str) {
        self.line(&format!("-ERR {text}"));
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.line("-ERR too many errors, closing");
            self.close();
        }
    }

    fn step(&mut self) -> bool {
        match self.lines.next_line() {
            Next::NeedMore => false,
            Next::TooLong => {
                self.error("line too long");
                true
            }
            Next::Line(line) => {
                self.handle(&String::from_utf8_lossy(&line));
                true
            }
        }
    }

    fn handle(&mut self, line: &str) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        if let State::Authorization {
            sasl: Some(mechanism),
            ..
        } = state
        {
            self.state = self.sasl_response(mechanism, Some(line), false);
            return;
        }
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        self.state = match (state, verb.as_str()) {
            (state, "CAPA") => {
                self.capabilities(matches!(state, State::Transaction(_)));
                state
            }
            (State::Authorization { .. }, "QUIT") => {
                self.line(&format!(
                    "+OK {} POP3 facteur signing off",
                    self.config.hostname
                ));
                self.close();
                State::Closed
            }
            (State::Authorization { user, .. }, "STLS") => self.stls(user),
            (State::Authorization { .. }, "USER") => {
                if !self.plaintext_allowed() {
                    self.refuse_plaintext();
                    State::Authorization {
                        user: None,
                        sasl: None,
                    }
                } else if arg.trim().is_empty() {
                    self.error("USER needs a name");
                    State::Authorization {
                        user: None,
                        sasl: None,
                    }
                } else {
                    self.line("+OK send PASS");
                    State::Authorization {
                        user: Some(arg.trim().to_string()),
                        sasl: None,
                    }
                }
            }
            (
                State::Authorization {
                    user: Some(user), ..
                },
                "PASS",
            ) => {
                // RFC 1939 §7: the password is the rest of the line and may hold spaces.
                self.authenticate(user, arg.to_string())
            }
            (State::Authorization { .. }, "PASS") => {
                self.error("USER first");
                State::Authorization {
                    user: None,
                    sasl: None,
                }
            }
            (State::Authorization { .. }, "AUTH") => self.auth(arg),
            (State::Authorization { .. }, "APOP") => {
                // APOP needs the cleartext password on the server; facteur keeps only Argon2id hashes.
                self.error("APOP is not available; use USER/PASS or AUTH PLAIN over TLS");
                State::Authorization {
                    user: None,
                    sasl: None,
                }
            }
            (state @ State::Authorization { .. }, _) => {
                self.error("unknown command or not allowed before login");
                state
            }
            (State::Transaction(drop), verb) => self.transaction(drop, verb, arg),
            (other, _) => other,
        };
    }

    fn transaction(&mut self, mut drop: Maildrop, verb: &str, arg: &str) -> State {
        match verb {
            "STAT" => {
                let (n, size) = drop.totals();
                self.line(&format!("+OK {n} {size}"));
            }
            "LIST" | "UIDL" => self.listing(&drop, verb == "UIDL", arg),
            "RETR" => match drop.index(arg) {
                Ok(i) => {
                    self.events.push_back(Event::Fetch {
                        uid: drop.messages[i].uid,
                    });
                    return State::AwaitFetch(drop, i, Pending::Retr);
                }
                Err(e) => self.error(e),
            },
            "TOP" => {
                let mut args = arg.split_whitespace();
                let (msg, lines) = (
                    args.next().unwrap_or(""),
                    args.next().and_then(|n| n.parse::<usize>().ok()),
                );
                match (drop.index(msg), lines, args.next()) {
                    (Ok(i), Some(lines), None) => {
                        self.events.push_back(Event::Fetch {
                            uid: drop.messages[i].uid,
                        });
                        return State::AwaitFetch(drop, i, Pending::Top(lines));
                    }
                    (Err(e), _, _) => self.error(e),
                    _ => self.error("usage: TOP msg n"),
                }
            }
            "DELE" => match drop.index(arg) {
                Ok(i) => {
                    drop.deleted[i] = true;
                    self.line(&format!("+OK message {} deleted", i + 1));
                }
                Err(e) => self.error(e),
            },
            "NOOP" => self.line("+OK"),
            "RSET" => {
                drop.deleted.iter_mut().for_each(|d| *d = false);
                let (n, size) = drop.totals();
                self.line(&format!("+OK maildrop has {n} messages ({size} octets)"));
            }
            "QUIT" => {
                let pick = |flags: &[bool]| -> Vec<u32> {
                    drop.messages
                        .iter()
                        .zip(flags)
                        .filter(|(_, f)| **f)
                        .map(|(m, _)| m.uid)
                        .collect()
                };
                let request = UpdateRequest {
                    deleted: pick(&drop.deleted),
                    retrieved: pick(&drop.retrieved),
                };
                self.events.push_back(Event::Update(request));
                return State::AwaitUpdate;
            }
            "USER" | "PASS" | "APOP" | "AUTH" | "STLS" => self.error("already logged in"),
            _ => self.error("unknown command"),
        }
        State::Transaction(drop)
    }

    fn listing(&mut self, drop: &Maildrop, uidl: bool, arg: &str) {
        let item = |i: usize, m: &Message| {
            if uidl {
                format!("{} {}", i + 1, m.uidl)
            } else {
                format!("{} {}", i + 1, m.size)
            }
        };
        if !arg.trim().is_empty() {
            match drop.index(arg) {
                Ok(i) => self.line(&format!("+OK {}", item(i, &drop.messages[i]))),
                Err(e) => self.error(e),
            }
            return;
        }
        let (n, size) = drop.totals();
        let mut out = if uidl {
            "+OK unique-id listing follows\r\n".to_string()
        } else {
            format!("+OK {n} messages ({size} octets)\r\n")
        };
        for (i, m) in drop.live() {
            out.push_str(&item(i, m));
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        self.events.push_back(Event::Reply(out.into_bytes()));
    }

    fn capabilities(&mut self, in_transaction: bool) {
        let mut caps = vec![
            "+OK capability list follows".to_string(),
            "TOP".into(),
            "UIDL".into(),
            "RESP-CODES".into(),
            "AUTH-RESP-CODE".into(),
            "PIPELINING".into(),
        ];
        if !in_transaction {
            if self.plaintext_allowed() {
                caps.push("USER".into());
                if !self.config.sasl_mechanisms.is_empty() {
                    caps.push(format!("SASL {}", self.config.sasl_mechanisms.join(" ")));
                }
            }
            if self.config.tls_available && !self.tls {
                caps.push("STLS".into());
            }
        }
        // RFC 2449 §6.7: EXPIRE NEVER, or the days; §6.8 LOGIN-DELAY seconds.
        caps.push(match self.config.expire_days {
            None => "EXPIRE NEVER".into(),
            Some(d) => format!("EXPIRE {d}"),
        });
        if let Some(secs) = self.config.login_delay_secs {
            caps.push(format!("LOGIN-DELAY {secs}"));
        }
        caps.push("IMPLEMENTATION facteur".into());
        caps.push(".".into());
        let mut out = caps.join("\r\n");
        out.push_str("\r\n");
        self.events.push_back(Event::Reply(out.into_bytes()));
    }

    fn plaintext_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth
    }

    fn refuse_plaintext(&mut self) {
        self.error(
            "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS first",
        );
    }

    fn stls(&mut self, user: Option<String>) -> State {
        if self.tls {
            self.error("TLS already active");
            return State::Authorization { user, sasl: None };
        }
        if !self.config.tls_available {
            self.error("TLS not available");
            return State::Authorization { user, sasl: None };
        }
        self.line("+OK Begin TLS negotiation");
        self.events.push_back(Event::StartTls);
        self.lines.clear();
        State::AwaitTls
    }

    fn auth(&mut self, arg: &str) -> State {
        let mut words = arg.split_whitespace();
        let idle = State::Authorization {
            user: None,
            sasl: None,
        };
        let offered = if self.plaintext_allowed() {
            self.config.sasl_mechanisms.clone()
        } else {
            Vec::new()
        };
        match (words.next().map(|m| m.to_ascii_uppercase()), words.next()) {
            // RFC 5034 §4 does not define a bare AUTH; clients use it to list mechanisms.
            (None, _) => {
                let mut list = String::from("+OK\r\n");
                for m in &offered {
                    list.push_str(m);
                    list.push_str("\r\n");
                }
                list.push_str(".\r\n");
                self.events.push_back(Event::Reply(list.into_bytes()));
                idle
            }
            (Some(m), _) if !self.config.sasl_mechanisms.contains(&m) => {
                self.error("unsupported SASL mechanism");
                idle
            }
            _ if !self.plaintext_allowed() => {
                self.refuse_plaintext();
                idle
            }
            // RFC 5034 §4: "=" is an empty initial response.
            (Some(m), initial) => {
                self.sasl_response(m, initial.map(|i| if i == "=" { "" } else { i }), true)
            }
        }
    }

    fn sasl_response(&mut self, mechanism: String, response: Option<&str>, first: bool) -> State {
        if response.is_some_and(|r| r.trim() == "*") {
            self.error("authentication cancelled");
            return State::Authorization {
                user: None,
                sasl: None,
            };
        }
        self.pending_user.clear();
        let response = response.map(|r| r.trim().to_string());
        self.events.push_back(Event::Sasl {
            mechanism,
            response,
            first,
        });
        State::AwaitLogin
    }

    /// Answers a `Sasl` step with the next challenge (base64, RFC 5034 §4 "+ " line).
    pub fn sasl_challenge(&mut self, mechanism: String, challenge_b64: &str) {
        debug_assert!(matches!(self.state, State::AwaitLogin));
        self.line(&format!("+ {challenge_b64}"));
        self.state = State::Authorization {
            user: None,
            sasl: Some(mechanism),
        };
    }

    /// The driver decoded the SASL response: record who is logging in, for logs.
    pub fn set_user(&mut self, user: &str) {
        self.pending_user = user.to_string();
    }

    fn authenticate(&mut self, user: String, password: String) -> State {
        self.pending_user = user.clone();
        self.events
            .push_back(Event::Authenticate { user, password });
        State::AwaitLogin
    }
}

/// RFC 1939 §7 TOP: the header, the blank line, then `lines` lines of the body.
fn top(content: &[u8], lines: usize) -> &[u8] {
    let header_end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(content.len());
    let mut end = header_end;
    for _ in 0..lines {
        match content[end..].iter().position(|&b| b == b'\n') {
            Some(i) => end += i + 1,
            None => {
                end = content.len();
                break;
            }
        }
    }
    &content[..end]
}

/// Multi-line response body (RFC 1939 §3): lines starting with '.' get one more, then CRLF.CRLF.
fn dot_stuff(content: &[u8], out: &mut Vec<u8>) {
    let mut at_line_start = true;
    for &b in content {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !content.is_empty() && !content.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests;
