//! DMARC aggregate reports (RFC 7489 §7.1, §7.2, appendix C): the reports we build read back
//! with mail-auth's parser, their mail, their destinations, and the reports we receive.

use facteur_trust::report::{
    Destination, Evaluation, MAX_DECOMPRESSED, ReceivedReport, ReportError, Reporter, aggregate,
    authorizes, destinations, message, parse_report_message, summary,
};
use flate2::{
    Compression, Crc,
    read::GzDecoder,
    write::{DeflateEncoder, GzEncoder},
};
use mail_auth::report::{
    ActionDisposition, Alignment, Disposition, DkimResult, DmarcResult, PolicyOverride,
    Report as MailAuthReport, SPFDomainScope, SpfResult,
};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2024-01-15 00:00:00 UTC.
const BEGIN: i64 = 1_705_276_800;
/// 2024-01-15 23:59:59 UTC.
const END: i64 = BEGIN + 86_399;

fn reporter() -> Reporter {
    Reporter {
        org_name: "Example Net".to_string(),
        email: "noreply-dmarc@mx.example.net".to_string(),
        hostname: "mx.example.net".to_string(),
    }
}

fn evaluation(at: i64, ip: &str) -> Evaluation {
    Evaluation {
        at,
        source_ip: ip.parse().unwrap(),
        header_from: "example.org".to_string(),
        envelope_from: "example.org".to_string(),
        policy_domain: "example.org".to_string(),
        adkim: 'r',
        aspf: 'r',
        p: "quarantine".to_string(),
        sp: "quarantine".to_string(),
        pct: 100,
        rua: vec!["mailto:dmarc@example.org".to_string()],
        disposition: "none".to_string(),
        dkim_aligned: true,
        spf_aligned: true,
        dkim: vec![(
            "example.org".to_string(),
            "s2024".to_string(),
            "pass".to_string(),
        )],
        spf: (
            "example.org".to_string(),
            "mfrom".to_string(),
            "pass".to_string(),
        ),
    }
}

/// A failing message from a host sending as example.org.
fn spoofed(at: i64, disposition: &str, pct: u8) -> Evaluation {
    Evaluation {
        envelope_from: "bulk.example".to_string(),
        disposition: disposition.to_string(),
        pct,
        dkim_aligned: false,
        spf_aligned: false,
        dkim: Vec::new(),
        spf: (
            "bulk.example".to_string(),
            "mfrom".to_string(),
            "softfail".to_string(),
        ),
        ..evaluation(at, "203.0.113.66")
    }
}

fn evaluations() -> Vec<Evaluation> {
    let mut weird = evaluation(BEGIN + 500, "192.0.2.10");
    weird.header_from = "ex<am>&\"ple\".org".to_string();
    weird.dkim_aligned = false;
    let mut latest = evaluation(BEGIN + 900, "2001:db8::25");
    latest.p = "reject".to_string();
    latest.adkim = 's';
    latest.dkim.push((
        "esp.example".to_string(),
        "k1".to_string(),
        "fail".to_string(),
    ));
    let mut other_domain = evaluation(BEGIN + 100, "192.0.2.10");
    other_domain.policy_domain = "other.example".to_string();
    vec![
        evaluation(BEGIN + 10, "192.0.2.10"),
        spoofed(BEGIN + 20, "quarantine", 100),
        evaluation(BEGIN + 30, "192.0.2.10"),
        spoofed(BEGIN + 40, "quarantine", 100),
        spoofed(BEGIN + 50, "none", 50),
        weird,
        latest,
        other_domain,
        // Outside the period.
        evaluation(BEGIN - 1, "192.0.2.10"),
        evaluation(END + 1, "192.0.2.10"),
    ]
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A zip archive of one file, stored (method 0) or deflated (method 8), with a data
/// descriptor-free local header (APPNOTE 6.3 §4.3).
fn zip(name: &str, data: &[u8], deflate: bool) -> Vec<u8> {
    let mut crc = Crc::new();
    crc.update(data);
    let (method, body) = if deflate {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        (8u16, encoder.finish().unwrap())
    } else {
        (0u16, data.to_vec())
    };
    let mut out = Vec::new();
    let header = |out: &mut Vec<u8>| {
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra
    };
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    header(&mut out);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&body);
    let central = out.len() as u32;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // version made by
    header(&mut out);
    out.extend_from_slice(&[0; 8]); // comment length, disk, internal attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name.as_bytes());
    let central_size = out.len() as u32 - central;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disks
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * j) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push_str("\r\n");
    out
}

