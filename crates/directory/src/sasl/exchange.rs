//! One server-side SASL exchange (RFC 4422) for every protocol: sans-IO, the driver passes
//! decoded client responses and sends the challenges it gets back (base64-encoded the way its
//! protocol wants). Steps may verify an Argon2id hash: drivers run them in
//! `spawn_blocking`, with a clone of the [`Directory`].
//!
//! Success with additional data (SCRAM's server-final `v=`, RFC 4422 §3.6) is sent as one
//! last challenge; the client answers it with an empty response and only then gets
//! `Success`. That works the same in IMAP (RFC 9051 §6.2.2), POP3 (RFC 5034 §4) and SMTP
//! (RFC 4954 §4).

use super::bearer::{self, BearerMessage};
use super::{cram, decode_plain, scram};
use crate::{Directory, Login, Mailbox};

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslOutcome {
    /// Send this challenge (raw bytes; the protocol base64-encodes them), read the response.
    Challenge(Vec<u8>),
    /// Logged in.
    Success(Login),
    /// Wrong credentials or a malformed exchange: the driver answers after its failure delay
    /// and logs `user` (as far as known) with `facteur_net::log_auth_failure`. `reason` is for
    /// debug logs only; it never holds a secret.
    Failure {
        user: Option<String>,
        reason: &'static str,
    },
    /// The directory could not answer (a store error, logged here): a temporary failure,
    /// not the client's fault, answered without the failure delay.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    ScramSha256,
    Plain,
    Login,
    CramMd5,
    OAuthBearer,
    XOAuth2,
}

impl Mechanism {
    pub(crate) const ALL: [Mechanism; 6] = [
        Mechanism::ScramSha256,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }
}

#[derive(Debug)]
enum State {
    Start,
    /// LOGIN: the user name is known, the password is asked.
    LoginPassword(String),
    /// SCRAM: client-first or client-final expected.
    Scram {
        server: scram::Server,
        mailbox: Option<Mailbox>,
    },
    /// SCRAM: server-final sent; an empty response completes the login.
    ScramVerified(Login),
    /// CRAM-MD5: the challenge sent.
    Cram(Vec<u8>),
    /// XOAUTH2 / OAUTHBEARER: the error challenge is sent; whatever comes back, fail.
    BearerRefused {
        user: Option<String>,
        reason: &'static str,
    },
    Done,
}

/// One exchange; `Send + 'static`, so a driver can move it into `spawn_blocking`.
#[derive(Debug)]
pub struct SaslExchange {
    mechanism: Mechanism,
    state: State,
    /// The user named so far, for the failure log line.
    user: Option<String>,
}

impl SaslExchange {
    pub(crate) fn new(mechanism: Mechanism, hostname: &str) -> SaslExchange {
        let state = match mechanism {
            Mechanism::CramMd5 => State::Cram(cram::challenge(hostname)),
            Mechanism::ScramSha256 => State::Scram {
                server: scram::Server::new(),
                mailbox: None,
            },
            _ => State::Start,
        };
        SaslExchange {
            mechanism,
            state,
            user: None,
        }
    }

    /// Tests only: the server's part of the SCRAM nonce.
    #[doc(hidden)]
    pub fn with_scram_nonce(mut self, nonce: &str) -> SaslExchange {
        if let State::Scram { server, .. } = &mut self.state {
            *server = scram::Server::with_nonce(nonce);
        }
        self
    }

    /// Tests only: the CRAM-MD5 challenge.
    #[doc(hidden)]
    pub fn with_cram_challenge(mut self, challenge: &[u8]) -> SaslExchange {
        if let State::Cram(c) = &mut self.state {
            *c = challenge.to_vec();
        }
        self
    }

