//! DKIM keys, records and signatures, checked by verifiers: mail-auth's (through a loopback
//! DNS server serving the records as facteur prints them) and dkimpy's (an independent
//! implementation, Debian's python3-dkim with python3-nacl for Ed25519).
//!
//! When dkimpy is missing, the tests that use it print `SKIPPED:` with what to install, so the
//! suite runs on a machine with only the Rust toolchain; with FACTEUR_REQUIRE_INTEROP=1 (set
//! by `.ci/run`, which installs the packages) they fail instead. FACTEUR_PYTHON names the
//! interpreter to use; otherwise `python3`, then `/usr/bin/python3`.

use facteur_testkit::dns::DnsServer;
use facteur_trust::dkim::{
    Algorithm, DkimError, GeneratedKey, Signer, SigningKey, generate, public_key_b64, txt_record,
    txt_strings, zone_line,
};
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.org";

const MESSAGE: &[u8] = b"Received: from client (client [192.0.2.1]) by mx\r\n\
From: Alice <alice@example.org>\r\n\
To: Bob <bob@example.net>\r\n\
Subject: DKIM  test\r\n\
\tfolded subject\r\n\
Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n\
Message-ID: <1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
X-Mailer: not signed\r\n\
\r\n\
Hello Bob,   \r\n\
\r\n\
this is the body.\r\n\
\r\n\
\r\n";

/// One RSA and one Ed25519 key for the whole file: RSA generation takes a while.
fn keys() -> &'static (GeneratedKey, GeneratedKey) {
    static KEYS: OnceLock<(GeneratedKey, GeneratedKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            generate(Algorithm::Rsa).expect("RSA key"),
            generate(Algorithm::Ed25519).expect("Ed25519 key"),
        )
    })
}

fn signing_keys() -> Vec<SigningKey> {
    let (rsa, ed) = keys();
    vec![
        SigningKey {
            domain: DOMAIN.to_string(),
            selector: "rsa2025".to_string(),
            algorithm: Algorithm::Rsa,
            private_pem: rsa.private_pem.clone(),
        },
        SigningKey {
            domain: DOMAIN.to_string(),
            selector: "ed2025".to_string(),
            algorithm: Algorithm::Ed25519,
            private_pem: ed.private_pem.clone(),
        },
    ]
}

/// The record of each key: (`selector._domainkey.domain`, text).
fn records() -> Vec<(String, String)> {
    signing_keys()
        .iter()
        .map(|k| {
            let public = public_key_b64(k.algorithm, &k.private_pem).expect("public key");
            (
                format!("{}._domainkey.{}", k.selector, k.domain),
                txt_record(k.algorithm, &public),
            )
        })
        .collect()
}

/// A DNS server publishing the records, each as the character-strings of `txt_strings`.
fn dns() -> DnsServer {
    let server = DnsServer::start("127.0.0.1:0".parse().unwrap());
    for (name, text) in records() {
        let pieces = txt_strings(&text);
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        server.add_txt_strings(&name, &pieces);
    }
    server
}

/// mail-auth's verdict on every signature of `message`: (selector, result).
async fn verify(server: &DnsServer, message: &[u8]) -> Vec<(String, DkimResult)> {
    let addr = server.addr();
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        addr.ip(),
        true,
        vec![udp, tcp],
    )]);
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    let authenticator = MessageAuthenticator::new(config, opts).expect("resolver");
    let parsed = AuthenticatedMessage::parse(message).expect("parsable message");
    authenticator
        .verify_dkim(&parsed)
        .await
        .into_iter()
        .map(|o| {
            (
                o.signature().map(|s| s.s.clone()).unwrap_or_default(),
                o.result().clone(),
            )
        })
        .collect()
}

fn signed(signer: &Signer, message: &[u8]) -> Vec<u8> {
    let mut out = signer.sign(DOMAIN, message).expect("signing");
    out.extend_from_slice(message);
    out
}

fn all_pass(results: &[(String, DkimResult)]) -> bool {
    !results.is_empty() && results.iter().all(|(_, r)| *r == DkimResult::Pass)
}