fn unbase64(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        bits = bits << 6 | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// A report mail with one attachment, as most reporters send them.
fn report_mail(content_type: &str, file_name: &str, contents: &[u8]) -> Vec<u8> {
    format!(
        concat!(
            "From: noreply-dmarc-support@google.com\r\n",
            "To: dmarc@example.org\r\n",
            "Subject: Report domain: example.org Submitter: google.com Report-ID: 1059733723\r\n",
            "Date: Tue, 16 Jan 2024 04:00:00 -0800\r\n",
            "Message-ID: <1059733723@google.com>\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
            "--b1\r\n",
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
            "This is an aggregate report from google.com.\r\n",
            "--b1\r\n",
            "Content-Type: {}; name=\"{}\"\r\n",
            "Content-Disposition: attachment; filename=\"{}\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\n",
            "{}",
            "--b1--\r\n"
        ),
        content_type,
        file_name,
        file_name,
        base64(contents)
    )
    .into_bytes()
}

/// A report as Google writes them (RFC 7489 appendix C, no namespace): 12 messages passing
/// from 192.0.2.10, 3 failing from 203.0.113.66, 2 forwarded from 2001:db8::25 passing DKIM
/// only, 1 failing from 198.51.100.7.
const GOOGLE_XML: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>
    <report_id>10597337238443178293</report_id>
    <date_range>
      <begin>1705276800</begin>
      <end>1705363199</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>example.org</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>quarantine</p>
    <sp>quarantine</sp>
    <pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip>
      <count>12</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>pass</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.org</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>example.org</domain>
        <selector>s2024</selector>
        <result>pass</result>
      </dkim>
      <spf>
        <domain>example.org</domain>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>203.0.113.66</source_ip>
      <count>3</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.org</header_from>
    </identifiers>
    <auth_results>
      <spf>
        <domain>bulk.example</domain>
        <result>softfail</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>2001:db8::25</source_ip>
      <count>2</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>fail</spf>
        <reason>
          <type>forwarded</type>
        </reason>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.org</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>example.org</domain>
        <selector>s2024</selector>
        <result>pass</result>
      </dkim>
      <spf>
        <domain>lists.example</domain>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>198.51.100.7</source_ip>
      <count>1</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>news.example.org</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>example.org</domain>
        <selector>old</selector>
        <result>fail</result>
      </dkim>
      <spf>
        <domain>news.example.org</domain>
        <result>fail</result>
      </spf>
    </auth_results>
  </record>
</feedback>
"#;

fn check_google(report: &ReceivedReport) {
    assert_eq!(report.org_name, "google.com");
    assert_eq!(report.email, "noreply-dmarc-support@google.com");
    assert_eq!(report.report_id, "10597337238443178293");
    assert_eq!(report.domain, "example.org");
    assert_eq!((report.begin, report.end), (BEGIN, END));
    assert_eq!(report.policy, "quarantine");
    assert_eq!(report.rows.len(), 4);
    let row = &report.rows[1];
    assert_eq!(row.source_ip, "203.0.113.66");
    assert_eq!(row.count, 3);
    assert_eq!(row.disposition, "quarantine");
    assert_eq!((row.dkim.as_str(), row.spf.as_str()), ("fail", "fail"));
    assert_eq!(row.header_from, "example.org");
    assert_eq!(report.rows[3].header_from, "news.example.org");
    assert_eq!(report.messages(), 18);
    assert_eq!(report.passed(), 14);
}

/// Runs `f` on another thread and fails if it takes more than ten seconds (a parser loop).
fn within_time<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive
        .recv_timeout(Duration::from_secs(10))
        .expect("no answer within 10 s")
}

