//! facteur's milter client: calls existing mail filters (OpenDKIM, OpenDMARC, rspamd, amavis,
//! ClamAV's clamav-milter...) over the Sendmail/Postfix milter protocol, version 6.
//!
//! The SMTP roles call [`Milter::check`] once per message at the end of DATA. It opens one
//! connection and replays the whole SMTP transaction in order, as Postfix's `milter8.c` does:
//! option negotiation, CONNECT, HELO, MAIL FROM, each RCPT TO, DATA, each header field, end of
//! headers, the body in chunks, end of message, then QUIT. Each stage is preceded by its
//! macros (Postfix MILTER_README, "Macros"). The filter's protocol flags turn stages and
//! replies off; its answers decide the message ([`Verdict`]), may drop single recipients, and
//! at end of message may edit it ([`Modification`], applied with [`apply`]).
//!
//! Header fields go to the filter with their folding (bare LF between lines, as Sendmail and
//! Postfix send them) and without the space after the colon unless `SMFIP_HDR_LEADSPC` was
//! negotiated; the body goes as received, CRLF. libmilter refuses packets over 65535 bytes,
//! so a single header field longer than that ends the conversation with an error.
//!
//! References: Sendmail's `libmilter` (`include/libmilter/mfdef.h`, `libmilter/engine.c`),
//! "The Sendmail Milter Protocol, Version 2" (milter-protocol.txt) and its version 6
//! additions, and Postfix's MILTER_README.
#![forbid(unsafe_code)]

mod address;
mod message;
mod session;
mod wire;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use address::Endpoint;

/// How long a whole [`Milter::check`] may take when not set: Postfix's
/// `milter_content_timeout` default.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// The largest replacement body accepted from a filter when not set.
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// One configured filter: where it listens and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Milter {
    address: String,
    endpoint: Endpoint,
    connect_timeout: Duration,
    command_timeout: Duration,
    total_timeout: Duration,
    max_body: usize,
}

