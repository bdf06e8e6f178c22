//! One conversation with a filter: the MTA side of the milter protocol, version 6 (libmilter
//! `engine.c` state machine; milter-protocol.txt §A TYPICAL MILTER CONVERSATION; Postfix
//! `milter8.c`).

use crate::message::{self, is_field_name};
use crate::wire::{self, *};
use crate::{
    Endpoint, Milter, MilterError, Modification, Outcome, Reply, Stage, Transaction, Verdict,
};
use std::io;
use std::net::IpAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, timeout_at};

/// Most `SMFIR_PROGRESS` accepted while waiting for one answer (time is bounded too).
const MAX_PROGRESS: usize = 100_000;
/// Most edits (header, recipient, sender changes) accepted at end of message.
const MAX_EDITS: usize = 10_000;
/// Most `SMFIR_REPLBODY` packets accepted (a filter may send the body line by line; its size
/// is bounded separately).
const MAX_BODY_PACKETS: usize = 1_000_000;
/// Most bytes of edits other than the body accepted at end of message.
const MAX_EDIT_BYTES: usize = 16 << 20;
/// Queued output written before more is queued (no-reply stages send without waiting).
const FLUSH_AT: usize = 256 << 10;

/// Macro classes (mfdef.h `SMFIM_*`), indexes into the negotiated symbol lists.
const M_CONNECT: usize = 0;
const M_HELO: usize = 1;
const M_ENVFROM: usize = 2;
const M_ENVRCPT: usize = 3;
const M_DATA: usize = 4;
const M_EOM: usize = 5;
const M_EOH: usize = 6;

/// The macros sent at each stage unless the filter lists its own (`SMFIF_SETSYMLIST`); the
/// Postfix defaults of MILTER_README "Macros" that this server can fill in.
const DEFAULT_MACROS: [&[&str]; MACRO_CLASSES] = [
    &[
        "j",
        "{daemon_name}",
        "{daemon_addr}",
        "{daemon_port}",
        "v",
        "_",
        "{client_addr}",
        "{client_port}",
        "{client_name}",
    ],
    &["{tls_version}", "{cipher}"],
    &["i", "{auth_type}", "{auth_authen}", "{mail_addr}"],
    &["{rcpt_addr}"],
    &["i"],
    &["i"],
    &["i"],
];

/// A filter's answer to one event.
enum Answer {
    Continue,
    Accept,
    Discard,
    Reject(Reply),
    Tempfail(Reply),
    /// `SMFIR_SKIP`: send no more events of this kind.
    Skip,
}

pub(crate) async fn check(milter: &Milter, tx: &Transaction<'_>) -> Result<Outcome, MilterError> {
    let deadline = Instant::now() + milter.total_timeout();
    let connect_until = deadline.min(Instant::now() + milter.connect_timeout());
    let timed_out = || MilterError::ConnectTimeout {
        address: milter.address().to_string(),
        timeout: milter.connect_timeout().min(milter.total_timeout()),
    };
    let failed = |source| MilterError::Connect {
        address: milter.address().to_string(),
        source,
    };
    match milter.endpoint() {
        Endpoint::Tcp { host, port } => {
            let stream = timeout_at(connect_until, connect_tcp(host, *port))
                .await
                .map_err(|_| timed_out())?
                .map_err(failed)?;
            // Small packets are sent one after the other in no-reply stages.
            let _ = stream.set_nodelay(true);
            Session::new(milter, stream, deadline).run(tx).await
        }
        Endpoint::Unix(path) => {
            let stream = timeout_at(connect_until, UnixStream::connect(path))
                .await
                .map_err(|_| timed_out())?
                .map_err(failed)?;
            Session::new(milter, stream, deadline).run(tx).await
        }
    }
}

async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return TcpStream::connect((ip, port)).await;
    }
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("the host name {host} has no address"),
    );
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Why reading one packet failed.
enum ReadError {
    Io(io::Error),
    Length(u32),
}

/// Reads one packet: the length is checked before anything is allocated.
async fn read_raw<S: AsyncRead + Unpin>(io: &mut S) -> Result<(u8, Vec<u8>), ReadError> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await.map_err(ReadError::Io)?;
    let len = u32::from_be_bytes(len);
    let size = usize::try_from(len).unwrap_or(usize::MAX);
    if size == 0 || size > MAX_PACKET {
        return Err(ReadError::Length(len));
    }
    let mut command = [0u8; 1];
    io.read_exact(&mut command).await.map_err(ReadError::Io)?;
    let mut data = vec![0u8; size - 1];
    io.read_exact(&mut data).await.map_err(ReadError::Io)?;
    Ok((command[0], data))
}

