//! The SMTP/LMTP server session state machine: RFC 5321 §3 (transactions) and §4.1.4 (command
//! order), RFC 2920 (PIPELINING: questions pause input, so replies stay in order), RFC 3207
//! (STARTTLS), RFC 3030 (CHUNKING), RFC 2033 §4 (LHLO, one reply per recipient).
//!
//! Invariants:
//! - while a question is open (`CheckRecipient`, `Complete`, `StartTls`) no input is processed;
//! - bytes pipelined after STARTTLS are discarded, never executed (CVE-2011-0411);
//! - an over-long line gets one `500 5.5.2` and its tail is discarded, never executed;
//! - a body is either completed (`Complete`) or abandoned (`BodyAborted`) before the next one.

use crate::command::{self, Command, MailFrom, RcptTo};
use crate::data::{DataReceiver, LineEndingCheck};
use crate::reply::{self, Reply};
use facteur_framing::{LineBuffer, Next};
use std::collections::VecDeque;

/// What the session needs to know about its listener.
#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    pub lmtp: bool,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_line_length: usize,
    pub max_errors: u32,
    /// Whether STARTTLS can be offered (a certificate is loaded and TLS is not yet active).
    pub tls_available: bool,
    /// Submission (RFC 6409): MAIL needs a successful AUTH, and the driver checks each sender.
    pub submission: bool,
    /// AUTH (RFC 4954); None: not offered (the MX and LMTP).
    pub auth: Option<AuthPolicy>,
}

/// What AUTH offers.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Mechanism names, upper case, in the order EHLO lists them.
    pub mechanisms: Vec<String>,
    /// Offer AUTH without TLS (off: passwords never travel in clear).
    pub plaintext: bool,
    /// Failed exchanges tolerated before the session is closed with `421 4.7.0`.
    pub max_failures: u32,
}

/// RFC 4954 §4: a server must accept AUTH lines and responses of at least 12288 octets.
const AUTH_LINE_MIN: usize = 12288;

/// Negotiated TLS parameters, for the Received header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// The driver's answer to `CheckRecipient`; `R` is what it needs later to deliver.
#[derive(Debug)]
pub enum Verdict<R> {
    Accept(R),
    Reject(Reply),
}

#[derive(Debug, Clone)]
pub struct Recipient<R> {
    pub rcpt: RcptTo,
    pub target: R,
}

#[derive(Debug, Clone)]
pub struct Envelope<R> {
    pub mail: MailFrom,
    pub recipients: Vec<Recipient<R>>,
}

#[derive(Debug)]
pub enum Event<R> {
    /// Write it.
    Reply(Reply),
    /// The `220` is queued before this: flush it, upgrade the stream, call `tls_started`.
    StartTls,
    /// Answer with `recipient_verdict`.
    CheckRecipient(RcptTo),
    /// A message body begins; `envelope()` describes it.
    BodyStart,
    /// The next piece of the body, unstuffed.
    Body(Vec<u8>),
    /// The body was refused or the transaction reset: drop what `Body` gave.
    BodyAborted,
    /// The body is complete: store it durably, then answer with `complete` (one reply for SMTP,
    /// one per recipient for LMTP).
    Complete(Envelope<R>),
    /// Close the connection after writing what was queued.
    Close,
    /// AUTH began (RFC 4954 §4): start the SASL exchange; `initial` is the initial response,
    /// still base64 (`=` is an empty response). Answer with `auth_challenge`,
    /// `auth_succeeded` or `auth_failed`.
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    /// The client's response to the last challenge, still base64.
    AuthResponse(String),
    /// The client cancelled the exchange with `*`; the session has replied. Drop the exchange.
    AuthCancelled,
    /// Submission: may the authenticated account use this sender? Answer with
    /// `sender_verdict`.
    CheckSender(MailFrom),
}

#[derive(Debug)]
enum State<R> {
    ExpectHello,
    ExpectMail,
    ExpectRcptOrData(Envelope<R>),
    AwaitVerdict(Envelope<R>, RcptTo),
    Data(Envelope<R>, DataReceiver),
    /// Inside a BDAT chunk. `env` is None when the chunk is read only to be discarded.
    BdatChunk(BdatChunk<R>),
    /// Between BDAT chunks of one message.
    ExpectBdat(Envelope<R>, u64, LineEndingCheck),
    AwaitCompletion,
    AwaitTls,
    /// The driver is working on the SASL exchange.
    AwaitAuth,
    /// A challenge was sent; the next line is the client's response.
    AuthResponse,
    AwaitSender(MailFrom),
    Closed,
}

