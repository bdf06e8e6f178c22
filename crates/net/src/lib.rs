//! Networking shared by every protocol server: binding listeners, TLS (rustls), shutdown.
#![forbid(unsafe_code)]

pub mod accept;
pub mod authlog;
pub mod certs;
pub mod gate;
pub mod io;
pub mod listen;
pub mod shutdown;
pub mod tls;

pub use accept::{Limits, accept_loop};
pub use authlog::log_auth_failure;
pub use certs::{CertInfo, CertSource, CertSpec, CertStatus, Certificates};
pub use io::{Input, flush_out, next_input};
pub use listen::{BindError, bind};
pub use shutdown::Shutdown;
pub use tls::{LoadedTls, TlsError, TlsSettings, load_tls};
