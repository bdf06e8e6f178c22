//! One connection: reads into the session, writes its replies, answers its questions.

use crate::received::{Trace, queue_id, received};
use crate::{Context, Role, recipient};
use facteur_delivery::{Envelope as DeliveryEnvelope, Outcome, Recipient as DeliveryRecipient};
use facteur_directory::Mailbox;
use facteur_net::Input;
use facteur_smtp_session::{Config, Envelope, Event, Reply, Session, TlsInfo, reply};
use facteur_store::BlobWriter;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

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
}

struct Connection<'a> {
    ctx: &'a Context,
    peer: SocketAddr,
    session: Session<Vec<Mailbox>>,
    out: Vec<u8>,
    body: Option<Body>,
    shutdown_seen: bool,
    messages: u32,
}

pub async fn handle(mut stream: TcpStream, peer: SocketAddr, ctx: &Context) {
    let config = Config {
        hostname: ctx.hostname.clone(),
        lmtp: ctx.role == Role::Lmtp,
        max_message_size: ctx.settings.max_message_size,
        max_recipients: ctx.settings.max_recipients,
        max_line_length: ctx.settings.max_line_length,
        max_errors: ctx.settings.max_errors,
        tls_available: ctx.tls.is_some(),
        submission: false,
        auth: None,
    };
    tracing::info!(role = ctx.role.name(), remote = %peer, "connect");
    let mut conn = Connection {
        ctx,
        peer,
        session: Session::new(config),
        out: Vec::new(),
        body: None,
        shutdown_seen: false,
        messages: 0,
    };
    let result = match conn.drive(&mut stream).await {
        Ok(Ended::StartTls) => conn.upgrade(stream).await,
        other => other.map(|_| ()),
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

impl Connection<'_> {
    async fn upgrade(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Ok(());
        };
        let handshake = tokio::time::timeout(self.ctx.timeout(), acceptor.accept(stream)).await;
        let mut tls = match handshake {
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
                        let verdict = recipient::check(self.ctx, &rcpt, size);
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

    fn start_body(&mut self) {
        let queue_id = queue_id();
        let now = SystemTime::now();
        let single_recipient = match self.session.envelope().map(|e| e.recipients.as_slice()) {
            Some([one]) => Some(one.rcpt.recipient.to_string()),
            _ => None,
        };
        let header = received(&Trace {
            helo: self.session.helo().unwrap_or("unknown"),
            peer: self.peer.ip(),
            hostname: &self.ctx.hostname,
            protocol: self.session.protocol(),
            queue_id: &queue_id,
            tls: self.session.tls(),
            single_recipient,
            now,
        });
        let mut writer = self.ctx.store.blob_writer();
        let ok = writer.write(header.as_bytes());
        self.body = Some(Body {
            queue_id,
            writer: ok.is_ok().then_some(writer),
            started: now,
        });
        if let Err(e) = ok {
            tracing::error!(error = %e, "cannot write message");
        }
    }

    fn write_body(&mut self, bytes: &[u8]) {
        let Some(body) = &mut self.body else { return };
        if let Some(writer) = &mut body.writer
            && let Err(e) = writer.write(bytes)
        {
            tracing::error!(queue_id = %body.queue_id, error = %e, "cannot write message");
            body.writer = None;
        }
    }

    /// Files the message; returns the reply (SMTP) or replies (LMTP, one per recipient).
    async fn complete(&mut self, envelope: Envelope<Vec<Mailbox>>) -> Vec<Reply> {
        let lmtp = self.ctx.role == Role::Lmtp;
        let count = envelope.recipients.len();
        let failure = |r: Reply| if lmtp { vec![r; count] } else { vec![r] };
        let Some(Body {
            queue_id,
            writer,
            started,
        }) = self.body.take()
        else {
            return failure(reply::local_error());
        };
        let Some(writer) = writer else {
            return failure(reply::local_error());
        };
        let blob = match tokio::task::spawn_blocking(move || writer.finish()).await {
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
        let from = envelope
            .mail
            .sender
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let recipients: Vec<DeliveryRecipient> = envelope
            .recipients
            .iter()
            .map(|r| DeliveryRecipient {
                mailboxes: r.target.clone(),
            })
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
        };
        let report =
            match facteur_delivery::deliver(&self.ctx.store, blob, &delivery, &recipients).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(%queue_id, error = %e, "delivery failed; message not accepted");
                    return failure(reply::local_error());
                }
            };
        self.messages += 1;
        let replies = self.replies(&envelope, &report.outcomes, &queue_id);
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
            reply = %summary.join(" | "),
            "{}", if replies.iter().any(Reply::is_positive) { "message accepted" } else { "message refused" }
        );
        replies
    }

    /// The replies for the outcomes: one per recipient for LMTP, one in all for SMTP; a line per
    /// copy filed.
    fn replies(
        &self,
        envelope: &Envelope<Vec<Mailbox>>,
        outcomes: &[Outcome],
        queue_id: &str,
    ) -> Vec<Reply> {
        let lmtp = self.ctx.role == Role::Lmtp;
        let replies: Vec<Reply> = envelope
            .recipients
            .iter()
            .zip(outcomes)
            .map(|(rcpt, outcome)| {
                let shown = rcpt.rcpt.recipient.to_string();
                let accounts: Vec<&str> = rcpt.target.iter().map(|m| m.address.as_str()).collect();
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