    pub fn mechanism(&self) -> &'static str {
        self.mechanism.name()
    }

    /// The first step, with the client's initial response if it sent one (RFC 4422 §3.3; an
    /// empty initial response, `=` on the wire, is `Some(b"")`).
    pub fn start(&mut self, dir: &Directory, initial: Option<&[u8]>) -> SaslOutcome {
        match (self.mechanism, initial) {
            // RFC 2195: the server speaks first; RFC 4422 §3.3: an initial response to a
            // server-first mechanism fails the exchange.
            (Mechanism::CramMd5, Some(_)) => self.fail("initial response to CRAM-MD5"),
            (Mechanism::CramMd5, None) => match &self.state {
                State::Cram(challenge) => SaslOutcome::Challenge(challenge.clone()),
                _ => self.fail("exchange already started"),
            },
            (Mechanism::Login, None) => SaslOutcome::Challenge(b"Username:".to_vec()),
            // Client-first mechanisms without an initial response: an empty challenge.
            (_, None) => SaslOutcome::Challenge(Vec::new()),
            (_, Some(response)) => self.step(dir, response),
        }
    }

    /// The next step with the client's (decoded) response.
    /// `start` (when `first`) or `step`, on the runtime's blocking pool: a step may verify an
    /// Argon2id hash. Gives the exchange back for the next step; None when the task failed.
    pub async fn next_blocking(
        mut self,
        dir: Directory,
        first: bool,
        response: Option<Vec<u8>>,
    ) -> Option<(SaslExchange, SaslOutcome)> {
        if let Some(outcome) = self.cached(&dir, first, response.as_deref()) {
            return Some((self, outcome));
        }
        let done = tokio::task::spawn_blocking(move || {
            let outcome = if first {
                self.start(&dir, response.as_deref())
            } else {
                self.step(&dir, response.as_deref().unwrap_or_default())
            };
            (self, outcome)
        })
        .await;
        done.inspect_err(|e| tracing::error!(error = %e, "authentication task failed"))
            .ok()
    }

    /// A PLAIN step, or LOGIN's password step, whose password the auth cache already knows:
    /// decided here without a trip to the blocking pool (a few indexed reads, no Argon2id).
    /// None for everything else, which then runs as `start`/`step` on the blocking pool.
    fn cached(
        &mut self,
        dir: &Directory,
        first: bool,
        response: Option<&[u8]>,
    ) -> Option<SaslOutcome> {
        let (user, password) = match (self.mechanism, &self.state, first, response) {
            (Mechanism::Plain, State::Start, _, Some(response)) => {
                let c = decode_plain(response).ok()?;
                (c.authcid, c.password)
            }
            (Mechanism::Login, State::LoginPassword(user), false, Some(response)) => {
                (user.clone(), String::from_utf8(response.to_vec()).ok()?)
            }
            _ => return None,
        };
        if password.is_empty() {
            return None;
        }
        let login = dir.cached_password_login(&user, &password, Some(self.mechanism.name()))?;
        self.user = Some(user);
        self.state = State::Done;
        Some(SaslOutcome::Success(login))
    }

    pub fn step(&mut self, dir: &Directory, response: &[u8]) -> SaslOutcome {
        let state = std::mem::replace(&mut self.state, State::Done);
        match (self.mechanism, state) {
            // RFC 4616 §2: [authzid] NUL authcid NUL passwd.
            (Mechanism::Plain, State::Start) => match decode_plain(response) {
                Ok(c) => {
                    self.user = Some(c.authcid.clone());
                    self.password_login(dir, &c.authcid, &c.password)
                }
                Err(_) => self.fail("malformed PLAIN message"),
            },
            (Mechanism::Login, State::Start) => match String::from_utf8(response.to_vec()) {
                Ok(user) if !user.is_empty() && !user.chars().any(char::is_control) => {
                    self.user = Some(user.clone());
                    self.state = State::LoginPassword(user);
                    SaslOutcome::Challenge(b"Password:".to_vec())
                }
                _ => self.fail("malformed LOGIN user name"),
            },
            (Mechanism::Login, State::LoginPassword(user)) => {
                match String::from_utf8(response.to_vec()) {
                    Ok(password) if !password.is_empty() => {
                        self.password_login(dir, &user, &password)
                    }
                    _ => self.fail("malformed LOGIN password"),
                }
            }
            (Mechanism::ScramSha256, State::Scram { mut server, .. })
                if server.user().is_none() =>
            {
                let mut mailbox = None;
                let first = server.client_first(response, |user| {
                    let (keys, found) = dir.scram_keys(user)?;
                    mailbox = found;
                    Ok::<_, crate::DirectoryError>(keys)
                });
                match first {
                    Ok(Ok(server_first)) => {
                        self.user = server.user().map(str::to_string);
                        self.state = State::Scram { server, mailbox };
                        SaslOutcome::Challenge(server_first)
                    }
                    Ok(Err(reason)) => self.fail(reason),
                    Err(e) => unavailable(e),
                }
            }
            (
                Mechanism::ScramSha256,
                State::Scram {
                    mut server,
                    mailbox,
                },
            ) => match (server.client_final(response), mailbox) {
                (Ok((server_final, label)), Some(mailbox)) => {
                    if let Some(name) = &label
                        && let Err(e) = dir.store().touch_app_password(mailbox.account, name)
                    {
                        tracing::warn!(error = %e, "cannot record the application password's use");
                    }
                    self.state = State::ScramVerified(Login {
                        mailbox,
                        app_password: label,
                        mechanism: Some(self.mechanism.name()),
                    });
                    SaslOutcome::Challenge(server_final)
                }
                (Ok(_), None) => self.fail("invalid-proof"),
                (Err(reason), _) => self.fail(reason),
            },
            // RFC 5802 §5: after server-final the client has nothing more to say.
            (Mechanism::ScramSha256, State::ScramVerified(login)) if response.is_empty() => {
                SaslOutcome::Success(login)
            }
            (Mechanism::CramMd5, State::Cram(challenge)) => {
                let Some((user, digest)) = cram::parse_response(response) else {
                    return self.fail("malformed CRAM-MD5 response");
                };
                self.user = Some(user.clone());
                match dir.cram_keys(&user) {
                    Ok(Some((mailbox, secrets))) => {
                        match cram::matching_secret(&challenge, &digest, &secrets) {
                            Some(label) => self.success(dir, mailbox, label),
                            None => self.fail("wrong CRAM-MD5 digest"),
                        }
                    }
                    Ok(None) => self.fail("wrong CRAM-MD5 digest"),
                    Err(e) => unavailable(e),
                }
            }
            (Mechanism::XOAuth2, State::Start) => {
                self.bearer(dir, bearer::parse_xoauth2(response), "401")
            }
            (Mechanism::OAuthBearer, State::Start) => {
                self.bearer(dir, bearer::parse_oauthbearer(response), "invalid_token")
            }
            // XOAUTH2: the client answers the error with an empty response; OAUTHBEARER
            // (RFC 7628 §3.2.3): with a single %x01. Either way the exchange fails now.
            (_, State::BearerRefused { user, reason }) => SaslOutcome::Failure {
                user: user.or(self.user.take()),
                reason,
            },
            _ => self.fail("unexpected response"),
        }
    }

    fn fail(&mut self, reason: &'static str) -> SaslOutcome {
        self.state = State::Done;
        SaslOutcome::Failure {
            user: self.user.clone(),
            reason,
        }
    }

    fn success(&mut self, dir: &Directory, mailbox: Mailbox, label: Option<String>) -> SaslOutcome {
        if let Some(name) = &label
            && let Err(e) = dir.store().touch_app_password(mailbox.account, name)
        {
            tracing::warn!(error = %e, "cannot record the application password's use");
        }
        SaslOutcome::Success(Login {
            mailbox,
            app_password: label,
            mechanism: Some(self.mechanism.name()),
        })
    }

    fn password_login(&mut self, dir: &Directory, user: &str, password: &str) -> SaslOutcome {
        match dir.password_login(user, password, Some(self.mechanism.name())) {
            Ok(Some(login)) => SaslOutcome::Success(login),
            Ok(None) => self.fail("wrong password"),
            Err(e) => unavailable(e),
        }
    }

    fn bearer(
        &mut self,
        dir: &Directory,
        message: Option<BearerMessage>,
        status: &str,
    ) -> SaslOutcome {
        let Some(message) = message else {
            return self.fail("malformed bearer message");
        };
        self.user = message.user.clone();
        let Some(options) = dir.oauth_options() else {
            return self.fail("OAuth is not configured");
        };
        match dir.bearer_login(
            message.user.as_deref(),
            &message.token,
            self.mechanism.name(),
        ) {
            Ok(Ok(login)) => SaslOutcome::Success(login),
            Ok(Err((user, reason))) => {
                // RFC 7628 §3.2.2: the failure is an error challenge the client answers.
                let challenge = crate::oauth::error_challenge(status, options);
                self.state = State::BearerRefused {
                    user: user.or(self.user.clone()),
                    reason,
                };
                SaslOutcome::Challenge(challenge)
            }
            Err(e) => unavailable(e),
        }
    }
}

fn unavailable(e: crate::DirectoryError) -> SaslOutcome {
    tracing::error!(error = %e, "directory lookup failed during SASL");
    SaslOutcome::Unavailable
}