#[test]
fn generate_both_algorithms() {
    let (rsa, ed) = keys();
    for key in [rsa, ed] {
        assert!(
            key.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{}",
            key.algorithm
        );
        assert!(key.private_pem.ends_with("-----END PRIVATE KEY-----\n"));
    }
    assert_eq!(rsa.algorithm, Algorithm::Rsa);
    assert_eq!(ed.algorithm, Algorithm::Ed25519);
    // Each call makes a new key.
    let other = generate(Algorithm::Ed25519).unwrap();
    assert_ne!(other.private_pem, ed.private_pem);

    assert_eq!("rsa".parse::<Algorithm>().unwrap(), Algorithm::Rsa);
    assert_eq!(
        " Ed25519 ".parse::<Algorithm>().unwrap(),
        Algorithm::Ed25519
    );
    assert_eq!(Algorithm::Ed25519.to_string(), "ed25519");
    assert!(matches!(
        "dsa".parse::<Algorithm>(),
        Err(DkimError::UnknownAlgorithm(_))
    ));
}

#[test]
fn public_keys_records_and_zone_line() {
    let (rsa, ed) = keys();
    let rsa_public = public_key_b64(Algorithm::Rsa, &rsa.private_pem).unwrap();
    // SubjectPublicKeyInfo of a 2048-bit RSA key with exponent 65537: 294 octets.
    assert!(
        rsa_public.starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
        "{rsa_public}"
    );
    assert!(rsa_public.ends_with("IDAQAB"), "{rsa_public}");
    assert_eq!(rsa_public.len(), 392);
    let ed_public = public_key_b64(Algorithm::Ed25519, &ed.private_pem).unwrap();
    assert_eq!(ed_public.len(), 44, "32 octets in base64: {ed_public}");

    openssl_agrees(&rsa.private_pem, &rsa_public, &ed.private_pem, &ed_public);

    let record = txt_record(Algorithm::Rsa, &rsa_public);
    assert_eq!(record, format!("v=DKIM1; k=rsa; p={rsa_public}"));
    assert_eq!(
        txt_record(Algorithm::Ed25519, &ed_public),
        format!("v=DKIM1; k=ed25519; p={ed_public}")
    );

    let pieces = txt_strings(&record);
    assert!(pieces.len() >= 3, "{pieces:?}");
    assert_eq!(pieces[0], "v=DKIM1; k=rsa; ");
    assert!(pieces[1].starts_with("p=MIIB"));
    assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= 255));
    assert_eq!(pieces.concat(), record);
    let short = txt_record(Algorithm::Ed25519, &ed_public);
    assert_eq!(txt_strings(&short).concat(), short);
    assert_eq!(txt_strings(&short).len(), 2);
    // Pieces never split a character, whatever the text.
    let odd = "é".repeat(300);
    let odd_pieces = txt_strings(&odd);
    assert!(odd_pieces.iter().all(|p| p.len() <= 255));
    assert_eq!(odd_pieces.concat(), odd);

    let line = zone_line("rsa2025", "example.org.", &record);
    let quoted: Vec<String> = pieces.iter().map(|p| format!("\"{p}\"")).collect();
    assert_eq!(
        line,
        format!(
            "rsa2025._domainkey.example.org. 3600 IN TXT ( {} )",
            quoted.join(" ")
        )
    );
    assert!(line.starts_with(
        "rsa2025._domainkey.example.org. 3600 IN TXT ( \"v=DKIM1; k=rsa; \" \"p=MIIB"
    ));
    assert_eq!(
        zone_line("s", "example.org", "a\"b\\c"),
        "s._domainkey.example.org. 3600 IN TXT ( \"a\\\"b\\\\c\" )"
    );

    assert!(matches!(
        public_key_b64(Algorithm::Rsa, &ed.private_pem),
        Err(DkimError::InvalidKey(_))
    ));
    assert!(public_key_b64(Algorithm::Ed25519, "not a key").is_err());
}

