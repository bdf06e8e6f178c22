//! The MX's connection checks against the testkit's DNS server on loopback: DNS lists, reverse
//! DNS, HELO, sender and recipient. No test asks the internet.

use facteur_dns::{Resolver, ResolverOptions};
use facteur_protect::checks::{self, CheckOptions, ClientChecks, Finding, ListZone, Refusal, Rule};
use facteur_testkit::dns::{DnsServer, ResponseCode};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

fn server() -> DnsServer {
    DnsServer::start("127.0.0.1:0".parse().unwrap())
}

fn resolver(dns: &DnsServer) -> Resolver {
    Resolver::new(&ResolverOptions {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn reply(f: &Finding) -> String {
    f.reply
        .as_ref()
        .map(Refusal::to_string)
        .unwrap_or_else(|| panic!("{} has no reply: {f:?}", f.name))
}

fn named<'a>(result: &'a ClientChecks, name: &str) -> &'a Finding {
    result
        .findings
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", result.findings))
}

fn dnsbl(zones: &[(&str, Rule)]) -> CheckOptions {
    CheckOptions {
        dnsbl: zones.iter().map(|(z, r)| ListZone::new(z, *r)).collect(),
        ..CheckOptions::default()
    }
}

// ---- DNS lists -------------------------------------------------------------------------------

#[tokio::test]
async fn dnsbl_listing_is_refused_with_the_txt_reason() {
    let dns = server();
    dns.add_a("99.2.0.192.zen.example.org", v4("127.0.0.2"))
        .add_txt(
            "99.2.0.192.zen.example.org",
            "https://www.example.org/query/ip/192.0.2.99",
        )
        .add_a("99.2.0.192.bl.example.net", v4("127.0.0.2"));
    let options = dnsbl(&[
        ("zen.example.org", Rule::Reject),
        ("bl.example.net", Rule::Reject),
        ("clean.example.com", Rule::Reject),
    ]);
    let result = checks::client(&resolver(&dns), ip("192.0.2.99"), &options).await;
    assert_eq!(result.findings.len(), 2, "{:?}", result.findings);
    assert!(!result.whitelisted);
    let zen = &result.findings[0];
    assert_eq!(zen.name, "RCVD_IN_ZEN_EXAMPLE_ORG");
    assert_eq!(zen.rule, Rule::Reject);
    assert!(zen.description.contains("127.0.0.2"), "{}", zen.description);
    assert_eq!(
        reply(zen),
        "554 5.7.1 Service unavailable; Client host [192.0.2.99] blocked using \
         zen.example.org; https://www.example.org/query/ip/192.0.2.99"
    );
    // Without TXT record, the reason is "listed".
    let bl = &result.findings[1];
    assert_eq!(bl.name, "RCVD_IN_BL_EXAMPLE_NET");
    assert_eq!(
        reply(bl),
        "554 5.7.1 Service unavailable; Client host [192.0.2.99] blocked using bl.example.net; listed"
    );
}

#[tokio::test]
async fn client_not_listed_has_no_finding() {
    let dns = server();
    dns.add_a("2.0.0.127.zen.example.org", v4("127.0.0.2"));
    let options = dnsbl(&[("zen.example.org", Rule::Reject)]);
    let result = checks::client(&resolver(&dns), ip("192.0.2.1"), &options).await;
    assert_eq!(result.findings, vec![]);
    assert!(!result.whitelisted);
}

#[tokio::test]
async fn a_txt_reason_cannot_break_the_reply_line() {
    let dns = server();
    dns.add_a("7.2.0.192.zen.example.org", v4("127.0.0.3"))
        .add_txt("7.2.0.192.zen.example.org", "spam\r\n250 OK\u{e9}")
        .add_txt("7.2.0.192.zen.example.org", &"x".repeat(1000));
    let options = dnsbl(&[("zen.example.org", Rule::Reject)]);
    let result = checks::client(&resolver(&dns), ip("192.0.2.7"), &options).await;
    let line = reply(named(&result, "RCVD_IN_ZEN_EXAMPLE_ORG"));
    assert!(
        line.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
        "{line:?}"
    );
    assert!(line.contains("spam??250 OK?"), "{line}");
    assert!(line.len() < 510, "{} octets", line.len());
}

#[tokio::test]
async fn refused_query_answer_is_not_a_listing() {
    let dns = server();
    // Spamhaus's "query through a public resolver refused", and an answer outside 127/8.
    dns.add_a("5.2.0.192.zen.example.org", v4("127.255.255.254"))
        .add_a("5.2.0.192.wild.example.net", v4("192.0.2.250"));
    let options = dnsbl(&[
        ("zen.example.org", Rule::Reject),
        ("wild.example.net", Rule::Reject),
    ]);
    let result = checks::client(&resolver(&dns), ip("192.0.2.5"), &options).await;
    assert_eq!(result.findings, vec![]);
}

#[tokio::test]
async fn only_configured_codes_count() {
    let dns = server();
    dns.add_a("6.2.0.192.zen.example.org", v4("127.0.0.10"))
        .add_a("8.2.0.192.zen.example.org", v4("127.0.0.4"));
    let mut zone = ListZone::new("zen.example.org", Rule::Reject);
    zone.codes = vec![v4("127.0.0.2"), v4("127.0.0.3"), v4("127.0.0.4")];
    let options = CheckOptions {
        dnsbl: vec![zone],
        ..CheckOptions::default()
    };
    let resolver = resolver(&dns);
    let pbl = checks::client(&resolver, ip("192.0.2.6"), &options).await;
    assert_eq!(pbl.findings, vec![]);
    let xbl = checks::client(&resolver, ip("192.0.2.8"), &options).await;
    assert_eq!(xbl.findings.len(), 1, "{:?}", xbl.findings);
}

#[tokio::test]
async fn ipv6_client_is_queried_by_nibbles() {
    let dns = server();
    dns.add_a(
        "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.example.org",
        v4("127.0.0.2"),
    );
    let options = dnsbl(&[("v6.example.org", Rule::Reject)]);
    let resolver = resolver(&dns);
    let result = checks::client(&resolver, ip("2001:db8::25"), &options).await;
    let line = reply(named(&result, "RCVD_IN_V6_EXAMPLE_ORG"));
    assert!(
        line.contains("[2001:db8::25] blocked using v6.example.org"),
        "{line}"
    );
    let other = checks::client(&resolver, ip("2001:db8::26"), &options).await;
    assert_eq!(other.findings, vec![]);
}

#[tokio::test]
async fn dnswl_whitelists_and_waives_the_hard_refusals() {
    let dns = server();
    dns.add_a("20.2.0.192.zen.example.org", v4("127.0.0.2"))
        .add_a("20.2.0.192.list.dnswl.example", v4("127.0.10.2"))
        .add_txt(
            "20.2.0.192.list.dnswl.example",
            "https://dnswl.example/s/?s=1",
        );
    let mut options = dnsbl(&[("zen.example.org", Rule::Reject)]);
    options.reverse_dns_missing = Rule::Reject;
    options.dnswl = vec![ListZone::new("list.dnswl.example", Rule::Reject)];
    let resolver = resolver(&dns);
    let result = checks::client(&resolver, ip("192.0.2.20"), &options).await;
    assert!(result.whitelisted);
    assert!(
        result.findings.iter().all(|f| f.reply.is_none()),
        "{:?}",
        result.findings
    );
    // The listings stay in the log, as notes.
    let listed = named(&result, "RCVD_IN_ZEN_EXAMPLE_ORG");
    assert_eq!(listed.rule, Rule::Off);
    assert!(
        listed.description.contains("list.dnswl.example"),
        "{}",
        listed.description
    );
    assert_eq!(named(&result, "RDNS_NONE").rule, Rule::Off);
    assert!(
        named(&result, "RCVD_IN_LIST_DNSWL_EXAMPLE")
            .description
            .contains("127.0.10.2")
    );

    // As a score, the whitelist weighs against the blocklist and waives nothing.
    options.dnswl = vec![ListZone::new("list.dnswl.example", Rule::Score(-5.0))];
    let result = checks::client(&resolver, ip("192.0.2.20"), &options).await;
    assert!(result.whitelisted);
    assert_eq!(
        named(&result, "RCVD_IN_LIST_DNSWL_EXAMPLE").rule,
        Rule::Score(-5.0)
    );
    assert!(named(&result, "RCVD_IN_ZEN_EXAMPLE_ORG").reply.is_some());
    // Not on the whitelist: not whitelisted.
    let other = checks::client(&resolver, ip("192.0.2.21"), &options).await;
    assert!(!other.whitelisted);
}

#[tokio::test]
async fn scored_and_disabled_zones() {
    let dns = server();
    dns.add_a("30.2.0.192.zen.example.org", v4("127.0.0.2"))
        .add_a("30.2.0.192.off.example.org", v4("127.0.0.2"));
    let options = dnsbl(&[
        ("zen.example.org", Rule::Score(3.5)),
        ("off.example.org", Rule::Off),
    ]);
    let result = checks::client(&resolver(&dns), ip("192.0.2.30"), &options).await;
    assert_eq!(result.findings.len(), 1, "{:?}", result.findings);
    assert_eq!(result.findings[0].name, "RCVD_IN_ZEN_EXAMPLE_ORG");
    assert_eq!(result.findings[0].rule, Rule::Score(3.5));
    assert_eq!(result.findings[0].reply, None);
}

#[tokio::test]
async fn internal_clients_are_not_sent_to_the_lists() {
    let dns = server();
    dns.add_a("5.0.0.10.zen.example.org", v4("127.0.0.2"));
    let options = dnsbl(&[("zen.example.org", Rule::Reject)]);
    let result = checks::client(&resolver(&dns), ip("10.0.0.5"), &options).await;
    assert_eq!(result.findings, vec![]);
    // One question only: the reverse DNS.
    assert_eq!(dns.queries(), 1);
}

#[tokio::test]
async fn failing_list_is_not_a_listing() {
    let dns = server();
    dns.add_a("40.2.0.192.zen.example.org", v4("127.0.0.2"))
        .fail("40.2.0.192.zen.example.org", ResponseCode::ServFail);
    let options = dnsbl(&[("zen.example.org", Rule::Reject)]);
    let result = checks::client(&resolver(&dns), ip("192.0.2.40"), &options).await;
    assert_eq!(result.findings, vec![]);
}

#[tokio::test]
async fn silent_name_server_delays_all_lookups_together_and_refuses_nothing() {
    // A UDP socket nobody reads: every question times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = Resolver::new(&ResolverOptions {
        nameservers: vec![silent.local_addr().unwrap()],
        timeout: Duration::from_secs(1),
        attempts: 1,
    })
    .unwrap();
    let mut options = dnsbl(&[
        ("a.example.org", Rule::Reject),
        ("b.example.org", Rule::Reject),
        ("c.example.org", Rule::Reject),
    ]);
    options.dnswl = vec![ListZone::new("wl.example.org", Rule::Reject)];
    options.reverse_dns_missing = Rule::Reject;
    let started = Instant::now();
    let result = checks::client(&resolver, ip("192.0.2.50"), &options).await;
    let took = started.elapsed();
    // Five lookups of one second each: together, not one after the other.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3000),
        "took {took:?}"
    );
    assert!(!result.whitelisted);
    assert_eq!(result.findings.len(), 1, "{:?}", result.findings);
    let note = named(&result, "RDNS_TEMPFAIL");
    assert_eq!((note.rule, note.reply.as_ref()), (Rule::Off, None));
    drop(silent);
}

