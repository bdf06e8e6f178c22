//! A whole SMTP or LMTP session fed arbitrary bytes in arbitrary pieces (the first byte picks
//! the mode and the split size), with every question answered: never panics, never buffers
//! more than a line and a read.
#![no_main]

use facteur_smtp_session::{AuthPolicy, Config, Event, Session, TlsInfo, Verdict, reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&head, input)) = data.split_first() else { return };
    let mut session: Session<()> = Session::new(Config {
        hostname: "mx.example.com".into(),
        lmtp: head & 1 == 1,
        max_message_size: 4096,
        max_recipients: 5,
        max_line_length: 512,
        max_errors: 20,
        tls_available: true,
        // Bit 1 picks submission: AUTH, sender checks.
        submission: head & 3 == 2,
        auth: (head & 3 == 2).then(|| AuthPolicy {
            mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
            plaintext: head & 4 == 4,
            max_failures: 3,
        }),
    });
    let piece = usize::from(head >> 1).max(1);
    for chunk in input.chunks(piece) {
        session.receive(chunk);
        while let Some(event) = session.next_event() {
            match event {
                Event::CheckRecipient(r) => {
                    let accept = r.recipient.local.len() % 2 == 0;
                    session.recipient_verdict(if accept { Verdict::Accept(()) } else { Verdict::Reject(reply::no_such_user("x")) });
                }
                Event::Complete(env) => {
                    let n = if head & 1 == 1 { env.recipients.len() } else { 1 };
                    session.complete(vec![reply::queued("Q"); n]);
                }
                Event::StartTls => session.tls_started(TlsInfo { version: "TLSv1.3".into(), cipher: "X".into() }),
                Event::Close => return,
                Event::Authenticate { initial: None, .. } => session.auth_challenge(""),
                Event::Authenticate { initial: Some(r), .. } | Event::AuthResponse(r) => {
                    if r.len() % 2 == 0 {
                        session.auth_succeeded("a@example.com".into());
                    } else if r.len() % 3 == 0 {
                        session.auth_challenge("UGFzc3dvcmQ6");
                    } else {
                        session.auth_failed(reply::auth_failed());
                    }
                }
                Event::CheckSender(m) => {
                    let ok = m.sender.is_none_or(|s| s.local.len() % 2 == 0);
                    session.sender_verdict(if ok { Ok(()) } else { Err(reply::sender_not_owned("x", "y")) });
                }
                _ => {}
            }
        }
    }
});
