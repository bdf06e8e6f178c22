//! One POP3 connection: socket, TLS, timeouts; answers the session from the directory and store.

use crate::{Context, MaildropLock, Role};
use facteur_directory::{Login, Mailbox, SaslExchange, SaslOutcome, sasl};
use facteur_model::{MailboxId, Uid};
use facteur_net::Input;
use facteur_pop3_session::{Config, Event, LoginResult, Message, Session, UpdateRequest};
use facteur_store::StoreError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_CHUNK: usize = 16 * 1024;

/// The logged-in maildrop.
struct Open {
    mailbox: Mailbox,
    inbox: MailboxId,
    /// Size of each message at login, by UID.
    sizes: std::collections::HashMap<u32, u64>,
    _lock: MaildropLock,
}

struct Connection {
    ctx: Arc<Context>,
    peer: SocketAddr,
    session: Session,
    out: Vec<u8>,
    open: Option<Open>,
    /// The SASL exchange in progress.
    sasl: Option<SaslExchange>,
    shutdown_seen: bool,
}

enum Ended {
    Closed,
    StartTls,
}

pub async fn handle(stream: TcpStream, peer: SocketAddr, role: Role, ctx: Arc<Context>) {
    tracing::info!(role = role.name(), remote = %peer, "connect");
    let implicit = role == Role::Pop3s;
    let config = Config {
        hostname: ctx.hostname.clone(),
        tls_available: ctx.tls.is_some(),
        plaintext_auth: ctx.settings.plaintext_auth,
        expire_days: ctx.settings.expire_days,
        login_delay_secs: ctx.settings.login_delay_secs,
        sasl_mechanisms: ctx
            .directory
            .sasl_mechanisms()
            .into_iter()
            .map(str::to_string)
            .collect(),
        max_line_length: ctx.settings.max_line_length,
        max_auth_failures: 3,
        max_errors: 20,
    };
    let mut conn = Connection {
        ctx: ctx.clone(),
        peer,
        session: Session::new(config, implicit),
        out: Vec::new(),
        open: None,
        sasl: None,
        shutdown_seen: false,
    };
    let result = if implicit {
        conn.over_tls(stream).await
    } else {
        conn.plain(stream).await
    };
    let user = conn
        .open
        .as_ref()
        .map(|o| o.mailbox.address.clone())
        .unwrap_or_default();
    match result {
        Ok(()) => tracing::info!(role = role.name(), remote = %peer, user, "disconnect"),
        Err(e) => {
            tracing::info!(role = role.name(), remote = %peer, user, reason = %e, "disconnect")
        }
    }
}

impl Connection {
    async fn plain(&mut self, mut stream: TcpStream) -> std::io::Result<()> {
        match self.drive(&mut stream).await? {
            Ended::StartTls => {
                self.session.tls_started();
                self.over_tls(stream).await
            }
            Ended::Closed => Ok(()),
        }
    }