/// `<address>`, unless already in brackets (milter-protocol.txt SMFIC_MAIL, SMFIC_RCPT:
/// "args[0] is sender, with <> qualification").
fn angle(address: &str) -> String {
    if address.starts_with('<') && address.ends_with('>') && address.len() >= 2 {
        address.to_string()
    } else {
        format!("<{address}>")
    }
}

/// An address from a filter, without its angle brackets.
fn unangle(address: &[u8]) -> String {
    let s = String::from_utf8_lossy(address);
    let t = s.trim();
    t.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(t)
        .to_string()
}

/// The value of macro `name` (with or without braces), None when unknown here.
fn macro_value(name: &str, tx: &Transaction<'_>, rcpt: Option<&str>) -> Option<String> {
    let inner = name
        .strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name);
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let client = tx.client_ip.to_canonical();
    match inner {
        "j" | "daemon_name" => nonempty(tx.hostname),
        "daemon_addr" => tx.server_addr.map(|a| a.ip().to_canonical().to_string()),
        "daemon_port" => tx.server_addr.map(|a| a.port().to_string()),
        "v" => Some(format!("facteur {}", env!("CARGO_PKG_VERSION"))),
        "_" => Some(format!("{} [{client}]", tx.client_name)),
        "client_addr" => Some(client.to_string()),
        "client_port" => Some(tx.client_port.to_string()),
        "client_name" => nonempty(tx.client_name),
        "tls_version" => tx.tls.map(|t| t.0.to_string()),
        "cipher" => tx.tls.map(|t| t.1.to_string()),
        "i" => nonempty(tx.queue_id),
        "auth_type" => tx.auth.map(|a| a.0.to_string()),
        "auth_authen" => tx.auth.map(|a| a.1.to_string()),
        "mail_addr" => Some(tx.mail_from.to_string()),
        "rcpt_addr" => rcpt.map(str::to_string),
        _ => None,
    }
}

/// Parses an `SMFIR_REPLYCODE` text: `Nxy[ -][N.y.z ]text`, possibly several lines of the
/// same code (libmilter `smfi_setmlreply`). `%%` is the escaped `%` (libmilter passes the
/// text to a printf-style formatter); Postfix undoes it too.
fn parse_replycode(data: &[u8]) -> Result<Reply, String> {
    let text = data.split(|&b| b == 0).next().unwrap_or_default();
    let text = String::from_utf8_lossy(text);
    let bytes = text.as_bytes();
    let well_formed = bytes.len() >= 3
        && matches!(bytes[0], b'4' | b'5')
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && matches!(bytes.get(3), None | Some(b' ' | b'-'));
    if !well_formed {
        return Err(format!(
            "SMFIR_REPLYCODE {:?} is not a 4xx or 5xx SMTP reply",
            text.chars().take(80).collect::<String>()
        ));
    }
    let code_text = &text[..3];
    let code: u16 = code_text
        .parse()
        .map_err(|_| "bad reply code".to_string())?;
    let class = bytes[0] - b'0';
    let mut status = None;
    let mut pieces: Vec<String> = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let rest = match line.strip_prefix(code_text) {
            Some(r) => r.strip_prefix([' ', '-']).unwrap_or(r),
            None if n == 0 => line,
            None => line,
        };
        let (line_status, rest) = match parse_status(rest) {
            Some((s, r)) => (Some(s), r),
            None => (None, rest),
        };
        if let Some(s) = line_status {
            if s.0 != class {
                return Err(format!(
                    "SMFIR_REPLYCODE {code} has the enhanced status {}.{}.{} of another class",
                    s.0, s.1, s.2
                ));
            }
            if n == 0 {
                status = Some(s);
            }
        }
        let rest = rest.trim();
        if !rest.is_empty() {
            pieces.push(rest.to_string());
        }
    }
    let joined = pieces.join(" ").replace("%%", "%");
    let text: String = joined.chars().filter(|c| !c.is_control()).collect();
    Ok(Reply { code, status, text })
}

/// An RFC 3463 enhanced status code at the start of `s` (`class.subject.detail`, then a space
/// or the end): the code and what follows.
fn parse_status(s: &str) -> Option<((u8, u16, u16), &str)> {
    let end = s.find(' ').unwrap_or(s.len());
    let mut parts = s[..end].split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if parts.next().is_some()
        || !digits(class, 1)
        || !digits(subject, 3)
        || !digits(detail, 3)
        || !matches!(class, "2" | "4" | "5")
    {
        return None;
    }
    let status = (
        class.parse().ok()?,
        subject.parse().ok()?,
        detail.parse().ok()?,
    );
    Some((status, &s[end..]))
}

