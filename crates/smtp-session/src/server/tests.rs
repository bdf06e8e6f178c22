//! Session-level dialogs (no sockets): each script alternates client bytes and the replies
//! expected, matched by prefix. The oracle accepts alice and bob at example.com.

use super::*;

fn config(lmtp: bool) -> Config {
    Config {
        hostname: "mx.example.com".into(),
        lmtp,
        max_message_size: 100,
        max_recipients: 2,
        max_line_length: 512,
        max_errors: 20,
        tls_available: true,
        submission: false,
        auth: None,
    }
}

fn submission_config() -> Config {
    Config {
        submission: true,
        auth: Some(AuthPolicy {
            mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
            plaintext: false,
            max_failures: 3,
        }),
        ..config(false)
    }
}

/// `\0alice\0pw`, the only credentials the oracle accepts.
const ALICE_PLAIN: &str = "AGFsaWNlAHB3";

/// Drives the session; returns every reply line and whether TLS was requested / body bytes.
struct Run {
    session: Session<String>,
    replies: Vec<String>,
    body: Vec<u8>,
    completed: Vec<Vec<String>>,
    events: Vec<&'static str>,
}

impl Run {
    fn new(lmtp: bool) -> Run {
        Run::with(config(lmtp))
    }

    fn with(config: Config) -> Run {
        let mut r = Run {
            session: Session::new(config),
            replies: vec![],
            body: vec![],
            completed: vec![],
            events: vec![],
        };
        r.pump();
        r
    }

    fn send(&mut self, bytes: &[u8]) -> Vec<String> {
        let before = self.replies.len();
        self.session.receive(bytes);
        self.pump();
        self.replies[before..].to_vec()
    }

    fn pump(&mut self) {
        while let Some(ev) = self.session.next_event() {
            match ev {
                Event::Reply(r) => {
                    let mut out = vec![];
                    r.write_to(&mut out);
                    self.replies
                        .extend(String::from_utf8(out).unwrap().lines().map(String::from));
                }
                Event::CheckRecipient(rcpt) => {
                    let m = &rcpt.recipient;
                    let verdict = if m.domain.eq_ignore_ascii_case("example.com") {
                        if ["alice", "bob"].contains(&m.local.to_lowercase().as_str()) {
                            Verdict::Accept(m.to_string())
                        } else {
                            Verdict::Reject(reply::no_such_user(&m.to_string()))
                        }
                    } else {
                        Verdict::Reject(reply::relay_denied(&m.to_string()))
                    };
                    self.session.recipient_verdict(verdict);
                }
                Event::StartTls => {
                    self.events.push("starttls");
                }
                Event::BodyStart => self.body.clear(),
                Event::Body(b) => self.body.extend(b),
                Event::BodyAborted => self.events.push("aborted"),
                Event::Complete(env) => {
                    let rcpts: Vec<String> =
                        env.recipients.iter().map(|r| r.target.clone()).collect();
                    let replies = if self.session.config.lmtp {
                        rcpts.iter().map(|r| reply::delivered(r, "Q1")).collect()
                    } else {
                        vec![reply::queued("Q1")]
                    };
                    self.completed.push(rcpts);
                    self.session.complete(replies);
                }
                Event::Close => self.events.push("close"),
                Event::Authenticate { initial: None, .. } => self.session.auth_challenge(""),
                Event::Authenticate {
                    initial: Some(response),
                    ..
                }
                | Event::AuthResponse(response) => {
                    if response == ALICE_PLAIN {
                        self.session.auth_succeeded("alice@example.com".into());
                    } else {
                        self.session.auth_failed(reply::auth_failed());
                    }
                }
                Event::AuthCancelled => self.events.push("auth cancelled"),
                Event::CheckSender(mail) => {
                    let ok = mail
                        .sender
                        .as_ref()
                        .is_none_or(|s| s.to_string() == "alice@example.com");
                    self.session.sender_verdict(if ok {
                        Ok(())
                    } else {
                        Err(reply::sender_not_owned(
                            &mail.sender.unwrap().to_string(),
                            "alice@example.com",
                        ))
                    });
                }
            }
        }
    }
}

fn codes(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| &l[..l.len().min(9)]).collect()
}