    async fn over_tls(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Ok(());
        };
        let timeout = Duration::from_secs(60);
        let mut tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(std::io::Error::other(format!("TLS handshake failed: {e}"))),
            Err(_) => return Err(std::io::Error::other("TLS handshake timed out")),
        };
        self.drive(&mut tls).await?;
        let _ = tls.shutdown().await;
        Ok(())
    }

    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<Ended> {
        let mut buf = vec![0u8; READ_CHUNK];
        let idle = Duration::from_secs(self.ctx.settings.timeout_secs);
        loop {
            while let Some(event) = self.session.next_event() {
                match event {
                    Event::Reply(bytes) => {
                        self.out.extend_from_slice(&bytes);
                        // Large listings and messages go out as they come.
                        if self.out.len() > 256 * 1024 {
                            self.flush(stream).await?;
                        }
                    }
                    Event::StartTls => {
                        self.flush(stream).await?;
                        return Ok(Ended::StartTls);
                    }
                    Event::Authenticate { user, password } => {
                        let result = self.login(user, password).await;
                        self.session.login_result(result);
                    }
                    Event::Sasl {
                        mechanism,
                        response,
                        first,
                    } => match self.sasl_step(&mechanism, response, first).await {
                        Ok(challenge) => self.session.sasl_challenge(mechanism, &challenge),
                        Err(result) => self.session.login_result(result),
                    },
                    Event::AuthFailed { user } => {
                        facteur_net::log_auth_failure("pop3", self.peer.ip(), &user);
                        self.flush(stream).await?;
                        tokio::time::sleep(Duration::from_millis(
                            self.ctx.settings.auth_failure_delay_ms,
                        ))
                        .await;
                    }
                    Event::Fetch { uid } => {
                        let content = self.fetch(uid).await;
                        self.session.fetched(content);
                    }
                    Event::Update(request) => {
                        let (ok, left) = self.update(request).await;
                        self.session.updated(ok, left);
                    }
                    Event::Close => {
                        self.flush(stream).await?;
                        return Ok(Ended::Closed);
                    }
                }
            }
            self.flush(stream).await?;
            let input = facteur_net::next_input(
                stream,
                &mut buf,
                idle,
                &self.ctx.shutdown,
                &mut self.shutdown_seen,
            );
            let n = match input.await? {
                Input::Read(n) => n,
                Input::Shutdown => {
                    self.session.shutdown();
                    continue;
                }
                Input::Timeout => {
                    self.session.timed_out();
                    continue;
                }
            };
            if n == 0 {
                return Ok(Ended::Closed);
            }
            self.session.receive(&buf[..n]);
        }
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        facteur_net::flush_out(
            stream,
            &mut self.out,
            Duration::from_secs(self.ctx.settings.timeout_secs),
        )
        .await
    }

    /// One step of an AUTH exchange (RFC 5034 §4): the next challenge (base64), or the end
    /// of the exchange. Steps run off the runtime's workers (they may verify an Argon2id
    /// hash), one verification slot each.
    async fn sasl_step(
        &mut self,
        mechanism: &str,
        response: Option<String>,
        first: bool,
    ) -> Result<String, LoginResult> {
        if first {
            self.sasl = self.ctx.directory.sasl_start(mechanism, &self.ctx.hostname);
        }
        let Some(exchange) = self.sasl.take() else {
            return Err(LoginResult::BadCredentials);
        };
        let decoded = match response.map(|r| sasl::decode_base64(&r)) {
            None => None,
            Some(Some(bytes)) => Some(bytes),
            Some(None) => return Err(LoginResult::BadCredentials),
        };
        let step = {
            let Ok(_slot) = self.ctx.verifications.acquire().await else {
                return Err(LoginResult::Failed);
            };
            exchange
                .next_blocking(self.ctx.directory.clone(), first, decoded)
                .await
        };
        let Some((exchange, outcome)) = step else {
            return Err(LoginResult::Failed);
        };
        match outcome {
            SaslOutcome::Challenge(c) => {
                self.sasl = Some(exchange);
                Ok(sasl::encode_base64(&c))
            }
            SaslOutcome::Success(login) => {
                self.session.set_user(&login.mailbox.address);
                Err(self.open_maildrop(login))
            }
            SaslOutcome::Failure { user, reason } => {
                tracing::debug!(remote = %self.peer, mechanism = exchange.mechanism(), reason, "SASL failure");
                self.session.set_user(user.as_deref().unwrap_or_default());
                Err(LoginResult::BadCredentials)
            }
            SaslOutcome::Unavailable => Err(LoginResult::Failed),
        }
    }

    /// USER/PASS (RFC 1939 §7).
    async fn login(&mut self, user: String, password: String) -> LoginResult {
        let directory = self.ctx.directory.clone();
        let verified = {
            let Ok(_slot) = self.ctx.verifications.acquire().await else {
                return LoginResult::Failed;
            };
            tokio::task::spawn_blocking(move || directory.authenticate(&user, &password)).await
        };
        match verified {
            Ok(Ok(Some(login))) => self.open_maildrop(login),
            Ok(Ok(None)) => LoginResult::BadCredentials,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "directory lookup failed");
                LoginResult::Failed
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication task failed");
                LoginResult::Failed
            }
        }
    }

    /// A verified login: lock and open the maildrop (RFC 1939 §8: exclusive access).
    fn open_maildrop(&mut self, login: Login) -> LoginResult {
        let via = login.via();
        let mailbox = login.mailbox;
        let Some(lock) = self.ctx.lock(mailbox.account) else {
            tracing::info!(remote = %self.peer, user = %mailbox.address, "maildrop in use");
            return LoginResult::InUse;
        };
        if self.ctx.too_soon(mailbox.account) {
            return LoginResult::TooSoon;
        }
        match self.maildrop(&mailbox) {
            Ok((inbox, messages)) => {
                tracing::info!(remote = %self.peer, user = %mailbox.address, via, messages = messages.len(), "login");
                let sizes = messages.iter().map(|m| (m.uid, m.size)).collect();
                self.open = Some(Open {
                    mailbox,
                    inbox,
                    sizes,
                    _lock: lock,
                });
                LoginResult::Accepted(messages)
            }
            Err(e) => {
                tracing::error!(user = %mailbox.address, error = %e, "cannot open the maildrop");
                LoginResult::Failed
            }
        }
    }

    /// The INBOX and its messages; UIDL = UIDVALIDITY and UID in hex, stable forever because
    /// facteur never changes a mailbox's UIDVALIDITY nor reuses a UID.
    fn maildrop(&self, mailbox: &Mailbox) -> Result<(MailboxId, Vec<Message>), StoreError> {
        let mailboxes = self.ctx.store.mailboxes(mailbox.account)?;
        let inbox = mailboxes
            .iter()
            .find(|m| m.special_use.as_deref() == Some("inbox"))
            .ok_or_else(|| StoreError::NotFound("the account has no INBOX".into()))?;
        let messages = self
            .ctx
            .store
            .message_index(inbox.id)?
            .into_iter()
            .map(|(uid, size, _, _)| Message {
                uid: uid.0,
                size,
                uidl: format!("{:08x}{:08x}", inbox.uidvalidity, uid.0),
            })
            .collect();
        Ok((inbox.id, messages))
    }

    async fn fetch(&self, uid: u32) -> Option<Vec<u8>> {
        let open = self.open.as_ref()?;
        let (store, inbox) = (self.ctx.store.clone(), open.inbox);
        // Messages kept inside the database are one indexed point read: cheaper inline than a
        // hop to the blocking pool. Larger ones live in files, whose reads go to the pool.
        let inline = open
            .sizes
            .get(&uid)
            .is_some_and(|&s| s <= store.options().inline_blob_max);
        let read = if inline {
            store.message_content(inbox, Uid(uid))
        } else {
            tokio::task::spawn_blocking(move || store.message_content(inbox, Uid(uid)))
                .await
                .unwrap_or_else(|e| Err(StoreError::Conflict(e.to_string())))
        };
        match read {
            Ok(bytes) => Some(bytes),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => {
                tracing::error!(uid, error = %e, "cannot read message");
                None
            }
        }
    }

    /// RFC 1939 §6 UPDATE: expunge what was deleted, apply the EXPIRE policy, mark retrieved
    /// messages seen. Returns success and the messages left.
    async fn update(&self, request: UpdateRequest) -> (bool, usize) {
        let Some(open) = self.open.as_ref() else {
            return (false, 0);
        };
        let (store, account, inbox) = (self.ctx.store.clone(), open.mailbox.account, open.inbox);
        let expire = self.ctx.settings.expire_days;
        let user = open.mailbox.address.clone();
        let done = tokio::task::spawn_blocking(move || -> Result<usize, StoreError> {
            let retrieved: Vec<Uid> = request.retrieved.iter().map(|&u| Uid(u)).collect();
            if !retrieved.is_empty() {
                store.mark_seen(account, inbox, &retrieved)?;
            }
            let mut doomed: Vec<Uid> = request.deleted.iter().map(|&u| Uid(u)).collect();
            match expire {
                None => {}
                Some(0) => doomed.extend(&retrieved),
                Some(days) => {
                    let cutoff = now_unix() - i64::from(days) * 86_400;
                    for (uid, _, date, flags) in store.message_index(inbox)? {
                        if date < cutoff && flags.split(' ').any(|f| f == "\\Seen") {
                            doomed.push(uid);
                        }
                    }
                }
            }
            doomed.sort();
            doomed.dedup();
            let removed = store.expunge(account, inbox, &doomed)?;
            if !removed.is_empty() {
                tracing::info!(user, removed = removed.len(), "pop3 expunged");
            }
            Ok(store.message_index(inbox)?.len())
        })
        .await;
        match done {
            Ok(Ok(left)) => (true, left),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "POP3 update failed");
                (false, 0)
            }
            Err(_) => (false, 0),
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
