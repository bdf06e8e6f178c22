//! No panic and bounded work on hostile input: random bytes, broken MIME, huge lines.

use std::time::{Duration, Instant};

use facteur_spam::{DEFAULT_THRESHOLD, bayes, check_at, headers};

const NOW: i64 = 1_748_865_600;

/// xorshift64*: a fixed sequence of pseudo-random bytes, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn score_everything(message: &[u8]) {
    let report = check_at(message, Vec::new(), NOW);
    assert!(report.score.is_finite());
    let h = headers(&report, DEFAULT_THRESHOLD, "mx.example.com");
    assert!(h.ends_with("\r\n"));
    let t = bayes::tokens(message);
    assert!(t.len() <= bayes::MAX_TOKENS);
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let len = (rng.next() % 4096) as usize;
        let mut m = rng.bytes(len);
        // Half the rounds look like a message, to reach the MIME code with garbage.
        if round % 2 == 0 {
            let mut framed = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n".to_vec();
            framed.append(&mut m);
            m = framed;
        }
        score_everything(&m);
    }
    score_everything(b"");
    score_everything(b"\r\n\r\n");
    score_everything(&[0xff; 100]);
}

#[test]
fn broken_mime() {
    let cases: &[&[u8]] = &[
        // Unterminated multipart, nested.
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>unterminated <a href=\"http://x",
        // A boundary that is never used, a missing one, an empty one.
        b"Content-Type: multipart/mixed; boundary=never\r\n\r\nbody\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nbody\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n----\r\n",
        // Bad base64 and quoted-printable, unknown charset.
        b"Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====@@@@\r\n",
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=3C=\r\n",
        // A message/rfc822 inside itself, and attachments of every odd kind.
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nx",
        b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: application/zip; name=a.zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAD//////////////////w==\r\n--z--\r\n",
        // Header only, a header without colon, a folded header that never ends.
        b"Subject: x",
        b"not a header\r\n\r\nbody",
        b"Subject: a\r\n b\r\n c\r\n d",
    ];
    for m in cases {
        score_everything(m);
    }
    // Deep nesting of multiparts.
    let mut deep = String::new();
    for i in 0..500 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\r\n\r\ndeep\r\n");
    score_everything(deep.as_bytes());
}

/// A 10 MB line, in the header, in a text body and in an HTML body: each is scored in
/// bounded time (generous for an unoptimised test build on a small machine).
#[test]
fn ten_megabyte_lines() {
    let limit = Duration::from_secs(30);
    let line = "a".repeat(10 * 1024 * 1024);
    let cases = [
        format!("Subject: {line}\r\n\r\nhello\r\n"),
        format!("Subject: long\r\nContent-Type: text/plain\r\n\r\n{line}\r\n"),
        format!("Subject: long\r\nContent-Type: text/html\r\n\r\n<p>{line}</p>\r\n"),
        format!(
            "Subject: long\r\nContent-Type: text/html\r\n\r\n{}\r\n",
            "<a href=http://203.0.113.1/>x</a>".repeat(300_000)
        ),
        format!(
            "Subject: long\r\n\r\n{}\r\n",
            "http://www.".repeat(1_000_000)
        ),
    ];
    for m in &cases {
        let start = Instant::now();
        score_everything(m.as_bytes());
        let took = start.elapsed();
        assert!(took < limit, "took {took:?}");
    }
}