#[test]
fn pipelined_transaction_replies_in_order() {
    let mut r = Run::new(false);
    assert_eq!(r.replies, ["220 mx.example.com ESMTP facteur"]);
    let out = r.send(b"EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<carol@example.com>\r\nRCPT TO:<x@remote.example>\r\nDATA\r\n");
    assert!(out.iter().any(|l| l == "250-STARTTLS"));
    let tail = &out[out.len() - 5..];
    assert_eq!(
        codes(tail),
        [
            "250 2.1.0",
            "250 2.1.5",
            "550 5.1.1",
            "550 5.7.1",
            "354 End d"
        ]
    );
    let out = r.send(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    assert_eq!(codes(&out), ["250 2.0.0", "221 2.0.0"]);
    assert_eq!(r.body, b"Subject: x\r\n\r\n.dot\r\n");
    assert_eq!(r.completed, [vec!["alice@example.com".to_string()]]);
    assert_eq!(r.events, ["close"]);
}

#[test]
fn command_order_is_enforced() {
    let mut r = Run::new(false);
    assert_eq!(codes(&r.send(b"MAIL FROM:<>\r\n")), ["503 5.5.1"]);
    assert_eq!(
        codes(&r.send(b"HELO c\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")),
        ["250 mx.ex", "503 5.5.1", "503 5.5.1"]
    );
    assert_eq!(
        codes(&r.send(b"MAIL FROM:<>\r\nMAIL FROM:<>\r\nDATA\r\n")),
        ["250 2.1.0", "503 5.5.1", "554 5.5.1"]
    );
    // HELO sessions take no ESMTP parameters.
    assert_eq!(
        codes(&r.send(b"RSET\r\nMAIL FROM:<> SIZE=10\r\n")),
        ["250 2.0.0", "555 5.5.4"]
    );
}

#[test]
fn limits_size_recipients_and_line_length() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\n");
    assert_eq!(codes(&r.send(b"MAIL FROM:<> SIZE=101\r\n")), ["552 5.3.4"]);
    r.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n");
    assert_eq!(
        codes(&r.send(b"RCPT TO:<alice@example.com>\r\n")),
        ["452 4.5.3"]
    );
    r.send(b"DATA\r\n");
    let big = [b'x'; 150];
    let mut msg = big.to_vec();
    msg.extend_from_slice(b"\r\n.\r\n");
    assert_eq!(codes(&r.send(&msg)), ["552 5.3.4"]);
    assert_eq!(r.events, ["aborted"]);
    // Over-long command line: one 500 5.5.2, and the tail (a QUIT) is never executed.
    let mut line = vec![b'N'; 600];
    line.extend_from_slice(b"QUIT\r\nNOOP\r\n");
    assert_eq!(codes(&r.send(&line)), ["500 5.5.2", "250 2.0.0"]);
    // Split across reads too.
    assert_eq!(codes(&r.send(&[b'X'; 700])), ["500 5.5.2"]);
    assert_eq!(codes(&r.send(b"QUIT more\r\nNOOP\r\n")), ["250 2.0.0"]);
}

#[test]
fn smuggled_end_of_data_is_content_and_refused() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
    let out = r.send(b"a\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
    assert!(out.is_empty(), "smuggled commands were executed: {out:?}");
    assert_eq!(codes(&r.send(b"\r\n.\r\n")), ["554 5.6.0"]);
    assert!(r.completed.is_empty());
}

#[test]
fn starttls_discards_pipelined_commands() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\n");
    let out = r.send(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n");
    assert_eq!(codes(&out), ["220 2.0.0"]);
    assert_eq!(r.events, ["starttls"]);
    r.session.tls_started(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "X".into(),
    });
    assert_eq!(
        codes(&r.send(b"MAIL FROM:<a@b.c>\r\n")),
        ["503 5.5.1"],
        "state reset after TLS"
    );
    let out = r.send(b"EHLO c\r\n");
    assert!(!out.iter().any(|l| l.contains("STARTTLS")));
    assert_eq!(codes(&r.send(b"STARTTLS\r\n")), ["503 5.5.1"]);
    assert_eq!(r.session.protocol(), "ESMTPS");
}

#[test]
fn bdat_chunks_and_refusals() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\n");
    // Without a transaction the chunk is consumed, then refused.
    assert_eq!(codes(&r.send(b"BDAT 6 LAST\r\nQUIT\r\n")), ["503 5.5.1"]);
    let out = r.send(
        b"MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nBDAT 5\r\nab\r\ncBDAT 3 LAST\r\nd\r\n",
    );
    assert_eq!(
        codes(&out),
        ["250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0"]
    );
    assert_eq!(r.body, b"ab\r\ncd\r\n");
    assert_eq!(
        codes(&r.send(b"MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nBDAT 2 LAST\r\na\n")),
        ["250 2.1.0", "250 2.1.5", "554 5.6.0"]
    );
}

