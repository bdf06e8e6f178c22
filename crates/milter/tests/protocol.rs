//! The milter client against scripted filters: a loopback TCP (or Unix) listener speaking the
//! wire format, answering each command as the test's script says and recording every packet
//! the client sent. Packets: uint32 length, command byte, data (milter-protocol.txt).

use facteur_milter::{
    Milter, MilterError, Modification, Outcome, Reply, Stage, Transaction, Verdict, apply,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;

/// Every wait of the fake filter.
const WAIT: Duration = Duration::from_secs(10);
/// Most packets one conversation may have.
const MAX_PACKETS: usize = 10_000;

// Protocol flags and actions (mfdef.h).
const NOCONNECT: u32 = 0x01;
const NOHELO: u32 = 0x02;
const NOMAIL: u32 = 0x04;
const NORCPT: u32 = 0x08;
const NOBODY: u32 = 0x10;
const NOHDRS: u32 = 0x20;
const NOEOH: u32 = 0x40;
const NR_HDR: u32 = 0x80;
const NODATA: u32 = 0x200;
const SKIP: u32 = 0x400;
const NR_CONN: u32 = 0x1000;
const NR_HELO: u32 = 0x2000;
const NR_MAIL: u32 = 0x4000;
const NR_RCPT: u32 = 0x8000;
const NR_DATA: u32 = 0x1_0000;
const NR_EOH: u32 = 0x4_0000;
const NR_BODY: u32 = 0x8_0000;
const HDR_LEADSPC: u32 = 0x10_0000;
const ALL_ACTIONS: u32 = 0x1ff;
const ADDHDRS: u32 = 0x01;

type Packet = (u8, Vec<u8>);

/// What the fake filter does in answer to one command.
enum Step {
    Send(Vec<u8>),
    Wait(Duration),
    /// Close the connection.
    Close,
}

fn pkt(command: u8, data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(command);
    out.extend_from_slice(data);
    out
}

fn send(command: u8, data: &[u8]) -> Vec<Step> {
    vec![Step::Send(pkt(command, data))]
}

fn cont() -> Vec<Step> {
    send(b'c', b"")
}

/// The filter's SMFIC_OPTNEG answer: version 6, these actions and protocol flags, then
/// optional macro lists.
fn optneg(actions: u32, protocol: u32, lists: &[(u32, &str)]) -> Vec<Step> {
    vec![Step::Send(optneg_bytes(actions, protocol, lists))]
}

fn optneg_bytes(actions: u32, protocol: u32, lists: &[(u32, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&6u32.to_be_bytes());
    data.extend_from_slice(&actions.to_be_bytes());
    data.extend_from_slice(&protocol.to_be_bytes());
    for (class, names) in lists {
        data.extend_from_slice(&class.to_be_bytes());
        data.extend_from_slice(names.as_bytes());
        data.push(0);
    }
    pkt(b'O', &data)
}

fn cstrs(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> Option<Packet> {
    let mut len = [0u8; 4];
    match tokio::time::timeout(WAIT, s.read_exact(&mut len)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => panic!("the client sent nothing for {WAIT:?}"),
    }
    let len = u32::from_be_bytes(len) as usize;
    assert!((1..=(1 << 20)).contains(&len), "client packet length {len}");
    let mut buf = vec![0u8; len];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("packet body within the wait")
        .ok()?;
    Some((buf[0], buf[1..].to_vec()))
}

/// Plays the filter side on one connection: answers SMFIC_OPTNEG with `negotiation` and
/// every other command (macros excepted) with what `script` says. Returns every packet
/// received, until QUIT, end of stream, a write failure or a Close step.
async fn serve<S, F>(mut s: S, mut negotiation: Vec<Step>, mut script: F) -> Vec<Packet>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(u8, &[u8]) -> Vec<Step>,
{
    let mut log = Vec::new();
    for _ in 0..MAX_PACKETS {
        let Some((command, data)) = read_packet(&mut s).await else {
            return log;
        };
        log.push((command, data.clone()));
        let steps = match command {
            b'O' => std::mem::take(&mut negotiation),
            b'D' | b'A' => Vec::new(),
            b'Q' => return log,
            _ => script(command, &data),
        };
        for step in steps {
            match step {
                Step::Send(bytes) => {
                    if s.write_all(&bytes).await.is_err() {
                        return log;
                    }
                }
                Step::Wait(d) => tokio::time::sleep(d).await,
                Step::Close => return log,
            }
        }
    }
    panic!("more than {MAX_PACKETS} packets");
}

/// A fake filter on a loopback TCP port: its address and the packets it will have received.
async fn fake<F>(negotiation: Vec<Step>, script: F) -> (String, JoinHandle<Vec<Packet>>)
where
    F: FnMut(u8, &[u8]) -> Vec<Step> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    let handle = tokio::spawn(async move {
        let (s, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the client connects")
            .expect("accept");
        serve(s, negotiation, script).await
    });
    // Sendmail's form, port@host.
    (format!("inet:{}@{}", addr.port(), addr.ip()), handle)
}

struct Fixture {
    recipients: Vec<String>,
    args: Vec<String>,
    message: Vec<u8>,
}

const HEADERS: &[u8] = b"From: Sender <sender@example.org>\r\n\
To: a@example.net, b@example.net\r\n\
Subject: Hello\r\n\
\tworld\r\n\
X-Dup: one\r\n\
X-Dup: two\r\n";

/// The test message's header section, the empty line, then `body`.
fn message(body: &[u8]) -> Vec<u8> {
    [HEADERS, b"\r\n", body].concat()
}

fn fixture() -> Fixture {
    Fixture {
        recipients: vec!["a@example.net".into(), "b@example.net".into()],
        args: vec!["SIZE=100".into(), "BODY=8BITMIME".into()],
        message: message(b"Body line 1\r\nBody line 2\r\n"),
    }
}

fn tx(f: &Fixture) -> Transaction<'_> {
    Transaction {
        client_ip: "192.0.2.1".parse().unwrap(),
        client_port: 54321,
        client_name: "client.example.com",
        server_addr: Some("198.51.100.25:25".parse().unwrap()),
        helo: "client.example.com",
        mail_from: "sender@example.org",
        mail_args: &f.args,
        recipients: &f.recipients,
        message: &f.message,
        queue_id: "4QID",
        hostname: "mx.example.net",
        auth: Some(("PLAIN", "sender")),
        tls: Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384")),
    }
}

fn milter(address: &str) -> Milter {
    Milter::parse(address, Duration::from_secs(5), Duration::from_secs(5)).expect("address")
}

async fn run<F>(
    negotiation: Vec<Step>,
    f: &Fixture,
    script: F,
) -> (Result<Outcome, MilterError>, Vec<Packet>)
where
    F: FnMut(u8, &[u8]) -> Vec<Step> + Send + 'static,
{
    let (address, handle) = fake(negotiation, script).await;
    let result = milter(&address).check(&tx(f)).await;
    (result, handle.await.expect("fake filter"))
}

/// The commands received, macros left out, as a string of command letters.
fn commands(log: &[Packet]) -> String {
    log.iter()
        .filter(|(c, _)| *c != b'D')
        .map(|(c, _)| *c as char)
        .collect()
}

/// The macros sent before `command` (the first SMFIC_MACRO for it), as name=value pairs.
fn macros(log: &[Packet], command: u8) -> Vec<(String, String)> {
    let (_, data) = log
        .iter()
        .find(|(c, d)| *c == b'D' && d.first() == Some(&command))
        .unwrap_or_else(|| panic!("no macros for '{}'", command as char));
    let parts: Vec<String> = data[1..]
        .split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    // Trailing NUL leaves one empty part.
    assert_eq!(parts.last().map(String::as_str), Some(""));
    parts[..parts.len() - 1]
        .chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().expect("macro value")))
        .collect()
}

