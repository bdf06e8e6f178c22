//! Session dialogs without sockets; the oracle accepts alice/secret with three messages.

use super::*;

fn config() -> Config {
    Config {
        hostname: "mx.example.com".into(),
        tls_available: true,
        plaintext_auth: false,
        expire_days: None,
        login_delay_secs: None,
        sasl_mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
        max_line_length: 256,
        max_auth_failures: 3,
        max_errors: 10,
    }
}

struct Run {
    s: Session,
    out: String,
    updates: Vec<UpdateRequest>,
    closed: bool,
    removed_uid: Option<u32>,
}

const MESSAGES: [&[u8]; 3] = [
    b"Subject: one\r\n\r\nfirst\r\n",
    b"Subject: two\r\n\r\n.dot line\r\nmore\r\nlast\r\n",
    b"Subject: three\r\n\r\nno final newline",
];

impl Run {
    fn new(tls: bool) -> Run {
        let mut r = Run {
            s: Session::new(config(), tls),
            out: String::new(),
            updates: vec![],
            closed: false,
            removed_uid: None,
        };
        r.pump();
        r
    }

    fn send(&mut self, text: &str) -> String {
        self.out.clear();
        self.s.receive(text.as_bytes());
        self.pump();
        std::mem::take(&mut self.out)
    }

    fn pump(&mut self) {
        while let Some(e) = self.s.next_event() {
            match e {
                Event::Reply(b) => self.out.push_str(&String::from_utf8(b).unwrap()),
                Event::StartTls => self.s.tls_started(),
                Event::Authenticate { user, password } => self.login(&user, &password),
                Event::Sasl {
                    mechanism,
                    response,
                    first,
                } => match (mechanism.as_str(), response.as_deref(), first) {
                    // "\0alice\0secret"
                    ("PLAIN", Some("AGFsaWNlAHNlY3JldA=="), _) => self.login("alice", "secret"),
                    ("PLAIN", None, true) => self.s.sasl_challenge(mechanism, ""),
                    ("LOGIN", None, true) => self.s.sasl_challenge(mechanism, "VXNlcm5hbWU6"),
                    ("LOGIN", Some("YWxpY2U="), false) => {
                        self.s.sasl_challenge(mechanism, "UGFzc3dvcmQ6")
                    }
                    ("LOGIN", Some("c2VjcmV0"), false) => self.login("alice", "secret"),
                    _ => self.login("?", "?"),
                },
                Event::Fetch { uid } => {
                    let content = (Some(uid) != self.removed_uid)
                        .then(|| MESSAGES[uid as usize - 1].to_vec());
                    self.s.fetched(content);
                }
                Event::Update(u) => {
                    let left = 3 - u.deleted.len();
                    self.updates.push(u);
                    self.s.updated(true, left);
                }
                Event::AuthFailed { .. } => {}
                Event::Close => self.closed = true,
            }
        }
    }

    fn login(&mut self, user: &str, password: &str) {
        let result = if user == "bob" {
            LoginResult::InUse
        } else if (user, password) == ("alice", "secret") {
            LoginResult::Accepted(
                MESSAGES
                    .iter()
                    .enumerate()
                    .map(|(i, m)| Message {
                        uid: i as u32 + 1,
                        size: m.len() as u64,
                        uidl: format!("u{}", i + 1),
                    })
                    .collect(),
            )
        } else {
            LoginResult::BadCredentials
        };
        self.s.login_result(result);
    }
}

#[test]
fn plaintext_login_is_refused_before_tls_then_allowed_after_stls() {
    let mut r = Run::new(false);
    assert!(r.out.starts_with("+OK mx.example.com POP3"));
    let capa = r.send("CAPA\r\n");
    assert!(
        capa.contains("STLS\r\n") && !capa.contains("USER\r\n"),
        "{capa}"
    );
    assert!(
        r.send("USER alice\r\n")
            .starts_with("-ERR [AUTH] Plaintext")
    );
    assert!(
        r.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .starts_with("-ERR [AUTH]")
    );
    // Pipelined behind STLS: discarded.
    assert_eq!(
        r.send("STLS\r\nUSER alice\r\n"),
        "+OK Begin TLS negotiation\r\n"
    );
    let capa = r.send("CAPA\r\n");
    assert!(
        capa.contains("USER\r\n")
            && capa.contains("SASL PLAIN LOGIN\r\n")
            && !capa.contains("STLS"),
        "{capa}"
    );
    assert_eq!(r.send("USER alice\r\n"), "+OK send PASS\r\n");
    assert_eq!(
        r.send("PASS secret\r\n"),
        "+OK maildrop has 3 messages (96 octets)\r\n"
    );
}

