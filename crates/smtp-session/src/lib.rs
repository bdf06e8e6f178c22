//! Sans-IO SMTP (RFC 5321) and LMTP (RFC 2033) server sessions: bytes in, events out.
//!
//! The session never awaits, reads a clock or touches a store; the driver (`smtp-server`) feeds
//! it bytes, writes the replies it emits and answers its questions.
#![forbid(unsafe_code)]

pub mod command;
pub mod data;
pub mod reply;
pub mod server;

pub use command::{Command, MailFrom, Mailbox, RcptTo};
pub use reply::{Reply, Status};
pub use server::{AuthPolicy, Config, Envelope, Event, Recipient, Session, TlsInfo, Verdict};