/// The public keys as openssl derives them (SubjectPublicKeyInfo; for Ed25519 its last 32
/// octets are the raw key, RFC 8410 §4), when openssl is installed.
fn openssl_agrees(rsa_pem: &str, rsa_public: &str, ed_pem: &str, ed_public: &str) {
    let spki = |pem: &str| -> Option<String> {
        let mut child = Command::new("openssl")
            .args(["pkey", "-pubout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(pem.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect()
        })
    };
    let Some(rsa_spki) = spki(rsa_pem) else {
        eprintln!("NOTICE: openssl not available, public keys not cross-checked");
        return;
    };
    assert_eq!(rsa_spki, rsa_public);
    let ed_spki = spki(ed_pem).expect("openssl reads the Ed25519 key");
    // 12 octets of SPKI header = 16 base64 characters, then the key.
    assert_eq!(ed_spki.len(), 60, "{ed_spki}");
    assert_eq!(ed_spki, format!("MCowBQYDK2VwAyEA{}", ed_public));
}

#[tokio::test]
async fn both_signatures_verify_with_mail_auth() {
    let signer = Signer::new(&signing_keys()).unwrap();
    assert!(signer.signs_for("example.org"));
    assert!(signer.signs_for("EXAMPLE.Org."));
    let fields = signer.sign(DOMAIN, MESSAGE).unwrap();
    let text = String::from_utf8(fields.clone()).unwrap();
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    assert!(text.ends_with("\r\n"));
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "bare CR or LF: {text}"
    );
    let unfolded = text.replace("\r\n\t", " ").replace("\r\n ", " ");
    for field in unfolded.lines() {
        assert!(field.contains("a=rsa-sha256") || field.contains("a=ed25519-sha256"));
        assert!(field.contains("c=relaxed/relaxed"), "{field}");
        assert!(field.contains("d=example.org"), "{field}");
        assert!(field.contains(" t="), "{field}");
        assert!(!field.contains(" l="), "{field}");
        let h = field
            .split(';')
            .map(str::trim)
            .find_map(|t| t.strip_prefix("h="))
            .unwrap()
            .replace(' ', "")
            .to_ascii_lowercase();
        let mut names: Vec<&str> = h.split(':').collect();
        // From once more than present; the recommended fields present; nothing else.
        assert_eq!(names.iter().filter(|n| **n == "from").count(), 2, "{h}");
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "content-type",
                "date",
                "from",
                "from",
                "message-id",
                "mime-version",
                "subject",
                "to"
            ],
            "{h}"
        );
    }

    let server = dns();
    let message = signed(&signer, MESSAGE);
    let results = verify(&server, &message).await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(all_pass(&results), "{results:?}");
    let mut selectors: Vec<&str> = results.iter().map(|(s, _)| s.as_str()).collect();
    selectors.sort_unstable();
    assert_eq!(selectors, ["ed2025", "rsa2025"]);

    // Relaxed canonicalization: whitespace changes in transit do not matter (§3.4.2, §3.4.4).
    let rewrapped = String::from_utf8(message.clone())
        .unwrap()
        .replace("Subject: DKIM  test", "subject:   DKIM test ")
        .replace("Hello Bob,   \r\n", "Hello   Bob,\r\n")
        + "\r\n\r\n";
    assert!(all_pass(&verify(&server, rewrapped.as_bytes()).await));
}

#[tokio::test]
async fn a_body_change_fails() {
    let signer = Signer::new(&signing_keys()).unwrap();
    let server = dns();
    let message = String::from_utf8(signed(&signer, MESSAGE)).unwrap();
    let changed = message.replace("this is the body.", "this is the b0dy.");
    assert_ne!(changed, message);
    let results = verify(&server, changed.as_bytes()).await;
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|(_, r)| *r != DkimResult::Pass),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_from_added_after_signing_fails() {
    let signer = Signer::new(&signing_keys()).unwrap();
    let server = dns();
    let message = signed(&signer, MESSAGE);
    assert!(all_pass(&verify(&server, &message).await));

    // A second From, above or below the first: the over-signed From covers both places.
    let text = String::from_utf8(message).unwrap();
    let below = text.replacen(
        "\r\nSubject: DKIM",
        "\r\nFrom: Mallory <ceo@example.org>\r\nSubject: DKIM",
        1,
    );
    let above = format!("From: Mallory <ceo@example.org>\r\n{text}");
    assert_ne!(below, text);
    for forged in [below, above] {
        let results = verify(&server, forged.as_bytes()).await;
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(
            results.iter().all(|(_, r)| *r != DkimResult::Pass),
            "{results:?}"
        );
    }
    // A changed signed field fails too; an unsigned one may change.
    let resubject = text.replace("Subject: DKIM  test", "Subject: DKIM  tset");
    assert!(!all_pass(&verify(&server, resubject.as_bytes()).await));
    let unsigned = text.replace("X-Mailer: not signed", "X-Mailer: changed");
    assert!(all_pass(&verify(&server, unsigned.as_bytes()).await));
}

