//! SMTP TLS Reporting (RFC 8460): classifying failures, the §4 JSON report (read back with
//! mail-auth's parser), the §3 record and the §5.3 mail.

use facteur_trust::tlsrpt::{
    Observation, PolicyType, Report, Reporter, ResultType, TlsRptError, aggregate, classify,
    mailto_address, message, rua,
};
use flate2::read::GzDecoder;
use mail_auth::report::tlsrpt::{
    PolicyType as MaPolicyType, ResultType as MaResultType, TlsReport,
};
use serde_json::{Value, json};
use std::io::Read;
use std::time::{Duration, UNIX_EPOCH};

/// 2026-11-22 00:00:00 UTC.
const BEGIN: i64 = 1_795_305_600;
/// 2026-11-22 23:59:59 UTC.
const END: i64 = BEGIN + 86_399;

fn reporter() -> Reporter {
    Reporter {
        org_name: "Example Net".to_string(),
        contact: "mailto:tlsrpt@mx.example.net".to_string(),
        hostname: "mx.example.net".to_string(),
    }
}

fn sts_policy() -> Vec<String> {
    [
        "version: STSv1",
        "mode: enforce",
        "mx: mx1.example.org",
        "mx: *.mail.example.org",
        "max_age: 86400",
    ]
    .map(String::from)
    .to_vec()
}