// ---- Reverse DNS -----------------------------------------------------------------------------

fn rdns(rule: Rule) -> CheckOptions {
    CheckOptions {
        reverse_dns_missing: rule,
        ..CheckOptions::default()
    }
}

#[tokio::test]
async fn reverse_dns_present_and_forward_confirmed() {
    let dns = server();
    dns.add_ptr("60.2.0.192.in-addr.arpa", "mail.example.com.")
        .add_a("mail.example.com", v4("192.0.2.60"));
    let result = checks::client(&resolver(&dns), ip("192.0.2.60"), &rdns(Rule::Reject)).await;
    assert_eq!(result.findings, vec![]);
    assert_eq!(result.reverse_name.as_deref(), Some("mail.example.com"));
    assert!(result.forward_confirmed);
}

#[tokio::test]
async fn reverse_dns_present_but_not_confirmed_is_a_note() {
    let dns = server();
    dns.add_ptr("61.2.0.192.in-addr.arpa", "dynamic.example.net")
        .add_a("dynamic.example.net", v4("198.51.100.1"));
    let result = checks::client(&resolver(&dns), ip("192.0.2.61"), &rdns(Rule::Reject)).await;
    assert_eq!(result.reverse_name.as_deref(), Some("dynamic.example.net"));
    assert!(!result.forward_confirmed);
    let note = named(&result, "RDNS_NOT_CONFIRMED");
    assert_eq!((note.rule, note.reply.as_ref()), (Rule::Off, None));
    assert!(
        note.description.contains("dynamic.example.net"),
        "{}",
        note.description
    );
}