#[test]
fn aggregate_round_trips_through_mail_auth_parser() {
    let report = aggregate(&reporter(), "Example.ORG.", BEGIN, END, &evaluations()).unwrap();
    assert_eq!(
        report.gzip_name,
        format!("mx.example.net!example.org!{BEGIN}!{END}.xml.gz")
    );
    assert_eq!(gunzip(&report.gzipped), report.xml);
    assert!(report.report_id.starts_with(&format!("{BEGIN}.")));

    let xml = String::from_utf8(report.xml.clone()).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    assert!(xml.contains("<feedback xmlns=\"http://dmarc.org/dmarc-xml/0.1\">"));
    // Appendix C requires pct in policy_published; mail-auth's parser does not read it.
    assert!(xml.contains("<pct>100</pct>"));
    // Escaped where XML needs it. (mail-auth's parser trims the text on each side of an
    // entity, so a space next to one would not read back: the test values have none.)
    assert!(xml.contains("<header_from>ex&lt;am&gt;&amp;\"ple\".org</header_from>"));

    let parsed = MailAuthReport::parse_xml(&report.xml).unwrap();
    assert_eq!(parsed.version(), 1.0);
    assert_eq!(parsed.org_name(), "Example Net");
    assert_eq!(parsed.email(), "noreply-dmarc@mx.example.net");
    assert_eq!(parsed.report_id(), report.report_id);
    assert_eq!(parsed.date_range_begin(), BEGIN as u64);
    assert_eq!(parsed.date_range_end(), END as u64);
    // policy_published comes from the latest evaluation (p=reject, adkim=s).
    assert_eq!(parsed.domain(), "example.org");
    assert_eq!(parsed.p(), Disposition::Reject);
    assert_eq!(parsed.sp(), Disposition::Quarantine);
    assert_eq!(parsed.adkim(), Alignment::Strict);
    assert_eq!(parsed.aspf(), Alignment::Relaxed);

    // 7 evaluations of example.org in the period, in 5 records.
    let records = parsed.records();
    assert_eq!(records.len(), 5, "{xml}");
    let total: u32 = records.iter().map(|record| record.count()).sum();
    assert_eq!(total, 7);
    let find = |ip: &str, header_from: &str, disposition: ActionDisposition| {
        records
            .iter()
            .find(|record| {
                record.source_ip() == Some(ip.parse().unwrap())
                    && record.header_from() == header_from
                    && record.action_disposition() == disposition
            })
            .unwrap_or_else(|| panic!("no record {ip} {header_from} {disposition:?}: {xml}"))
    };

    let good = find("192.0.2.10", "example.org", ActionDisposition::None);
    assert_eq!(good.count(), 2);
    assert_eq!(good.dmarc_dkim_result(), DmarcResult::Pass);
    assert_eq!(good.dmarc_spf_result(), DmarcResult::Pass);
    assert_eq!(good.envelope_from(), "example.org");
    assert_eq!(good.dkim_auth_result().len(), 1);
    assert_eq!(good.dkim_auth_result()[0].domain, "example.org");
    assert_eq!(good.dkim_auth_result()[0].selector, "s2024");
    assert_eq!(good.dkim_auth_result()[0].result, DkimResult::Pass);
    assert_eq!(good.spf_auth_result()[0].scope, SPFDomainScope::MailFrom);
    assert_eq!(good.spf_auth_result()[0].result, SpfResult::Pass);
    assert!(good.policy_override_reason().is_empty());

    let spoofed = find("203.0.113.66", "example.org", ActionDisposition::Quarantine);
    assert_eq!(spoofed.count(), 2);
    assert_eq!(spoofed.dmarc_dkim_result(), DmarcResult::Fail);
    assert_eq!(spoofed.dmarc_spf_result(), DmarcResult::Fail);
    assert_eq!(spoofed.envelope_from(), "bulk.example");
    assert!(spoofed.dkim_auth_result().is_empty());
    assert_eq!(spoofed.spf_auth_result()[0].domain, "bulk.example");
    assert_eq!(spoofed.spf_auth_result()[0].result, SpfResult::SoftFail);
    assert!(spoofed.policy_override_reason().is_empty());

    // Failing, delivered although p=quarantine, because pct=50 left it out.
    let sampled = find("203.0.113.66", "example.org", ActionDisposition::None);
    assert_eq!(sampled.count(), 1);
    assert_eq!(sampled.policy_override_reason().len(), 1);
    // RFC 7489's sampled_out is not among mail-auth's override types: it reads as Other.
    assert_eq!(
        sampled.policy_override_reason()[0].type_,
        PolicyOverride::Other
    );
    assert!(xml.contains("<type>sampled_out</type>"));

    // Text that needs escaping comes back as it was.
    let weird = find("192.0.2.10", "ex<am>&\"ple\".org", ActionDisposition::None);
    assert_eq!(weird.count(), 1);
    assert_eq!(weird.dmarc_dkim_result(), DmarcResult::Fail);

    let latest = find("2001:db8::25", "example.org", ActionDisposition::None);
    assert_eq!(latest.dkim_auth_result().len(), 2);
    assert_eq!(latest.dkim_auth_result()[1].domain, "esp.example");
    assert_eq!(latest.dkim_auth_result()[1].result, DkimResult::Fail);
}