struct Session<'m, S> {
    milter: &'m Milter,
    io: BufReader<S>,
    /// Packets queued, written before the next read.
    out: Vec<u8>,
    deadline: Instant,
    version: u32,
    /// The filter's negotiated actions (`SMFIF_*`) and protocol flags (`SMFIP_*`).
    actions: u32,
    protocol: u32,
    /// Macro names the filter asked for, per class (`SMFIF_SETSYMLIST`).
    symlists: [Option<Vec<String>>; MACRO_CLASSES],
    /// A MAIL FROM was sent: the filter holds message state, cleared with `SMFIC_ABORT`.
    in_transaction: bool,
}

impl<'m, S: AsyncRead + AsyncWrite + Unpin> Session<'m, S> {
    fn new(milter: &'m Milter, stream: S, deadline: Instant) -> Session<'m, S> {
        Session {
            milter,
            io: BufReader::with_capacity(16 << 10, stream),
            out: Vec::with_capacity(8 << 10),
            deadline,
            version: VERSION,
            actions: 0,
            protocol: 0,
            symlists: Default::default(),
            in_transaction: false,
        }
    }

    fn address(&self) -> String {
        self.milter.address().to_string()
    }

    fn protocol_error(&self, stage: Stage, detail: impl Into<String>) -> MilterError {
        MilterError::Protocol {
            address: self.address(),
            stage,
            detail: detail.into(),
        }
    }

    /// When the current wait ends: the command timeout, or the whole check's deadline when
    /// sooner (then true).
    fn wait_until(&self) -> (Instant, bool) {
        let command = Instant::now() + self.milter.command_timeout();
        if self.deadline <= command {
            (self.deadline, true)
        } else {
            (command, false)
        }
    }

    fn timeout_error(&self, stage: Stage, total: bool) -> MilterError {
        if total {
            MilterError::TotalTimeout {
                address: self.address(),
                stage,
                limit: self.milter.total_timeout(),
            }
        } else {
            MilterError::Timeout {
                address: self.address(),
                stage,
                timeout: self.milter.command_timeout(),
            }
        }
    }

    fn io_error(&self, stage: Stage, e: io::Error) -> MilterError {
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => MilterError::Closed {
                address: self.address(),
                stage,
            },
            _ => MilterError::Io {
                address: self.address(),
                stage,
                source: e,
            },
        }
    }

    fn queue(&mut self, command: u8, data: &[u8]) {
        wire::packet(&mut self.out, command, data);
    }

