//! Outbound delivery: the queue's service, MX routing (RFC 5321 §5.1), the SMTP client,
//! retries, delivery status notifications (RFC 3464), and the plain explanation of every remote
//! reply (`explain`).
#![forbid(unsafe_code)]

pub mod client;
pub mod dane;
pub mod downgrade;
pub mod dsn;
pub mod explain;
pub mod mta_sts;
pub mod pool;
pub mod route;
pub mod service;
pub mod submit;
pub mod tls_report;