#[test]
fn aggregate_is_deterministic_and_refuses_bad_input() {
    let first = aggregate(&reporter(), "example.org", BEGIN, END, &evaluations()).unwrap();
    let again = aggregate(&reporter(), "example.org", BEGIN, END, &evaluations()).unwrap();
    assert_eq!(first.report_id, again.report_id);
    let fewer = aggregate(&reporter(), "example.org", BEGIN, END, &evaluations()[..3]).unwrap();
    assert_ne!(first.report_id, fewer.report_id);

    assert_eq!(
        aggregate(&reporter(), "nothing.example", BEGIN, END, &evaluations()),
        Err(ReportError::NoEvaluations("nothing.example".to_string()))
    );
    assert!(matches!(
        aggregate(&reporter(), "example.org", END, BEGIN, &evaluations()),
        Err(ReportError::InvalidPeriod { .. })
    ));
    assert!(matches!(
        aggregate(&reporter(), "exa mple!org", BEGIN, END, &evaluations()),
        Err(ReportError::InvalidDomain(_))
    ));
    let mut bad = reporter();
    bad.email = "noreply\r\nBcc: victim@example.com".to_string();
    assert!(matches!(
        aggregate(&bad, "example.org", BEGIN, END, &evaluations()),
        Err(ReportError::InvalidAddress(_))
    ));
}

#[test]
fn evaluation_is_stored_as_json() {
    let evaluation = spoofed(BEGIN, "quarantine", 100);
    let json = serde_json::to_string(&evaluation).unwrap();
    assert_eq!(
        serde_json::from_str::<Evaluation>(&json).unwrap(),
        evaluation
    );
}

#[test]
fn destinations_sizes_schemes_and_authorization() {
    let rua = [
        "mailto:dmarc@example.org",
        "mailto:agg@reports.example.org!10m",
        " mailto:rua@ThirdParty.Example!500k ",
        "https://reports.example/dmarc",
        "mailto:dmarc@example.org?subject=again",
        "mailto:big@example.org!1g,mailto:small@example.org!2048",
        "mailto:bad@example.org!10x",
        "mailto:not-an-address",
        "mailto:spaced%20out@example.org",
        "mailto:some%2Cone@example.org",
    ]
    .map(String::from);
    let found = destinations("example.org", &rua);
    let want = |address: &str, max_size: Option<u64>, auth: Option<&str>| Destination {
        address: address.to_string(),
        max_size,
        needs_authorization: auth.map(String::from),
    };
    assert_eq!(
        found,
        vec![
            want("dmarc@example.org", None, None),
            want("agg@reports.example.org", Some(10 * 1024 * 1024), None),
            want(
                "rua@thirdparty.example",
                Some(500 * 1024),
                Some("example.org._report._dmarc.thirdparty.example")
            ),
            want("big@example.org", Some(1 << 30), None),
            want("small@example.org", Some(2048), None),
        ]
    );

    // The rule of mail-auth: only the policy domain and its subdomains are exempt, so a
    // subdomain's policy sending to the parent domain asks for the authorization record.
    assert_eq!(
        destinations(
            "news.example.org",
            &["mailto:dmarc@example.org".to_string()]
        )[0]
        .needs_authorization
        .as_deref(),
        Some("news.example.org._report._dmarc.example.org")
    );
    // A look-alike suffix is another domain.
    assert!(
        destinations("example.org", &["mailto:a@badexample.org".to_string()])[0]
            .needs_authorization
            .is_some()
    );
    assert!(destinations("example.org", &[]).is_empty());
}