fn data_of(log: &[Packet], command: u8) -> Vec<Vec<u8>> {
    log.iter()
        .filter(|(c, _)| *c == command)
        .map(|(_, d)| d.clone())
        .collect()
}

fn pair(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

#[tokio::test]
async fn full_conversation_replays_every_stage_in_order() {
    let mut f = fixture();
    // A body of two chunks: 65535 + the rest.
    let mut body = Vec::new();
    for i in 0..2000 {
        body.extend_from_slice(
            format!("line {i:05} of the body, some text to fill it\r\n").as_bytes(),
        );
    }
    assert!(body.len() > 65535 && body.len() < 2 * 65535);
    f.message = message(&body);
    let (result, log) = run(optneg(0, 0, &[]), &f, |_, _| cont()).await;
    let outcome = result.expect("check");
    assert_eq!(outcome.verdict, Verdict::Continue);
    assert!(outcome.modifications.is_empty());
    assert!(outcome.rejected_recipients.is_empty());

    assert_eq!(commands(&log), "OCHMRRTLLLLLNBBEQ");
    // Each stage's macros come right before it.
    let order: String = log.iter().map(|(c, _)| *c as char).collect();
    assert_eq!(order, "ODCDHDMDRDRDTLLLLLDNBBDEQ");

    let opt = &data_of(&log, b'O')[0];
    assert_eq!(opt.len(), 12);
    assert_eq!(&opt[..4], &6u32.to_be_bytes());
    assert_eq!(&opt[4..8], &0x1ffu32.to_be_bytes());
    assert_eq!(&opt[8..], &0x1f_ffffu32.to_be_bytes());

    assert_eq!(
        macros(&log, b'C'),
        vec![
            pair("j", "mx.example.net"),
            pair("{daemon_name}", "mx.example.net"),
            pair("{daemon_addr}", "198.51.100.25"),
            pair("{daemon_port}", "25"),
            pair("v", &format!("facteur {}", env!("CARGO_PKG_VERSION"))),
            pair("_", "client.example.com [192.0.2.1]"),
            pair("{client_addr}", "192.0.2.1"),
            pair("{client_port}", "54321"),
            pair("{client_name}", "client.example.com"),
        ]
    );
    assert_eq!(
        macros(&log, b'H'),
        vec![
            pair("{tls_version}", "TLSv1.3"),
            pair("{cipher}", "TLS_AES_256_GCM_SHA384")
        ]
    );
    assert_eq!(
        macros(&log, b'M'),
        vec![
            pair("i", "4QID"),
            pair("{auth_type}", "PLAIN"),
            pair("{auth_authen}", "sender"),
            pair("{mail_addr}", "sender@example.org"),
        ]
    );
    assert_eq!(
        macros(&log, b'R'),
        vec![pair("{rcpt_addr}", "a@example.net")]
    );
    assert_eq!(macros(&log, b'E'), vec![pair("i", "4QID")]);

    let mut connect = b"client.example.com\x004".to_vec();
    connect.extend_from_slice(&54321u16.to_be_bytes());
    connect.extend_from_slice(b"192.0.2.1\0");
    assert_eq!(data_of(&log, b'C'), vec![connect]);
    assert_eq!(data_of(&log, b'H'), vec![b"client.example.com\0".to_vec()]);
    assert_eq!(
        data_of(&log, b'M'),
        vec![b"<sender@example.org>\0SIZE=100\0BODY=8BITMIME\0".to_vec()]
    );
    assert_eq!(
        data_of(&log, b'R'),
        vec![b"<a@example.net>\0".to_vec(), b"<b@example.net>\0".to_vec()]
    );
    // Header values: one leading space removed, folding kept with LF.
    assert_eq!(
        data_of(&log, b'L'),
        vec![
            cstrs(&[b"From", b"Sender <sender@example.org>"]),
            cstrs(&[b"To", b"a@example.net, b@example.net"]),
            cstrs(&[b"Subject", b"Hello\n\tworld"]),
            cstrs(&[b"X-Dup", b"one"]),
            cstrs(&[b"X-Dup", b"two"]),
        ]
    );
    let chunks = data_of(&log, b'B');
    assert_eq!(chunks[0].len(), 65535);
    assert_eq!(chunks.concat(), body);
    assert_eq!(data_of(&log, b'E'), vec![Vec::<u8>::new()]);
}

#[tokio::test]
async fn ipv6_client_and_null_sender() {
    let f = fixture();
    let (address, handle) = fake(optneg(0, 0, &[]), |_, _| cont()).await;
    let mut t = tx(&f);
    t.client_ip = "2001:db8::7".parse().unwrap();
    t.client_name = "[2001:db8::7]";
    t.mail_from = "";
    t.auth = None;
    t.tls = None;
    let outcome = milter(&address).check(&t).await.expect("check");
    assert_eq!(outcome.verdict, Verdict::Continue);
    let log = handle.await.unwrap();
    let mut connect = b"[2001:db8::7]\x006".to_vec();
    connect.extend_from_slice(&54321u16.to_be_bytes());
    connect.extend_from_slice(b"2001:db8::7\0");
    assert_eq!(data_of(&log, b'C'), vec![connect]);
    assert_eq!(data_of(&log, b'M')[0], b"<>\0SIZE=100\0BODY=8BITMIME\0");
    assert_eq!(
        macros(&log, b'M'),
        vec![pair("i", "4QID"), pair("{mail_addr}", "")]
    );
    // No TLS: no HELO macros at all.
    assert!(!log.iter().any(|(c, d)| *c == b'D' && d[0] == b'H'));
}

#[tokio::test]
async fn negotiated_no_flags_turn_stages_off() {
    let f = fixture();
    let flags = NOCONNECT | NOHELO | NOMAIL | NORCPT | NOBODY | NOHDRS | NOEOH | NODATA;
    let (result, log) = run(optneg(0, flags, &[]), &f, |c, _| {
        assert_eq!(c, b'E', "a stage the filter turned off was sent");
        cont()
    })
    .await;
    assert_eq!(result.expect("check").verdict, Verdict::Continue);
    assert_eq!(commands(&log), "OEQ");
    // The macros still come, as Postfix sends them.
    assert_eq!(macros(&log, b'C')[0], pair("j", "mx.example.net"));
    assert_eq!(
        macros(&log, b'R'),
        vec![pair("{rcpt_addr}", "a@example.net")]
    );
}

#[tokio::test]
async fn no_reply_flags_are_honoured() {
    let f = fixture();
    let flags = NR_CONN | NR_HELO | NR_MAIL | NR_RCPT | NR_DATA | NR_HDR | NR_EOH | NR_BODY;
    let started = Instant::now();
    let (address, handle) = fake(optneg(0, flags, &[]), |c, _| {
        if c == b'E' { cont() } else { Vec::new() }
    })
    .await;
    // A client waiting for any reply but the last would time out after 2 s.
    let m = Milter::parse(&address, Duration::from_secs(2), Duration::from_secs(2)).unwrap();
    let outcome = m.check(&tx(&f)).await.expect("check");
    assert_eq!(outcome.verdict, Verdict::Continue);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(commands(&handle.await.unwrap()), "OCHMRRTLLLLLNBEQ");
}

#[tokio::test]
async fn leading_space_negotiated() {
    let f = fixture();
    let (result, log) = run(optneg(ALL_ACTIONS, HDR_LEADSPC, &[]), &f, |c, _| match c {
        b'E' => [
            send(b'h', &cstrs(&[b"X-Tight", b"no-space"])),
            send(
                b'm',
                &[&1u32.to_be_bytes()[..], &cstrs(&[b"Subject", b" Spaced"])].concat(),
            ),
            cont(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    assert_eq!(
        data_of(&log, b'L')[2],
        cstrs(&[b"Subject", b" Hello\n\tworld"])
    );
    assert_eq!(
        outcome.modifications,
        vec![
            Modification::AddHeader {
                name: "X-Tight".into(),
                value: "no-space".into()
            },
            Modification::ChangeHeader {
                name: "Subject".into(),
                index: 1,
                value: " Spaced".into()
            },
        ]
    );
    let out = apply(&f.message, &outcome.modifications);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\r\nSubject: Spaced\r\nX-Dup"), "{text}");
    assert!(
        text.contains("X-Dup: two\r\nX-Tight:no-space\r\n\r\nBody"),
        "{text}"
    );
}

#[tokio::test]
async fn replycode_at_mail_from_rejects_the_message() {
    let f = fixture();
    let (result, log) = run(optneg(0, 0, &[]), &f, |c, _| match c {
        b'M' => send(b'y', b"554 5.7.1 Sender 100%% blocked\0"),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    let reply = Reply {
        code: 554,
        status: Some((5, 7, 1)),
        text: "Sender 100% blocked".into(),
    };
    assert_eq!(outcome.verdict, Verdict::Reject(reply.clone()));
    assert_eq!(reply.to_string(), "554 5.7.1 Sender 100% blocked");
    // The transaction is aborted, then the conversation ends.
    assert_eq!(commands(&log), "OCHMAQ");
}

#[tokio::test]
async fn replycode_4xx_is_a_temporary_failure() {
    let f = fixture();
    let (result, _) = run(optneg(0, 0, &[]), &f, |c, _| match c {
        b'E' => send(b'y', b"421 4.3.2 System shutting down\0"),
        _ => cont(),
    })
    .await;
    assert_eq!(
        result.expect("check").verdict,
        Verdict::Tempfail(Reply {
            code: 421,
            status: Some((4, 3, 2)),
            text: "System shutting down".into()
        })
    );
}

#[tokio::test]
async fn tempfail_at_end_of_headers() {
    let f = fixture();
    let (result, log) = run(optneg(0, 0, &[]), &f, |c, _| match c {
        b'N' => send(b't', b""),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    assert_eq!(
        outcome.verdict,
        Verdict::Tempfail(Reply {
            code: 451,
            status: Some((4, 7, 1)),
            text: "Service unavailable - try again later".into()
        })
    );
    assert_eq!(commands(&log), "OCHMRRTLLLLLNAQ");
}

#[tokio::test]
async fn plain_reject_gets_the_default_reply() {
    let f = fixture();
    let (result, _) = run(optneg(0, 0, &[]), &f, |c, _| match c {
        b'B' => send(b'r', b""),
        _ => cont(),
    })
    .await;
    assert_eq!(
        result.expect("check").verdict,
        Verdict::Reject(Reply {
            code: 550,
            status: Some((5, 7, 1)),
            text: "Command rejected".into()
        })
    );
}

#[tokio::test]
async fn per_recipient_refusals_drop_only_those_recipients() {
    let mut f = fixture();
    f.recipients = vec![
        "good@example.net".into(),
        "bad@example.net".into(),
        "later@example.net".into(),
    ];
    let (result, log) = run(optneg(0, 0, &[]), &f, |c, d| match c {
        b'R' if d.starts_with(b"<bad@") => send(b'y', b"550 5.1.1 No such user\0"),
        b'R' if d.starts_with(b"<later@") => send(b't', b""),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    assert_eq!(outcome.verdict, Verdict::Continue);
    assert_eq!(
        outcome.rejected_recipients,
        vec![
            (
                "bad@example.net".to_string(),
                Reply {
                    code: 550,
                    status: Some((5, 1, 1)),
                    text: "No such user".into()
                }
            ),
            ("later@example.net".to_string(), Reply::default_tempfail()),
        ]
    );
    assert_eq!(outcome.recipients(&f.recipients), vec!["good@example.net"]);
    // The message went on to the end.
    assert_eq!(commands(&log), "OCHMRRRTLLLLLNBEQ");
}

#[tokio::test]
async fn all_recipients_refused_refuses_the_message() {
    let f = fixture();
    let (result, log) = run(optneg(0, 0, &[]), &f, |c, _| match c {
        b'R' => send(b'y', b"550 5.1.1 No such user\0"),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    assert_eq!(
        outcome.verdict,
        Verdict::Reject(Reply {
            code: 550,
            status: Some((5, 1, 1)),
            text: "No such user".into()
        })
    );
    assert_eq!(outcome.rejected_recipients.len(), 2);
    assert!(outcome.recipients(&f.recipients).is_empty());
    assert_eq!(commands(&log), "OCHMRRAQ");

    // One of them temporary: the message is refused temporarily.
    let (result, _) = run(optneg(0, 0, &[]), &f, |c, d| match c {
        b'R' if d.starts_with(b"<a@") => send(b'r', b""),
        b'R' => send(b'y', b"452 4.2.2 Mailbox full\0"),
        _ => cont(),
    })
    .await;
    assert_eq!(
        result.expect("check").verdict,
        Verdict::Tempfail(Reply {
            code: 452,
            status: Some((4, 2, 2)),
            text: "Mailbox full".into()
        })
    );
}

#[tokio::test]
async fn modifications_are_collected_and_applied() {
    let f = fixture();
    let (result, log) = run(optneg(ALL_ACTIONS, 0, &[]), &f, |c, _| match c {
        b'E' => [
            send(b'p', b""),
            send(b'h', &cstrs(&[b"X-Added", b"yes"])),
            send(
                b'i',
                &[&0u32.to_be_bytes()[..], &cstrs(&[b"X-Top", b"first"])].concat(),
            ),
            send(
                b'm',
                &[
                    &1u32.to_be_bytes()[..],
                    &cstrs(&[b"subject", b"Changed\n\tsubject"]),
                ]
                .concat(),
            ),
            send(
                b'm',
                &[&2u32.to_be_bytes()[..], &cstrs(&[b"X-Dup", b""])].concat(),
            ),
            send(b'b', b"New body\r\n"),
            send(b'b', b"second line\n"),
            send(b'+', b"<new@example.net>\0"),
            send(b'2', b"<par@example.net>\0NOTIFY=NEVER\0"),
            send(b'-', b"<b@example.net>\0"),
            send(b'e', b"<bounce@example.org>\0"),
            send(b'a', b""),
        ]
        .into_iter()
        .flatten()
        .collect(),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    assert_eq!(commands(&log).chars().last(), Some('Q'));
    assert_eq!(outcome.verdict, Verdict::Accept);
    assert_eq!(
        outcome.modifications,
        vec![
            Modification::AddHeader {
                name: "X-Added".into(),
                value: " yes".into()
            },
            Modification::InsertHeader {
                index: 0,
                name: "X-Top".into(),
                value: " first".into()
            },
            Modification::ChangeHeader {
                name: "subject".into(),
                index: 1,
                value: " Changed\n\tsubject".into()
            },
            Modification::ChangeHeader {
                name: "X-Dup".into(),
                index: 2,
                value: String::new()
            },
            Modification::AddRecipient("new@example.net".into()),
            Modification::AddRecipient("par@example.net".into()),
            Modification::DeleteRecipient("b@example.net".into()),
            Modification::ChangeFrom("bounce@example.org".into()),
            Modification::ReplaceBody(b"New body\r\nsecond line\n".to_vec()),
        ]
    );
    assert_eq!(
        apply(&f.message, &outcome.modifications),
        b"X-Top: first\r\n\
From: Sender <sender@example.org>\r\n\
To: a@example.net, b@example.net\r\n\
Subject: Changed\r\n\
\tsubject\r\n\
X-Dup: one\r\n\
X-Added: yes\r\n\
\r\n\
New body\r\n\
second line\r\n"
    );
    assert_eq!(
        outcome.recipients(&f.recipients),
        vec!["a@example.net", "new@example.net", "par@example.net"]
    );
    assert_eq!(outcome.sender("sender@example.org"), "bounce@example.org");
}

#[tokio::test]
async fn quarantine_and_discard() {
    let f = fixture();
    let (result, _) = run(optneg(ALL_ACTIONS, 0, &[]), &f, |c, _| match c {
        b'E' => [send(b'q', b"looks like malware\0"), cont()]
            .into_iter()
            .flatten()
            .collect(),
        _ => cont(),
    })
    .await;
    assert_eq!(
        result.expect("check").verdict,
        Verdict::Quarantine("looks like malware".into())
    );

    let (result, log) = run(optneg(0, 0, &[]), &f, |c, _| match c {
        b'L' => send(b'd', b""),
        _ => cont(),
    })
    .await;
    assert_eq!(result.expect("check").verdict, Verdict::Discard);
    assert_eq!(commands(&log), "OCHMRRTLAQ");
}

#[tokio::test]
async fn accept_before_the_end_stops_the_conversation() {
    let f = fixture();
    let (result, log) = run(optneg(ALL_ACTIONS, 0, &[]), &f, |c, _| match c {
        b'H' => send(b'a', b""),
        _ => cont(),
    })
    .await;
    let outcome = result.expect("check");
    assert_eq!(outcome.verdict, Verdict::Accept);
    assert!(outcome.modifications.is_empty());
    // No transaction started: no ABORT.
    assert_eq!(commands(&log), "OCHQ");
}

#[tokio::test]
async fn skip_stops_the_body_and_header_stages() {
    let mut f = fixture();
    f.message = message(&[b'x'; 200_000]);
    let (result, log) = run(optneg(0, SKIP, &[]), &f, |c, _| match c {
        b'B' | b'L' => send(b's', b""),
        _ => cont(),
    })
    .await;
    assert_eq!(result.expect("check").verdict, Verdict::Continue);
    // One header, then end of headers; one body chunk of four, then end of message.
    assert_eq!(commands(&log), "OCHMRRTLNBEQ");
}

#[tokio::test]
async fn macro_lists_chosen_by_the_filter() {
    let f = fixture();
    let lists = [
        (0, "{client_addr} j {no_such_macro}"),
        (5, "i {auth_authen}"),
    ];
    let (result, log) = run(optneg(0x100, 0, &lists), &f, |_, _| cont()).await;
    assert_eq!(result.expect("check").verdict, Verdict::Continue);
    assert_eq!(
        macros(&log, b'C'),
        vec![
            pair("{client_addr}", "192.0.2.1"),
            pair("j", "mx.example.net")
        ]
    );
    assert_eq!(
        macros(&log, b'E'),
        vec![pair("i", "4QID"), pair("{auth_authen}", "sender")]
    );
    // Classes without a list keep the defaults.
    assert_eq!(
        macros(&log, b'R'),
        vec![pair("{rcpt_addr}", "a@example.net")]
    );
}

#[tokio::test]
async fn unnegotiated_modification_is_a_protocol_error() {
    let f = fixture();
    let (result, _) = run(optneg(ADDHDRS, 0, &[]), &f, |c, _| match c {
        b'E' => [send(b'b', b"new body"), cont()]
            .into_iter()
            .flatten()
            .collect(),
        _ => cont(),
    })
    .await;
    let err = result.expect_err("REPLBODY without SMFIF_CHGBODY");
    assert!(
        matches!(
            err,
            MilterError::Protocol {
                stage: Stage::EndOfMessage,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("SMFIR_REPLBODY without having negotiated"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_replacement_body_is_refused() {
    let f = fixture();
    let (address, handle) = fake(optneg(ALL_ACTIONS, 0, &[]), |c, _| match c {
        b'E' => [send(b'b', &[b'x'; 600]), send(b'b', &[b'y'; 600]), cont()]
            .into_iter()
            .flatten()
            .collect(),
        _ => cont(),
    })
    .await;
    let m = milter(&address).with_max_body(1000);
    let err = m.check(&tx(&f)).await.expect_err("body over the limit");
    assert!(
        err.to_string().contains("larger than the 1000 bytes"),
        "{err}"
    );
    handle.await.unwrap();
}

#[tokio::test]
async fn silent_milter_times_out() {
    let f = fixture();
    // Never answers the negotiation.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        // Hold the connection open, reading, until the client gives up.
        let mut s = s;
        let mut buf = [0u8; 64];
        for _ in 0..1000 {
            match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the client never gave up"),
            }
        }
    });
    let m = Milter::parse(
        &format!("inet:127.0.0.1:{port}"),
        Duration::from_secs(5),
        Duration::from_millis(300),
    )
    .unwrap();
    let started = Instant::now();
    let err = m.check(&tx(&f)).await.expect_err("timeout");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            MilterError::Timeout {
                stage: Stage::Negotiation,
                ..
            }
        ),
        "{err}"
    );
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3));
    assert!(
        err.to_string().contains("did not answer within 300ms"),
        "{err}"
    );
    handle.await.unwrap();

    // Silent at end of message.
    let (address, handle) = fake(optneg(0, 0, &[]), |c, _| {
        if c == b'E' { Vec::new() } else { cont() }
    })
    .await;
    let m = Milter::parse(&address, Duration::from_secs(5), Duration::from_millis(300)).unwrap();
    let err = m.check(&tx(&f)).await.expect_err("timeout");
    assert!(
        matches!(
            err,
            MilterError::Timeout {
                stage: Stage::EndOfMessage,
                ..
            }
        ),
        "{err}"
    );
    handle.await.unwrap();
}

#[tokio::test]
async fn progress_restarts_the_timeout_but_the_total_is_bounded() {
    let f = fixture();
    // Six progress packets 150 ms apart: 900 ms, more than the 400 ms command timeout.
    let (address, handle) = fake(optneg(0, 0, &[]), |c, _| match c {
        b'E' => {
            let mut steps = Vec::new();
            for _ in 0..6 {
                steps.push(Step::Wait(Duration::from_millis(150)));
                steps.push(Step::Send(pkt(b'p', b"")));
            }
            steps.push(Step::Send(pkt(b'c', b"")));
            steps
        }
        _ => cont(),
    })
    .await;
    let m = Milter::parse(&address, Duration::from_secs(5), Duration::from_millis(400)).unwrap();
    let started = Instant::now();
    let outcome = m
        .check(&tx(&f))
        .await
        .expect("progress keeps the filter alive");
    assert_eq!(outcome.verdict, Verdict::Continue);
    assert!(started.elapsed() >= Duration::from_millis(900));
    handle.await.unwrap();

    // Progress forever (100 × 100 ms at most): the total bound ends it after 1 s.
    let (address, handle) = fake(optneg(0, 0, &[]), |c, _| match c {
        b'E' => (0..100)
            .flat_map(|_| {
                [
                    Step::Wait(Duration::from_millis(100)),
                    Step::Send(pkt(b'p', b"")),
                ]
            })
            .collect(),
        _ => cont(),
    })
    .await;
    let m = Milter::parse(&address, Duration::from_secs(5), Duration::from_millis(400))
        .unwrap()
        .with_total_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = m.check(&tx(&f)).await.expect_err("total timeout");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            MilterError::TotalTimeout {
                stage: Stage::EndOfMessage,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    handle.await.unwrap();
}

#[tokio::test]
async fn oversized_packet_is_refused_without_allocating_it() {
    let f = fixture();
    // A length of almost 4 GiB, then a few bytes.
    let mut huge = 0xffff_fff0u32.to_be_bytes().to_vec();
    huge.extend_from_slice(b"O\0\0\0\x06");
    let started = Instant::now();
    let (result, _) = run(vec![Step::Send(huge)], &f, |_, _| cont()).await;
    let err = result.expect_err("oversized");
    assert!(
        matches!(
            err,
            MilterError::Protocol {
                stage: Stage::Negotiation,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("4294967280 bytes, more than"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn malformed_negotiations_are_errors() {
    let f = fixture();
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"O\0\0\0\x06");
    let mut short = 9u32.to_be_bytes().to_vec();
    short.extend_from_slice(b"O\0\0\0\x06\0\0\0\0");
    let with = |bytes: Vec<u8>| vec![Step::Send(bytes)];
    let then_close = |bytes: Vec<u8>| vec![Step::Send(bytes), Step::Close];
    let cases: Vec<(Vec<Step>, &str)> = vec![
        (with(vec![0, 0, 0, 0]), "length 0"),
        (with(short), "fewer than 12"),
        (
            then_close(optneg_bytes(0, 0, &[]).into_iter().take(10).collect()),
            "closed the connection",
        ),
        (then_close(truncated), "closed the connection"),
        (vec![Step::Close], "closed the connection"),
        (
            with(pkt(b'c', b"")),
            "SMFIR_CONTINUE instead of SMFIC_OPTNEG",
        ),
        (
            with(pkt(b'O', &[&7u32.to_be_bytes()[..], &[0; 8]].concat())),
            "protocol version 7",
        ),
        (
            with(pkt(b'O', &[&1u32.to_be_bytes()[..], &[0; 8]].concat())),
            "protocol version 1",
        ),
        (optneg(0x200, 0, &[]), "actions 0x200"),
        (optneg(0, 0x20_0000, &[]), "protocol options 0x200000"),
        (
            with(pkt(
                b'O',
                &[&optneg_bytes(0, 0, &[])[5..], &[0, 0, 0, 1, b'j']].concat(),
            )),
            "truncated macro list",
        ),
    ];
    for (negotiation, expected) in cases {
        let (result, log) = run(negotiation, &f, |_, _| cont()).await;
        let err = result.expect_err(expected);
        assert!(err.to_string().contains(expected), "{expected}: {err}");
        assert!(
            matches!(
                err,
                MilterError::Protocol {
                    stage: Stage::Negotiation,
                    ..
                } | MilterError::Closed {
                    stage: Stage::Negotiation,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(commands(&log), "O");
    }
}

#[tokio::test]
async fn malformed_replies_are_errors() {
    let f = fixture();
    let idx = |n: u32| n.to_be_bytes().to_vec();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            pkt(b'm', &[&idx(1)[..], b"Subject\0no nul"].concat()),
            "without its name and value",
        ),
        (pkt(b'm', &[1, 2]), "without its index"),
        (
            pkt(b'h', &cstrs(&[b"Bad Name", b"x"])),
            "invalid header name",
        ),
        (pkt(b'h', &cstrs(&[b"", b"x"])), "invalid header name"),
        (
            pkt(b'h', &cstrs(&[b"A", b"x", b"extra"])),
            "followed by extra data",
        ),
        (pkt(b'Z', b""), "unknown reply 'Z'"),
        (pkt(0x01, b""), "unknown reply 0x01"),
        (pkt(b'c', b"junk"), "SMFIR_CONTINUE followed by 4 bytes"),
        (pkt(b'y', b"250 2.0.0 fine\0"), "not a 4xx or 5xx"),
        (pkt(b'y', b"550 4.7.1 mixed\0"), "of another class"),
        (pkt(b'+', b"no nul"), "without an address"),
        (pkt(b'-', b"<a@b>\0junk"), "followed by extra data"),
        (pkt(b'p', b"x"), "SMFIR_PROGRESS with data"),
        (pkt(b'O', b""), "unexpected SMFIR_OPTNEG"),
    ];
    for (reply, expected) in cases {
        let (result, _) = run(optneg(ALL_ACTIONS, 0, &[]), &f, move |c, _| match c {
            b'E' => vec![Step::Send(reply.clone())],
            _ => cont(),
        })
        .await;
        let err = result.expect_err(expected);
        assert!(
            matches!(
                err,
                MilterError::Protocol {
                    stage: Stage::EndOfMessage,
                    ..
                }
            ),
            "{expected}: {err}"
        );
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    // A reply where only an accept/reject answer may come.
    let (result, _) = run(optneg(ALL_ACTIONS, 0, &[]), &f, |c, _| match c {
        b'H' => send(b'h', &cstrs(&[b"X", b"y"])),
        _ => cont(),
    })
    .await;
    let err = result.expect_err("header edit at HELO");
    assert!(
        matches!(
            err,
            MilterError::Protocol {
                stage: Stage::Helo,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn filter_closing_mid_conversation() {
    let f = fixture();
    // A filter that closes right after HELO.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = s;
        let mut count = 0;
        while let Some((c, _)) = read_packet(&mut s).await {
            count += 1;
            assert!(count < 100);
            match c {
                b'O' => s.write_all(&optneg_bytes(0, 0, &[])).await.unwrap(),
                b'D' => {}
                b'H' => return,
                _ => s.write_all(&pkt(b'c', b"")).await.unwrap(),
            }
        }
    });
    let err = milter(&format!("127.0.0.1:{port}"))
        .check(&tx(&f))
        .await
        .expect_err("closed");
    assert!(
        matches!(
            err,
            MilterError::Closed {
                stage: Stage::Helo,
                ..
            }
        ),
        "{err}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn unreachable_milter() {
    let f = fixture();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = milter(&format!("inet:127.0.0.1:{port}"))
        .check(&tx(&f))
        .await
        .expect_err("refused");
    assert!(matches!(err, MilterError::Connect { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot connect to milter inet:127.0.0.1:"),
        "{err}"
    );

    let err = milter("unix:/nonexistent/facteur-milter.sock")
        .check(&tx(&f))
        .await
        .expect_err("no socket");
    assert!(matches!(err, MilterError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn unix_socket_filter() {
    let f = fixture();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "facteur-milter-test-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("milter.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let handle = tokio::spawn(async move {
        let (s, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        serve(s, optneg(ADDHDRS, 0, &[]), |c, _| match c {
            b'E' => [send(b'h', &cstrs(&[b"X-Unix", b"1"])), cont()]
                .into_iter()
                .flatten()
                .collect(),
            _ => cont(),
        })
        .await
    });
    let outcome = milter(&format!("unix:{}", path.display()))
        .check(&tx(&f))
        .await
        .expect("check");
    let log = handle.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.verdict, Verdict::Continue);
    assert_eq!(
        outcome.modifications,
        vec![Modification::AddHeader {
            name: "X-Unix".into(),
            value: " 1".into()
        }]
    );
    assert_eq!(commands(&log), "OCHMRRTLLLLLNBEQ");
}