#[derive(Debug)]
struct BdatChunk<R> {
    env: Option<Envelope<R>>,
    remaining: u64,
    last: bool,
    size: u64,
    check: LineEndingCheck,
    /// Reply to give once the chunk is consumed, when it is being discarded.
    refusal: Option<Reply>,
}

pub struct Session<R> {
    config: Config,
    state: State<R>,
    lines: LineBuffer,
    events: VecDeque<Event<R>>,
    helo: Option<String>,
    esmtp: bool,
    tls: Option<TlsInfo>,
    errors: u32,
    shutting_down: bool,
    /// The account authenticated with AUTH.
    authenticated: Option<String>,
    auth_failures: u32,
}

impl<R> Session<R> {
    /// A new session; the greeting is the first event.
    pub fn new(config: Config) -> Session<R> {
        let max_line = match config.auth {
            Some(_) => config.max_line_length.max(AUTH_LINE_MIN),
            None => config.max_line_length,
        };
        let lines = LineBuffer::new(max_line);
        let mut s = Session {
            state: State::ExpectHello,
            lines,
            events: VecDeque::new(),
            helo: None,
            esmtp: false,
            tls: None,
            errors: 0,
            shutting_down: false,
            authenticated: None,
            auth_failures: 0,
            config,
        };
        s.reply(reply::greeting(&s.config.hostname, s.config.lmtp));
        s
    }

