//! AUTH for the submission roles (RFC 4954): the session asks, this runs the directory's SASL
//! exchange (PLAIN, LOGIN, SCRAM-SHA-256, and CRAM-MD5, XOAUTH2, OAUTHBEARER when enabled) off
//! the async workers, since a step may verify an Argon2id hash. Verifications share a bounded
//! number of slots, so a flood of AUTH attempts cannot take every blocking thread.

use facteur_directory::sasl;
use facteur_directory::{Directory, Login, SaslExchange, SaslOutcome};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// What the driver does next.
pub enum Outcome {
    /// Send this challenge (raw; base64-encoded by the caller).
    Challenge(Vec<u8>),
    Success(Login),
    /// The exchange failed (wrong credentials or a malformed message): 535 after the delay.
    Failure {
        user: Option<String>,
        reason: &'static str,
    },
    /// The response was not valid base64 (501).
    Malformed,
    /// The directory could not answer (454 4.7.0).
    Unavailable,
}

/// One exchange in progress.
pub struct Auth {
    exchange: Option<SaslExchange>,
    started: bool,
}

/// The mechanisms submission offers, in EHLO order.
pub fn mechanisms(directory: &Directory) -> Vec<String> {
    directory
        .sasl_mechanisms()
        .into_iter()
        .map(String::from)
        .collect()
}

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get() * 2))
    })
}

impl Auth {
    pub fn new(directory: &Directory, mechanism: &str, hostname: &str) -> Option<Auth> {
        Some(Auth {
            exchange: Some(directory.sasl_start(mechanism, hostname)?),
            started: false,
        })
    }

    pub fn mechanism(&self) -> &'static str {
        self.exchange.as_ref().map_or("-", |x| x.mechanism())
    }

    /// The first step, with the initial response if the client gave one (still base64; `=`
    /// is an empty response, RFC 4954 §4).
    pub async fn start(&mut self, directory: &Directory, initial: Option<&str>) -> Outcome {
        let decoded = match initial {
            None => None,
            Some(b64) => match decode(b64) {
                Some(d) => Some(d),
                None => return Outcome::Malformed,
            },
        };
        self.run(directory, decoded).await
    }

    /// A response to the last challenge (still base64).
    pub async fn step(&mut self, directory: &Directory, response: &str) -> Outcome {
        match decode(response) {
            Some(d) => self.run(directory, Some(d)).await,
            None => Outcome::Malformed,
        }
    }

    async fn run(&mut self, directory: &Directory, response: Option<Vec<u8>>) -> Outcome {
        let Some(exchange) = self.exchange.take() else {
            return Outcome::Unavailable;
        };
        let Ok(_slot) = slots().acquire().await else {
            return Outcome::Unavailable;
        };
        let first = !self.started;
        self.started = true;
        let Some((exchange, outcome)) = exchange
            .next_blocking(directory.clone(), first, response)
            .await
        else {
            return Outcome::Unavailable;
        };
        self.exchange = Some(exchange);
        match outcome {
            SaslOutcome::Challenge(c) => Outcome::Challenge(c),
            SaslOutcome::Success(login) => Outcome::Success(login),
            SaslOutcome::Failure { user, reason } => Outcome::Failure { user, reason },
            SaslOutcome::Unavailable => Outcome::Unavailable,
        }
    }
}

/// RFC 4954 §4: `=` is an empty response; anything else is standard base64.
fn decode(b64: &str) -> Option<Vec<u8>> {
    if b64 == "=" {
        return Some(Vec::new());
    }
    sasl::decode_base64(b64)
}

/// Standard base64 for challenges.
pub fn encode(raw: &[u8]) -> String {
    sasl::encode_base64(raw)
}