#[test]
fn a_domain_without_key_gives_no_signature() {
    let signer = Signer::new(&signing_keys()).unwrap();
    assert!(!signer.signs_for("example.net"));
    assert!(!signer.signs_for("sub.example.org"));
    assert!(signer.sign("example.net", MESSAGE).unwrap().is_empty());
    assert!(signer.sign("", MESSAGE).unwrap().is_empty());
    let empty = Signer::new(&[]).unwrap();
    assert!(!empty.signs_for(DOMAIN));
    assert!(empty.sign(DOMAIN, MESSAGE).unwrap().is_empty());
    // Case and a trailing dot do not matter.
    assert!(!signer.sign("Example.ORG.", MESSAGE).unwrap().is_empty());
}

#[test]
fn unusable_keys_are_named() {
    let (rsa, ed) = keys();
    let key = |selector: &str, algorithm, pem: &str| SigningKey {
        domain: "Example.Org".to_string(),
        selector: selector.to_string(),
        algorithm,
        private_pem: pem.to_string(),
    };
    let cases = [
        (key("garbage", Algorithm::Rsa, "this is not a key"), "PEM"),
        (
            key(
                "damaged",
                Algorithm::Rsa,
                "-----BEGIN PRIVATE KEY-----\nMIIB!!!!\n-----END PRIVATE KEY-----\n",
            ),
            "base64",
        ),
        (
            key(
                "truncated",
                Algorithm::Rsa,
                &rsa.private_pem.replacen("MII", "MIA", 1),
            ),
            "RSA",
        ),
        (key("swapped", Algorithm::Rsa, &ed.private_pem), "Ed25519"),
        (key("swapped2", Algorithm::Ed25519, &rsa.private_pem), "RSA"),
        (
            key(
                "cert",
                Algorithm::Rsa,
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            "CERTIFICATE",
        ),
        (
            key(
                "locked",
                Algorithm::Rsa,
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            ),
            "passphrase",
        ),
        (
            key("bad selector", Algorithm::Rsa, &rsa.private_pem),
            "selector",
        ),
        (key("", Algorithm::Rsa, &rsa.private_pem), "selector"),
    ];
    for (bad, expect) in cases {
        let selector = bad.selector.clone();
        let mut keys = signing_keys();
        keys.push(bad);
        let err = Signer::new(&keys).expect_err(&selector);
        let text = err.to_string();
        assert!(
            matches!(err, DkimError::BadKey { .. }),
            "{selector}: {err:?}"
        );
        assert!(
            text.contains(&format!("{selector}._domainkey.example.org")),
            "{text}"
        );
        assert!(text.contains(expect), "{selector}: {text}");
    }
    // The same selector twice for a domain.
    let mut keys = signing_keys();
    keys.push(keys[0].clone());
    let err = Signer::new(&keys).unwrap_err().to_string();
    assert!(err.contains("rsa2025._domainkey.example.org"), "{err}");
    assert!(err.contains("twice"), "{err}");
    // A bad domain.
    let mut keys = signing_keys();
    keys[1].domain = "exa mple.org".to_string();
    let err = Signer::new(&keys).unwrap_err().to_string();
    assert!(err.contains("ed2025._domainkey.exa mple.org"), "{err}");
}

#[tokio::test]
async fn odd_messages_never_panic() {
    let signer = Signer::new(&signing_keys()).unwrap();
    let mut big = MESSAGE.to_vec();
    big.extend(b"0123456789abcdef ".repeat(600_000)); // about 10 MB of body
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"no header section at all".to_vec(),
        b"From: a@example.org".to_vec(),
        b"From: a@example.org\r\n".to_vec(),
        b"From: a@example.org\nTo: b@example.net\nSubject: bare LF\n\nbody\nline\n".to_vec(),
        b"From: a@example.org\rTo: b\r\rbare CR\r".to_vec(),
        b": no name\r\n\r\n".to_vec(),
        b"\tFrom: leading continuation\r\n\r\nx".to_vec(),
        b"From:\xff\xfe\xfd\r\n\xff\xff: x\r\n\r\n\xff\x00\x01".to_vec(),
        b"From: a@example.org\r\nSubject: x\r\n".repeat(10_000),
        [b"X-Long: ".as_slice(), &b"a".repeat(100_000), b"\r\n\r\nb"].concat(),
        big,
    ];
    // Pseudo-random bytes biased towards the characters that matter to a parser.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..200 {
        let len = (state % 300) as usize;
        let mut m = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let alphabet = b"\r\n:\t From:abc\xff\x00";
            m.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        inputs.push(m);
    }
    for input in &inputs {
        let fields = signer
            .sign(DOMAIN, input)
            .expect("signing never fails on content");
        assert_eq!(
            String::from_utf8_lossy(&fields)
                .matches("DKIM-Signature:")
                .count(),
            2
        );
    }
    // A bare-LF message is signed as its CRLF form would be: once converted for sending it
    // verifies.
    let lf = b"From: a@example.org\nTo: b@example.net\nSubject: bare LF\n\nbody\nline\n";
    let fields = signer.sign(DOMAIN, lf).unwrap();
    let crlf = String::from_utf8_lossy(lf).replace('\n', "\r\n");
    let message = [fields.as_slice(), crlf.as_bytes()].concat();
    assert!(all_pass(&verify(&dns(), &message).await));
}

