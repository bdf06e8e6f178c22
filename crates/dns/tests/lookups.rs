//! The resolver against the testkit's DNS server on loopback: no test asks the internet.

use facteur_dns::{DnsError, Mx, MxAnswer, Resolver, ResolverOptions};
use facteur_testkit::dns::{DnsServer, ResponseCode};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

fn server() -> DnsServer {
    DnsServer::start("127.0.0.1:0".parse().unwrap())
}

fn resolver_for(addr: SocketAddr, timeout_secs: u64, attempts: u32) -> Resolver {
    Resolver::new(&ResolverOptions {
        nameservers: vec![addr],
        timeout: Duration::from_secs(timeout_secs),
        attempts,
    })
    .unwrap()
}

fn resolver(server: &DnsServer) -> Resolver {
    resolver_for(server.addr(), 2, 2)
}

fn mx(preference: u16, exchange: &str) -> Mx {
    Mx {
        preference,
        exchange: exchange.into(),
    }
}

#[tokio::test]
async fn mx_sorted_by_preference_with_equal_ones_shuffled() {
    let dns = server();
    dns.add_mx("example.com", 20, "backup.example.com")
        .add_mx("example.com", 10, "b.example.com")
        .add_mx("example.com", 5, "first.example.com")
        .add_mx("example.com", 10, "a.example.com.");
    let resolver = resolver(&dns);
    let mut orders = HashSet::new();
    // Each order of the two preference-10 hosts has probability 1/2: 64 lookups miss one with
    // probability 2^-63. The resolver's cache answers most of them; the shuffle is ours.
    for _ in 0..64 {
        let Ok(MxAnswer::Records(records)) = resolver.mx("example.com").await else {
            panic!("MX records expected");
        };
        assert_eq!(records.len(), 4);
        assert_eq!(records[0], mx(5, "first.example.com"));
        assert_eq!(records[3], mx(20, "backup.example.com"));
        let middle: Vec<&str> = records[1..3].iter().map(|m| m.exchange.as_str()).collect();
        assert!(
            records[1..3].iter().all(|m| m.preference == 10),
            "{records:?}"
        );
        orders.insert(middle.join(" "));
    }
    assert_eq!(
        orders,
        HashSet::from([
            "a.example.com b.example.com".into(),
            "b.example.com a.example.com".into()
        ])
    );
}

#[tokio::test]
async fn null_mx() {
    let dns = server();
    dns.add_null_mx("nomail.example.com")
        .add_a("nomail.example.com", Ipv4Addr::new(192, 0, 2, 7));
    assert_eq!(
        resolver(&dns).mx("nomail.example.com").await,
        Ok(MxAnswer::NullMx)
    );
}

#[tokio::test]
async fn existing_domain_without_mx_is_no_mx() {
    let dns = server();
    dns.add_a("implicit.example.com", Ipv4Addr::new(192, 0, 2, 8));
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.mx("implicit.example.com").await,
        Ok(MxAnswer::NoMx)
    );
    // The caller then uses the domain itself (RFC 5321 §5.1 implicit MX).
    assert_eq!(
        resolver.ips("implicit.example.com").await,
        Ok(vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8))])
    );
}