fn observation(
    policy_type: PolicyType,
    policy_strings: Vec<String>,
    mx: &str,
    ip: &str,
    result: ResultType,
    count: u64,
    detail: &str,
) -> Observation {
    Observation {
        policy_domain: "example.org".to_string(),
        policy_type,
        policy_strings,
        mx_host: (!mx.is_empty()).then(|| mx.to_string()),
        receiving_ip: (!ip.is_empty()).then(|| ip.parse().unwrap()),
        result,
        count,
        detail: detail.to_string(),
    }
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

// ---------------------------------------------------------------------------------------
// classify()

#[test]
fn classify_tls_failures() {
    use PolicyType::{NoPolicyFound, Sts, Tlsa};
    use ResultType::*;
    let cases: &[(PolicyType, &str, ResultType)] = &[
        // The queue's SMTP client (crates/queue/src/client.rs).
        (
            Sts,
            "mx1.example.org [192.0.2.1]:25: STARTTLS is required for this route and the \
             server does not offer it",
            StarttlsNotSupported,
        ),
        (
            Sts,
            "454 4.7.0 TLS not available due to temporary reason (STARTTLS refused)",
            StarttlsNotSupported,
        ),
        // rustls 0.23 `Error::InvalidCertificate` Display: "invalid peer certificate: {err}",
        // `CertificateError` Display: the variant name, or a sentence for `...Context`.
        (
            Sts,
            "mx1.example.org [192.0.2.1]:25: TLS handshake failed: invalid peer certificate: \
             Expired",
            CertificateExpired,
        ),
        (
            NoPolicyFound,
            "TLS handshake failed: invalid peer certificate: certificate expired: verification \
             time 1795305600 (UNIX), but certificate is not valid after 1795000000 (305600 \
             seconds ago)",
            CertificateExpired,
        ),
        (
            Sts,
            "mx1.example.org [192.0.2.1]:25: TLS handshake failed: invalid peer certificate: \
             NotValidForName",
            CertificateHostMismatch,
        ),
        (
            Sts,
            "TLS handshake failed: invalid peer certificate: certificate not valid for name \
             \"mx1.example.org\"; certificate is only valid for DnsName(\"other.example\")",
            CertificateHostMismatch,
        ),
        (
            Sts,
            "TLS handshake failed: invalid peer certificate: NotValidForNameContext { \
             expected: DnsName(\"mx1.example.org\"), presented: [] }",
            CertificateHostMismatch,
        ),
        (
            Sts,
            "mx1.example.org [192.0.2.1]:25: TLS handshake failed: invalid peer certificate: \
             UnknownIssuer",
            CertificateNotTrusted,
        ),
        (
            Sts,
            "TLS handshake failed: invalid peer certificate: certificate not valid yet: \
             verification time 1795305600 (UNIX), but certificate is not valid before \
             1795400000 (94400 seconds in future)",
            ValidationFailure,
        ),
        (
            Sts,
            "TLS handshake failed: invalid peer certificate: Revoked",
            ValidationFailure,
        ),
        (
            Sts,
            "TLS handshake failed: invalid peer certificate: BadSignature",
            ValidationFailure,
        ),
        (
            Sts,
            "TLS handshake failed: invalid peer certificate: ExpiredRevocationList",
            ValidationFailure,
        ),
        (
            NoPolicyFound,
            "TLS handshake failed: received fatal alert: HandshakeFailure",
            ValidationFailure,
        ),
        // The server complains about our certificate: not a certificate of the MX.
        (
            NoPolicyFound,
            "TLS handshake failed: received fatal alert: CertificateExpired",
            ValidationFailure,
        ),
        (
            NoPolicyFound,
            "TLS handshake failed: peer is incompatible: NoCipherSuitesInCommon",
            ValidationFailure,
        ),
        (
            NoPolicyFound,
            "TLS handshake failed: peer sent no certificates",
            ValidationFailure,
        ),
        (
            NoPolicyFound,
            "TLS handshake failed: tls handshake eof",
            ValidationFailure,
        ),
        // DANE (crates/queue/src/dane.rs, route.rs).
        (
            Tlsa,
            "mx1.example.org [192.0.2.1]:25: TLS handshake failed: unexpected error: DANE: the \
             certificate of mx1.example.org matches none of its 2 usable TLSA records",
            TlsaInvalid,
        ),
        (
            Tlsa,
            "TLS handshake failed: unexpected error: DANE: the certificate of mx1.example.org \
             matches none of its 1 usable TLSA record (certificate expired)",
            TlsaInvalid,
        ),
        (
            Tlsa,
            "DANE: the TLSA records of mx1.example.org cannot be read, so it is not used for \
             now: SERVFAIL",
            DnssecInvalid,
        ),
        (
            Tlsa,
            "TLSA records of mx1.example.org cannot be read",
            DnssecInvalid,
        ),
        (
            Tlsa,
            "DANE is required for example.org but mx1.example.org has no DNSSEC-validated TLSA \
             records",
            DaneRequired,
        ),
        // Under a TLSA policy the records alone authenticate the server.
        (
            Tlsa,
            "TLS handshake failed: invalid peer certificate: UnknownIssuer",
            TlsaInvalid,
        ),
        // MTA-STS (crates/queue/src/route.rs, mta_sts.rs).
        (
            Sts,
            "MTA-STS: no MX host of example.org matches its policy (mx.example.net); not \
             delivering elsewhere",
            ValidationFailure,
        ),
        (
            Sts,
            "MTA-STS policy announced but not fetched: HTTP status 404 Not Found",
            StsPolicyFetchError,
        ),
        (
            NoPolicyFound,
            "MTA-STS policy fetch failed: connect to mta-sts.example.org: Connection refused \
             (os error 111)",
            StsPolicyFetchError,
        ),
        (
            NoPolicyFound,
            "MTA-STS policy announced but not fetched: no answer within 30 s",
            StsPolicyFetchError,
        ),
        (
            NoPolicyFound,
            "MTA-STS policy announced but not fetched: TLS with mta-sts.example.org: invalid \
             peer certificate: UnknownIssuer",
            StsWebpkiInvalid,
        ),
        (
            NoPolicyFound,
            "MTA-STS policy announced but not fetched: the policy has no `version: STSv1`",
            StsPolicyInvalid,
        ),
        (
            NoPolicyFound,
            "MTA-STS policy announced but not fetched: unknown mode `sometimes`",
            StsPolicyInvalid,
        ),
    ];
    for (policy, text, expected) in cases {
        assert_eq!(
            classify(*policy, text),
            Some(*expected),
            "{text:?} under {policy:?}"
        );
    }
}

#[test]
fn classify_ignores_failures_unrelated_to_tls() {
    for text in [
        "connection refused",
        "connect to mx1.example.org[192.0.2.1]:25: Connection refused (os error 111)",
        "connect to mx.example.com[192.0.2.1]:25: Connection timed out",
        "no route to host",
        "DNS lookup of the MX of example.org failed: timeout",
        "550 5.1.1 <user@example.org>: Recipient address rejected (RCPT refused)",
        "451 4.3.0 Try again later (MAIL refused)",
        "554 5.7.1 TLS handshake failed on our side, go away (greeting refused)",
        "421 4.7.0 Too many connections (EHLO refused)",
        "550 5.1.2 the domain example.invalid does not exist (NXDOMAIN)",
        "mx1.example.org [192.0.2.1]:25: TLS handshake timed out",
        "TLS handshake failed: Connection reset by peer (os error 104)",
        "mx1.example.org [192.0.2.1]:25: refusing to send the relay password without TLS",
        "",
    ] {
        for policy in [PolicyType::Sts, PolicyType::Tlsa, PolicyType::NoPolicyFound] {
            assert_eq!(classify(policy, text), None, "{text:?} under {policy:?}");
        }
    }
}

#[test]
fn result_and_policy_types_use_the_rfc_names() {
    for (result, name) in [
        (ResultType::StarttlsNotSupported, "starttls-not-supported"),
        (
            ResultType::CertificateHostMismatch,
            "certificate-host-mismatch",
        ),
        (ResultType::CertificateExpired, "certificate-expired"),
        (ResultType::CertificateNotTrusted, "certificate-not-trusted"),
        (ResultType::ValidationFailure, "validation-failure"),
        (ResultType::TlsaInvalid, "tlsa-invalid"),
        (ResultType::DnssecInvalid, "dnssec-invalid"),
        (ResultType::DaneRequired, "dane-required"),
        (ResultType::StsPolicyFetchError, "sts-policy-fetch-error"),
        (ResultType::StsPolicyInvalid, "sts-policy-invalid"),
        (ResultType::StsWebpkiInvalid, "sts-webpki-invalid"),
    ] {
        assert_eq!(result.as_str(), name);
        assert_eq!(serde_json::to_value(result).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<ResultType>(json!(name)).unwrap(),
            result
        );
    }
    for (policy, name) in [
        (PolicyType::Sts, "sts"),
        (PolicyType::Tlsa, "tlsa"),
        (PolicyType::NoPolicyFound, "no-policy-found"),
    ] {
        assert_eq!(policy.as_str(), name);
        assert_eq!(serde_json::to_value(policy).unwrap(), json!(name));
    }
    // The queue may store observations as JSON.
    let stored = observation(
        PolicyType::Sts,
        sts_policy(),
        "mx1.example.org",
        "192.0.2.1",
        ResultType::CertificateExpired,
        3,
        "x",
    );
    let text = serde_json::to_string(&stored).unwrap();
    assert_eq!(serde_json::from_str::<Observation>(&text).unwrap(), stored);
}

// ---------------------------------------------------------------------------------------
// aggregate()

fn observations() -> Vec<Observation> {
    let tlsa =
        vec!["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string()];
    vec![
        observation(
            PolicyType::Sts,
            sts_policy(),
            "mx1.example.org",
            "192.0.2.1",
            ResultType::Success,
            100,
            "",
        ),
        observation(
            PolicyType::Sts,
            sts_policy(),
            "mx2.mail.example.org",
            "2001:db8::25",
            ResultType::Success,
            20,
            "ignored for successes",
        ),
        observation(
            PolicyType::Sts,
            sts_policy(),
            "MX1.example.org.",
            "192.0.2.1",
            ResultType::CertificateExpired,
            3,
            "invalid peer certificate: Expired",
        ),
        // The same failure again: summed into the entry above.
        observation(
            PolicyType::Sts,
            sts_policy(),
            "mx1.example.org",
            "192.0.2.1",
            ResultType::CertificateExpired,
            4,
            "invalid peer certificate: Expired",
        ),
        observation(
            PolicyType::Sts,
            sts_policy(),
            "mx2.mail.example.org",
            "",
            ResultType::StarttlsNotSupported,
            2,
            "",
        ),
        // Counting nothing: left out.
        observation(
            PolicyType::Sts,
            sts_policy(),
            "mx3.mail.example.org",
            "192.0.2.3",
            ResultType::ValidationFailure,
            0,
            "nothing",
        ),
        observation(
            PolicyType::Tlsa,
            tlsa.clone(),
            "dane.example.org",
            "192.0.2.9",
            ResultType::Success,
            5,
            "",
        ),
        observation(
            PolicyType::Tlsa,
            tlsa,
            "dane.example.org",
            "192.0.2.9",
            ResultType::TlsaInvalid,
            1,
            "DANE: the certificate of dane.example.org matches none of its 1 usable TLSA record",
        ),
        observation(
            PolicyType::NoPolicyFound,
            Vec::new(),
            "mx9.example.org",
            "192.0.2.99",
            ResultType::Success,
            7,
            "",
        ),
        // Another domain: left out.
        Observation {
            policy_domain: "other.example".to_string(),
            ..observation(
                PolicyType::NoPolicyFound,
                Vec::new(),
                "mx.other.example",
                "192.0.2.200",
                ResultType::ValidationFailure,
                50,
                "",
            )
        },
    ]
}

fn json_of(report: &Report) -> Value {
    serde_json::from_slice(&report.json).unwrap()
}

/// Checks the §4.4 structure: required members present with their JSON types, no `null`.
fn check_structure(report: &Value) {
    fn no_nulls(value: &Value, path: &str) {
        match value {
            Value::Null => panic!("null at {path}"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    no_nulls(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(members) => {
                for (name, member) in members {
                    no_nulls(member, &format!("{path}.{name}"));
                }
            }
            _ => {}
        }
    }
    no_nulls(report, "$");
    let top = report.as_object().unwrap();
    for name in top.keys() {
        assert!(
            [
                "organization-name",
                "date-range",
                "contact-info",
                "report-id",
                "policies"
            ]
            .contains(&name.as_str()),
            "unexpected member {name}"
        );
    }
    assert!(report["organization-name"].is_string());
    assert!(report["contact-info"].is_string());
    assert!(report["report-id"].is_string());
    assert!(report["date-range"]["start-datetime"].is_string());
    assert!(report["date-range"]["end-datetime"].is_string());
    for policy in report["policies"].as_array().unwrap() {
        let details = &policy["policy"];
        assert!(
            ["sts", "tlsa", "no-policy-found"].contains(&details["policy-type"].as_str().unwrap())
        );
        assert!(details["policy-domain"].is_string());
        if let Some(strings) = details.get("policy-string") {
            assert!(strings.as_array().unwrap().iter().all(Value::is_string));
        }
        if let Some(mx) = details.get("mx-host") {
            assert!(mx.as_array().unwrap().iter().all(Value::is_string));
        }
        assert!(policy["summary"]["total-successful-session-count"].is_u64());
        assert!(policy["summary"]["total-failure-session-count"].is_u64());
        let failures = policy
            .get("failure-details")
            .map_or(&[][..], |f| f.as_array().unwrap().as_slice());
        let sum: u64 = failures
            .iter()
            .map(|f| f["failed-session-count"].as_u64().unwrap())
            .sum();
        assert_eq!(
            sum,
            policy["summary"]["total-failure-session-count"]
                .as_u64()
                .unwrap()
        );
        for failure in failures {
            assert!(failure["result-type"].is_string());
            assert!(failure.get("sending-mta-ip").is_none());
            for name in failure.as_object().unwrap().keys() {
                assert!(
                    [
                        "result-type",
                        "receiving-mx-hostname",
                        "receiving-ip",
                        "failed-session-count",
                        "failure-reason-code"
                    ]
                    .contains(&name.as_str()),
                    "unexpected member {name}"
                );
            }
        }
    }
}

#[test]
fn aggregate_writes_the_rfc_8460_report() {
    let report = aggregate(&reporter(), "Example.ORG.", BEGIN, END, &observations()).unwrap();
    let value = json_of(&report);
    check_structure(&value);

    assert_eq!(value["organization-name"], "Example Net");
    assert_eq!(value["contact-info"], "tlsrpt@mx.example.net");
    assert_eq!(value["report-id"], report.report_id.as_str());
    assert_eq!(
        value["date-range"],
        json!({
            "start-datetime": "2026-11-22T00:00:00Z",
            "end-datetime": "2026-11-22T23:59:59Z",
        })
    );
    let (unique, host) = report.report_id.split_once('@').unwrap();
    assert_eq!(host, "mx.example.net");
    assert!(!unique.is_empty() && unique.bytes().all(|b| b.is_ascii_alphanumeric()));

    let policies = value["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 3, "{value:#}");
    let of = |kind: &str| {
        policies
            .iter()
            .find(|p| p["policy"]["policy-type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} policy"))
    };

    assert_eq!(
        of("sts"),
        &json!({
            "policy": {
                "policy-type": "sts",
                "policy-string": sts_policy(),
                "policy-domain": "example.org",
                "mx-host": ["mx1.example.org", "*.mail.example.org"],
            },
            "summary": {
                "total-successful-session-count": 120,
                "total-failure-session-count": 9,
            },
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "receiving-mx-hostname": "mx1.example.org",
                    "receiving-ip": "192.0.2.1",
                    "failed-session-count": 7,
                    "failure-reason-code": "invalid peer certificate: Expired",
                },
                {
                    "result-type": "starttls-not-supported",
                    "receiving-mx-hostname": "mx2.mail.example.org",
                    "failed-session-count": 2,
                },
            ],
        })
    );
    assert_eq!(
        of("tlsa"),
        &json!({
            "policy": {
                "policy-type": "tlsa",
                "policy-string": ["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
                "policy-domain": "example.org",
            },
            "summary": {
                "total-successful-session-count": 5,
                "total-failure-session-count": 1,
            },
            "failure-details": [{
                "result-type": "tlsa-invalid",
                "receiving-mx-hostname": "dane.example.org",
                "receiving-ip": "192.0.2.9",
                "failed-session-count": 1,
                "failure-reason-code":
                    "DANE: the certificate of dane.example.org matches none of its 1 usable TLSA record",
            }],
        })
    );
    assert_eq!(
        of("no-policy-found"),
        &json!({
            "policy": {"policy-type": "no-policy-found", "policy-domain": "example.org"},
            "summary": {
                "total-successful-session-count": 7,
                "total-failure-session-count": 0,
            },
        })
    );

    // §5.1 file name, gzip of the JSON.
    assert_eq!(
        report.filename,
        format!("mx.example.net!example.org!{BEGIN}!{END}!{unique}.json.gz")
    );
    assert_eq!(gunzip(&report.gzipped), report.json);
}

#[test]
fn aggregate_reads_back_with_mail_auth() {
    let report = aggregate(&reporter(), "example.org", BEGIN, END, &observations()).unwrap();
    let parsed = TlsReport::parse_json(&report.json).unwrap();
    assert_eq!(parsed.organization_name.as_deref(), Some("Example Net"));
    assert_eq!(
        parsed.contact_info.as_deref(),
        Some("tlsrpt@mx.example.net")
    );
    assert_eq!(parsed.report_id, report.report_id);
    assert_eq!(parsed.date_range.start_datetime.to_timestamp(), BEGIN);
    assert_eq!(parsed.date_range.end_datetime.to_timestamp(), END);
    assert_eq!(parsed.policies.len(), 3);
    let sts = parsed
        .policies
        .iter()
        .find(|p| p.policy.policy_type == MaPolicyType::Sts)
        .unwrap();
    assert_eq!(sts.policy.policy_domain, "example.org");
    assert_eq!(sts.policy.policy_string, sts_policy());
    assert_eq!(
        sts.policy.mx_host,
        ["mx1.example.org", "*.mail.example.org"]
    );
    assert_eq!(sts.summary.total_success, 120);
    assert_eq!(sts.summary.total_failure, 9);
    assert_eq!(sts.failure_details.len(), 2);
    let expired = &sts.failure_details[0];
    assert_eq!(expired.result_type, MaResultType::CertificateExpired);
    assert_eq!(expired.sending_mta_ip, None);
    assert_eq!(
        expired.receiving_mx_hostname.as_deref(),
        Some("mx1.example.org")
    );
    assert_eq!(expired.receiving_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(expired.failed_session_count, 7);
    assert_eq!(
        expired.failure_reason_code.as_deref(),
        Some("invalid peer certificate: Expired")
    );
    assert_eq!(
        sts.failure_details[1].result_type,
        MaResultType::StartTlsNotSupported
    );
    let tlsa = parsed
        .policies
        .iter()
        .find(|p| p.policy.policy_type == MaPolicyType::Tlsa)
        .unwrap();
    assert_eq!(
        tlsa.failure_details[0].result_type,
        MaResultType::TlsaInvalid
    );
    let none = parsed
        .policies
        .iter()
        .find(|p| p.policy.policy_type == MaPolicyType::NoPolicyFound)
        .unwrap();
    assert!(none.failure_details.is_empty() && none.policy.policy_string.is_empty());
}

#[test]
fn aggregate_ids_are_stable_and_distinct() {
    let first = aggregate(&reporter(), "example.org", BEGIN, END, &observations()).unwrap();
    let again = aggregate(&reporter(), "example.org", BEGIN, END, &observations()).unwrap();
    assert_eq!(first, again);
    let next_day = aggregate(
        &reporter(),
        "example.org",
        BEGIN + 86_400,
        END + 86_400,
        &observations(),
    )
    .unwrap();
    assert_ne!(first.report_id, next_day.report_id);
    let mut more = observations();
    more[0].count += 1;
    let other = aggregate(&reporter(), "example.org", BEGIN, END, &more).unwrap();
    assert_ne!(first.report_id, other.report_id);
    assert_ne!(first.filename, other.filename);
}

#[test]
fn aggregate_refuses_what_cannot_be_reported() {
    let all = observations();
    assert_eq!(
        aggregate(&reporter(), "example.com", BEGIN, END, &all),
        Err(TlsRptError::NoObservations("example.com".to_string()))
    );
    assert!(matches!(
        aggregate(&reporter(), "example.org", BEGIN, END, &[]),
        Err(TlsRptError::NoObservations(_))
    ));
    assert!(matches!(
        aggregate(&reporter(), "exa mple.org", BEGIN, END, &all),
        Err(TlsRptError::InvalidDomain(_))
    ));
    assert!(matches!(
        aggregate(&reporter(), "example.org\r\nBcc: x@y", BEGIN, END, &all),
        Err(TlsRptError::InvalidDomain(_))
    ));
    assert!(matches!(
        aggregate(&reporter(), "example.org", END, BEGIN, &all),
        Err(TlsRptError::InvalidPeriod { .. })
    ));
    assert!(matches!(
        aggregate(&reporter(), "example.org", -1, END, &all),
        Err(TlsRptError::InvalidPeriod { .. })
    ));
    let bad_contact = Reporter {
        contact: "not an address".to_string(),
        ..reporter()
    };
    assert!(matches!(
        aggregate(&bad_contact, "example.org", BEGIN, END, &all),
        Err(TlsRptError::InvalidAddress(_))
    ));
    let bad_host = Reporter {
        hostname: "mx example".to_string(),
        ..reporter()
    };
    assert!(matches!(
        aggregate(&bad_host, "example.org", BEGIN, END, &all),
        Err(TlsRptError::InvalidDomain(_))
    ));
    // A plain address works as the contact too.
    let plain = Reporter {
        contact: "tlsrpt@MX.Example.net".to_string(),
        ..reporter()
    };
    let report = aggregate(&plain, "example.org", BEGIN, END, &all).unwrap();
    assert_eq!(json_of(&report)["contact-info"], "tlsrpt@mx.example.net");
}

#[test]
fn aggregate_writes_international_names_as_a_labels() {
    let mut items = observations();
    for item in &mut items {
        item.policy_domain = "bücher.example".to_string();
    }
    let report = aggregate(&reporter(), "BÜCHER.example", BEGIN, END, &items).unwrap();
    let value = json_of(&report);
    for policy in value["policies"].as_array().unwrap() {
        assert_eq!(policy["policy"]["policy-domain"], "xn--bcher-kva.example");
    }
    assert!(report.filename.contains("!xn--bcher-kva.example!"));
}

// ---------------------------------------------------------------------------------------
// rua()

fn records(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

#[test]
fn rua_reads_the_record() {
    assert_eq!(
        rua(&records(&["v=TLSRPTv1; rua=mailto:tlsrpt@example.org"])),
        Some(vec!["mailto:tlsrpt@example.org".to_string()])
    );
    // Both schemes, spaces around the separators, a final `;`, unrelated records.
    assert_eq!(
        rua(&records(&[
            "google-site-verification=abc",
            "v=TLSRPTv1 ;  rua=mailto:a@example.org , https://reports.example.net/tlsrpt ;",
            "v=spf1 -all",
        ])),
        Some(vec![
            "mailto:a@example.org".to_string(),
            "https://reports.example.net/tlsrpt".to_string(),
        ])
    );
    assert_eq!(
        rua(&records(&[
            "v=TLSRPTv1;rua=https://r.example.net/x,mailto:b@example.org"
        ])),
        Some(vec![
            "https://r.example.net/x".to_string(),
            "mailto:b@example.org".to_string(),
        ])
    );
    // Unknown extension fields are ignored (§3).
    assert_eq!(
        rua(&records(&[
            "v=TLSRPTv1; ext.x-1=value; rua=mailto:a@example.org; other=1"
        ])),
        Some(vec!["mailto:a@example.org".to_string()])
    );
    // Duplicates once; unsupported schemes dropped.
    assert_eq!(
        rua(&records(&[
            "v=TLSRPTv1; rua=mailto:a@example.org,mailto:a@example.org,http://x.example/,ftp://y"
        ])),
        Some(vec!["mailto:a@example.org".to_string()])
    );
}

#[test]
fn rua_refuses_what_is_not_one_tlsrptv1_record() {
    for set in [
        // Several TLSRPTv1 records: none is used (§3).
        &[
            "v=TLSRPTv1; rua=mailto:a@example.org",
            "v=TLSRPTv1; rua=mailto:b@example.org",
        ][..],
        &[],
        &["v=spf1 -all"],
        // Wrong version, or case.
        &["v=TLSRPTv2; rua=mailto:a@example.org"],
        &["v=TLSRPTv10; rua=mailto:a@example.org"],
        &["v=tlsrptv1; rua=mailto:a@example.org"],
        &["rua=mailto:a@example.org; v=TLSRPTv1"],
        // No `;` after the version, no rua, an empty rua.
        &["v=TLSRPTv1"],
        &["v=TLSRPTv1 rua=mailto:a@example.org"],
        &["v=TLSRPTv1;"],
        &["v=TLSRPTv1; ext=1"],
        &["v=TLSRPTv1; rua="],
        &["v=TLSRPTv1; rua=mailto:a@example.org,,https://x.example/"],
        // Two rua fields, malformed fields.
        &["v=TLSRPTv1; rua=mailto:a@example.org; rua=mailto:b@example.org"],
        &["v=TLSRPTv1; rua=mailto:a@example.org; garbage"],
        &["v=TLSRPTv1; rua=mailto:a@example.org;; x=1"],
        &["v=TLSRPTv1; rua=mailto:a@example.org; -x=1"],
        // Only schemes reports cannot go to, or URIs that are not usable.
        &["v=TLSRPTv1; rua=http://reports.example.net/"],
        &["v=TLSRPTv1; rua=mailto:"],
        &["v=TLSRPTv1; rua=https://"],
        &["v=TLSRPTv1; rua=mailto:a@example.org\u{7}"],
    ] {
        assert_eq!(rua(&records(set)), None, "{set:?}");
    }
}

#[test]
fn mailto_addresses() {
    assert_eq!(
        mailto_address("mailto:TLS-Reports@Example.ORG").as_deref(),
        Some("TLS-Reports@example.org")
    );
    assert_eq!(
        mailto_address("MAILTO:tls%2Breports@example.org?subject=x").as_deref(),
        Some("tls+reports@example.org")
    );
    assert_eq!(mailto_address("https://example.org/"), None);
    assert_eq!(mailto_address("mailto:a@example.org,b@example.org"), None);
    assert_eq!(mailto_address("mailto:nobody"), None);
}

// ---------------------------------------------------------------------------------------
// message()

/// 2026-11-23 01:00:00 UTC.
fn sent() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs((END + 1 + 3600) as u64)
}

/// The header section as (name, value) pairs, unfolded.
fn header_fields(message: &str) -> Vec<(String, String)> {
    let head = message.split("\r\n\r\n").next().unwrap();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            fields.last_mut().unwrap().1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }
    fields
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The base64 body of the attachment, decoded.
fn attachment(message: &str) -> Vec<u8> {
    let start = message
        .find("Content-Type: application/tlsrpt+gzip")
        .unwrap();
    let part = &message[start..];
    let body_start = part.find("\r\n\r\n").unwrap() + 4;
    let body = &part[body_start..];
    let end = body.find("\r\n--").unwrap();
    decode_base64(&body[..end])
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut bits = 0u32;
    let mut count = 0;
    for line in text.split("\r\n") {
        assert!(line.len() <= 76);
        for c in line.bytes().filter(|&c| c != b'=') {
            let value = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
            bits = bits << 6 | value;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
            }
        }
    }
    out
}

#[test]
fn message_carries_the_report() {
    let report = aggregate(&reporter(), "example.org", BEGIN, END, &observations()).unwrap();
    let mail = message(
        &reporter(),
        "example.org",
        &report,
        "mailto:tlsrpt@example.org",
        sent(),
    );
    let text = String::from_utf8(mail.clone()).unwrap();

    // CRLF only, header lines within 78 characters when they can be.
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    let fields = header_fields(&text);
    assert_eq!(field(&fields, "From"), ["tlsrpt@mx.example.net"]);
    assert_eq!(field(&fields, "To"), ["tlsrpt@example.org"]);
    assert_eq!(field(&fields, "Date"), ["Mon, 23 Nov 2026 01:00:00 +0000"]);
    let message_id = field(&fields, "Message-ID");
    assert_eq!(message_id.len(), 1);
    assert!(message_id[0].starts_with('<') && message_id[0].ends_with("@mx.example.net>"));
    let subject = field(&fields, "Subject");
    assert_eq!(
        subject,
        [format!(
            "Report Domain: example.org Submitter: mx.example.net Report-ID: <{}>",
            report.report_id
        )
        .as_str()]
    );
    assert_eq!(field(&fields, "TLS-Report-Domain"), ["example.org"]);
    assert_eq!(field(&fields, "TLS-Report-Submitter"), ["mx.example.net"]);
    assert_eq!(field(&fields, "MIME-Version"), ["1.0"]);
    assert_eq!(field(&fields, "Auto-Submitted"), ["auto-generated"]);
    let content_type = field(&fields, "Content-Type");
    assert_eq!(content_type.len(), 1);
    assert!(
        content_type[0].starts_with("multipart/report; report-type=\"tlsrpt\";"),
        "{content_type:?}"
    );
    assert!(text.contains("Content-Type: text/plain"));
    // Unfolded (RFC 5322 §2.2.3): the file name of §5.1.
    let unfolded = text.replace("\r\n ", " ");
    assert!(unfolded.contains(&format!(
        "Content-Disposition: attachment; filename=\"{}\"",
        report.filename
    )));
    assert!(unfolded.contains(&format!(
        "Content-Type: application/tlsrpt+gzip; name=\"{}\"",
        report.filename
    )));
    assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));

    // The attachment is the gzipped JSON.
    let gzipped = attachment(&text);
    assert_eq!(gzipped, report.gzipped);
    assert_eq!(gunzip(&gzipped), report.json);

    // mail-auth's report parser finds it too.
    let parsed = TlsReport::parse_rfc5322(&mail, 1 << 20).unwrap();
    assert_eq!(parsed, TlsReport::parse_json(&report.json).unwrap());

    // And mail-parser sees the structure.
    let parsed = mail_parser::MessageParser::new().parse(&mail).unwrap();
    assert_eq!(parsed.subject(), Some(subject[0]));
    assert_eq!(parsed.attachment_count(), 1);
    let part = parsed.attachment(0).unwrap();
    use mail_parser::MimeHeaders;
    assert_eq!(part.attachment_name(), Some(report.filename.as_str()));
    assert_eq!(part.contents(), report.gzipped.as_slice());
}

#[test]
fn message_is_the_same_for_the_same_input() {
    let report = aggregate(&reporter(), "example.org", BEGIN, END, &observations()).unwrap();
    let one = message(&reporter(), "example.org", &report, "a@example.org", sent());
    let two = message(&reporter(), "example.org", &report, "a@example.org", sent());
    assert_eq!(one, two);
    let other = message(&reporter(), "example.org", &report, "b@example.org", sent());
    let id = |m: &[u8]| {
        let text = String::from_utf8(m.to_vec()).unwrap();
        field(&header_fields(&text), "Message-ID")[0].to_string()
    };
    assert_ne!(id(&one), id(&other));
}

#[test]
fn message_resists_header_injection() {
    let report = aggregate(&reporter(), "example.org", BEGIN, END, &observations()).unwrap();
    let hostile_reporter = Reporter {
        org_name: "Evil\r\nBcc: victim@example.com\r\n\r\n--x".to_string(),
        contact: "a@b.example\r\nBcc: victim@example.com".to_string(),
        hostname: "mx.example.net\r\nX-Injected: 1".to_string(),
    };
    let mail = message(
        &hostile_reporter,
        "example.org\r\nBcc: victim@example.com\r\nX-Injected: yes",
        &report,
        "to@example.org\r\nCc: victim@example.com",
        sent(),
    );
    let text = String::from_utf8(mail).unwrap();
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    let fields = header_fields(&text);
    for name in ["Bcc", "Cc", "X-Injected"] {
        assert!(field(&fields, name).is_empty(), "{name} injected: {text}");
    }
    for line in text.split("\r\n") {
        assert!(
            !line.starts_with("Bcc:")
                && !line.starts_with("Cc:")
                && !line.starts_with("X-Injected"),
            "{line:?}"
        );
    }
    for name in [
        "From",
        "To",
        "Date",
        "Message-ID",
        "Subject",
        "TLS-Report-Domain",
        "TLS-Report-Submitter",
        "Content-Type",
    ] {
        assert_eq!(field(&fields, name).len(), 1, "{name}");
    }
    // The hostile domain is reduced to host name characters.
    assert_eq!(
        field(&fields, "TLS-Report-Domain"),
        ["example.orgBccvictimexample.comX-Injectedyes"]
    );
    // Still one report attachment, still readable.
    let parsed = mail_parser::MessageParser::new()
        .parse(text.as_bytes())
        .unwrap();
    assert_eq!(parsed.attachment_count(), 1);
    assert_eq!(gunzip(&attachment(&text)), report.json);
}