#[test]
fn lmtp_replies_per_recipient_and_requires_lhlo() {
    let mut r = Run::new(true);
    assert_eq!(r.replies, ["220 mx.example.com LMTP facteur"]);
    assert_eq!(codes(&r.send(b"EHLO c\r\n")), ["500 5.5.1"]);
    r.send(b"LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
    let out = r.send(b"hi\r\n.\r\n");
    assert_eq!(codes(&out), ["250 2.1.5", "250 2.1.5"]);
    assert_eq!(r.session.protocol(), "LMTP");
}

#[test]
fn shutdown_lets_the_message_in_flight_finish_then_says_421() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
    r.session.shutdown();
    let out = r.send(b"x\r\n.\r\n");
    assert_eq!(
        codes(&out),
        ["250 2.0.0", "421 4.3.2"],
        "completes, then 421 at once"
    );
    assert!(r.session.is_closed());
}

#[test]
fn shutdown_lets_a_chunked_message_finish() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nBDAT 3\r\nab\n");
    r.session.shutdown();
    let out = r.send(b"BDAT 4 LAST\r\ncd\r\n");
    assert_eq!(
        codes(&out),
        ["554 5.6.0", "421 4.3.2"],
        "the chunk is read and answered, then 421"
    );
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nBDAT 4\r\nab\r\n");
    r.session.shutdown();
    assert_eq!(
        codes(&r.send(b"BDAT 2 LAST\r\ncd")),
        ["250 2.0.0", "421 4.3.2"]
    );
    assert_eq!(r.body, b"ab\r\ncd");
}

#[test]
fn too_many_errors_close_the_session() {
    let mut r = Run::new(false);
    let out = r.send(&b"FOO\r\n".repeat(25));
    assert_eq!(out.len(), 21);
    assert_eq!(codes(&out[20..]), ["421 4.7.0"]);
    assert_eq!(r.events, ["close"]);
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\n");
    assert_eq!(
        codes(&r.send("MAIL FROM:<josé@remote.example>\r\n".as_bytes())),
        ["553 5.6.7"]
    );
    r.send(b"MAIL FROM:<>\r\n");
    assert_eq!(
        codes(&r.send("RCPT TO:<josé@example.com>\r\n".as_bytes())),
        ["553 5.6.7"]
    );
}

#[test]
fn input_buffer_stays_bounded() {
    let mut r = Run::new(false);
    r.send(b"EHLO c\r\nNO");
    // Every read ends inside a command: the consumed prefix must still be released.
    for _ in 0..10_000 {
        assert_eq!(codes(&r.send(b"OP\r\nNO")), ["250 2.0.0"]);
    }
    assert!(r.session.lines.held() < 4096, "{}", r.session.lines.held());
}

/// Arbitrary bytes, including fragments of every verb, in every state: the session never
/// panics, never buffers more than a line plus one read, and always ends up answering or closed.
#[test]
fn random_input_never_panics() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: [&[u8]; 19] = [
        b"AUTH PLAIN AGFsaWNlAHB3\r\n",
        b"AUTH LOGIN\r\n",
        b"*\r\n",
        b"EHLO x\r\n",
        b"LHLO x\r\n",
        b"MAIL FROM:<a@b.c>\r\n",
        b"RCPT TO:<alice@example.com>\r\n",
        b"DATA\r\n",
        b"BDAT 5\r\n",
        b"BDAT 3 LAST\r\n",
        b".\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"STARTTLS\r\n",
        b"RSET\r\n",
        b"MAIL FROM:<\"a\\\"b\"@[1.2.3.4]> SIZE=9 BODY=8BITMIME\r\n",
        b"\xff\xfe\x00",
        b"QUIT\r\n",
    ];
    for round in 0..300 {
        let mut r = match round % 3 {
            0 => Run::new(false),
            1 => Run::new(true),
            _ => Run::with(submission_config()),
        };
        for _ in 0..200 {
            let n = next();
            let bytes: Vec<u8> = if n % 3 == 0 {
                (0..(n >> 8) % 64)
                    .map(|i| (next() >> (i % 8)) as u8)
                    .collect()
            } else {
                pieces[(n >> 4) as usize % pieces.len()].to_vec()
            };
            r.send(&bytes);
            if r.events.contains(&"starttls") {
                r.session.tls_started(TlsInfo {
                    version: "TLSv1.3".into(),
                    cipher: "X".into(),
                });
                r.events.retain(|e| *e != "starttls");
            }
            assert!(
                r.session.lines.held() <= 12288 + 64,
                "input buffer grew to {}",
                r.session.lines.held()
            );
            if r.session.is_closed() {
                break;
            }
        }
    }
}

fn tls_up(r: &mut Run) {
    r.session.tls_started(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "X".into(),
    });
}