    /// A session on an implicitly secured connection (e.g. SMTPS), TLS already up.
    pub fn with_tls(config: Config, tls: TlsInfo) -> Session<R> {
        let mut s = Session::new(config);
        s.tls = Some(tls);
        s
    }

    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The RFC 3848 protocol name for the Received header's `with` clause.
    pub fn protocol(&self) -> &'static str {
        let auth = self.authenticated.is_some();
        match (self.config.lmtp, self.esmtp, self.tls.is_some(), auth) {
            (true, _, false, _) => "LMTP",
            (true, _, true, _) => "LMTPS",
            (false, false, _, _) => "SMTP",
            (false, true, false, false) => "ESMTP",
            (false, true, true, false) => "ESMTPS",
            (false, true, false, true) => "ESMTPA",
            (false, true, true, true) => "ESMTPSA",
        }
    }

    /// The account authenticated with AUTH, if any.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// Answers `Authenticate`/`AuthResponse` with the next challenge (base64).
    pub fn auth_challenge(&mut self, base64: &str) {
        debug_assert!(matches!(self.state, State::AwaitAuth));
        self.reply(reply::auth_challenge(base64));
        self.state = State::AuthResponse;
    }

    /// The exchange succeeded for `account`.
    pub fn auth_succeeded(&mut self, account: String) {
        debug_assert!(matches!(self.state, State::AwaitAuth));
        self.authenticated = Some(account);
        self.reply(reply::auth_ok());
        self.state = State::ExpectMail;
    }

    /// The exchange ended without success, with this reply (`535 5.7.8` for bad credentials,
    /// `501` for a malformed response, `454 4.7.0` for a temporary failure). Failed credentials
    /// count towards `max_failures`.
    pub fn auth_failed(&mut self, r: Reply) {
        debug_assert!(matches!(self.state, State::AwaitAuth));
        self.state = State::ExpectMail;
        let counted = r.code == 535;
        self.client_error(r);
        if counted && !self.is_closing() {
            self.auth_failures += 1;
            let max = self
                .config
                .auth
                .as_ref()
                .map_or(1, |a| a.max_failures.max(1));
            if self.auth_failures >= max {
                self.close_with(reply::too_many_auth_failures());
            }
        }
    }

    /// Answers `CheckSender`.
    pub fn sender_verdict(&mut self, verdict: Result<(), Reply>) {
        let State::AwaitSender(mail) = std::mem::replace(&mut self.state, State::ExpectMail) else {
            debug_assert!(false, "sender_verdict without a pending sender");
            return;
        };
        match verdict {
            Ok(()) => {
                self.reply(reply::sender_ok());
                self.state = State::ExpectRcptOrData(Envelope {
                    mail,
                    recipients: Vec::new(),
                });
            }
            Err(r) => self.client_error(r),
        }
    }

    fn is_closing(&self) -> bool {
        matches!(self.events.back(), Some(Event::Close))
    }

    /// The transaction in progress (sender, recipients so far).
    pub fn envelope(&self) -> Option<&Envelope<R>> {
        match &self.state {
            State::Data(env, _)
            | State::ExpectBdat(env, ..)
            | State::ExpectRcptOrData(env)
            | State::AwaitVerdict(env, _) => Some(env),
            State::BdatChunk(c) => c.env.as_ref(),
            _ => None,
        }
    }

    /// True while the session waits for a command with nothing buffered: a safe point to stop.
    pub fn is_idle(&self) -> bool {
        matches!(
            self.state,
            State::ExpectHello | State::ExpectMail | State::ExpectRcptOrData(_)
        ) && self.lines.is_empty()
            && self.events.is_empty()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Feeds bytes read from the connection.
    pub fn receive(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Closed | State::AwaitTls) {
            return;
        }
        // Keep only what is unread, so the buffer never outgrows one read plus a partial line.
        self.lines.push(bytes);
    }

    /// The next thing for the driver to do; None when the session needs more input or an answer.
    pub fn next_event(&mut self) -> Option<Event<R>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if !self.step() {
                return None;
            }
        }
    }

    /// Begins shutdown: `421 4.3.2` now if idle, otherwise at the next command.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
        if matches!(
            self.state,
            State::ExpectHello | State::ExpectMail | State::ExpectRcptOrData(_)
        ) {
            self.close_with(reply::shutting_down(&self.config.hostname));
        }
    }

    /// Answers `CheckRecipient`.
    pub fn recipient_verdict(&mut self, verdict: Verdict<R>) {
        let State::AwaitVerdict(mut env, rcpt) = std::mem::replace(&mut self.state, State::Closed)
        else {
            debug_assert!(false, "recipient_verdict without a pending recipient");
            return;
        };
        match verdict {
            Verdict::Accept(target) => {
                env.recipients.push(Recipient { rcpt, target });
                self.reply(reply::recipient_ok());
            }
            Verdict::Reject(r) => self.client_error(r),
        }
        if !matches!(self.events.back(), Some(Event::Close)) {
            self.state = State::ExpectRcptOrData(env);
        }
    }

    /// Answers `Complete`: one reply (SMTP) or one per accepted recipient (LMTP).
    pub fn complete(&mut self, replies: Vec<Reply>) {
        debug_assert!(matches!(self.state, State::AwaitCompletion));
        for r in replies {
            self.reply(r);
        }
        self.state = State::ExpectMail;
    }

    /// TLS is up after `StartTls`: RFC 3207 §4.2, the client starts over with EHLO.
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.helo = None;
        self.esmtp = false;
        self.authenticated = None;
        self.lines.clear();
        self.state = State::ExpectHello;
    }

    fn reply(&mut self, r: Reply) {
        self.events.push_back(Event::Reply(r));
    }

    fn close_with(&mut self, r: Reply) {
        self.reply(r);
        self.events.push_back(Event::Close);
        self.state = State::Closed;
    }

    /// A reply to a client mistake; too many of them end the session.
    fn client_error(&mut self, r: Reply) {
        self.reply(r);
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.close_with(reply::too_many_errors());
        }
    }

    /// Does one unit of work; false when blocked on input or an answer.
    fn step(&mut self) -> bool {
        match &self.state {
            State::Closed
            | State::AwaitVerdict(..)
            | State::AwaitCompletion
            | State::AwaitTls
            | State::AwaitAuth
            | State::AwaitSender(_) => false,
            State::AuthResponse => self.step_auth_response(),
            State::Data(..) => self.step_data(),
            State::BdatChunk(_) => self.step_bdat(),
            _ => self.step_command(),
        }
    }

    fn step_command(&mut self) -> bool {
        // Shutting down: a session back at a command boundary is told at once, without waiting
        // for its next command; a chunked message (between BDAT chunks) is let finish first.
        if self.shutting_down && !matches!(self.state, State::ExpectBdat(..)) {
            self.close_with(reply::shutting_down(&self.config.hostname));
            return true;
        }
        let line = match self.lines.next_line() {
            Next::NeedMore => return false,
            // RFC 5321 §4.5.3.1.4: refuse once; the rest of the line is dropped unseen.
            Next::TooLong => {
                self.client_error(reply::line_too_long());
                return true;
            }
            Next::Line(line) => line,
        };
        match command::parse(&line) {
            Ok(cmd) => self.handle(cmd),
            Err(r) => self.client_error(r),
        }
        true
    }

    fn handle(&mut self, cmd: Command) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.state = match (state, cmd) {
            (State::ExpectBdat(env, size, check), Command::Bdat { size: n, last }) => {
                self.start_chunk(Some(env), size, check, n, last)
            }
            (State::ExpectBdat(..), Command::Rset) => {
                self.events.push_back(Event::BodyAborted);
                self.reply(reply::reset());
                State::ExpectMail
            }
            (State::ExpectBdat(..), Command::Quit) => {
                self.events.push_back(Event::BodyAborted);
                self.close_with(reply::bye());
                State::Closed
            }
            (s @ State::ExpectBdat(..), Command::Noop) => {
                self.reply(reply::ok());
                s
            }
            (s @ State::ExpectBdat(..), _) => {
                self.client_error(reply::bad_sequence(
                    "only BDAT, RSET, NOOP or QUIT may follow a BDAT chunk",
                ));
                s
            }
            (state, Command::Helo(name)) if !self.config.lmtp => {
                drop(state);
                self.helo = Some(name);
                self.esmtp = false;
                self.reply(reply::helo(&self.config.hostname));
                State::ExpectMail
            }
            (state, Command::Ehlo(name)) if !self.config.lmtp => self.greet(state, name),
            (state, Command::Lhlo(name)) if self.config.lmtp => self.greet(state, name),
            (state, Command::Helo(_) | Command::Ehlo(_)) => {
                self.client_error(reply::lhlo_required());
                state
            }
            (state, Command::Lhlo(_)) => {
                self.client_error(reply::unrecognized());
                state
            }
            (State::ExpectMail, Command::Mail(mail)) => self.mail(mail),
            (state @ State::ExpectHello, Command::Mail(_)) => {
                self.client_error(reply::bad_sequence("send EHLO first"));
                state
            }
            (state, Command::Mail(_)) => {
                self.client_error(reply::bad_sequence("nested MAIL command"));
                state
            }
            (State::ExpectRcptOrData(env), Command::Rcpt(rcpt)) => self.rcpt(env, rcpt),
            (state, Command::Rcpt(_)) => {
                self.client_error(reply::bad_sequence("need MAIL before RCPT"));
                state
            }
            (State::ExpectRcptOrData(env), Command::Data) if !env.recipients.is_empty() => {
                self.reply(reply::start_data());
                self.events.push_back(Event::BodyStart);
                State::Data(env, DataReceiver::new(self.config.max_message_size))
            }
            (State::ExpectRcptOrData(env), Command::Data) => {
                self.client_error(reply::no_valid_recipients());
                State::ExpectRcptOrData(env)
            }
            (state, Command::Data) => {
                self.client_error(reply::bad_sequence("need MAIL and RCPT before DATA"));
                state
            }
            (State::ExpectRcptOrData(env), Command::Bdat { size, last })
                if !env.recipients.is_empty() =>
            {
                self.start_chunk(Some(env), 0, LineEndingCheck::default(), size, last)
            }
            (state, Command::Bdat { size, last }) => {
                // The chunk's bytes follow regardless: consume them, then refuse (RFC 3030 §2).
                let refusal = match state {
                    State::ExpectRcptOrData(_) => reply::no_valid_recipients(),
                    _ => reply::bad_sequence("need MAIL and RCPT before BDAT"),
                };
                State::BdatChunk(BdatChunk {
                    env: None,
                    remaining: size,
                    last,
                    size: 0,
                    check: LineEndingCheck::default(),
                    refusal: Some(refusal),
                })
            }
            (state, Command::Rset) => {
                drop(state);
                self.reply(reply::reset());
                self.after_reset()
            }
            (state, Command::Noop) => {
                self.reply(reply::ok());
                state
            }
            (state, Command::Vrfy) => {
                self.reply(reply::cannot_vrfy());
                state
            }
            (state, Command::Expn) => {
                self.client_error(reply::not_implemented("EXPN"));
                state
            }
            (state, Command::Help) => {
                self.reply(reply::help());
                state
            }
            (_, Command::Quit) => {
                self.close_with(reply::bye());
                State::Closed
            }
            (state, Command::StartTls) => self.starttls(state),
            (state, Command::Auth { mechanism, initial }) => self.auth(state, mechanism, initial),
            (state, Command::NotImplemented(verb)) => {
                self.client_error(reply::not_implemented(&verb));
                state
            }
        };
        if self
            .events
            .back()
            .is_some_and(|e| matches!(e, Event::Close))
        {
            self.state = State::Closed;
        }
    }

    /// RFC 4954 §4: AUTH after EHLO, outside a transaction, once per session.
    fn auth(&mut self, state: State<R>, mechanism: String, initial: Option<String>) -> State<R> {
        let Some(policy) = &self.config.auth else {
            self.client_error(reply::auth_not_available());
            return state;
        };
        let refusal = if !self.esmtp {
            Some(reply::bad_sequence("send EHLO first"))
        } else if self.authenticated.is_some() {
            Some(reply::already_authenticated())
        } else if !matches!(state, State::ExpectMail) {
            Some(reply::bad_sequence(
                "AUTH is not permitted during a mail transaction",
            ))
        } else if self.tls.is_none() && !policy.plaintext {
            // RFC 4954 §6 (538): every mechanism here needs an encrypted channel first.
            Some(reply::auth_needs_tls())
        } else if !policy.mechanisms.contains(&mechanism) {
            Some(reply::auth_unknown_mechanism(&mechanism))
        } else {
            None
        };
        if let Some(r) = refusal {
            self.client_error(r);
            return state;
        }
        self.events
            .push_back(Event::Authenticate { mechanism, initial });
        State::AwaitAuth
    }

    fn step_auth_response(&mut self) -> bool {
        let line = match self.lines.next_line() {
            Next::NeedMore => return false,
            Next::TooLong => {
                self.events.push_back(Event::AuthCancelled);
                self.state = State::ExpectMail;
                self.client_error(reply::line_too_long());
                return true;
            }
            Next::Line(line) => line,
        };
        let text = String::from_utf8_lossy(&line).trim().to_string();
        // RFC 4954 §4: a `*` cancels the exchange and gets a 501.
        if text == "*" {
            self.events.push_back(Event::AuthCancelled);
            self.state = State::ExpectMail;
            self.client_error(reply::auth_cancelled());
            return true;
        }
        self.events.push_back(Event::AuthResponse(text));
        self.state = State::AwaitAuth;
        true
    }

    fn greet(&mut self, state: State<R>, name: String) -> State<R> {
        // RFC 5321 §4.1.4: EHLO in a transaction resets it.
        drop(state);
        let mut keywords = vec![
            "PIPELINING".to_string(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if self.config.tls_available && self.tls.is_none() {
            keywords.push("STARTTLS".into());
        }
        // RFC 4954 §3; not before TLS unless the admin allows plaintext (RFC 8314 §3.3 spirit).
        if let Some(policy) = &self.config.auth
            && (self.tls.is_some() || policy.plaintext)
            && !policy.mechanisms.is_empty()
        {
            keywords.push(format!("AUTH {}", policy.mechanisms.join(" ")));
        }
        keywords.push("DSN".into());
        self.reply(reply::ehlo(&self.config.hostname, &name, keywords));
        self.helo = Some(name);
        self.esmtp = true;
        State::ExpectMail
    }

    fn mail(&mut self, mail: MailFrom) -> State<R> {
        let uses_extensions = mail.size.is_some()
            || mail.smtputf8
            || mail.ret_full.is_some()
            || mail.envid.is_some()
            || mail.body != command::BodyType::SevenBit;
        if !self.esmtp && uses_extensions {
            self.client_error(reply::unknown_parameter("(parameters need EHLO)"));
            return State::ExpectMail;
        }
        if mail.size.is_some_and(|s| s > self.config.max_message_size) {
            self.client_error(reply::message_too_big(self.config.max_message_size));
            return State::ExpectMail;
        }
        if mail.sender.as_ref().is_some_and(|s| !s.is_ascii()) && !mail.smtputf8 {
            self.client_error(reply::needs_smtputf8());
            return State::ExpectMail;
        }
        if self.config.submission {
            // RFC 6409 §4.3 and RFC 4954 §6: submission needs authentication first.
            if self.authenticated.is_none() {
                self.client_error(reply::auth_required());
                return State::ExpectMail;
            }
            self.events.push_back(Event::CheckSender(mail.clone()));
            return State::AwaitSender(mail);
        }
        self.reply(reply::sender_ok());
        State::ExpectRcptOrData(Envelope {
            mail,
            recipients: Vec::new(),
        })
    }

    fn rcpt(&mut self, env: Envelope<R>, rcpt: RcptTo) -> State<R> {
        if !rcpt.recipient.is_ascii() && !env.mail.smtputf8 {
            self.client_error(reply::needs_smtputf8());
            return State::ExpectRcptOrData(env);
        }
        if env.recipients.len() >= self.config.max_recipients {
            self.reply(reply::too_many_recipients());
            return State::ExpectRcptOrData(env);
        }
        self.events.push_back(Event::CheckRecipient(rcpt.clone()));
        State::AwaitVerdict(env, rcpt)
    }

    fn starttls(&mut self, state: State<R>) -> State<R> {
        if self.tls.is_some() {
            self.client_error(reply::tls_already_active());
            return state;
        }
        if !self.config.tls_available {
            self.client_error(reply::tls_unavailable());
            return state;
        }
        if matches!(state, State::ExpectBdat(..)) {
            self.events.push_back(Event::BodyAborted);
        }
        self.reply(reply::ready_for_tls());
        self.events.push_back(Event::StartTls);
        // CVE-2011-0411: whatever the client pipelined behind STARTTLS is dropped unread.
        self.lines.clear();
        State::AwaitTls
    }

    fn after_reset(&self) -> State<R> {
        if self.helo.is_some() {
            State::ExpectMail
        } else {
            State::ExpectHello
        }
    }

    fn start_chunk(
        &mut self,
        env: Option<Envelope<R>>,
        size: u64,
        check: LineEndingCheck,
        n: u64,
        last: bool,
    ) -> State<R> {
        if size == 0 && env.is_some() {
            self.events.push_back(Event::BodyStart);
        }
        State::BdatChunk(BdatChunk {
            env,
            remaining: n,
            last,
            size,
            check,
            refusal: None,
        })
    }

    fn step_data(&mut self) -> bool {
        let State::Data(_, receiver) = &mut self.state else {
            unreachable!("step_data outside DATA")
        };
        let mut out = Vec::new();
        let progress = receiver.feed(self.lines.unread(), &mut out);
        self.lines.consume(progress.consumed);
        if !out.is_empty() {
            self.events.push_back(Event::Body(out));
        }
        if !progress.done {
            return false;
        }
        let State::Data(env, receiver) = std::mem::replace(&mut self.state, State::AwaitCompletion)
        else {
            unreachable!("checked above")
        };
        self.finish_body(env, receiver.too_big(), receiver.bare_line_ending);
        true
    }

    fn step_bdat(&mut self) -> bool {
        let State::BdatChunk(chunk) = &mut self.state else {
            unreachable!("step_bdat outside BDAT")
        };
        let available = self.lines.unread().len() as u64;
        let take = available.min(chunk.remaining) as usize;
        if chunk.env.is_some() && take > 0 {
            let bytes = &self.lines.unread()[..take];
            chunk.check.scan(bytes);
            chunk.size += take as u64;
            if chunk.size <= self.config.max_message_size {
                self.events.push_back(Event::Body(bytes.to_vec()));
            }
        }
        self.lines.consume(take);
        chunk.remaining -= take as u64;
        if chunk.remaining > 0 {
            return take > 0 && !self.events.is_empty();
        }
        let State::BdatChunk(mut chunk) = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("checked above")
        };
        let Some(env) = chunk.env.take() else {
            let refusal = chunk
                .refusal
                .take()
                .unwrap_or_else(reply::no_valid_recipients);
            self.state = State::ExpectMail;
            if self.helo.is_none() {
                self.state = State::ExpectHello;
            }
            self.client_error(refusal);
            return true;
        };
        if chunk.size > self.config.max_message_size {
            self.events.push_back(Event::BodyAborted);
            self.state = State::ExpectMail;
            self.client_error(reply::message_too_big(self.config.max_message_size));
        } else if chunk.last {
            let bare = chunk.check.finish();
            self.state = State::AwaitCompletion;
            self.finish_body(env, false, bare);
        } else {
            self.reply(reply::chunk_ok(chunk.size));
            self.state = State::ExpectBdat(env, chunk.size, chunk.check);
        }
        true
    }

    fn finish_body(&mut self, env: Envelope<R>, too_big: bool, bare: bool) {
        let refusal = if too_big {
            Some(reply::message_too_big(self.config.max_message_size))
        } else if bare {
            Some(reply::bare_line_ending())
        } else {
            None
        };
        match refusal {
            Some(r) => {
                self.events.push_back(Event::BodyAborted);
                self.state = State::ExpectMail;
                self.client_error(r);
            }
            None => self.events.push_back(Event::Complete(env)),
        }
    }
}

#[cfg(test)]
mod tests;