#[test]
fn authorization_records() {
    let records = |list: &[&str]| list.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert!(authorizes(&records(&["v=DMARC1"])));
    assert!(authorizes(&records(&["v=DMARC1;"])));
    assert!(authorizes(&records(&["V=DMARC1; p=none"])));
    assert!(authorizes(&records(&[
        "v = DMARC1; rua=mailto:x@y.example"
    ])));
    assert!(authorizes(&records(&["v=spf1 -all", "v=DMARC1; p=none"])));
    assert!(!authorizes(&records(&[])));
    assert!(!authorizes(&records(&["v=spf1 -all"])));
    assert!(!authorizes(&records(&["v=DMARC10"])));
    assert!(!authorizes(&records(&["p=none; v=DMARC1"])));
    assert!(!authorizes(&records(&["v=dmarc1"])));
}

#[test]
fn message_carries_the_report() {
    let report = aggregate(&reporter(), "example.org", BEGIN, END, &evaluations()).unwrap();
    let date = UNIX_EPOCH + Duration::from_secs(1_705_320_000);
    let mail = message(
        &reporter(),
        "example.org",
        &report,
        "dmarc@example.org",
        date,
    );
    assert!(mail.len() as u64 <= report.size());
    let text = String::from_utf8(mail.clone()).unwrap();

    // CRLF only, and short lines: headers folded to 78, base64 at 76.
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    for line in text.split("\r\n") {
        assert!(line.len() <= 78, "long line {line:?}");
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.replace("\r\n ", " ");
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name}: in {head}"))
            .to_string()
    };
    assert_eq!(header("From"), "noreply-dmarc@mx.example.net");
    assert_eq!(header("To"), "dmarc@example.org");
    assert_eq!(header("Date"), "Mon, 15 Jan 2024 12:00:00 +0000");
    assert_eq!(
        header("Subject"),
        format!(
            "Report Domain: example.org Submitter: mx.example.net Report-ID: <{}>",
            report.report_id
        )
    );
    let message_id = header("Message-ID");
    assert!(message_id.starts_with('<') && message_id.ends_with("@mx.example.net>"));
    assert_eq!(header("MIME-Version"), "1.0");
    assert!(header("Content-Type").starts_with("multipart/mixed; boundary="));
    assert!(body.contains("Content-Type: text/plain"));

    // The attachment, decoded by hand: base64 lines of 76, then gunzip.
    let (attachment_head, encoded) = body
        .split_once("Content-Type: application/gzip")
        .unwrap()
        .1
        .split_once("\r\n\r\n")
        .unwrap();
    assert!(attachment_head.contains(&format!("filename=\"{}\"", report.gzip_name)));
    assert!(attachment_head.contains("Content-Transfer-Encoding: base64"));
    let encoded = encoded.split("\r\n--").next().unwrap();
    let lines: Vec<&str> = encoded.split("\r\n").collect();
    assert!(lines.len() > 1);
    assert!(lines[..lines.len() - 1].iter().all(|line| line.len() == 76));
    assert_eq!(gunzip(&unbase64(encoded)), report.xml);

    // And as a MIME parser sees it.
    let parsed = mail_parser::MessageParser::new().parse(&mail).unwrap();
    let attachment = parsed.attachment(0).unwrap();
    use mail_parser::MimeHeaders;
    assert_eq!(
        attachment.attachment_name(),
        Some(report.gzip_name.as_str())
    );
    assert_eq!(gunzip(attachment.contents()), report.xml);

    // Another recipient or date, another Message-ID.
    let other = message(&reporter(), "example.org", &report, "x@example.org", date);
    let other_id = String::from_utf8(other)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Message-ID: ").map(String::from))
        .unwrap();
    assert_ne!(other_id, message_id);

    // Line ends cannot get into the header fields.
    let injected = message(
        &reporter(),
        "example.org",
        &report,
        "a@example.org\r\nBcc: victim@example.com",
        SystemTime::now(),
    );
    let injected = String::from_utf8(injected).unwrap();
    assert!(!injected.contains("\r\nBcc:"));
}

