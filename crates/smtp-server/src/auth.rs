//! AUTH for the submission roles (RFC 4954): the session asks, this runs the SASL exchange
//! against the directory (off the async workers: a password check is Argon2id).

use facteur_directory::sasl::{self, Exchange, Step};
use facteur_directory::{Directory, Login};

/// What the driver does next.
pub enum Outcome {
    /// Send this challenge (raw; base64-encoded by the caller).
    Challenge(Vec<u8>),
    Success(Login),
    /// Wrong credentials (535 after the delay); the user name if the client gave one.
    Failure(Option<String>),
    /// The response was not valid base64 or not a valid message (501).
    Malformed,
    /// The directory could not answer (454 4.7.0).
    Unavailable,
}

/// One exchange in progress.
pub struct Auth {
    exchange: Exchange,
}

/// The mechanisms submission offers, in EHLO order.
pub fn mechanisms(_directory: &Directory) -> Vec<String> {
    sasl::MECHANISMS.iter().map(|m| m.to_string()).collect()
}

impl Auth {
    pub fn new(_directory: &Directory, mechanism: &str, _hostname: &str) -> Option<Auth> {
        let mechanism = sasl::Mechanism::parse(mechanism)?;
        Some(Auth {
            exchange: Exchange::new(mechanism),
        })
    }

    /// The first step, with the initial response if the client gave one (still base64; `=`
    /// is an empty response, RFC 4954 §4).
    pub async fn start(&mut self, directory: &Directory, initial: Option<&str>) -> Outcome {
        let decoded = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(b64) => match sasl::decode_base64(b64) {
                Some(d) => Some(d),
                None => return Outcome::Malformed,
            },
        };
        let step = self.exchange.start(decoded.as_deref());
        finish(directory, step).await
    }

    pub async fn step(&mut self, directory: &Directory, response: &str) -> Outcome {
        let Some(decoded) = sasl::decode_base64(response) else {
            return Outcome::Malformed;
        };
        let step = self.exchange.step(&decoded);
        finish(directory, step).await
    }
}

async fn finish(directory: &Directory, step: Step) -> Outcome {
    match step {
        Step::Challenge(c) => Outcome::Challenge(c),
        Step::Fail(_) => Outcome::Malformed,
        Step::Verify(c) => {
            let directory = directory.clone();
            let user = c.authcid.clone();
            let checked = tokio::task::spawn_blocking(move || {
                directory.authenticate(&c.authcid, &c.password)
            })
            .await;
            match checked {
                Ok(Ok(Some(login))) => Outcome::Success(login),
                Ok(Ok(None)) => Outcome::Failure(Some(user)),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "directory lookup failed during AUTH");
                    Outcome::Unavailable
                }
                Err(_) => Outcome::Unavailable,
            }
        }
    }
}

/// Standard base64 for challenges.
pub fn encode(raw: &[u8]) -> String {
    sasl::encode_base64(raw)
}