impl Milter {
    /// A filter at `address`: `unix:/path` (or `local:/path`, or an absolute path),
    /// `inet:PORT@HOST` / `inet6:PORT@HOST` (Sendmail syntax), `inet:HOST:PORT` (Postfix
    /// syntax; an IPv6 host in brackets) or `HOST:PORT`. `connect_timeout` bounds name lookup
    /// and connection; `command_timeout` bounds each write and each wait for a reply (Postfix
    /// `milter_connect_timeout`, `milter_command_timeout`).
    pub fn parse(
        address: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Milter, MilterError> {
        let endpoint = Endpoint::parse(address)?;
        Ok(Milter {
            address: address.to_string(),
            endpoint,
            connect_timeout,
            command_timeout,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// Bounds a whole [`check`](Milter::check), however many `SMFIR_PROGRESS` the filter sends
    /// (Postfix `milter_content_timeout`). Default [`DEFAULT_TOTAL_TIMEOUT`].
    pub fn with_total_timeout(mut self, total: Duration) -> Milter {
        self.total_timeout = total;
        self
    }

    /// Bounds the body a filter may send with `SMFIR_REPLBODY`. Default [`DEFAULT_MAX_BODY`].
    pub fn with_max_body(mut self, bytes: usize) -> Milter {
        self.max_body = bytes;
        self
    }

    /// The address as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Where the filter listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Replays the transaction to the filter and returns its decision. An error (filter down,
    /// timeout, protocol violation) leaves the decision to the caller, as Postfix's
    /// `milter_default_action` does; the usual choice is a temporary failure
    /// (`451 4.3.5`), or accepting the message when the filter is optional.
    pub async fn check(&self, tx: &Transaction<'_>) -> Result<Outcome, MilterError> {
        session::check(self, tx).await
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    pub(crate) fn command_timeout(&self) -> Duration {
        self.command_timeout
    }
    pub(crate) fn total_timeout(&self) -> Duration {
        self.total_timeout
    }
    pub(crate) fn max_body(&self) -> usize {
        self.max_body
    }
}

/// One SMTP transaction, as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct Transaction<'a> {
    /// The SMTP client's address and port (`SMFIC_CONNECT`, `{client_addr}`, `{client_port}`).
    pub client_ip: IpAddr,
    /// The SMTP client's port.
    pub client_port: u16,
    /// The client's verified reverse DNS name, or `[ip]` (`{client_name}`).
    pub client_name: &'a str,
    /// The server's address the client connected to (`{daemon_addr}`, `{daemon_port}`).
    pub server_addr: Option<SocketAddr>,
    /// The HELO/EHLO argument.
    pub helo: &'a str,
    /// The envelope sender without angle brackets, empty for the null sender.
    pub mail_from: &'a str,
    /// The MAIL FROM ESMTP parameters (`SIZE=1234`, `BODY=8BITMIME`...).
    pub mail_args: &'a [String],
    /// The accepted recipients, without angle brackets.
    pub recipients: &'a [String],
    /// The message as received: header section, empty line, body, CRLF line endings.
    pub message: &'a [u8],
    /// The queue identifier (macro `i`).
    pub queue_id: &'a str,
    /// This server's host name (macros `j` and `{daemon_name}`).
    pub hostname: &'a str,
    /// SASL mechanism and authenticated user (`{auth_type}`, `{auth_authen}`).
    pub auth: Option<(&'a str, &'a str)>,
    /// TLS version and cipher (`{tls_version}`, `{cipher}`).
    pub tls: Option<(&'a str, &'a str)>,
}

/// A filter's decision and the changes it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to do with the message.
    pub verdict: Verdict,
    /// Changes to the message and envelope, in the order the filter sent them; empty unless
    /// the verdict lets the message through (Continue, Accept, Quarantine).
    pub modifications: Vec<Modification>,
    /// Recipients the filter refused at RCPT time; they must not receive the message. When
    /// it refused them all, the verdict refuses the message.
    pub rejected_recipients: Vec<(String, Reply)>,
}

impl Outcome {
    /// The recipients after the filter: `recipients` less those it refused or deleted, plus
    /// those it added (addresses compared without regard to case).
    pub fn recipients(&self, recipients: &[String]) -> Vec<String> {
        let mut out: Vec<String> = recipients
            .iter()
            .filter(|r| {
                !self
                    .rejected_recipients
                    .iter()
                    .any(|(x, _)| x.eq_ignore_ascii_case(r))
            })
            .cloned()
            .collect();
        for m in &self.modifications {
            match m {
                Modification::DeleteRecipient(d) => out.retain(|r| !r.eq_ignore_ascii_case(d)),
                Modification::AddRecipient(a) if !out.iter().any(|r| r.eq_ignore_ascii_case(a)) => {
                    out.push(a.clone());
                }
                _ => {}
            }
        }
        out
    }

    /// The envelope sender after the filter (the last `ChangeFrom`, else `mail_from`).
    pub fn sender<'s>(&'s self, mail_from: &'s str) -> &'s str {
        self.modifications
            .iter()
            .rev()
            .find_map(|m| match m {
                Modification::ChangeFrom(f) => Some(f.as_str()),
                _ => None,
            })
            .unwrap_or(mail_from)
    }
}

/// What to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The filter let the message go through every stage (`SMFIR_CONTINUE` at end of
    /// message): deliver it, with its modifications.
    Continue,
    /// The filter accepted the message (`SMFIR_ACCEPT`); when before end of message, it saw no
    /// more of it and asked for no change.
    Accept,
    /// Accept the message, tell the client it was delivered, and drop it (`SMFIR_DISCARD`).
    Discard,
    /// Refuse the message with this permanent reply.
    Reject(Reply),
    /// Refuse the message with this temporary reply.
    Tempfail(Reply),
    /// Accept the message but hold it in quarantine, for this reason (`SMFIR_QUARANTINE`).
    Quarantine(String),
}

/// An SMTP reply decided by a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 4xx or 5xx.
    pub code: u16,
    /// The RFC 3463 enhanced status code (class, subject, detail), when given.
    pub status: Option<(u8, u16, u16)>,
    /// The text, on one line.
    pub text: String,
}

impl Reply {
    /// Postfix's reply to a plain `SMFIR_REJECT`.
    pub fn default_reject() -> Reply {
        Reply {
            code: 550,
            status: Some((5, 7, 1)),
            text: "Command rejected".to_string(),
        }
    }

    /// Postfix's reply to a plain `SMFIR_TEMPFAIL`.
    pub fn default_tempfail() -> Reply {
        Reply {
            code: 451,
            status: Some((4, 7, 1)),
            text: "Service unavailable - try again later".to_string(),
        }
    }