#[tokio::test]
async fn reverse_dns_absent_is_refused_with_450() {
    let dns = server();
    // Also a PTR that is no host name: as good as none (Postfix does the same).
    dns.add_ptr("63.2.0.192.in-addr.arpa", "192.0.2.63");
    let resolver = resolver(&dns);
    for client in ["192.0.2.62", "192.0.2.63"] {
        let result = checks::client(&resolver, ip(client), &rdns(Rule::Reject)).await;
        assert_eq!(result.findings.len(), 1, "{:?}", result.findings);
        assert_eq!(result.reverse_name, None);
        assert_eq!(
            reply(named(&result, "RDNS_NONE")),
            format!(
                "450 4.7.1 Client host rejected: cannot find your reverse hostname, [{client}]"
            )
        );
    }
    let v6 = checks::client(&resolver, ip("2001:db8::62"), &rdns(Rule::Reject)).await;
    assert!(reply(named(&v6, "RDNS_NONE")).ends_with(", [2001:db8::62]"));
    // Scored: a score, no reply. Off: nothing.
    let scored = checks::client(&resolver, ip("192.0.2.62"), &rdns(Rule::Score(1.5))).await;
    assert_eq!(named(&scored, "RDNS_NONE").rule, Rule::Score(1.5));
    assert_eq!(named(&scored, "RDNS_NONE").reply, None);
    let off = checks::client(&resolver, ip("192.0.2.62"), &rdns(Rule::Off)).await;
    assert_eq!(off.findings, vec![]);
}

