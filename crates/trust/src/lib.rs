//! Email authentication (docs/architecture.md, layer `trust`), over mail-auth (decision 0020):
//!
//! - [`inbound`]: on the MX, SPF (RFC 7208) for HELO and MAIL FROM, DKIM (RFC 6376), ARC
//!   (RFC 8617), DMARC (RFC 7489) and iprev (RFC 8601 §3), one Authentication-Results header
//!   field, and the action the admin's policy gives the result.
//! - [`dkim`]: DKIM keys (RSA-2048, Ed25519), the TXT records to publish, signing.
//! - [`srs`]: the Sender Rewriting Scheme for mail forwarded outside.
//! - [`report`]: DMARC aggregate reports (RFC 7489 §7.2): building, addressing and sending
//!   ours; reading and summing up those we receive.
//! - [`tlsrpt`]: SMTP TLS reports (RFC 8460): classifying the outbound queue's TLS failures,
//!   building the daily JSON report of a recipient domain, reading its `_smtp._tls` record,
//!   and the report mail.
#![forbid(unsafe_code)]

pub mod canonical;
pub mod dkim;
pub mod inbound;
mod mail;
pub mod report;
pub mod srs;
pub mod tlsrpt;