#[test]
fn our_own_report_reads_back() {
    let report = aggregate(&reporter(), "example.org", BEGIN, END, &evaluations()).unwrap();
    let mail = message(
        &reporter(),
        "example.org",
        &report,
        "dmarc@example.org",
        SystemTime::now(),
    );
    let received = parse_report_message(&mail).unwrap();
    assert_eq!(received.len(), 1);
    let received = &received[0];
    assert_eq!(received.org_name, "Example Net");
    assert_eq!(received.email, "noreply-dmarc@mx.example.net");
    assert_eq!(received.report_id, report.report_id);
    assert_eq!(received.domain, "example.org");
    assert_eq!((received.begin, received.end), (BEGIN, END));
    assert_eq!(received.policy, "reject");
    assert_eq!(received.rows.len(), 5);
    assert_eq!(received.messages(), 7);
    // Passing: the two good ones, the one with SPF only (dkim failed) and the latest.
    assert_eq!(received.passed(), 4);
}

#[test]
fn google_style_reports_zipped_gzipped_or_plain() {
    let name = "google.com!example.org!1705276800!1705363199";
    let xml = GOOGLE_XML.as_bytes();
    let variants = [
        report_mail(
            "application/zip",
            &format!("{name}.zip"),
            &zip(&format!("{name}.xml"), xml, true),
        ),
        report_mail(
            "application/zip",
            &format!("{name}.zip"),
            &zip(&format!("{name}.xml"), xml, false),
        ),
        report_mail(
            "application/x-zip-compressed",
            &format!("{name}.zip"),
            &zip(&format!("{name}.xml"), xml, true),
        ),
        report_mail("application/gzip", &format!("{name}.xml.gz"), &gzip(xml)),
        report_mail("application/x-gzip", &format!("{name}.xml.gz"), &gzip(xml)),
        // Only the file name tells.
        report_mail(
            "application/octet-stream",
            &format!("{name}.xml.gz"),
            &gzip(xml),
        ),
        // Mislabelled: the content tells.
        report_mail(
            "application/gzip",
            &format!("{name}.zip"),
            &zip("r.xml", xml, true),
        ),
        report_mail("text/xml", &format!("{name}.xml"), xml),
    ];
    for (i, mail) in variants.iter().enumerate() {
        let reports = parse_report_message(mail).unwrap_or_else(|e| panic!("variant {i}: {e}"));
        assert_eq!(reports.len(), 1, "variant {i}");
        check_google(&reports[0]);
    }

    // Google sends a single-part message.
    let single = format!(
        concat!(
            "From: noreply-dmarc-support@google.com\r\n",
            "Subject: Report domain: example.org Submitter: google.com\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: application/zip; name=\"{name}.zip\"\r\n",
            "Content-Disposition: attachment; filename=\"{name}.zip\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\n{body}"
        ),
        name = name,
        body = base64(&zip(&format!("{name}.xml"), xml, true))
    );
    check_google(&parse_report_message(single.as_bytes()).unwrap()[0]);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    type Expected = fn(&ReportError) -> bool;
    let cases: Vec<(Vec<u8>, Expected)> = vec![
        (
            report_mail("application/gzip", "r.xml.gz", b"\x1f\x8bnot really gzip"),
            |e| matches!(e, ReportError::Decompress(_)),
        ),
        (
            report_mail("application/zip", "r.zip", b"PK\x03\x04 broken archive"),
            |e| matches!(e, ReportError::Decompress(_)),
        ),
        (report_mail("application/zip", "r.zip", &[0xff; 300]), |e| {
            matches!(e, ReportError::Decompress(_))
        }),
        (
            report_mail("application/gzip", "r.xml.gz", &gzip(b"\x00\x01binary")),
            |e| matches!(e, ReportError::Xml(_)),
        ),
        (
            report_mail("text/xml", "r.xml", b"<feedback><report_metadata>"),
            |e| matches!(e, ReportError::Xml(_)),
        ),
        (
            report_mail("text/xml", "r.xml", b"<html><body>hello</body></html>"),
            |e| matches!(e, ReportError::Xml(_)),
        ),
        (
            report_mail("text/plain", "notes.txt", b"nothing to see"),
            |e| *e == ReportError::NoReport,
        ),
    ];
    for (i, (mail, expected)) in cases.into_iter().enumerate() {
        let result = within_time(move || parse_report_message(&mail));
        match result {
            Err(error) => assert!(expected(&error), "case {i}: {error:?}"),
            Ok(reports) => panic!("case {i} parsed: {reports:?}"),
        }
    }

    // Damaged XML of every kind, anywhere: an error or a report, in bounded time.
    let truncations: Vec<Vec<u8>> = (0..GOOGLE_XML.len())
        .step_by(7)
        .map(|end| GOOGLE_XML.as_bytes()[..end].to_vec())
        .collect();
    let nasty: Vec<&[u8]> = vec![
        b"",
        b"<",
        b"<feedback",
        b"<feedback><unknown><a></b></unknown></feedback>",
        b"<feedback><record><row><count>1</count></row><x y=></x></record></feedback>",
        b"<feedback><report_metadata><org_name>&bogus;</org_name></report_metadata></feedback>",
        b"<feedback><policy_published><p><![CDATA[reject]]></p></policy_published></feedback>",
        b"<!DOCTYPE feedback [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><feedback>&b;</feedback>",
        b"<feedback><record><row><source_ip>999.1.1.1</source_ip><count>-5</count></row></record></feedback>",
        b"<feedback><extensions><extension name=\"x\"><deep><deeper/></deep></extension></extensions></feedback>",
    ];
    within_time(move || {
        for document in truncations
            .iter()
            .map(Vec::as_slice)
            .chain(nasty.iter().copied())
        {
            for mail in [
                report_mail("text/xml", "r.xml", document),
                report_mail("application/gzip", "r.xml.gz", &gzip(document)),
                report_mail("application/zip", "r.zip", &zip("r.xml", document, true)),
            ] {
                let _ = parse_report_message(&mail);
            }
        }
    });

    // Not even a message.
    within_time(|| {
        let _ = parse_report_message(b"");
        let _ = parse_report_message(&[0u8; 64]);
        let _ = parse_report_message(b"\r\n\r\n--\r\n");
    });
}