#[tokio::test]
async fn reverse_dns_servfail_is_never_refused() {
    let dns = server();
    dns.fail("64.2.0.192.in-addr.arpa", ResponseCode::ServFail);
    let result = checks::client(&resolver(&dns), ip("192.0.2.64"), &rdns(Rule::Reject)).await;
    assert_eq!(result.findings.len(), 1, "{:?}", result.findings);
    let note = named(&result, "RDNS_TEMPFAIL");
    assert_eq!((note.rule, note.reply.as_ref()), (Rule::Off, None));
    assert!(
        note.description.contains("SERVFAIL"),
        "{}",
        note.description
    );
}

// ---- MAIL FROM -------------------------------------------------------------------------------

fn unknown_sender(rule: Rule) -> CheckOptions {
    CheckOptions {
        sender_unknown_domain: rule,
        ..CheckOptions::default()
    }
}

#[tokio::test]
async fn sender_domains_that_receive_mail_pass() {
    let dns = server();
    dns.add_mx("example.com", 10, "mx.example.com")
        .add_a("aonly.example.com", v4("192.0.2.70"))
        .add_aaaa("v6only.example.com", "2001:db8::70".parse().unwrap());
    let resolver = resolver(&dns);
    let options = unknown_sender(Rule::Reject);
    for sender in [
        "<user@example.com>",
        "user@aonly.example.com",
        "<user@v6only.example.com>",
        "<>",
        "",
        "<user@[192.0.2.1]>",
    ] {
        assert_eq!(
            checks::sender(&resolver, sender, &options).await,
            vec![],
            "{sender}"
        );
    }
}

#[tokio::test]
async fn sender_domain_not_found_is_550() {
    let dns = server();
    // NXDOMAIN, and a name that exists with neither MX nor address.
    dns.add_txt("txtonly.example.com", "v=spf1 -all");
    let resolver = resolver(&dns);
    for (sender, shown) in [
        ("<user@nowhere.example.com>", "user@nowhere.example.com"),
        ("user@txtonly.example.com", "user@txtonly.example.com"),
        ("<user@bad_domain!.example>", "user@bad_domain!.example"),
    ] {
        let findings = checks::sender(&resolver, sender, &unknown_sender(Rule::Reject)).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].name, "SENDER_DOMAIN_UNKNOWN");
        assert_eq!(
            reply(&findings[0]),
            format!("550 5.1.8 <{shown}>: Sender address rejected: Domain not found")
        );
    }
}

#[tokio::test]
async fn sender_domain_servfail_is_450_never_550() {
    let dns = server();
    dns.fail("broken.example.com", ResponseCode::ServFail);
    let resolver = resolver(&dns);
    let findings = checks::sender(
        &resolver,
        "<a@broken.example.com>",
        &unknown_sender(Rule::Reject),
    )
    .await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].name, "SENDER_DOMAIN_TEMPFAIL");
    assert_eq!(
        reply(&findings[0]),
        "450 4.1.8 <a@broken.example.com>: Sender address rejected: Domain not found"
    );
    // Scored: a temporary failure is noted, not scored.
    let findings = checks::sender(
        &resolver,
        "<a@broken.example.com>",
        &unknown_sender(Rule::Score(2.0)),
    )
    .await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        (findings[0].rule, findings[0].reply.as_ref()),
        (Rule::Off, None)
    );
}