#[test]
fn submission_offers_auth_only_after_tls_and_requires_it_for_mail() {
    let mut r = Run::with(submission_config());
    let out = r.send(b"EHLO c\r\n");
    assert!(out.iter().any(|l| l == "250-STARTTLS"), "{out:?}");
    assert!(!out.iter().any(|l| l.contains("AUTH")), "{out:?}");
    assert_eq!(
        codes(&r.send(format!("AUTH PLAIN {ALICE_PLAIN}\r\n").as_bytes())),
        ["538 5.7.1"]
    );
    assert_eq!(
        codes(&r.send(b"MAIL FROM:<alice@example.com>\r\n")),
        ["530 5.7.0"]
    );
    r.send(b"STARTTLS\r\n");
    tls_up(&mut r);
    let out = r.send(b"EHLO c\r\n");
    assert!(out.iter().any(|l| l == "250-AUTH PLAIN LOGIN"), "{out:?}");
    assert!(!out.iter().any(|l| l.contains("STARTTLS")));
    assert_eq!(
        codes(&r.send(b"MAIL FROM:<alice@example.com>\r\n")),
        ["530 5.7.0"]
    );
    assert_eq!(codes(&r.send(b"AUTH CRAM-MD5\r\n")), ["504 5.5.4"]);
    assert_eq!(codes(&r.send(b"AUTH\r\n")), ["501 5.5.4"]);
    assert_eq!(r.session.protocol(), "ESMTPS");
    // A pipelined AUTH with an initial response: the commands behind it wait for the verdict.
    let out = r.send(
        format!("AUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
            .as_bytes(),
    );
    assert_eq!(
        codes(&out),
        ["235 2.7.0", "250 2.1.0", "250 2.1.5", "354 End d"]
    );
    assert_eq!(r.session.protocol(), "ESMTPSA");
    assert_eq!(r.session.authenticated(), Some("alice@example.com"));
    assert_eq!(codes(&r.send(b"hi\r\n.\r\n")), ["250 2.0.0"]);
    assert_eq!(
        codes(&r.send(format!("AUTH PLAIN {ALICE_PLAIN}\r\n").as_bytes())),
        ["503 5.5.1"]
    );
    // Sender rules are the driver's: someone else's address is refused, <> is allowed.
    assert_eq!(
        codes(&r.send(b"MAIL FROM:<bob@example.com>\r\n")),
        ["553 5.7.1"]
    );
    assert_eq!(codes(&r.send(b"MAIL FROM:<>\r\n")), ["250 2.1.0"]);
    // No AUTH inside a transaction.
    assert_eq!(codes(&r.send(b"AUTH LOGIN\r\n")), ["503 5.5.1"]);
}

#[test]
fn auth_exchange_challenges_cancel_and_failures() {
    let mut r = Run::with(submission_config());
    r.send(b"EHLO c\r\nSTARTTLS\r\n");
    tls_up(&mut r);
    r.send(b"EHLO c\r\n");
    // Without initial response: an empty challenge, then the response.
    assert_eq!(r.send(b"AUTH PLAIN\r\n"), ["334 "]);
    assert_eq!(codes(&r.send(b"*\r\n")), ["501 5.0.0"]);
    assert_eq!(r.events, ["starttls", "auth cancelled"]);
    assert_eq!(r.send(b"AUTH PLAIN\r\n"), ["334 "]);
    assert_eq!(codes(&r.send(b"AGFsaWNlAHdyb25n\r\n")), ["535 5.7.8"]);
    assert_eq!(
        codes(&r.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")),
        ["535 5.7.8"]
    );
    // The third failure closes the session.
    assert_eq!(
        codes(&r.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\nNOOP\r\n")),
        ["535 5.7.8", "421 4.7.0"]
    );
    assert!(r.session.is_closed());
}

#[test]
fn starttls_forgets_authentication_and_mx_refuses_auth() {
    let mut r = Run::with(Config {
        auth: Some(AuthPolicy {
            mechanisms: vec!["PLAIN".into()],
            plaintext: true,
            max_failures: 3,
        }),
        ..submission_config()
    });
    let out = r.send(format!("EHLO c\r\nAUTH PLAIN {ALICE_PLAIN}\r\n").as_bytes());
    assert!(out.iter().any(|l| l == "250-AUTH PLAIN"), "{out:?}");
    assert_eq!(codes(&out[out.len() - 1..]), ["235 2.7.0"]);
    assert_eq!(r.session.protocol(), "ESMTPA");
    r.send(b"STARTTLS\r\n");
    tls_up(&mut r);
    assert_eq!(r.session.authenticated(), None, "RFC 3207 §4.2");
    let mut mx = Run::new(false);
    mx.send(b"EHLO c\r\n");
    assert_eq!(
        codes(&mx.send(b"AUTH PLAIN AGFsaWNlAHB3\r\n")),
        ["502 5.5.1"]
    );
}
