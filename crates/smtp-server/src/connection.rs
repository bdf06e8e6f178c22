//! One connection: reads into the session, writes its replies, answers its questions.

use crate::auth::{self, Auth};
use crate::header::{self, HeaderScan, Split};
use crate::received::{Trace, queue_id, received, rfc5322_date};
use crate::recipient::Route;
use crate::{Context, Role, recipient};
use facteur_delivery::{Envelope as DeliveryEnvelope, Outcome, Recipient as DeliveryRecipient};
use facteur_directory::Login;
use facteur_model::Address;
use facteur_net::Input;
use facteur_smtp_session::{
    AuthPolicy, Config, Envelope, Event, MailFrom, Reply, Session, TlsInfo, reply,
};
use facteur_store::{BlobWriter, QueuedMessage, QueuedRecipient};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

mod filters;

/// Read buffer size; a read never holds more than this.
const READ_CHUNK: usize = 64 * 1024;

enum Ended {
    Closed,
    StartTls,
}

/// The message being received.
struct Body {
    queue_id: String,
    writer: Option<BlobWriter>,
    started: SystemTime,
    /// Submission: the header section being collected, and the Received header to write
    /// before it.
    scan: Option<(HeaderScan, String)>,
    /// Submission: why the message will be refused at its end.
    refusal: Option<Reply>,
    /// MX: the length of our Received field at the start of the blob (the rest is the message
    /// as received, which the authentication checks read).
    trace_len: usize,
    /// Submission: the domain of the first From: address (the DKIM signing domain).
    from_domain: Option<String>,
}

struct Connection<'a> {
    ctx: &'a Context,
    peer: SocketAddr,
    session: Session<Route>,
    out: Vec<u8>,
    body: Option<Body>,
    shutdown_seen: bool,
    messages: u32,
    /// Submission: the SASL exchange in progress and the account once authenticated.
    auth: Option<Auth>,
    login: Option<Login>,
    /// What the MX's checks found on this connection (`[checks]`).
    checks: facteur_protect::filter::Session,
    /// The client is on `protect.allow`: no checks, no greylisting.
    exempt: bool,
}