/// A name server that answers MX questions with NODATA (RFC 2308 §2.2) and every other one
/// with SERVFAIL: a domain without MX whose address lookups fail for now, which the table
/// server cannot play (its failures are per name, not per type). Stops when dropped.
struct MxOnlyServer {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MxOnlyServer {
    fn start() -> MxOnlyServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            // At most 60 s, whatever happens to the test.
            for _ in 0..1200 {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = Self::reply(&buf[..len]) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        MxOnlyServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// RFC 1035 §4.1: the header with QR, RD, RA and the RCODE, the question copied back.
    fn reply(query: &[u8]) -> Option<Vec<u8>> {
        let mut end = 12;
        while *query.get(end)? != 0 {
            end += 1 + usize::from(*query.get(end)?);
        }
        let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
        let question = query.get(12..end + 5)?;
        let rcode = if qtype == 15 { 0 } else { 2 };
        let mut reply = vec![
            query[0],
            query[1],
            0x81,
            0x80 | rcode,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        reply.extend_from_slice(question);
        Some(reply)
    }
}

impl Drop for MxOnlyServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn sender_domain_address_lookup_servfail_is_450() {
    let dns = MxOnlyServer::start();
    let resolver = Resolver::new(&ResolverOptions {
        nameservers: vec![dns.addr],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .unwrap();
    // The domain has no MX; its addresses cannot be looked up for now.
    assert_eq!(
        resolver.mx("flaky.example.com").await,
        Ok(facteur_dns::MxAnswer::NoMx)
    );
    assert!(matches!(
        resolver.ips("flaky.example.com").await,
        Err(facteur_dns::DnsError::Temporary(_))
    ));
    let findings = checks::sender(
        &resolver,
        "a@flaky.example.com",
        &unknown_sender(Rule::Reject),
    )
    .await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].name, "SENDER_DOMAIN_TEMPFAIL");
    assert_eq!(
        reply(&findings[0]),
        "450 4.1.8 <a@flaky.example.com>: Sender address rejected: Domain not found"
    );
}

#[tokio::test]
async fn sender_domain_with_null_mx_is_550_5_7_27() {
    let dns = server();
    dns.add_null_mx("nomail.example.com")
        .add_a("nomail.example.com", v4("192.0.2.80"));
    let resolver = resolver(&dns);
    let findings = checks::sender(
        &resolver,
        "<x@nomail.example.com>",
        &unknown_sender(Rule::Reject),
    )
    .await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].name, "SENDER_DOMAIN_NULL_MX");
    assert_eq!(
        reply(&findings[0]),
        "550 5.7.27 <x@nomail.example.com>: Sender address rejected: Domain \
         nomail.example.com does not accept mail (null MX)"
    );
    let scored = checks::sender(
        &resolver,
        "<x@nomail.example.com>",
        &unknown_sender(Rule::Score(4.0)),
    )
    .await;
    assert_eq!(scored.len(), 1);
    assert_eq!(
        (scored[0].rule, scored[0].reply.as_ref()),
        (Rule::Score(4.0), None)
    );
}

#[tokio::test]
async fn sender_checks_off_ask_nothing() {
    let dns = server();
    let findings = checks::sender(
        &resolver(&dns),
        "<user@nowhere.example.com>",
        &CheckOptions::default(),
    )
    .await;
    assert_eq!(findings, vec![]);
    let findings = checks::sender(&resolver(&dns), "user", &CheckOptions::default()).await;
    assert_eq!(findings, vec![]);
    assert_eq!(dns.queries(), 0);
}

#[tokio::test]
async fn non_fqdn_sender_is_504() {
    let dns = server();
    let resolver = resolver(&dns);
    let options = CheckOptions {
        sender_non_fqdn: Rule::Reject,
        ..CheckOptions::default()
    };
    for (sender, shown) in [
        ("<user>", "user"),
        ("<user@localhost>", "user@localhost"),
        ("user@host.123", "user@host.123"),
    ] {
        let findings = checks::sender(&resolver, sender, &options).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].name, "SENDER_NOT_FQDN");
        assert_eq!(
            reply(&findings[0]),
            format!("504 5.5.2 <{shown}>: Sender address rejected: need fully-qualified address")
        );
    }
    for fine in [
        "<user@example.com>",
        "<>",
        "user@[192.0.2.1]",
        "<user@mail.example.com.>",
    ] {
        assert_eq!(
            checks::sender(&resolver, fine, &options).await,
            vec![],
            "{fine}"
        );
    }
    let scored = CheckOptions {
        sender_non_fqdn: Rule::Score(1.0),
        ..CheckOptions::default()
    };
    let findings = checks::sender(&resolver, "<user>", &scored).await;
    assert_eq!(
        (findings[0].rule, findings[0].reply.as_ref()),
        (Rule::Score(1.0), None)
    );
    assert_eq!(dns.queries(), 0);
}

