//! A whole POP3 session fed arbitrary bytes in arbitrary pieces, logins accepted with a small
//! maildrop: never panics.
#![no_main]

use facteur_pop3_session::{Config, Event, LoginResult, Message, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&head, input)) = data.split_first() else { return };
    let config = Config {
        hostname: "mx.example.com".into(),
        tls_available: true,
        plaintext_auth: head & 1 == 1,
        expire_days: None,
        login_delay_secs: None,
        sasl_mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
        max_line_length: 256,
        max_auth_failures: 3,
        max_errors: 10,
    };
    let mut session = Session::new(config, head & 2 == 2);
    let piece = usize::from(head >> 2).max(1);
    let maildrop = || (1..4).map(|uid| Message { uid, size: 12, uidl: format!("u{uid}") }).collect();
    for chunk in input.chunks(piece) {
        session.receive(chunk);
        while let Some(event) = session.next_event() {
            match event {
                Event::Authenticate { password, .. } => {
                    session.login_result(if password.len() % 2 == 0 { LoginResult::Accepted(maildrop()) } else { LoginResult::BadCredentials })
                }
                Event::Sasl { mechanism, first: true, .. } => session.sasl_challenge(mechanism, ""),
                Event::Sasl { .. } => session.login_result(LoginResult::Accepted(maildrop())),
                Event::Fetch { uid } => session.fetched((uid != 2).then(|| b"Subject: x\r\n\r\n.body".to_vec())),
                Event::Update(u) => session.updated(true, 3 - u.deleted.len().min(3)),
                Event::StartTls => session.tls_started(),
                Event::Close => return,
                _ => {}
            }
        }
    }
});