#[test]
fn oversized_decompression_is_refused() {
    // 21 MiB of zeros compress to a few kilobytes.
    let bomb = vec![0u8; MAX_DECOMPRESSED + 1024 * 1024];
    let gzipped = gzip(&bomb);
    assert!(gzipped.len() < 64 * 1024);
    let mail = report_mail("application/gzip", "bomb.xml.gz", &gzipped);
    assert_eq!(parse_report_message(&mail), Err(ReportError::TooLarge));

    let zipped = zip("bomb.xml", &bomb, true);
    assert!(zipped.len() < 64 * 1024);
    let mail = report_mail("application/zip", "bomb.zip", &zipped);
    assert_eq!(parse_report_message(&mail), Err(ReportError::TooLarge));

    // A zip whose central directory lies about the size is still capped while reading.
    let mut lying = zipped.clone();
    let central = lying.len() - 22 - "bomb.xml".len() - 46;
    lying[central + 24..central + 28].copy_from_slice(&100u32.to_le_bytes());
    let mail = report_mail("application/zip", "bomb.zip", &lying);
    assert_eq!(parse_report_message(&mail), Err(ReportError::TooLarge));

    // Next to a good report, the bomb costs nothing but its own refusal.
    let mut both = report_mail("application/gzip", "bomb.xml.gz", &gzipped);
    let good = format!(
        concat!(
            "--b1\r\nContent-Type: application/gzip; name=\"g.xml.gz\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\n{}--b1--\r\n"
        ),
        base64(&gzip(GOOGLE_XML.as_bytes()))
    );
    both.truncate(both.len() - "--b1--\r\n".len());
    both.extend_from_slice(good.as_bytes());
    let reports = parse_report_message(&both).unwrap();
    assert_eq!(reports.len(), 1);
    check_google(&reports[0]);
}

