//! The connection's part in the protection layer (`facteur_protect`): the pregreet wait, the
//! checks at RCPT, and the end-of-DATA filters on the message being received.

use super::Connection;
use crate::Role;
use crate::recipient::Route;
use facteur_smtp_session::{Envelope, Reply, reply};
use facteur_store::BlobWriter;
use tokio::net::TcpStream;

impl Connection<'_> {
    /// Postscreen's pregreet test: a client that talks before the greeting is a bot that
    /// does not wait for the server (RFC 5321 §4.3.1: the client waits for the 220). False
    /// when the connection is to be closed.
    pub(super) async fn pregreet(&mut self, stream: &mut TcpStream) -> bool {
        use facteur_protect::checks::{Finding, Rule};
        let Some((wait, rule)) = self.ctx.filter.as_ref().and_then(|f| f.pregreet()) else {
            return true;
        };
        let mut probe = [0u8; 1];
        let n = match tokio::time::timeout(wait, stream.peek(&mut probe)).await {
            Err(_) => return true,
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
        };
        if n == 0 {
            tracing::info!(role = self.ctx.role.name(), remote = %self.peer, "disconnect before the greeting");
            return false;
        }
        let description = format!("talked before the greeting ({} ms)", wait.as_millis());
        match rule {
            Rule::Reject => {
                tracing::info!(role = self.ctx.role.name(), remote = %self.peer,
                    reply = "554 5.5.1", "early talker refused: {description}");
                let reply = Reply::new(
                    554,
                    Some(facteur_smtp_session::reply::Status(5, 5, 1)),
                    "Protocol error: talked before the greeting".to_string(),
                );
                reply.write_to(&mut self.out);
                let _ = self.flush(stream).await;
                false
            }
            Rule::Score(score) => {
                tracing::info!(role = self.ctx.role.name(), remote = %self.peer, score, "early talker: {description}");
                self.checks.pregreet = Some(Finding {
                    name: "PREGREET".into(),
                    description,
                    rule,
                    reply: None,
                });
                true
            }
            Rule::Off => true,
        }
    }

    /// The MX's checks of the client, HELO, sender and this recipient (`[checks]`); the
    /// refusal of the first hard rule that matches.
    pub(super) async fn screen(&mut self, recipient: &str) -> Option<Reply> {
        let filter = self.ctx.filter.as_ref()?;
        if self.ctx.role != Role::Smtp || self.exempt {
            return None;
        }
        let sender = self
            .session
            .envelope()
            .and_then(|e| e.mail.sender.as_ref())
            .map(|s| s.to_string())
            .unwrap_or_default();
        let helo = self.session.helo().unwrap_or("").to_string();
        let refused = filter
            .recipient(&mut self.checks, self.peer.ip(), &helo, &sender, recipient)
            .await
            .err()?;
        Some(refusal_reply(refused))
    }

    /// The end-of-DATA filters (greylisting, virus scan, milters, spam scoring) on the message
    /// in `writer` after its first `prefix_len` octets; a milter's changes rewrite the writer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_filters(
        &self,
        filter: &facteur_protect::filter::Filter,
        envelope: &Envelope<Route>,
        mail_from: &str,
        writer: &mut BlobWriter,
        prefix_len: usize,
        results: Option<&facteur_model::authresults::AuthResults>,
        queue_id: &str,
    ) -> Result<facteur_protect::filter::Filtered, Reply> {
        let local_error = |e: &dyn std::fmt::Display| {
            tracing::error!(%queue_id, error = %e, "cannot read the message back for its filters");
            reply::local_error()
        };
        let mut accounts: Vec<facteur_model::AccountId> = Vec::new();
        for r in &envelope.recipients {
            for m in r.target.local().into_iter().flatten() {
                if !accounts.contains(&m.account) {
                    accounts.push(m.account);
                }
            }
        }
        let recipients: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.rcpt.recipient.to_string())
            .collect();
        let tls = self.session.tls();
        let content = writer.contents().map_err(|e| local_error(&e))?;
        let (prefix, message) = content.split_at(prefix_len.min(content.len()));
        let mut filtered = filter
            .message(&facteur_protect::filter::Message {
                mx: self.ctx.role == Role::Smtp,
                ip: self.peer.ip(),
                port: self.peer.port(),
                helo: self.session.helo().unwrap_or(""),
                mail_from,
                recipients: &recipients,
                accounts: &accounts,
                content: message,
                queue_id,
                hostname: &self.ctx.hostname,
                auth_user: self.session.authenticated(),
                tls: tls.map(|t| (t.version.as_str(), t.cipher.as_str())),
                auth: results,
                session: &self.checks,
                exempt: self.exempt,
            })
            .await;
        if !filtered.summary.is_empty() {
            tracing::info!(%queue_id, remote = %self.peer, result = %filtered.summary.join(" "), "filters");
        }
        if let Some(r) = filtered.refusal.take() {
            let r = refusal_reply(r);
            tracing::info!(role = self.ctx.role.name(), %queue_id, remote = %self.peer,
                from = %format!("<{mail_from}>"), reply = %r.to_log(), "message refused");
            return Err(r);
        }
        let fresh = match filtered.content.take() {
            Some(changed) => {
                let mut fresh = self.ctx.store.blob_writer();
                fresh.write(prefix).map_err(|e| local_error(&e))?;
                fresh.write(&changed).map_err(|e| local_error(&e))?;
                Some(fresh)
            }
            None => None,
        };
        drop(content);
        if let Some(fresh) = fresh {
            *writer = fresh;
        }
        Ok(filtered)
    }
}

fn refusal_reply(r: facteur_protect::checks::Refusal) -> Reply {
    let (class, subject, detail) = r.status;
    Reply::new(
        r.code,
        Some(facteur_smtp_session::reply::Status(class, subject, detail)),
        r.text,
    )
}