#[tokio::test]
async fn nxdomain_is_not_found() {
    let dns = server();
    dns.add_mx("example.com", 10, "mx.example.com");
    let resolver = resolver(&dns);
    for result in [
        resolver.mx("nowhere.example.com").await.map(|_| ()),
        resolver.ips("nowhere.example.com").await.map(|_| ()),
        resolver.txt("nowhere.example.com").await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, DnsError::NotFound(_)), "{err:?}");
        assert!(err.is_permanent());
        let text = err.to_string();
        assert!(
            text.contains("nowhere.example.com") && text.contains("NXDOMAIN"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn servfail_is_temporary() {
    let dns = server();
    dns.add_mx("broken.example.com", 10, "mx.example.com")
        .fail("broken.example.com", ResponseCode::ServFail)
        .fail("refusing.example.com", ResponseCode::Refused);
    let resolver = resolver(&dns);
    let err = resolver.mx("broken.example.com").await.unwrap_err();
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
    assert!(!err.is_permanent());
    let text = err.to_string();
    assert!(
        text.contains("broken.example.com") && text.contains("SERVFAIL"),
        "{text}"
    );
    let err = resolver.ips("broken.example.com").await.unwrap_err();
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
    let err = resolver.txt("refusing.example.com").await.unwrap_err();
    assert!(
        matches!(&err, DnsError::Temporary(t) if t.contains("REFUSED")),
        "{err:?}"
    );
    // Once the server recovers, so does the lookup: failures are not cached.
    dns.remove("broken.example.com")
        .add_mx("broken.example.com", 10, "mx.example.com");
    assert_eq!(
        resolver.mx("broken.example.com").await,
        Ok(MxAnswer::Records(vec![mx(10, "mx.example.com")]))
    );
}

#[tokio::test]
async fn ipv6_first_then_ipv4() {
    let dns = server();
    dns.add_a("mx.example.com", Ipv4Addr::new(192, 0, 2, 1))
        .add_aaaa("mx.example.com", "2001:db8::1".parse().unwrap())
        .add_a("mx.example.com", Ipv4Addr::new(192, 0, 2, 2))
        .add_aaaa("v6only.example.com", Ipv6Addr::LOCALHOST)
        .add_txt("noaddr.example.com", "v=spf1 -all");
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.ips("mx.example.com").await.unwrap(),
        [
            "2001:db8::1".parse::<IpAddr>().unwrap(),
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap()
        ]
    );
    assert_eq!(
        resolver.ips("V6ONLY.example.com.").await.unwrap(),
        [IpAddr::V6(Ipv6Addr::LOCALHOST)]
    );
    // An address literal needs no lookup.
    assert_eq!(
        resolver.ips("192.0.2.9").await.unwrap(),
        ["192.0.2.9".parse::<IpAddr>().unwrap()]
    );
    // The name exists without addresses: permanent, and said so.
    let err = resolver.ips("noaddr.example.com").await.unwrap_err();
    assert!(
        matches!(&err, DnsError::NotFound(t) if t.contains("no AAAA or A record")),
        "{err:?}"
    );
}

#[tokio::test]
async fn txt_strings_are_concatenated() {
    let dns = server();
    dns.add_txt_strings(
        "_mta-sts.example.com",
        &["v=STSv1; ", "id=20240101T000000;"],
    )
    .add_txt("example.com", "v=spf1 mx -all")
    .add_txt("example.com", &"k".repeat(600))
    .add_a("bare.example.com", Ipv4Addr::new(192, 0, 2, 3));
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.txt("_mta-sts.example.com").await.unwrap(),
        ["v=STSv1; id=20240101T000000;"]
    );
    let mut texts = resolver.txt("example.com").await.unwrap();
    texts.sort();
    assert_eq!(texts, ["k".repeat(600), "v=spf1 mx -all".into()]);
    assert_eq!(
        resolver.txt("bare.example.com").await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn large_answers_come_over_tcp() {
    let dns = server();
    for i in 0..60 {
        dns.add_mx("big.example.com", 10, &format!("mx{i:02}.big.example.com"));
    }
    let Ok(MxAnswer::Records(records)) = resolver(&dns).mx("big.example.com").await else {
        panic!("MX records expected");
    };
    assert_eq!(records.len(), 60);
}

#[tokio::test]
async fn invalid_names_are_permanent_without_a_query() {
    let dns = server();
    let resolver = resolver(&dns);
    let long = format!("{}.example.com", "a".repeat(64));
    for name in ["", "a..example.com", long.as_str()] {
        let err = resolver.mx(name).await.unwrap_err();
        assert!(err.is_permanent(), "{name}: {err:?}");
    }
    assert_eq!(dns.queries(), 0);
}

#[tokio::test]
async fn silent_server_is_temporary_within_the_timeout() {
    // A UDP socket nobody reads: queries vanish, as with a dead or filtered name server.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Two tries of one second each (`dns.attempts` counts tries, not retries).
    let resolver = resolver_for(silent.local_addr().unwrap(), 1, 2);
    let started = Instant::now();
    let err = resolver.mx("example.com").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("example.com") && text.contains("no answer") && text.contains("2 tries"),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "took {took:?}"
    );
    drop(silent);
}

#[test]
fn the_server_serves_sync_code_too() {
    let dns = server();
    dns.add_mx("example.com", 10, "mx.example.com");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = runtime.block_on(async { resolver(&dns).mx("example.com").await });
    assert_eq!(
        answer,
        Ok(MxAnswer::Records(vec![mx(10, "mx.example.com")]))
    );
}

// DANE's lookups (RFC 7672 §2.2): the resolver's AD bit is reported as is.

#[tokio::test]
async fn tlsa_records_and_their_dnssec_status() {
    let dns = server();
    dns.add_tlsa("_25._tcp.mx.signed.example", 3, 1, 1, &[0xab; 32])
        .add_tlsa("_25._tcp.mx.signed.example", 2, 0, 2, &[0xcd; 64])
        .add_tlsa("_25._tcp.mx.plain.example", 3, 1, 1, &[0xef; 32])
        .add_a("mx.signed.example", Ipv4Addr::new(192, 0, 2, 1))
        .sign("signed.example");
    let resolver = resolver(&dns);
    let signed = resolver.tlsa("mx.signed.example", 25).await.unwrap();
    assert!(signed.secure);
    assert_eq!(signed.value.len(), 2);
    assert_eq!(
        (
            signed.value[0].usage,
            signed.value[0].selector,
            signed.value[0].matching
        ),
        (3, 1, 1)
    );
    assert_eq!(signed.value[0].data, vec![0xab; 32]);
    assert_eq!(signed.value[1].data.len(), 64);
    let plain = resolver.tlsa("mx.plain.example", 25).await.unwrap();
    assert!(!plain.secure);
    assert_eq!(plain.value.len(), 1);
    // An authenticated denial: secure, no record (pre-DANE TLS for that host).
    let none = resolver.tlsa("other.signed.example", 25).await.unwrap();
    assert!(none.secure && none.value.is_empty());
    // NODATA at an existing signed name.
    let nodata = resolver.tlsa("mx.signed.example", 587).await.unwrap();
    assert!(nodata.value.is_empty());
    let unsigned_none = resolver.tlsa("nothing.example", 25).await.unwrap();
    assert!(!unsigned_none.secure && unsigned_none.value.is_empty());
}

#[tokio::test]
async fn tlsa_servfail_is_temporary() {
    // A validating resolver answers SERVFAIL for a bogus answer.
    let dns = server();
    dns.fail("_25._tcp.mx.bogus.example", ResponseCode::ServFail)
        .sign("bogus.example");
    let err = resolver(&dns)
        .tlsa("mx.bogus.example", 25)
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
    assert!(err.to_string().contains("SERVFAIL"), "{err}");
}

#[tokio::test]
async fn authenticated_addresses() {
    let dns = server();
    dns.add_a("mx.signed.example", Ipv4Addr::new(192, 0, 2, 1))
        .add_aaaa("mx.signed.example", Ipv6Addr::LOCALHOST)
        .add_a("mx.plain.example", Ipv4Addr::new(192, 0, 2, 2))
        .sign("signed.example");
    let resolver = resolver(&dns);
    let first = Instant::now();
    let signed = resolver
        .ips_authenticated("mx.signed.example")
        .await
        .unwrap();
    assert!(signed.secure);
    assert_eq!(
        signed.value,
        vec![
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
        ]
    );
    let plain = resolver
        .ips_authenticated("mx.plain.example")
        .await
        .unwrap();
    assert!(!plain.secure);
    assert_eq!(plain.value, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))]);
    let missing = resolver
        .ips_authenticated("gone.signed.example")
        .await
        .unwrap_err();
    assert!(missing.is_permanent(), "{missing:?}");
    // Answers are cached for their TTL (the test server's is one second): asking again
    // within it sends no question.
    let asked = dns.queries();
    resolver
        .ips_authenticated("mx.signed.example")
        .await
        .unwrap();
    if first.elapsed() < Duration::from_millis(900) {
        assert_eq!(dns.queries(), asked);
    }
}

#[tokio::test]
async fn large_tlsa_answers_come_over_tcp() {
    let dns = server();
    for i in 0..30u8 {
        dns.add_tlsa("_25._tcp.mx.big.example", 3, 0, 2, &[i; 64]);
    }
    dns.sign("big.example");
    let answer = resolver(&dns).tlsa("mx.big.example", 25).await.unwrap();
    assert!(answer.secure);
    assert_eq!(answer.value.len(), 30);
}