    async fn flush(&mut self, stage: Stage) -> Result<(), MilterError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let (until, total) = self.wait_until();
        let out = std::mem::take(&mut self.out);
        let written = timeout_at(until, async {
            self.io.get_mut().write_all(&out).await?;
            self.io.get_mut().flush().await
        })
        .await;
        self.out = out;
        self.out.clear();
        match written {
            Err(_) => Err(self.timeout_error(stage, total)),
            Ok(Err(e)) => Err(self.io_error(stage, e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    async fn read_packet(&mut self, stage: Stage) -> Result<(u8, Vec<u8>), MilterError> {
        self.flush(stage).await?;
        let (until, total) = self.wait_until();
        match timeout_at(until, read_raw(&mut self.io)).await {
            Err(_) => Err(self.timeout_error(stage, total)),
            Ok(Err(ReadError::Io(e))) => Err(self.io_error(stage, e)),
            Ok(Err(ReadError::Length(0))) => {
                Err(self.protocol_error(stage, "a packet of length 0 (without a reply code)"))
            }
            Ok(Err(ReadError::Length(len))) => Err(self.protocol_error(
                stage,
                format!("a packet of {len} bytes, more than the {MAX_PACKET} this server accepts"),
            )),
            Ok(Ok(packet)) => Ok(packet),
        }
    }

    /// The next reply other than `SMFIR_PROGRESS`, which only restarts the command timeout
    /// (milter-protocol.txt SMFIR_PROGRESS); the whole check's deadline still holds.
    async fn reply(&mut self, stage: Stage) -> Result<(u8, Vec<u8>), MilterError> {
        for _ in 0..MAX_PROGRESS {
            let (code, data) = self.read_packet(stage).await?;
            if code != R_PROGRESS {
                return Ok((code, data));
            }
            if !data.is_empty() {
                return Err(self.protocol_error(stage, "SMFIR_PROGRESS with data"));
            }
            tracing::trace!(milter = %self.milter.address(), %stage, "progress");
        }
        Err(self.protocol_error(
            stage,
            format!("more than {MAX_PROGRESS} SMFIR_PROGRESS in a row"),
        ))
    }

    /// An accept/reject answer (milter-protocol.txt §RESPONSE CODES).
    fn answer(&self, stage: Stage, code: u8, data: &[u8]) -> Result<Answer, MilterError> {
        let answer = match code {
            R_CONTINUE => Answer::Continue,
            R_ACCEPT => Answer::Accept,
            R_DISCARD => Answer::Discard,
            R_REJECT => Answer::Reject(Reply::default_reject()),
            R_TEMPFAIL => Answer::Tempfail(Reply::default_tempfail()),
            R_SKIP => Answer::Skip,
            R_REPLYCODE => {
                let reply = parse_replycode(data).map_err(|d| self.protocol_error(stage, d))?;
                return Ok(if reply.is_temporary() {
                    Answer::Tempfail(reply)
                } else {
                    Answer::Reject(reply)
                });
            }
            other => {
                return Err(self.protocol_error(
                    stage,
                    format!("unexpected {} at this stage", wire::reply_name(other)),
                ));
            }
        };
        if !data.is_empty() {
            return Err(self.protocol_error(
                stage,
                format!(
                    "{} followed by {} bytes of data",
                    wire::reply_name(code),
                    data.len()
                ),
            ));
        }
        Ok(answer)
    }

    /// Queues the `SMFIC_MACRO` packet of a stage (milter-protocol.txt SMFIC_MACRO). Sent even
    /// when the filter turned the stage itself off, as Postfix does, so that it can read the
    /// macros later.
    fn macros(&mut self, class: usize, command: u8, tx: &Transaction<'_>, rcpt: Option<&str>) {
        let mut data = vec![command];
        let mut any = false;
        let names: Vec<String> = match &self.symlists[class] {
            Some(list) => list.clone(),
            None => DEFAULT_MACROS[class]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        for name in &names {
            if let Some(value) = macro_value(name, tx, rcpt) {
                put_cstr(&mut data, name.as_bytes());
                put_cstr(&mut data, value.as_bytes());
                any = true;
            }
        }
        if any {
            self.queue(C_MACRO, &data);
        }
    }

    /// Sends one event and waits for its answer, unless the filter turned the event off
    /// (`skip_flag`) or its reply off (`no_reply_flag`) (milter-protocol-extras, protocol
    /// flags; libmilter `engine.c` `get_nr_bit`).
    async fn event(
        &mut self,
        stage: Stage,
        command: u8,
        data: &[u8],
        skip_flag: u32,
        no_reply_flag: u32,
    ) -> Result<Answer, MilterError> {
        if self.protocol & skip_flag != 0 {
            return Ok(Answer::Continue);
        }
        self.queue(command, data);
        if self.protocol & no_reply_flag != 0 {
            if self.out.len() >= FLUSH_AT {
                self.flush(stage).await?;
            }
            return Ok(Answer::Continue);
        }
        let (code, reply) = self.reply(stage).await?;
        let answer = self.answer(stage, code, &reply)?;
        tracing::debug!(
            milter = %self.milter.address(), %stage, reply = %wire::reply_name(code), "answer"
        );
        Ok(answer)
    }

    /// Option negotiation (milter-protocol.txt SMFIC_OPTNEG; libmilter `st_optionneg`):
    /// offer version 6 and everything this client supports; the filter answers with what it
    /// wants, which must be within the offer, and optionally its macro lists.
    async fn negotiate(&mut self) -> Result<(), MilterError> {
        let stage = Stage::Negotiation;
        let mut offer = Vec::with_capacity(12);
        offer.extend_from_slice(&VERSION.to_be_bytes());
        offer.extend_from_slice(&OFFERED_ACTIONS.to_be_bytes());
        offer.extend_from_slice(&OFFERED_PROTOCOL.to_be_bytes());
        self.queue(C_OPTNEG, &offer);
        let (code, data) = self.read_packet(stage).await?;
        if code != C_OPTNEG {
            return Err(self.protocol_error(
                stage,
                format!(
                    "answered {} instead of SMFIC_OPTNEG",
                    wire::reply_name(code)
                ),
            ));
        }
        let mut d = wire::Data::new(&data);
        let (Some(version), Some(actions), Some(protocol)) = (d.u32(), d.u32(), d.u32()) else {
            return Err(self.protocol_error(
                stage,
                format!("SMFIC_OPTNEG of {} bytes, fewer than 12", data.len()),
            ));
        };
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(self.protocol_error(
                stage,
                format!("protocol version {version}; this server speaks 2 to {VERSION}"),
            ));
        }
        if actions & !OFFERED_ACTIONS != 0 {
            return Err(self.protocol_error(
                stage,
                format!(
                    "it asks for actions 0x{:x} this server did not offer",
                    actions & !OFFERED_ACTIONS
                ),
            ));
        }
        if protocol & !OFFERED_PROTOCOL != 0 {
            return Err(self.protocol_error(
                stage,
                format!(
                    "it asks for protocol options 0x{:x} this server did not offer",
                    protocol & !OFFERED_PROTOCOL
                ),
            ));
        }
        self.version = version;
        self.actions = actions;
        self.protocol = protocol;
        // Macro lists: (uint32 class, NUL-terminated space-separated names)* (Postfix
        // milter8.c "Secondary negotiations"; libmilter `milter_addsymlist`).
        while !d.is_empty() {
            let (Some(class), Some(names)) = (d.u32(), d.cstr()) else {
                return Err(self.protocol_error(stage, "a truncated macro list in SMFIC_OPTNEG"));
            };
            let names: Vec<String> = String::from_utf8_lossy(names)
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect();
            match usize::try_from(class) {
                Ok(c) if c < MACRO_CLASSES => self.symlists[c] = Some(names),
                _ => tracing::warn!(
                    milter = %self.milter.address(), class,
                    "ignoring a macro list of an unknown class"
                ),
            }
        }
        tracing::debug!(
            milter = %self.milter.address(), version,
            actions = format_args!("0x{actions:x}"), protocol = format_args!("0x{protocol:x}"),
            "negotiated"
        );
        Ok(())
    }

    /// Ends the conversation before end of message: `SMFIC_ABORT` when the filter holds
    /// message state (libmilter calls its abort callback), then `SMFIC_QUIT`.
    async fn stop(
        mut self,
        verdict: Verdict,
        rejected_recipients: Vec<(String, Reply)>,
    ) -> Result<Outcome, MilterError> {
        if self.in_transaction {
            self.queue(C_ABORT, &[]);
        }
        self.quit().await;
        Ok(Outcome {
            verdict,
            modifications: Vec::new(),
            rejected_recipients,
        })
    }

    /// `SMFIC_QUIT`; the decision is already made, so a failure here only gets logged.
    async fn quit(&mut self) {
        self.queue(C_QUIT, &[]);
        if let Err(e) = self.flush(Stage::Quit).await {
            tracing::debug!(milter = %self.milter.address(), error = %e, "quit");
        }
        let _ = timeout_at(self.wait_until().0, self.io.get_mut().shutdown()).await;
    }

    async fn run(mut self, tx: &Transaction<'_>) -> Result<Outcome, MilterError> {
        self.negotiate().await?;
        let mut rejected: Vec<(String, Reply)> = Vec::new();

        // SMFIC_CONNECT: hostname, family, port (network order), address.
        let client = tx.client_ip.to_canonical();
        let mut data = Vec::with_capacity(64);
        put_cstr(&mut data, tx.client_name.as_bytes());
        data.push(if client.is_ipv4() {
            FAMILY_INET
        } else {
            FAMILY_INET6
        });
        data.extend_from_slice(&tx.client_port.to_be_bytes());
        put_cstr(&mut data, client.to_string().as_bytes());
        self.macros(M_CONNECT, C_CONNECT, tx, None);
        let answer = self
            .event(Stage::Connection, C_CONNECT, &data, P_NOCONNECT, P_NR_CONN)
            .await?;
        if let Some(verdict) = self.connection_level(Stage::Connection, answer) {
            return self.stop(verdict, rejected).await;
        }

        // SMFIC_HELO.
        let mut data = Vec::with_capacity(tx.helo.len() + 1);
        put_cstr(&mut data, tx.helo.as_bytes());
        self.macros(M_HELO, C_HELO, tx, None);
        let answer = self
            .event(Stage::Helo, C_HELO, &data, P_NOHELO, P_NR_HELO)
            .await?;
        if let Some(verdict) = self.connection_level(Stage::Helo, answer) {
            return self.stop(verdict, rejected).await;
        }

        // SMFIC_MAIL: args[0] the sender in <>, then the ESMTP parameters.
        let mut data = Vec::with_capacity(64);
        put_cstr(&mut data, angle(tx.mail_from).as_bytes());
        for arg in tx.mail_args {
            put_cstr(&mut data, arg.as_bytes());
        }
        self.macros(M_ENVFROM, C_MAIL, tx, None);
        self.in_transaction = true;
        let answer = self
            .event(Stage::MailFrom, C_MAIL, &data, P_NOMAIL, P_NR_MAIL)
            .await?;
        if let Some(verdict) = message_level(answer) {
            return self.stop(verdict, rejected).await;
        }

        // SMFIC_RCPT, one per recipient; a refusal drops that recipient only.
        let mut skip_rcpt = false;
        for rcpt in tx.recipients {
            if skip_rcpt {
                continue;
            }
            let mut data = Vec::with_capacity(rcpt.len() + 3);
            put_cstr(&mut data, angle(rcpt).as_bytes());
            self.macros(M_ENVRCPT, C_RCPT, tx, Some(rcpt));
            match self
                .event(Stage::RcptTo, C_RCPT, &data, P_NORCPT, P_NR_RCPT)
                .await?
            {
                Answer::Continue => {}
                Answer::Skip => skip_rcpt = true,
                Answer::Reject(reply) | Answer::Tempfail(reply) => {
                    tracing::info!(
                        milter = %self.milter.address(), recipient = %rcpt, %reply,
                        "recipient refused by milter"
                    );
                    rejected.push((rcpt.clone(), reply));
                }
                Answer::Accept => return self.stop(Verdict::Accept, rejected).await,
                Answer::Discard => return self.stop(Verdict::Discard, rejected).await,
            }
        }
        if !tx.recipients.is_empty() && rejected.len() == tx.recipients.len() {
            // No recipient left: the message is refused, temporarily if any refusal was.
            let reply = rejected
                .iter()
                .find(|(_, r)| r.is_temporary())
                .or(rejected.first())
                .map(|(_, r)| r.clone())
                .unwrap_or_else(Reply::default_reject);
            let verdict = if reply.is_temporary() {
                Verdict::Tempfail(reply)
            } else {
                Verdict::Reject(reply)
            };
            return self.stop(verdict, rejected).await;
        }

        // SMFIC_DATA (protocol 4 and later).
        if self.version >= DATA_VERSION {
            self.macros(M_DATA, C_DATA, tx, None);
            let answer = self
                .event(Stage::Data, C_DATA, &[], P_NODATA, P_NR_DATA)
                .await?;
            if let Some(verdict) = message_level(answer) {
                return self.stop(verdict, rejected).await;
            }
        }

        // SMFIC_HEADER per field: name, value (folding kept, see message::value_for_filter).
        let parsed = message::parse(tx.message);
        let lead_space = self.protocol & P_HDR_LEADSPC != 0;
        for field in &parsed.fields {
            let mut data = Vec::with_capacity(field.raw.len() + 2);
            put_cstr(&mut data, field.name);
            put_cstr(
                &mut data,
                &message::value_for_filter(field.value, lead_space),
            );
            match self
                .event(Stage::Header, C_HEADER, &data, P_NOHDRS, P_NR_HDR)
                .await?
            {
                Answer::Skip => break,
                answer => {
                    if let Some(verdict) = message_level(answer) {
                        return self.stop(verdict, rejected).await;
                    }
                }
            }
        }

        // SMFIC_EOH.
        self.macros(M_EOH, C_EOH, tx, None);
        let answer = self
            .event(Stage::EndOfHeaders, C_EOH, &[], P_NOEOH, P_NR_EOH)
            .await?;
        if let Some(verdict) = message_level(answer) {
            return self.stop(verdict, rejected).await;
        }

        // SMFIC_BODY in chunks of at most MILTER_CHUNK_SIZE, as received (CRLF).
        for chunk in parsed.body.chunks(CHUNK_SIZE) {
            match self
                .event(Stage::Body, C_BODY, chunk, P_NOBODY, P_NR_BODY)
                .await?
            {
                // SMFIR_SKIP: the filter has seen enough of the body (SMFIP_SKIP offered).
                Answer::Skip => break,
                answer => {
                    if let Some(verdict) = message_level(answer) {
                        return self.stop(verdict, rejected).await;
                    }
                }
            }
        }

        // SMFIC_BODYEOB: modification actions, then the final answer.
        self.macros(M_EOM, C_BODYEOB, tx, None);
        self.queue(C_BODYEOB, &[]);
        let outcome = self.end_of_message(rejected).await?;
        self.quit().await;
        Ok(outcome)
    }

    /// An answer at CONNECT or HELO: the verdict when it ends the conversation.
    /// `SMFIR_DISCARD` is meaningless for a connection and ignored, as Postfix does.
    fn connection_level(&self, stage: Stage, answer: Answer) -> Option<Verdict> {
        if let Answer::Discard = answer {
            tracing::warn!(
                milter = %self.milter.address(), %stage,
                "SMFIR_DISCARD is not allowed at this stage; ignored"
            );
            return None;
        }
        message_level(answer)
    }

    fn need(&self, flag: u32, code: u8) -> Result<(), MilterError> {
        if self.actions & flag == 0 {
            return Err(self.protocol_error(
                Stage::EndOfMessage,
                format!(
                    "it sent {} without having negotiated that action",
                    wire::reply_name(code)
                ),
            ));
        }
        Ok(())
    }

    /// Header name and value of an `SMFIR_ADDHEADER`/`INSHEADER`/`CHGHEADER`.
    fn header_edit(
        &self,
        code: u8,
        d: &mut wire::Data<'_>,
    ) -> Result<(String, String), MilterError> {
        let stage = Stage::EndOfMessage;
        let (Some(name), Some(value)) = (d.cstr(), d.cstr()) else {
            return Err(self.protocol_error(
                stage,
                format!("{} without its name and value", wire::reply_name(code)),
            ));
        };
        if !d.is_empty() {
            return Err(self.protocol_error(
                stage,
                format!("{} followed by extra data", wire::reply_name(code)),
            ));
        }
        if !is_field_name(name) {
            return Err(self.protocol_error(
                stage,
                format!(
                    "{} with an invalid header name {:?}",
                    wire::reply_name(code),
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        let mut value = String::from_utf8_lossy(value).into_owned();
        // Without SMFIP_HDR_LEADSPC the filter's value lacks the space after the colon.
        if self.protocol & P_HDR_LEADSPC == 0 && !value.is_empty() {
            value.insert(0, ' ');
        }
        Ok((String::from_utf8_lossy(name).into_owned(), value))
    }

    /// An envelope address with optional ESMTP arguments (`SMFIR_CHGFROM`,
    /// `SMFIR_ADDRCPT_PAR`): the address; arguments are logged and not carried out.
    fn address_edit(&self, code: u8, data: &[u8], with_args: bool) -> Result<String, MilterError> {
        let mut d = wire::Data::new(data);
        let Some(address) = d.cstr() else {
            return Err(self.protocol_error(
                Stage::EndOfMessage,
                format!("{} without an address", wire::reply_name(code)),
            ));
        };
        if with_args && !d.is_empty() {
            let args = d.cstr().unwrap_or_default();
            if !args.is_empty() {
                tracing::info!(
                    milter = %self.milter.address(),
                    args = %String::from_utf8_lossy(args),
                    "ESMTP arguments of {} ignored", wire::reply_name(code)
                );
            }
        }
        if !d.is_empty() {
            return Err(self.protocol_error(
                Stage::EndOfMessage,
                format!("{} followed by extra data", wire::reply_name(code)),
            ));
        }
        let address = unangle(address);
        if address.chars().any(|c| c.is_control()) {
            return Err(self.protocol_error(
                Stage::EndOfMessage,
                format!("{} with control characters", wire::reply_name(code)),
            ));
        }
        Ok(address)
    }

    /// End of message (milter-protocol.txt SMFIC_BODYEOB: "zero or more modification actions,
    /// then accept/reject action"). Each modification must be one the filter negotiated.
    async fn end_of_message(
        &mut self,
        rejected: Vec<(String, Reply)>,
    ) -> Result<Outcome, MilterError> {
        let stage = Stage::EndOfMessage;
        let mut modifications = Vec::new();
        let mut body: Option<Vec<u8>> = None;
        let mut quarantine: Option<String> = None;
        let (mut edits, mut edit_bytes, mut body_packets) = (0usize, 0usize, 0usize);
        let answer = loop {
            let (code, data) = self.reply(stage).await?;
            if code == R_REPLBODY {
                body_packets += 1;
                if body_packets > MAX_BODY_PACKETS {
                    return Err(self.protocol_error(
                        stage,
                        format!("more than {MAX_BODY_PACKETS} SMFIR_REPLBODY packets"),
                    ));
                }
            } else {
                edits += 1;
                edit_bytes = edit_bytes.saturating_add(data.len());
                if edits > MAX_EDITS || edit_bytes > MAX_EDIT_BYTES {
                    return Err(self.protocol_error(
                        stage,
                        format!("more than {MAX_EDITS} changes or {MAX_EDIT_BYTES} bytes of them"),
                    ));
                }
            }
            match code {
                R_ADDHEADER => {
                    self.need(F_ADDHDRS, code)?;
                    let (name, value) = self.header_edit(code, &mut wire::Data::new(&data))?;
                    modifications.push(Modification::AddHeader { name, value });
                }
                R_INSHEADER | R_CHGHEADER => {
                    self.need(
                        if code == R_INSHEADER {
                            F_ADDHDRS
                        } else {
                            F_CHGHDRS
                        },
                        code,
                    )?;
                    let mut d = wire::Data::new(&data);
                    let Some(index) = d.u32() else {
                        return Err(self.protocol_error(
                            stage,
                            format!("{} without its index", wire::reply_name(code)),
                        ));
                    };
                    let (name, value) = self.header_edit(code, &mut d)?;
                    modifications.push(if code == R_INSHEADER {
                        Modification::InsertHeader { index, name, value }
                    } else {
                        Modification::ChangeHeader { name, index, value }
                    });
                }
                R_REPLBODY => {
                    self.need(F_CHGBODY, code)?;
                    let body = body.get_or_insert_with(Vec::new);
                    if body.len().saturating_add(data.len()) > self.milter.max_body() {
                        return Err(self.protocol_error(
                            stage,
                            format!(
                                "a replacement body larger than the {} bytes allowed",
                                self.milter.max_body()
                            ),
                        ));
                    }
                    body.extend_from_slice(&data);
                }
                R_CHGFROM => {
                    self.need(F_CHGFROM, code)?;
                    let address = self.address_edit(code, &data, true)?;
                    modifications.push(Modification::ChangeFrom(address));
                }
                R_ADDRCPT => {
                    self.need(F_ADDRCPT, code)?;
                    let address = self.address_edit(code, &data, false)?;
                    modifications.push(Modification::AddRecipient(address));
                }
                R_ADDRCPT_PAR => {
                    self.need(F_ADDRCPT_PAR, code)?;
                    let address = self.address_edit(code, &data, true)?;
                    modifications.push(Modification::AddRecipient(address));
                }
                R_DELRCPT => {
                    self.need(F_DELRCPT, code)?;
                    let address = self.address_edit(code, &data, false)?;
                    modifications.push(Modification::DeleteRecipient(address));
                }
                R_QUARANTINE => {
                    self.need(F_QUARANTINE, code)?;
                    let mut d = wire::Data::new(&data);
                    let reason = d.cstr().unwrap_or_else(|| d.rest());
                    let reason: String = String::from_utf8_lossy(reason)
                        .chars()
                        .filter(|c| !c.is_control())
                        .collect();
                    quarantine = Some(reason);
                }
                _ => break self.answer(stage, code, &data)?,
            }
        };
        if let Some(body) = body {
            modifications.push(Modification::ReplaceBody(body));
        }
        let verdict = match answer {
            Answer::Continue | Answer::Skip => Verdict::Continue,
            Answer::Accept => Verdict::Accept,
            Answer::Discard => Verdict::Discard,
            Answer::Reject(r) => Verdict::Reject(r),
            Answer::Tempfail(r) => Verdict::Tempfail(r),
        };
        let verdict = match (verdict, quarantine) {
            (Verdict::Continue | Verdict::Accept, Some(reason)) => Verdict::Quarantine(reason),
            (v, _) => v,
        };
        if !matches!(
            verdict,
            Verdict::Continue | Verdict::Accept | Verdict::Quarantine(_)
        ) {
            modifications.clear();
        }
        Ok(Outcome {
            verdict,
            modifications,
            rejected_recipients: rejected,
        })
    }
}

/// An answer from MAIL FROM on: the verdict when it ends the conversation.
fn message_level(answer: Answer) -> Option<Verdict> {
    match answer {
        Answer::Continue | Answer::Skip => None,
        Answer::Accept => Some(Verdict::Accept),
        Answer::Discard => Some(Verdict::Discard),
        Answer::Reject(r) => Some(Verdict::Reject(r)),
        Answer::Tempfail(r) => Some(Verdict::Tempfail(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replycode_forms() {
        let r = parse_replycode(b"554 5.7.1 Go away, 100%% sure\0").unwrap();
        assert_eq!(
            r,
            Reply {
                code: 554,
                status: Some((5, 7, 1)),
                text: "Go away, 100% sure".into()
            }
        );
        let r = parse_replycode(b"450 try later\0").unwrap();
        assert_eq!(
            (r.code, r.status, r.text.as_str()),
            (450, None, "try later")
        );
        let r = parse_replycode(b"550-5.7.1 first\r\n550 5.7.1 second\0").unwrap();
        assert_eq!(r.text, "first second");
        assert_eq!(r.status, Some((5, 7, 1)));
        let r = parse_replycode(b"421\0").unwrap();
        assert_eq!((r.code, r.text.as_str()), (421, ""));
        assert_eq!(r.to_string(), "421");
        let r = parse_replycode(b"550 5.1.10 x\0").unwrap();
        assert_eq!(r.status, Some((5, 1, 10)));
        assert_eq!(r.to_string(), "550 5.1.10 x");
        // A status-looking word that is not a status stays text.
        let r = parse_replycode(b"550 5.7 no\0").unwrap();
        assert_eq!((r.status, r.text.as_str()), (None, "5.7 no"));
    }

    #[test]
    fn replycode_refused() {
        for bad in [
            &b"250 ok\0"[..],
            b"abc\0",
            b"55\0",
            b"\0",
            b"",
            b"5501 x\0",
            b"550 4.7.1 mixed\0",
        ] {
            assert!(
                parse_replycode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn angles() {
        assert_eq!(angle("a@b"), "<a@b>");
        assert_eq!(angle(""), "<>");
        assert_eq!(angle("<a@b>"), "<a@b>");
        assert_eq!(unangle(b"<a@b>"), "a@b");
        assert_eq!(unangle(b"a@b"), "a@b");
    }
}
