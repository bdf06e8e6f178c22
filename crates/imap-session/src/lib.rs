//! The IMAP protocol without I/O: command framing with literals and limits, the command
//! grammar of IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) with the extensions facteur
//! announces, response encoding, ENVELOPE/BODYSTRUCTURE and body sections from the metadata
//! parsed at delivery, modified UTF-7 names, and SORT/THREAD algorithms (RFC 5256).
//!
//! The state machine lives in `facteur-imap-server`, beside the store it reads
//! (docs/decisions/0011-imap-parser.md).
#![forbid(unsafe_code)]

pub mod command;
pub mod date;
pub mod encode;
pub mod framing;
pub mod mutf7;
pub mod parse;
pub mod structure;
pub mod thread;

pub use framing::{Frame, Framer};
pub use parse::{Command, CommandBody, parse_command};