#[test]
fn transaction_commands_and_update() {
    let mut r = Run::new(true);
    r.send("USER alice\r\nPASS secret\r\n");
    assert_eq!(r.send("STAT\r\n"), "+OK 3 96\r\n");
    assert_eq!(
        r.send("LIST\r\n"),
        "+OK 3 messages (96 octets)\r\n1 23\r\n2 39\r\n3 34\r\n.\r\n"
    );
    assert_eq!(r.send("UIDL 2\r\n"), "+OK 2 u2\r\n");
    assert_eq!(
        r.send("RETR 2\r\n"),
        "+OK 39 octets\r\nSubject: two\r\n\r\n..dot line\r\nmore\r\nlast\r\n.\r\n"
    );
    assert_eq!(
        r.send("RETR 3\r\n"),
        "+OK 34 octets\r\nSubject: three\r\n\r\nno final newline\r\n.\r\n"
    );
    assert_eq!(
        r.send("TOP 2 1\r\n"),
        "+OK 39 octets\r\nSubject: two\r\n\r\n..dot line\r\n.\r\n"
    );
    assert_eq!(
        r.send("TOP 1 0\r\n"),
        "+OK 23 octets\r\nSubject: one\r\n\r\n.\r\n"
    );
    assert_eq!(r.send("DELE 1\r\n"), "+OK message 1 deleted\r\n");
    assert_eq!(r.send("DELE 1\r\n"), "-ERR message is deleted\r\n");
    assert_eq!(r.send("RETR 1\r\n"), "-ERR message is deleted\r\n");
    assert_eq!(r.send("LIST 4\r\n"), "-ERR no such message\r\n");
    assert_eq!(r.send("STAT\r\n"), "+OK 2 73\r\n");
    assert_eq!(
        r.send("RSET\r\n"),
        "+OK maildrop has 3 messages (96 octets)\r\n"
    );
    r.send("DELE 3\r\n");
    assert_eq!(r.send("NOOP\r\n"), "+OK\r\n");
    assert!(
        r.send("QUIT\r\n")
            .starts_with("+OK mx.example.com POP3 facteur signing off (2 messages left)")
    );
    assert_eq!(
        r.updates,
        [UpdateRequest {
            deleted: vec![3],
            retrieved: vec![2, 3]
        }]
    );
    assert!(r.closed);
}

#[test]
fn quit_in_authorization_does_not_update() {
    let mut r = Run::new(true);
    assert!(r.send("QUIT\r\n").starts_with("+OK"));
    assert!(r.closed && r.updates.is_empty());
}

#[test]
fn sasl_plain_with_continuation_and_failures() {
    let mut r = Run::new(true);
    assert_eq!(r.send("AUTH\r\n"), "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
    assert_eq!(r.send("AUTH LOGIN\r\n"), "+ VXNlcm5hbWU6\r\n");
    assert_eq!(r.send("YWxpY2U=\r\n"), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(r.send("*\r\n"), "-ERR authentication cancelled\r\n");
    assert_eq!(r.send("AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(r.send("*\r\n"), "-ERR authentication cancelled\r\n");
    assert_eq!(r.send("AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(
        r.send("AGFsaWNlAHdyb25n\r\n"),
        "-ERR [AUTH] Authentication failed\r\n"
    );
    assert_eq!(
        r.send("USER bob\r\nPASS x\r\n"),
        "+OK send PASS\r\n-ERR [IN-USE] maildrop is locked by another POP3 session\r\n"
    );
    assert!(
        r.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .starts_with("+OK maildrop has 3")
    );
}

#[test]
fn three_bad_logins_close_the_connection() {
    let mut r = Run::new(true);
    r.send("USER alice\r\nPASS a\r\nUSER alice\r\nPASS b\r\n");
    let out = r.send("USER alice\r\nPASS c\r\n");
    assert!(
        out.ends_with("-ERR [AUTH] too many failures, closing\r\n"),
        "{out}"
    );
    assert!(r.closed);
}

#[test]
fn message_removed_by_another_session_keeps_numbering() {
    let mut r = Run::new(true);
    r.send("USER alice\r\nPASS secret\r\n");
    r.removed_uid = Some(2);
    assert_eq!(
        r.send("RETR 2\r\n"),
        "-ERR message was removed by another session\r\n"
    );
    assert!(r.send("RETR 3\r\n").starts_with("+OK 34 octets"));
    assert_eq!(r.send("LIST 3\r\n"), "+OK 3 34\r\n");
}

#[test]
fn long_lines_and_unknown_commands() {
    let mut r = Run::new(true);
    let long = format!("{}QUIT\r\nNOOP\r\n", "A".repeat(300));
    assert_eq!(
        r.send(&long),
        "-ERR line too long\r\n-ERR unknown command or not allowed before login\r\n"
    );
    assert!(!r.closed, "the QUIT in the tail was not executed");
    r.send("USER alice\r\nPASS secret\r\n");
    assert_eq!(r.send("FOO\r\n"), "-ERR unknown command\r\n");
    assert_eq!(r.send("USER x\r\n"), "-ERR already logged in\r\n");
    let capa = r.send("CAPA\r\n");
    assert!(
        !capa.contains("USER") && capa.contains("EXPIRE NEVER"),
        "{capa}"
    );
}
