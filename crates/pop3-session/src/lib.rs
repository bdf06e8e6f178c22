//! Sans-IO POP3 server session: RFC 1939 (states, commands), RFC 2449 (CAPA, response codes),
//! RFC 5034 (AUTH with SASL), RFC 2595 §4 (STLS).
//!
//! Invariants:
//! - message numbers are fixed at login: changes by other sessions never renumber the maildrop
//!   (RFC 1939 §5), a message removed meanwhile answers `-ERR` when read;
//! - deletions happen only in the UPDATE state, after QUIT (RFC 1939 §6);
//! - bytes pipelined behind STLS are discarded unread;
//! - every line is length-limited; an over-long one is answered once and its tail discarded.
#![forbid(unsafe_code)]

mod session;

pub use session::{Config, Event, LoginResult, Message, Session, UpdateRequest};