    /// True for a 4xx reply.
    pub fn is_temporary(&self) -> bool {
        self.code / 100 == 4
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some((c, s, d)) = self.status {
            write!(f, " {c}.{s}.{d}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// A change a filter asks for at end of message.
///
/// Header values are exactly what follows the colon: without `SMFIP_HDR_LEADSPC` the filter
/// sends the value without its leading space and one is added here, as Sendmail and Postfix
/// do. Values may contain line breaks (folding); [`apply`] writes them with CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modification {
    /// Append a header field at the end of the header section (`SMFIR_ADDHEADER`).
    AddHeader { name: String, value: String },
    /// Insert a header field before the `index`-th one, 0 being the top
    /// (`SMFIR_INSHEADER`).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Replace the `index`-th field named `name` (1-based, among fields of that name,
    /// case-insensitive); an empty value deletes it (`SMFIR_CHGHEADER`).
    ChangeHeader {
        name: String,
        index: u32,
        value: String,
    },
    /// Replace the whole body (`SMFIR_REPLBODY`, chunks joined).
    ReplaceBody(Vec<u8>),
    /// Replace the envelope sender (`SMFIR_CHGFROM`), without angle brackets.
    ChangeFrom(String),
    /// Add an envelope recipient (`SMFIR_ADDRCPT`, `SMFIR_ADDRCPT_PAR`), without brackets.
    AddRecipient(String),
    /// Remove an envelope recipient (`SMFIR_DELRCPT`), without brackets.
    DeleteRecipient(String),
}

/// Applies the header and body modifications to a message (header section, empty line,
/// body, CRLF line endings) and returns the new message. Envelope changes are the caller's
/// (see [`Outcome::recipients`], [`Outcome::sender`]). Fields not touched keep their bytes and
/// folding; added and changed ones are written `name:value` with CRLF line breaks, their
/// continuation lines indented.
pub fn apply(message: &[u8], modifications: &[Modification]) -> Vec<u8> {
    message::apply(message, modifications)
}

/// The stage of the conversation an error happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Negotiation,
    Connection,
    Helo,
    MailFrom,
    RcptTo,
    Data,
    Header,
    EndOfHeaders,
    Body,
    EndOfMessage,
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Negotiation => "option negotiation (SMFIC_OPTNEG)",
            Stage::Connection => "connection information (SMFIC_CONNECT)",
            Stage::Helo => "HELO (SMFIC_HELO)",
            Stage::MailFrom => "MAIL FROM (SMFIC_MAIL)",
            Stage::RcptTo => "RCPT TO (SMFIC_RCPT)",
            Stage::Data => "DATA (SMFIC_DATA)",
            Stage::Header => "header fields (SMFIC_HEADER)",
            Stage::EndOfHeaders => "end of headers (SMFIC_EOH)",
            Stage::Body => "body (SMFIC_BODY)",
            Stage::EndOfMessage => "end of message (SMFIC_BODYEOB)",
            Stage::Quit => "QUIT (SMFIC_QUIT)",
        })
    }
}

/// Why a filter could not be consulted. Every message names the filter's address.
#[derive(Debug, thiserror::Error)]
pub enum MilterError {
    #[error("invalid milter address {address:?}: {reason}")]
    Address {
        address: String,
        reason: &'static str,
    },
    #[error("cannot connect to milter {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to milter {address} not established within {timeout:?}")]
    ConnectTimeout { address: String, timeout: Duration },
    #[error("network error with milter {address} during {stage}: {source}")]
    Io {
        address: String,
        stage: Stage,
        #[source]
        source: std::io::Error,
    },
    #[error("milter {address} did not answer within {timeout:?} during {stage}")]
    Timeout {
        address: String,
        stage: Stage,
        timeout: Duration,
    },
    #[error("milter {address} took more than the {limit:?} allowed for one message (at {stage})")]
    TotalTimeout {
        address: String,
        stage: Stage,
        limit: Duration,
    },
    #[error("milter {address} closed the connection during {stage}")]
    Closed { address: String, stage: Stage },
    #[error("milter {address} broke the milter protocol during {stage}: {detail}")]
    Protocol {
        address: String,
        stage: Stage,
        detail: String,
    },
}