#[test]
fn signing_is_fast() {
    let signer = Signer::new(&signing_keys()).unwrap();
    let _ = signer.sign(DOMAIN, MESSAGE).unwrap();
    let rounds = 50;
    let start = Instant::now();
    for _ in 0..rounds {
        signer.sign(DOMAIN, MESSAGE).unwrap();
    }
    let each = start.elapsed() / rounds;
    eprintln!("one RSA-2048 plus one Ed25519 signature: {each:?}");
    // ring signs with RSA-2048 in about a millisecond; leave room for a loaded machine.
    assert!(each < Duration::from_millis(100), "{each:?}");
}

/// The interpreter with dkimpy and PyNaCl, or `None` after printing why the dkimpy tests are
/// skipped; panics instead under FACTEUR_REQUIRE_INTEROP=1.
fn python_with_dkimpy() -> Option<String> {
    let candidates: Vec<String> = match std::env::var("FACTEUR_PYTHON") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => vec!["python3".to_string(), "/usr/bin/python3".to_string()],
    };
    let mut missing = "python3-dkim (dkimpy) and python3-nacl";
    for python in candidates {
        let works = |module: &str| {
            Command::new(&python)
                .args(["-c", &format!("import {module}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        match (works("dkim"), works("nacl")) {
            (true, true) => return Some(python),
            (true, false) => missing = "python3-nacl (PyNaCl, for Ed25519)",
            _ => {}
        }
    }
    let why = format!(
        "dkimpy cross-verification needs {missing}: `apt-get install -y python3-dkim \
         python3-nacl` (or FACTEUR_PYTHON=/path/to/python with both modules)"
    );
    if std::env::var("FACTEUR_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// Runs `script` with `args`, `stdin` on its standard input; its standard output.
fn run_python(python: &str, script: &str, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Verifies every DKIM-Signature of the message on stdin; argv[1]: JSON {name: record}.
const DKIMPY_VERIFY: &str = r#"
import json, sys, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    key = (name.decode() if isinstance(name, bytes) else name).rstrip('.').lower()
    text = records.get(key)
    return text.encode() if text is not None else None
message = sys.stdin.buffer.read()
d = dkim.DKIM(message)
count = sum(1 for (k, v) in d.headers if k.lower() == b'dkim-signature')
ok = count > 0
for i in range(count):
    try:
        result = d.verify(idx=i, dnsfunc=dnsfunc)
        why = ''
    except dkim.DKIMException as e:
        result, why = False, str(e)
    print('signature', i, 'PASS' if result else 'FAIL', why)
    ok = ok and result
sys.exit(0 if ok else 1)
"#;

/// Signs the message on stdin; argv: algorithm selector domain PEM. Prints the field.
const DKIMPY_SIGN: &str = r#"
import base64, sys, dkim
algorithm, selector, domain, pem = sys.argv[1:5]
message = sys.stdin.buffer.read()
if algorithm == 'ed25519':
    body = ''.join(l for l in pem.splitlines() if not l.startswith('-----'))
    der = base64.b64decode(body)
    # PKCS#8 (RFC 8410 §7): the private key is OCTET STRING { OCTET STRING (32) }.
    at = der.index(b'\x04\x22\x04\x20') + 4
    key = base64.b64encode(der[at:at + 32])
    sig_alg = b'ed25519-sha256'
else:
    key = pem.encode()
    sig_alg = b'rsa-sha256'
field = dkim.sign(message, selector.encode(), domain.encode(), key,
                  canonicalize=(b'relaxed', b'relaxed'), signature_algorithm=sig_alg,
                  include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])
sys.stdout.buffer.write(field)
"#;

fn records_json() -> String {
    let entries: Vec<String> = records()
        .iter()
        .map(|(name, text)| format!("\"{name}\": \"{text}\""))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

#[test]
fn dkimpy_verifies_facteur_signatures() {
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let signer = Signer::new(&signing_keys()).unwrap();
    let message = signed(&signer, MESSAGE);
    let out = run_python(&python, DKIMPY_VERIFY, &[&records_json()], &message)
        .unwrap_or_else(|e| panic!("dkimpy rejects our signatures:\n{e}"));
    let out = String::from_utf8_lossy(&out);
    assert_eq!(out.matches("PASS").count(), 2, "{out}");

    // A body ending with blank lines that hold spaces and tabs: relaxed canonicalization drops
    // them (RFC 6376 §3.4.4), which mail-auth alone gets wrong (crate::canonical).
    let blank_tail = [MESSAGE, b"   \r\n\t\r\n\r\n".as_slice()].concat();
    let message = signed(&signer, &blank_tail);
    let out = run_python(&python, DKIMPY_VERIFY, &[&records_json()], &message)
        .unwrap_or_else(|e| panic!("dkimpy rejects our signatures of a blank-tailed body:\n{e}"));
    assert_eq!(String::from_utf8_lossy(&out).matches("PASS").count(), 2);

    // And dkimpy sees the broken ones as broken.
    let text = String::from_utf8(message).unwrap();
    let forged = text.replacen(
        "\r\nSubject: DKIM",
        "\r\nFrom: Mallory <ceo@example.org>\r\nSubject: DKIM",
        1,
    );
    let changed = text.replace("this is the body.", "this is the b0dy.");
    for broken in [forged, changed] {
        assert_ne!(broken, text);
        let verdict = run_python(
            &python,
            DKIMPY_VERIFY,
            &[&records_json()],
            broken.as_bytes(),
        )
        .expect_err("dkimpy accepts a broken message");
        assert_eq!(verdict.matches("FAIL").count(), 2, "{verdict}");
    }
}

#[tokio::test]
async fn mail_auth_verifies_dkimpy_signatures_with_our_keys_and_records() {
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let server = dns();
    for key in signing_keys() {
        let field = run_python(
            &python,
            DKIMPY_SIGN,
            &[
                key.algorithm.as_str(),
                &key.selector,
                &key.domain,
                &key.private_pem,
            ],
            MESSAGE,
        )
        .unwrap_or_else(|e| panic!("dkimpy cannot sign with our {} key:\n{e}", key.algorithm));
        let message = [field.as_slice(), MESSAGE].concat();
        let results = verify(&server, &message).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].0, key.selector);
        assert_eq!(results[0].1, DkimResult::Pass, "{}", key.algorithm);
    }
}