#[test]
fn summary_names_failing_sources() {
    let google = {
        let mail = report_mail("application/gzip", "g.xml.gz", &gzip(GOOGLE_XML.as_bytes()));
        parse_report_message(&mail).unwrap().remove(0)
    };
    let ours = {
        let report = aggregate(&reporter(), "example.org", BEGIN, END, &evaluations()).unwrap();
        let mail = message(
            &reporter(),
            "example.org",
            &report,
            "dmarc@example.org",
            SystemTime::now(),
        );
        parse_report_message(&mail).unwrap().remove(0)
    };
    let mut elsewhere = google.clone();
    elsewhere.domain = "other.example".to_string();
    elsewhere.rows.retain(|row| row.dkim == "pass");
    elsewhere.begin = BEGIN - 86_400;

    let text = summary(&[google, ours, elsewhere]);
    assert!(
        text.contains("example.org: 25 messages, 18 passed DMARC, 7 failed"),
        "{text}"
    );
    assert!(
        text.contains(
            "google.com <noreply-dmarc-support@google.com>, 2024-01-15 (UTC), 1 report: \
             18 messages, 14 passed"
        ),
        "{text}"
    );
    assert!(
        text.contains("Example Net <noreply-dmarc@mx.example.net>"),
        "{text}"
    );
    // 3 from Google and 3 from us, most first; then the others.
    assert!(
        text.contains("    203.0.113.66: 6 (Example Net, google.com)\n"),
        "{text}"
    );
    assert!(
        text.contains("    198.51.100.7: 1 (google.com)\n"),
        "{text}"
    );
    // Our 192.0.2.10 row with an odd From: failed DKIM but passed SPF: it passed.
    assert!(!text.contains("192.0.2.10:"), "{text}");
    assert!(
        text.find("203.0.113.66").unwrap() < text.find("198.51.100.7").unwrap(),
        "{text}"
    );
    // Sources that passed are not listed as failing.
    assert!(!text.contains("2001:db8::25:"), "{text}");
    // The other domain passed everything, over two days.
    assert!(
        text.contains("other.example: 14 messages, 14 passed DMARC, 0 failed"),
        "{text}"
    );
    assert!(text.contains("2024-01-14 to 2024-01-15 (UTC)"), "{text}");
    assert!(text.contains("No source failed DMARC."), "{text}");

    assert_eq!(summary(&[]), "No DMARC aggregate reports.\n");
}

#[test]
fn mutated_reports_never_panic() {
    // Deterministic byte mutations (an LCG) of a real report, read plain and gzipped.
    within_time(|| {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let original = GOOGLE_XML.as_bytes();
        for _ in 0..1500 {
            let mut document = original.to_vec();
            for _ in 0..1 + next() % 8 {
                let at = next() % document.len();
                match next() % 3 {
                    0 => document[at] = b"<>&/;\"'=x\0\xff"[next() % 11],
                    1 => {
                        document.remove(at);
                    }
                    _ => document.insert(at, b"<>&/"[next() % 4]),
                }
            }
            let _ = parse_report_message(&report_mail("text/xml", "r.xml", &document));
            let _ = parse_report_message(&report_mail(
                "application/gzip",
                "r.xml.gz",
                &gzip(&document),
            ));
        }
        // And damaged archives.
        let archive = zip("r.xml", original, true);
        for _ in 0..500 {
            let mut damaged = archive.clone();
            let at = next() % damaged.len();
            damaged[at] ^= 1 << (next() % 8);
            let _ = parse_report_message(&report_mail("application/zip", "r.zip", &damaged));
        }
    });
}