pub async fn handle(mut stream: TcpStream, peer: SocketAddr, ctx: &Context) {
    let submission = ctx.role.is_submission();
    let config = Config {
        hostname: ctx.hostname.clone(),
        lmtp: ctx.role == Role::Lmtp,
        max_message_size: ctx.settings.max_message_size,
        max_recipients: ctx.settings.max_recipients,
        max_line_length: ctx.settings.max_line_length,
        max_errors: ctx.settings.max_errors,
        tls_available: ctx.tls.is_some(),
        submission,
        auth: submission.then(|| AuthPolicy {
            mechanisms: auth::mechanisms(&ctx.directory),
            plaintext: ctx.submission.plaintext_auth,
            max_failures: ctx.submission.max_auth_failures,
        }),
    };
    tracing::info!(role = ctx.role.name(), remote = %peer, "connect");
    let mut conn = Connection {
        ctx,
        peer,
        session: Session::new(config.clone()),
        out: Vec::new(),
        body: None,
        shutdown_seen: false,
        messages: 0,
        auth: None,
        login: None,
        checks: Default::default(),
        exempt: facteur_net::gate::exempt(peer.ip()),
    };
    if ctx.role == Role::Smtp && !conn.exempt && !conn.pregreet(&mut stream).await {
        return;
    }
    let result = if ctx.role == Role::Submissions {
        // RFC 8314 §3.3: TLS from the first byte, then the greeting.
        match conn.accept_tls(stream).await {
            Ok((mut tls, info)) => {
                conn.session = Session::with_tls(config, info);
                let r = conn.drive(&mut tls).await.map(|_| ());
                let _ = tls.shutdown().await;
                r
            }
            Err(e) => Err(e),
        }
    } else {
        match conn.drive(&mut stream).await {
            Ok(Ended::StartTls) => conn.upgrade(stream).await,
            other => other.map(|_| ()),
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(role = ctx.role.name(), remote = %peer, messages = conn.messages, "disconnect")
        }
        Err(e) => {
            tracing::info!(role = ctx.role.name(), remote = %peer, messages = conn.messages, reason = %e, "disconnect")
        }
    }
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

impl Connection<'_> {
    async fn accept_tls(&mut self, stream: TcpStream) -> std::io::Result<(TlsStream, TlsInfo)> {
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Err(std::io::Error::other("no TLS certificate loaded"));
        };
        let handshake = tokio::time::timeout(self.ctx.timeout(), acceptor.accept(stream)).await;
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(std::io::Error::other(format!("TLS handshake failed: {e}"))),
            Err(_) => return Err(std::io::Error::other("TLS handshake timed out")),
        };
        let (_, server) = tls.get_ref();
        let info = TlsInfo {
            version: server
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .replace("TLSv1_", "TLSv1."),
            cipher: server
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_string(),
        };
        tracing::debug!(remote = %self.peer, version = %info.version, cipher = %info.cipher, "TLS established");
        Ok((tls, info))
    }

    async fn upgrade(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let (mut tls, info) = self.accept_tls(stream).await?;
        // RFC 3207 §4.2: everything learnt before TLS is forgotten, authentication included.
        self.auth = None;
        self.login = None;
        self.session.tls_started(info);
        match self.drive(&mut tls).await? {
            Ended::Closed | Ended::StartTls => {}
        }
        let _ = tls.shutdown().await;
        Ok(())
    }

    /// Runs the session over `stream` until it closes or asks for TLS.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<Ended> {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            while let Some(event) = self.session.next_event() {
                match event {
                    Event::Reply(r) => r.write_to(&mut self.out),
                    Event::StartTls => {
                        self.flush(stream).await?;
                        return Ok(Ended::StartTls);
                    }
                    Event::CheckRecipient(rcpt) => {
                        let size = self.session.envelope().and_then(|e| e.mail.size);
                        let first = self
                            .session
                            .envelope()
                            .is_none_or(|e| e.recipients.is_empty());
                        // Message and recipient rates (`[protect]`): 450 4.7.1, try later.
                        let sender_domain = self
                            .session
                            .envelope()
                            .and_then(|e| e.mail.sender.as_ref())
                            .map(|s| s.domain.clone());
                        let verdict =
                            match facteur_net::gate::recipient(&facteur_net::gate::Sending {
                                ip: self.peer.ip(),
                                account: self.session.authenticated(),
                                sender_domain: sender_domain.as_deref(),
                                new_message: first,
                            }) {
                                Some(why) => facteur_smtp_session::Verdict::Reject(Reply::new(
                                    450,
                                    Some(facteur_smtp_session::reply::Status(4, 7, 1)),
                                    why,
                                )),
                                None => {
                                    if first {
                                        self.checks.new_transaction();
                                    }
                                    // The checks first, as Postfix's usual order
                                    // (reject_non_fqdn_recipient before reject_unauth_destination).
                                    match self.screen(&rcpt.recipient.to_string()).await {
                                        Some(r) => facteur_smtp_session::Verdict::Reject(r),
                                        None => recipient::check(self.ctx, &rcpt, size),
                                    }
                                }
                            };
                        if let facteur_smtp_session::Verdict::Reject(r) = &verdict {
                            tracing::info!(role = self.ctx.role.name(), remote = %self.peer,
                                recipient = %rcpt.recipient, reply = %r.to_log(), "recipient rejected");
                        }
                        self.session.recipient_verdict(verdict);
                    }
                    Event::BodyStart => self.start_body(),
                    Event::Body(bytes) => self.write_body(&bytes),
                    Event::BodyAborted => self.body = None,
                    Event::Complete(envelope) => {
                        let replies = self.complete(envelope).await;
                        self.session.complete(replies);
                    }
                    Event::Close => {
                        self.flush(stream).await?;
                        return Ok(Ended::Closed);
                    }
                    Event::Authenticate { mechanism, initial } => {
                        // Flush first: the client may be waiting for nothing else.
                        self.flush(stream).await?;
                        self.authenticate(&mechanism, initial).await;
                    }
                    Event::AuthResponse(response) => {
                        let outcome = match &mut self.auth {
                            Some(a) => a.step(&self.ctx.directory, &response).await,
                            None => auth::Outcome::Malformed,
                        };
                        self.auth_outcome(outcome).await;
                    }
                    Event::AuthCancelled => self.auth = None,
                    Event::CheckSender(mail) => {
                        let verdict = self.check_sender(&mail);
                        self.session.sender_verdict(verdict);
                    }
                }
            }
            // RFC 2920 §3.2: flush before blocking on input.
            self.flush(stream).await?;
            let input = facteur_net::next_input(
                stream,
                &mut buf,
                self.ctx.timeout(),
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
                    reply::timeout(&self.ctx.hostname).write_to(&mut self.out);
                    self.flush(stream).await?;
                    return Err(std::io::Error::other("timeout"));
                }
            };
            if n == 0 {
                return Ok(Ended::Closed);
            }
            self.session.receive(&buf[..n]);
        }
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        facteur_net::flush_out(stream, &mut self.out, self.ctx.timeout()).await
    }

    async fn authenticate(&mut self, mechanism: &str, initial: Option<String>) {
        let Some(mut exchange) = Auth::new(&self.ctx.directory, mechanism, &self.ctx.hostname)
        else {
            self.session
                .auth_failed(reply::auth_unknown_mechanism(mechanism));
            return;
        };
        let outcome = exchange
            .start(&self.ctx.directory, initial.as_deref())
            .await;
        self.auth = Some(exchange);
        self.auth_outcome(outcome).await;
    }

    async fn auth_outcome(&mut self, outcome: auth::Outcome) {
        match outcome {
            auth::Outcome::Challenge(c) => self.session.auth_challenge(&auth::encode(&c)),
            auth::Outcome::Success(login) => {
                self.auth = None;
                tracing::info!(role = self.ctx.role.name(), remote = %self.peer,
                    user = %login.mailbox.address, via = %login.via(), "authenticated");
                self.session.auth_succeeded(login.mailbox.address.clone());
                self.login = Some(login);
            }
            auth::Outcome::Failure { user, reason } => {
                let mechanism = self.auth.take().map_or("-", |a| a.mechanism());
                tracing::debug!(remote = %self.peer, mechanism, reason, "SASL failure");
                facteur_net::log_auth_failure(
                    self.ctx.role.name(),
                    self.peer.ip(),
                    user.as_deref().unwrap_or(""),
                );
                // A pause makes guessing slow; the session stays open for the next try.
                tokio::time::sleep(std::time::Duration::from_millis(
                    self.ctx.submission.auth_failure_delay_ms,
                ))
                .await;
                self.session.auth_failed(reply::auth_failed());
            }
            auth::Outcome::Malformed => {
                self.auth = None;
                self.session.auth_failed(reply::auth_bad_base64());
            }
            auth::Outcome::Unavailable => {
                self.auth = None;
                self.session.auth_failed(reply::auth_temporary_failure());
            }
        }
    }

    /// Submission's sender rule for MAIL FROM (the From: header is checked at the end).
    fn check_sender(&self, mail: &MailFrom) -> Result<(), Reply> {
        // RFC 5321 §4.5.5: the null sender (MDNs, vacation replies) is allowed.
        let Some(sender) = &mail.sender else {
            return Ok(());
        };
        let shown = sender.to_string();
        self.sender_rule(&shown, reply::sender_not_owned)
            .inspect_err(|r| {
                if r.code == 553 {
                    tracing::info!(role = self.ctx.role.name(), remote = %self.peer,
                        user = self.session.authenticated().unwrap_or("-"), sender = %shown,
                        "sender refused: not owned by the account");
                }
            })
    }

    /// The sender rule for one address (MAIL FROM or From:): Ok when the account may use it
    /// or the rule is off; `refusal(address, account)` when not; a local error when the
    /// directory cannot say.
    fn sender_rule(&self, address: &str, refusal: fn(&str, &str) -> Reply) -> Result<(), Reply> {
        let Some(login) = self
            .login
            .as_ref()
            .filter(|_| self.ctx.submission.check_sender)
        else {
            return Ok(());
        };
        let owned = match Address::parse(address) {
            Some(a) => self.ctx.directory.may_send_as(&login.mailbox, &a),
            None => Ok(false),
        };
        match owned {
            Ok(true) => Ok(()),
            Ok(false) => Err(refusal(address, &login.mailbox.address)),
            Err(e) => {
                tracing::error!(error = %e, "directory lookup failed for the sender rule");
                Err(reply::local_error())
            }
        }
    }

    fn start_body(&mut self) {
        let queue_id = queue_id();
        let now = SystemTime::now();
        let single_recipient = match self.session.envelope().map(|e| e.recipients.as_slice()) {
            Some([one]) => Some(one.rcpt.recipient.to_string()),
            _ => None,
        };
        let submission = self.ctx.role.is_submission();
        let header = received(&Trace {
            helo: self.session.helo().unwrap_or("unknown"),
            peer: self.peer.ip(),
            hostname: &self.ctx.hostname,
            protocol: self.session.protocol(),
            queue_id: &queue_id,
            tls: self.session.tls(),
            single_recipient,
            now,
            // Submission keeps the client's address private unless the admin wants it.
            reveal_client: !submission || self.ctx.submission.reveal_client,
        });
        let writer = self.ctx.store.blob_writer();
        let mut body = Body {
            queue_id,
            writer: Some(writer),
            started: now,
            scan: None,
            refusal: None,
            trace_len: 0,
            from_domain: None,
        };
        if submission {
            body.scan = Some((HeaderScan::new(self.ctx.submission.max_header_size), header));
        } else {
            body.trace_len = header.len();
            write_to(&mut body, header.as_bytes());
        }
        self.body = Some(body);
    }

    fn write_body(&mut self, bytes: &[u8]) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        match body.scan.as_mut() {
            Some((scan, _)) => {
                if let Some(split) = scan.push(bytes) {
                    self.header_done(&mut body, split);
                }
            }
            None => write_to(&mut body, bytes),
        }
        self.body = Some(body);
    }

    /// Submission: the header section is complete. Checks the From: addresses, then writes
    /// the Received header, the client's header, the fields it lacked, and what followed.
    fn header_done(&self, body: &mut Body, split: Split) {
        let Some((_, received)) = body.scan.take() else {
            return;
        };
        let info = header::inspect(&split.header);
        body.from_domain = info
            .from
            .first()
            .and_then(|a| a.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase());
        body.refusal = info
            .from
            .iter()
            .find_map(|from| self.sender_rule(from, reply::from_header_not_owned).err());
        let account = self.session.authenticated().unwrap_or("");
        let message_id = format!("{}@{}", body.queue_id, self.ctx.hostname);
        let added = header::additions(&info, account, &message_id, &rfc5322_date(body.started));
        write_to(body, received.as_bytes());
        write_to(body, &split.header);
        write_to(body, added.as_bytes());
        write_to(body, &split.rest);
    }

    /// Files the message; returns the reply (SMTP) or replies (LMTP, one per recipient).
    async fn complete(&mut self, envelope: Envelope<Route>) -> Vec<Reply> {
        let lmtp = self.ctx.role == Role::Lmtp;
        let count = envelope.recipients.len();
        let failure = |r: Reply| if lmtp { vec![r; count] } else { vec![r] };
        if let Some(mut body) = self.body.take() {
            // A message that ended inside its header section.
            if let Some((scan, _)) = body.scan.as_mut() {
                match scan.finish() {
                    Some(split) => self.header_done(&mut body, split),
                    None => {
                        body.refusal =
                            Some(reply::header_too_large(self.ctx.submission.max_header_size))
                    }
                }
            }
            self.body = Some(body);
        }
        let Some(Body {
            queue_id,
            writer,
            started,
            refusal,
            trace_len,
            from_domain,
            ..
        }) = self.body.take()
        else {
            return failure(reply::local_error());
        };
        if let Some(r) = refusal {
            tracing::info!(role = self.ctx.role.name(), %queue_id, remote = %self.peer,
                user = self.session.authenticated().unwrap_or("-"), reply = %r.to_log(), "message refused");
            return failure(r);
        }
        let Some(mut writer) = writer else {
            return failure(reply::local_error());
        };
        let mut added_fields = String::new();
        let mut junk = false;
        let mut results = None;
        let mut prefix_len = trace_len;
        let from = envelope
            .mail
            .sender
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if self.ctx.role == Role::Smtp
            && let Some(checker) = &self.ctx.auth
        {
            let helo = self.session.helo().unwrap_or("").to_string();
            // The domain of the first alias that forwards outside, with the keys to seal.
            let forwarding = envelope.recipients.iter().find_map(|r| match &r.target {
                Route::Forward { .. } => Some(r.rcpt.recipient.domain.clone()),
                _ => None,
            });
            let forward = match (&forwarding, self.ctx.dkim.get()) {
                (Some(d), Some(signer)) if signer.signs_for(d) => Some((d.as_str(), signer)),
                _ => None,
            };
            let checked = crate::trust::check_inbound(
                checker,
                &self.ctx.store,
                &self.ctx.hostname,
                &mut writer,
                trace_len,
                (self.peer.ip(), &helo, &from),
                &queue_id,
                forward,
            )
            .await;
            match checked {
                Ok(c) => {
                    added_fields = c.added_fields;
                    junk = c.junk;
                    results = Some(c.results);
                    prefix_len = c.prefix_len;
                }
                Err(r) => {
                    tracing::info!(role = self.ctx.role.name(), %queue_id, remote = %self.peer,
                        from = %format!("<{from}>"), reply = %r.to_log(), "message refused");
                    return failure(r);
                }
            }
        }
        let mut per_account = Vec::new();
        if self.ctx.role != Role::Lmtp
            && let Some(filter) = self.ctx.filter.clone()
        {
            let filtered = self
                .run_filters(
                    &filter,
                    &envelope,
                    &from,
                    &mut writer,
                    prefix_len,
                    results.as_ref(),
                    &queue_id,
                )
                .await;
            match filtered {
                Ok(f) if f.discard => {
                    tracing::info!(role = self.ctx.role.name(), %queue_id, remote = %self.peer,
                        "message discarded by a mail filter (accepted, not delivered)");
                    self.messages += 1;
                    return vec![reply::queued(&queue_id)];
                }
                Ok(f) => {
                    added_fields.push_str(&f.fields);
                    junk |= f.junk;
                    per_account = f.accounts;
                }
                Err(r) => return failure(r),
            }
        }
        if self.ctx.role.is_submission()
            && let (Some(signer), Some(domain)) = (self.ctx.dkim.get(), from_domain.as_deref())
        {
            writer = match crate::trust::sign(signer, &self.ctx.store, writer, domain, &queue_id)
                .await
            {
                Ok(w) => w,
                Err(r) => return failure(r),
            };
        }
        // A body kept in memory finishes without I/O (a hash): no trip to the blocking pool.
        let finished = if writer.in_memory() {
            Ok(writer.finish())
        } else {
            tokio::task::spawn_blocking(move || writer.finish()).await
        };
        let blob = match finished {
            Ok(Ok(blob)) => blob,
            Ok(Err(e)) => {
                tracing::error!(%queue_id, error = %e, "cannot store message");
                return failure(reply::local_error());
            }
            Err(e) => {
                tracing::error!(%queue_id, error = %e, "message writer panicked");
                return failure(reply::local_error());
            }
        };
        let size = blob.size;
        let mut recipients: Vec<DeliveryRecipient> = Vec::new();
        let mut remote: Vec<QueuedRecipient> = Vec::new();
        // The domain of the first alias that forwards: the SRS domain of the queued copy.
        let mut forwarded_by: Option<String> = None;
        for r in &envelope.recipients {
            if let Some(mailboxes) = r.target.local() {
                recipients.push(DeliveryRecipient {
                    mailboxes: mailboxes.clone(),
                });
            }
            match &r.target {
                Route::Local(_) => {}
                Route::Remote => remote.push(QueuedRecipient {
                    address: r.rcpt.recipient.to_string(),
                    notify: r.rcpt.notify.clone(),
                    orcpt: r.rcpt.orcpt.clone(),
                }),
                Route::Forward { remote: to, .. } => {
                    forwarded_by.get_or_insert_with(|| r.rcpt.recipient.domain.clone());
                    for address in to {
                        if remote
                            .iter()
                            .any(|q| q.address.eq_ignore_ascii_case(address))
                        {
                            continue;
                        }
                        remote.push(QueuedRecipient {
                            address: address.clone(),
                            notify: r.rcpt.notify.clone(),
                            // RFC 3461 §4.2: the address the sender used, for its DSNs.
                            orcpt: r
                                .rcpt
                                .orcpt
                                .clone()
                                .or_else(|| Some(format!("rfc822;{}", r.rcpt.recipient))),
                        });
                    }
                }
            }
        }
        // Forwarded by the MX: the envelope sender rewritten (SRS) in the forwarding domain, so
        // SPF at the destination checks this server, and bounces come back here to be
        // returned; the null sender stays null. Submission keeps the user's own sender.
        let queue_sender = match (&forwarded_by, &self.ctx.srs) {
            (Some(domain), Some(srs)) if !self.ctx.role.is_submission() && !from.is_empty() => {
                srs.for_domain(domain).forward(&from)
            }
            _ => from.clone(),
        };
        let outbound = (!remote.is_empty()).then(|| QueuedMessage {
            queue_id: queue_id.clone(),
            sender: queue_sender,
            envid: envelope.mail.envid.clone(),
            ret_full: envelope.mail.ret_full,
            smtputf8: envelope.mail.smtputf8,
            body_8bit: envelope.mail.body != facteur_smtp_session::command::BodyType::SevenBit,
            submitter: self.session.authenticated().map(String::from),
            recipients: remote,
        });
        let queued: Vec<String> = outbound
            .iter()
            .flat_map(|q| q.recipients.iter().map(|r| r.address.clone()))
            .collect();
        let internal_date = started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let delivery = DeliveryEnvelope {
            return_path: &from,
            queue_id: &queue_id,
            internal_date,
            enforce_quota: lmtp,
            added_fields: &added_fields,
            junk,
            per_account: &per_account,
        };
        let filed = facteur_delivery::deliver_and_queue(
            &self.ctx.store,
            blob,
            &delivery,
            &recipients,
            outbound,
        );
        let report = match filed.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(%queue_id, error = %e, "delivery failed; message not accepted");
                return failure(reply::local_error());
            }
        };
        self.messages += 1;
        let replies = self.replies(&envelope, &report.outcomes, &queue_id);
        if replies.iter().any(Reply::is_positive) {
            for to in &queued {
                tracing::info!(%queue_id, to = %format!("<{to}>"), "queued for remote delivery");
            }
            if !queued.is_empty()
                && let Some(wake) = &self.ctx.queued
            {
                wake.notify_one();
            }
        }
        let to: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| format!("<{}>", r.rcpt.recipient))
            .collect();
        let summary: Vec<String> = replies.iter().map(Reply::to_log).collect();
        let message_id = report.message_id.as_deref().unwrap_or("-");
        tracing::info!(
            role = self.ctx.role.name(), %queue_id, message_id = %format!("<{message_id}>"),
            from = %format!("<{from}>"), to = %to.join(","), size, remote = %self.peer,
            user = self.session.authenticated().unwrap_or("-"),
            reply = %summary.join(" | "),
            "{}", if replies.iter().any(Reply::is_positive) { "message accepted" } else { "message refused" }
        );
        replies
    }

    /// The replies for the outcomes: one per recipient for LMTP, one in all for SMTP; a line per
    /// copy filed.
    fn replies(
        &self,
        envelope: &Envelope<Route>,
        outcomes: &[Outcome],
        queue_id: &str,
    ) -> Vec<Reply> {
        let lmtp = self.ctx.role == Role::Lmtp;
        // Outcomes are those of the recipients with local copies, in order; the others were
        // queued in the same commit.
        let mut outcome_of = outcomes.iter();
        let replies: Vec<Reply> = envelope
            .recipients
            .iter()
            .map(|rcpt| {
                let shown = rcpt.rcpt.recipient.to_string();
                let Some(mailboxes) = rcpt.target.local() else {
                    return reply::queued(queue_id);
                };
                let Some(outcome) = outcome_of.next() else {
                    return reply::local_error();
                };
                let accounts: Vec<&str> = mailboxes.iter().map(|m| m.address.as_str()).collect();
                if *outcome == Outcome::Delivered {
                    tracing::info!(%queue_id, to = %format!("<{shown}>"), mailboxes = %accounts.join(","), "delivered");
                }
                match outcome {
                    Outcome::Delivered => reply::delivered(&shown, queue_id),
                    Outcome::OverQuota => reply::over_quota(&shown),
                    Outcome::Failed(_) => reply::local_error(),
                }
            })
            .collect();
        // SMTP has one reply for all recipients; its copies are filed without quota refusal,
        // so a failure is a store failure that concerns the whole transaction.
        if lmtp {
            replies
        } else if outcomes.iter().all(|o| *o == Outcome::Delivered) {
            vec![reply::queued(queue_id)]
        } else {
            vec![reply::local_error()]
        }
    }
}

fn write_to(body: &mut Body, bytes: &[u8]) {
    if let Some(writer) = &mut body.writer
        && let Err(e) = writer.write(bytes)
    {
        tracing::error!(queue_id = %body.queue_id, error = %e, "cannot write message");
        body.writer = None;
    }
}
