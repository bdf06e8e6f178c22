//! PTR and A lookups (reverse DNS of a client, DNS list answers) against the testkit's DNS
//! server on loopback: no test asks the internet.

use facteur_dns::{DnsError, Resolver, ResolverOptions};
use facteur_testkit::dns::{DnsServer, ResponseCode};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn server() -> DnsServer {
    DnsServer::start("127.0.0.1:0".parse().unwrap())
}

fn resolver(server: &DnsServer) -> Resolver {
    Resolver::new(&ResolverOptions {
        nameservers: vec![server.addr()],
        timeout: Duration::from_secs(2),
        attempts: 2,
    })
    .unwrap()
}

#[tokio::test]
async fn ptr_of_ipv4_and_ipv6() {
    let dns = server();
    dns.add_ptr("1.2.0.192.in-addr.arpa", "mail.example.com.")
        .add_ptr("1.2.0.192.in-addr.arpa", "other.example.com")
        .add_ptr(
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            "v6.example.com",
        );
    let resolver = resolver(&dns);
    let mut names = resolver
        .ptr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        .await
        .unwrap();
    names.sort();
    assert_eq!(names, ["mail.example.com", "other.example.com"]);
    assert_eq!(
        resolver.ptr("2001:db8::1".parse().unwrap()).await,
        Ok(vec!["v6.example.com".to_string()])
    );
    // An IPv4-mapped IPv6 address is the IPv4 address it carries.
    let mut names = resolver
        .ptr("::ffff:192.0.2.1".parse().unwrap())
        .await
        .unwrap();
    names.sort();
    assert_eq!(names, ["mail.example.com", "other.example.com"]);
}

#[tokio::test]
async fn ptr_absent_nodata_and_servfail() {
    let dns = server();
    dns.add_a("3.2.0.192.in-addr.arpa", Ipv4Addr::new(192, 0, 2, 3))
        .fail("4.2.0.192.in-addr.arpa", ResponseCode::ServFail);
    let resolver = resolver(&dns);
    let err = resolver
        .ptr("192.0.2.2".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DnsError::NotFound(t) if t.contains("2.2.0.192.in-addr.arpa") && t.contains("NXDOMAIN")),
        "{err:?}"
    );
    assert_eq!(resolver.ptr("192.0.2.3".parse().unwrap()).await, Ok(vec![]));
    let err = resolver
        .ptr("192.0.2.4".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DnsError::Temporary(t) if t.contains("PTR") && t.contains("SERVFAIL")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_records_listed_absent_and_failing() {
    let dns = server();
    dns.add_a("2.0.0.127.zen.example.org", Ipv4Addr::new(127, 0, 0, 2))
        .add_a("2.0.0.127.zen.example.org", Ipv4Addr::new(127, 0, 0, 4))
        .add_txt("3.0.0.127.zen.example.org", "no A here")
        .fail("5.0.0.127.zen.example.org", ResponseCode::ServFail);
    let resolver = resolver(&dns);
    let mut listed = resolver
        .a_records("2.0.0.127.zen.example.org")
        .await
        .unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4)]
    );
    assert_eq!(
        resolver.a_records("3.0.0.127.zen.example.org").await,
        Ok(vec![])
    );
    let err = resolver
        .a_records("1.0.0.127.zen.example.org")
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    let err = resolver
        .a_records("5.0.0.127.zen.example.org")
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
}

#[test]
fn max_wait_covers_every_try_of_every_server() {
    let resolver = Resolver::new(&ResolverOptions {
        nameservers: vec![
            "127.0.0.1:53".parse().unwrap(),
            "127.0.0.2:53".parse().unwrap(),
        ],
        timeout: Duration::from_secs(3),
        attempts: 2,
    })
    .unwrap();
    assert_eq!(resolver.max_wait(), Duration::from_secs(3 * 2 * 2 + 1));
}