// ---- RCPT TO ---------------------------------------------------------------------------------

#[test]
fn non_fqdn_recipient_is_504_except_postmaster() {
    let options = CheckOptions {
        recipient_non_fqdn: Rule::Reject,
        ..CheckOptions::default()
    };
    let findings = checks::recipient("<bob@intranet>", &options);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].name, "RECIPIENT_NOT_FQDN");
    assert_eq!(
        reply(&findings[0]),
        "504 5.5.2 <bob@intranet>: Recipient address rejected: need fully-qualified address"
    );
    assert_eq!(checks::recipient("<bob>", &options).len(), 1);
    for fine in [
        "<bob@example.com>",
        "<Postmaster>",
        "postmaster",
        "<bob@[IPv6:2001:db8::1]>",
    ] {
        assert_eq!(checks::recipient(fine, &options), vec![], "{fine}");
    }
    let scored = CheckOptions {
        recipient_non_fqdn: Rule::Score(0.5),
        ..CheckOptions::default()
    };
    let findings = checks::recipient("<bob@intranet>", &scored);
    assert_eq!(
        (findings[0].rule, findings[0].reply.as_ref()),
        (Rule::Score(0.5), None)
    );
    assert_eq!(
        checks::recipient("<bob@intranet>", &CheckOptions::default()),
        vec![]
    );
}

// ---- HELO ------------------------------------------------------------------------------------

#[test]
fn helo_names() {
    let options = CheckOptions {
        helo_invalid: Rule::Reject,
        helo_non_fqdn: Rule::Reject,
        ..CheckOptions::default()
    };
    for valid in [
        "mail.example.com",
        "MAIL.Example.COM.",
        "mx1.bücher.example",
    ] {
        assert_eq!(checks::helo(valid, &options), vec![], "{valid}");
    }
    // A bare word: valid, not fully qualified.
    let bare = checks::helo("localhost", &options);
    assert_eq!(bare.len(), 1);
    assert_eq!(bare[0].name, "HELO_NOT_FQDN");
    assert_eq!(
        reply(&bare[0]),
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
    );
    // Address literals and a bare address: valid syntax, not fully qualified.
    for literal in ["[192.0.2.1]", "[IPv6:2001:db8::1]", "192.0.2.1"] {
        let f = checks::helo(literal, &options);
        assert_eq!(f.len(), 1, "{literal}: {f:?}");
        assert_eq!(f[0].name, "HELO_NOT_FQDN", "{literal}");
    }
    // Invalid: reported once, as invalid.
    for invalid in [
        "mail_1.example.com",
        "mail..example.com",
        "-x.example.com",
        "[999.1.1.1]",
        "a b",
        "",
    ] {
        let f = checks::helo(invalid, &options);
        assert_eq!(f.len(), 1, "{invalid}: {f:?}");
        assert_eq!(f[0].name, "HELO_INVALID", "{invalid}");
    }
    assert_eq!(
        reply(&checks::helo("mail_1.example.com", &options)[0]),
        "501 5.5.2 <mail_1.example.com>: Helo command rejected: Invalid name"
    );
    // Scored and off.
    let scored = CheckOptions {
        helo_invalid: Rule::Score(2.0),
        helo_non_fqdn: Rule::Score(1.0),
        ..CheckOptions::default()
    };
    let f = checks::helo("localhost", &scored);
    assert_eq!((f[0].rule, f[0].reply.as_ref()), (Rule::Score(1.0), None));
    let f = checks::helo("a b", &scored);
    assert_eq!(
        (f[0].name.as_str(), f[0].rule),
        ("HELO_INVALID", Rule::Score(2.0))
    );
    assert_eq!(checks::helo("a b", &CheckOptions::default()), vec![]);
    assert_eq!(checks::helo("localhost", &CheckOptions::default()), vec![]);
}
