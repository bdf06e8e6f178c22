use super::*;
use facteur_net::gate::{Gate, Sending};

fn store(name: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("facteur-protect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(facteur_store::Options {
        data_dir: dir.clone(),
        inline_blob_max: 4096,
        group_commit_max: 8,
    })
    .unwrap();
    (store, dir)
}

fn options(allow: &[&str]) -> BanOptions {
    BanOptions {
        after: 3,
        account_after: 0,
        window: Duration::from_secs(600),
        first: Duration::from_secs(900),
        max: Duration::from_secs(3600),
        allow: allow.iter().map(|a| Network::parse(a).unwrap()).collect(),
        connections_per_minute: 0,
        messages_per_minute: 0,
        recipients_per_minute: 0,
        account_messages_per_minute: 0,
        account_recipients_per_minute: 0,
        sender_domain_messages_per_minute: 0,
    }
}

#[test]
fn failures_within_the_window_ban_and_bans_double_up_to_the_maximum() {
    let (store, dir) = store("window");
    let bans = Bans::new(options(&[]), store);
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let t0 = Instant::now();
    // Two, then the third after the window: no ban (the first has aged out).
    assert!(bans.failure_at(ip, "", t0, 1000).is_none());
    assert!(
        bans.failure_at(ip, "", t0 + Duration::from_secs(10), 1010)
            .is_none()
    );
    assert!(
        bans.failure_at(ip, "", t0 + Duration::from_secs(700), 1700)
            .is_none()
    );
    assert!(bans.refused(ip).is_none());
    // Three within ten minutes (700, 710, 720): banned for the first length.
    assert!(
        bans.failure_at(ip, "", t0 + Duration::from_secs(710), 1710)
            .is_none()
    );
    let (key, until, reason) = bans
        .failure_at(ip, "", t0 + Duration::from_secs(720), 1720)
        .expect("a ban");
    assert_eq!(key, "192.0.2.7");
    assert_eq!(until, 1720 + 900);
    assert!(reason.contains("3 failed logins"), "{reason}");
    // Again within the day: twice as long, then capped at the maximum.
    let mut lengths = Vec::new();
    for round in 1..=3u64 {
        let at = t0 + Duration::from_secs(1000 * round);
        let mut ban = None;
        for i in 0..3 {
            ban = bans.failure_at(ip, "", at + Duration::from_secs(i), 5000);
        }
        lengths.push(ban.expect("banned again").1 - 5000);
    }
    assert_eq!(lengths, [1800, 3600, 3600]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ipv6_clients_are_counted_by_their_64_and_the_allow_list_is_never_banned() {
    let (store, dir) = store("v6");
    let bans = Bans::new(options(&["198.51.100.0/24", "2001:db8:ffff::/48"]), store);
    // Three addresses of one /64: one client.
    for (i, ip) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
        .iter()
        .enumerate()
    {
        let banned = bans.failure_at(ip.parse().unwrap(), "", Instant::now(), 100 + i as i64);
        assert_eq!(banned.is_some(), i == 2, "{ip}");
    }
    assert_eq!(
        ban_key("2001:db8:1:2::77".parse().unwrap()),
        "2001:db8:1:2::/64"
    );
    // An IPv4-mapped IPv6 address is the IPv4 client.
    assert_eq!(ban_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    for ip in ["198.51.100.9", "2001:db8:ffff:1::1"] {
        for _ in 0..10 {
            assert!(
                bans.failure_at(ip.parse().unwrap(), "", Instant::now(), 100)
                    .is_none(),
                "{ip}"
            );
        }
    }
    assert!(Network::parse("10.0.0.0/33").is_none() && Network::parse("x").is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bans_are_kept_in_the_store_and_read_back() {
    let (store, dir) = store("kept");
    let now = facteur_model::calendar::unix_now();
    store.ban("203.0.113.5", now + 600, "by the admin").unwrap();
    let bans = Bans::new(options(&[]), store.clone());
    let why = bans
        .refused("203.0.113.5".parse().unwrap())
        .expect("refused");
    assert!(
        why.contains("banned until") && why.contains("by the admin"),
        "{why}"
    );
    // Lifted in the store (the CLI): gone at the next refresh.
    assert!(store.unban("203.0.113.5").unwrap());
    bans.refresh();
    assert!(bans.refused("203.0.113.5".parse().unwrap()).is_none());
    // A ban caused here reaches the store.
    let ip: IpAddr = "203.0.113.6".parse().unwrap();
    for _ in 0..3 {
        bans.auth_failed("imap", ip, "root");
    }
    assert!(bans.refused(ip).is_some());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store
        .bans()
        .unwrap()
        .iter()
        .any(|b| b.address == "203.0.113.6")
    {
        assert!(Instant::now() < deadline, "the ban was not kept");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn connections_beyond_the_rate_wait_for_the_next_minute() {
    let (store, dir) = store("rate");
    let bans = Bans::new(
        BanOptions {
            connections_per_minute: 3,
            ..options(&["192.0.2.99"])
        },
        store,
    );
    let mut state = State::default();
    let seen: Vec<bool> = (0..5)
        .map(|_| bans.over_rate(&mut state, "192.0.2.1", 600).is_some())
        .collect();
    assert_eq!(seen, [false, false, false, true, true]);
    // Another address has its own allowance; the next minute starts again.
    assert!(bans.over_rate(&mut state, "192.0.2.2", 600).is_none());
    assert!(bans.over_rate(&mut state, "192.0.2.1", 660).is_none());
    // The allow list is never limited.
    for _ in 0..10 {
        assert!(bans.refused("192.0.2.99".parse().unwrap()).is_none());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn messages_and_recipients_per_address_and_per_account() {
    let (store, dir) = store("sending");
    let bans = Bans::new(
        BanOptions {
            messages_per_minute: 2,
            recipients_per_minute: 5,
            account_messages_per_minute: 1,
            sender_domain_messages_per_minute: 2,
            ..options(&["192.0.2.99"])
        },
        store,
    );
    let mut state = State::default();
    let limits = (2, 5);
    // Two messages of two recipients, then a third message: refused.
    for (new, expect) in [(true, false), (false, false), (true, false), (false, false)] {
        assert_eq!(
            bans.over_sending(&mut state, "192.0.2.1", limits, new, 60)
                .is_some(),
            expect
        );
    }
    let why = bans
        .over_sending(&mut state, "192.0.2.1", limits, true, 60)
        .unwrap();
    assert!(why.contains("too many messages from 192.0.2.1"), "{why}");
    // Recipients of the second message, up to five in the minute.
    assert!(
        bans.over_sending(&mut state, "192.0.2.1", limits, false, 60)
            .is_none()
    );
    let why = bans
        .over_sending(&mut state, "192.0.2.1", limits, false, 60)
        .unwrap();
    assert!(why.contains("too many recipients"), "{why}");
    // The next minute starts again.
    assert!(
        bans.over_sending(&mut state, "192.0.2.1", limits, true, 120)
            .is_none()
    );
    // Through the gate: an account's limit applies from any address, the allow list included.
    let sending = |account, domain| Sending {
        ip: "192.0.2.99".parse().unwrap(),
        account,
        sender_domain: domain,
        new_message: true,
    };
    let ok = bans.recipient(&sending(Some("alice@example.test"), None));
    assert!(ok.is_none());
    let why = bans
        .recipient(&sending(Some("Alice@example.test"), None))
        .unwrap();
    assert!(why.contains("account alice@example.test"), "{why}");
    // A sender domain's limit (2 a minute here) applies whoever sends.
    assert!(
        bans.recipient(&sending(None, Some("flood.example")))
            .is_none()
    );
    assert!(
        bans.recipient(&sending(None, Some("Flood.example")))
            .is_none()
    );
    let why = bans
        .recipient(&sending(None, Some("flood.example")))
        .unwrap();
    assert!(why.contains("sender domain flood.example"), "{why}");
    assert!(bans.exempt("192.0.2.99".parse().unwrap()));
    assert!(!bans.exempt("192.0.2.1".parse().unwrap()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn guessing_one_account_from_many_addresses_bans_each_at_its_first_failure() {
    let (store, dir) = store("account");
    let bans = Bans::new(
        BanOptions {
            account_after: 4,
            ..options(&[])
        },
        store,
    );
    let t0 = Instant::now();
    // Four addresses, one failure each for alice: counted, nobody banned yet.
    for i in 0..4u64 {
        let ip: IpAddr = format!("192.0.2.{}", 10 + i).parse().unwrap();
        let at = t0 + Duration::from_secs(i);
        assert!(
            bans.failure_at(ip, "Alice@example.test", at, 1000)
                .is_none()
        );
    }
    // The fifth address's first failure for alice: banned at once, the reason says why.
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    let (key, _, reason) = bans
        .failure_at(ip, "alice@example.test", t0 + Duration::from_secs(5), 1005)
        .unwrap();
    assert_eq!(key, "198.51.100.1");
    assert!(
        reason.contains("alice@example.test, which had 5"),
        "{reason}"
    );
    // Another account is unaffected; after the window, alice's count starts again.
    let other: IpAddr = "198.51.100.2".parse().unwrap();
    assert!(
        bans.failure_at(other, "bob@example.test", t0 + Duration::from_secs(6), 1006)
            .is_none()
    );
    let later = t0 + Duration::from_secs(2000);
    let fresh: IpAddr = "198.51.100.3".parse().unwrap();
    assert!(
        bans.failure_at(fresh, "alice@example.test", later, 3000)
            .is_none()
    );
    let _ = std::fs::remove_dir_all(dir);
}
