//! The Sender Rewriting Scheme against postsrsd's own test vectors (its tests/blackbox and
//! tests/unit/test_srs2.c: secret "tops3cr3t", 2020-01-01 00:01:00 UTC, forwarding domain
//! example.com) and the properties facteur relies on.

use facteur_trust::srs::{Srs, SrsError};

/// 2020-01-01 (1577836860 / 86400), the day of postsrsd's vectors.
const DAY: u64 = 18262;

fn postsrsd() -> Srs {
    Srs::new(vec![b"tops3cr3t".to_vec()], "example.com", 21)
}

#[test]
fn postsrsd_vectors_forward() {
    let srs = postsrsd();
    assert_eq!(
        srs.forward_at("test@otherdomain.com", DAY),
        "SRS0=vmyz=2W=otherdomain.com=test@example.com"
    );
    // Another forwarder's SRS0 becomes SRS1; a foreign SRS1 keeps its first forwarder.
    assert_eq!(
        srs.forward_at("SRS0=opaque+string@otherdomain.com", DAY),
        "SRS1=chaI=otherdomain.com==opaque+string@example.com"
    );
    assert_eq!(
        srs.forward_at("SRS1=X=thirddomain.com==opaque+string@otherdomain.com", DAY),
        "SRS1=JIBX=thirddomain.com==opaque+string@example.com"
    );
    // Our own domain, SRS or not, and addresses without a domain stay as they are.
    assert_eq!(srs.forward_at("test@example.com", DAY), "test@example.com");
    assert_eq!(
        srs.forward_at("SRS0=XjO9=2V=otherdomain.com=test@example.com", DAY),
        "SRS0=XjO9=2V=otherdomain.com=test@example.com"
    );
    assert_eq!(
        srs.forward_at("test@EXAMPLE.COM.", DAY),
        "test@EXAMPLE.COM."
    );
    assert_eq!(srs.forward_at("foo", DAY), "foo");
}

#[test]
fn postsrsd_vectors_reverse() {
    let srs = postsrsd();
    assert_eq!(
        srs.reverse_at("SRS0=XjO9=2V=otherdomain.com=test@example.com", DAY)
            .unwrap(),
        "test@otherdomain.com"
    );
    assert_eq!(
        srs.reverse_at("SRS1=JIBX=thirddomain.com==opaque+string@example.com", DAY)
            .unwrap(),
        "SRS0=opaque+string@thirddomain.com"
    );
    // Case changes along the way are tolerated.
    assert_eq!(
        srs.reverse_at("srs0=xjo9=2v=otherdomain.com=test@example.com", DAY)
            .unwrap(),
        "test@otherdomain.com"
    );
    assert_eq!(
        srs.reverse_at("SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM", DAY)
            .unwrap(),
        "TEST@OTHERDOMAIN.COM"
    );
    // Six months old, and "six months in the future" (a previous 1024-day cycle).
    for old in [
        "SRS0=te87=T7=otherdomain.com=test@example.com",
        "SRS0=VcIb=7N=otherdomain.com=test@example.com",
    ] {
        assert!(
            matches!(srs.reverse_at(old, DAY), Err(SrsError::Expired { .. })),
            "{old}"
        );
    }
    assert!(matches!(
        srs.reverse_at("SRS0=FAKE=2V=otherdomain.com=test@example.com", DAY),
        Err(SrsError::BadHash(_))
    ));
    assert!(matches!(
        srs.reverse_at("test@example.com", DAY),
        Err(SrsError::NotSrs(_))
    ));
    for (address, reason) in [
        ("SRS0=@example.com", "no hash"),
        ("SRS0=XjO9@example.com", "no timestamp"),
        ("SRS0=XjO9=2V@example.com", "no host"),
        ("SRS0=XjO9=2V=otherdomain.com@example.com", "no user"),
        ("SRS0=XjO9=2V=otherdomain.com=@example.com", "no user"),
        (
            "SRS0=XjO9=!!=otherdomain.com=test@example.com",
            "invalid timestamp",
        ),
        ("SRS1=@example.com", "no host"),
        ("SRS1==x==y@example.com", "no hash"),
        ("SRS1=JIBX=thirddomain.com@example.com", "no user"),
    ] {
        match srs.reverse_at(address, DAY) {
            Err(SrsError::Malformed { reason: r, .. }) => {
                assert!(r.contains(reason), "{address}: {r}")
            }
            other => panic!("{address}: {other:?}"),
        }
    }
}

#[test]
fn round_trip_today_and_within_max_age() {
    let srs = Srs::new(vec![b"s3cret".to_vec()], "fwd.example", 21);
    let rewritten = srs.forward("Jane.Doe+tag@Orig.Example");
    assert!(rewritten.starts_with("SRS0="), "{rewritten}");
    assert!(rewritten.ends_with("=Orig.Example=Jane.Doe+tag@fwd.example"));
    assert!(Srs::is_srs(&rewritten));
    assert_eq!(
        srs.reverse(&rewritten).unwrap(),
        "Jane.Doe+tag@Orig.Example"
    );

    let old = srs.forward_at("a@b.example", 1000);
    assert_eq!(srs.reverse_at(&old, 1021).unwrap(), "a@b.example");
    assert!(matches!(
        srs.reverse_at(&old, 1022),
        Err(SrsError::Expired {
            age_days: 22,
            max_age_days: 21,
            ..
        })
    ));
    // Across the 1024-day wrap of the timestamp.
    let wrap = srs.forward_at("a@b.example", 1023);
    assert_eq!(srs.reverse_at(&wrap, 1030).unwrap(), "a@b.example");
}

#[test]
fn srs1_from_another_forwarders_srs0_and_back() {
    let first = Srs::new(vec![b"first".to_vec()], "first.example", 21);
    let second = Srs::new(vec![b"second".to_vec()], "second.example", 21);
    let srs0 = first.forward_at("user@orig.example", DAY);
    let srs1 = second.forward_at(&srs0, DAY);
    let (srs0_local, _) = srs0.split_once('@').unwrap();
    assert_eq!(
        srs1.split_once('=').unwrap().1.split_once('=').unwrap().1,
        format!("first.example={}@second.example", &srs0_local[4..])
    );
    // A third hop keeps pointing at the first forwarder.
    let third = Srs::new(vec![b"third".to_vec()], "third.example", 21);
    let srs1_again = third.forward_at(&srs1, DAY);
    assert!(srs1_again.starts_with("SRS1="));
    assert!(srs1_again.ends_with(&format!(
        "=first.example={}@third.example",
        &srs0_local[4..]
    )));
    // The bounce goes back: second -> the SRS0 of first -> the original sender.
    let back = second.reverse_at(&srs1, DAY + 3).unwrap();
    assert_eq!(back, srs0);
    assert_eq!(third.reverse_at(&srs1_again, DAY).unwrap(), srs0);
    assert_eq!(
        first.reverse_at(&back, DAY + 3).unwrap(),
        "user@orig.example"
    );
    // Only the forwarder whose secret made it can reverse it.
    assert!(matches!(
        first.reverse_at(&srs1, DAY),
        Err(SrsError::BadHash(_))
    ));
}

#[test]
fn tampered_addresses_are_rejected() {
    let srs = postsrsd();
    let good = srs.forward_at("victim@orig.example", DAY);
    for (from, to) in [
        ("=orig.example=", "=evil.example="),
        ("victim@", "other@"),
        ("=2W=", "=2X="),
    ] {
        let bad = good.replacen(from, to, 1);
        assert_ne!(bad, good);
        assert!(srs.reverse_at(&bad, DAY + 1).is_err(), "{bad}");
    }
    // A changed hash character (other than by case).
    let mut chars: Vec<char> = good.chars().collect();
    chars[5] = if chars[5] == '0' { '1' } else { '0' };
    let bad: String = chars.into_iter().collect();
    assert!(matches!(
        srs.reverse_at(&bad, DAY),
        Err(SrsError::BadHash(_))
    ));
    // A hash of the wrong length.
    let long = good.replacen("SRS0=", "SRS0=x", 1);
    assert!(matches!(
        srs.reverse_at(&long, DAY),
        Err(SrsError::BadHash(_))
    ));
}

#[test]
fn case_variations_are_accepted() {
    let srs = Srs::new(vec![b"k".to_vec()], "Fwd.Example", 21);
    let rewritten = srs.forward_at("MixedCase.User@Orig.Example", DAY);
    assert!(rewritten.ends_with("@fwd.example"), "{rewritten}");
    for variant in [
        rewritten.clone(),
        rewritten.to_lowercase(),
        rewritten.to_uppercase(),
    ] {
        assert_eq!(
            srs.reverse_at(&variant, DAY).unwrap().to_lowercase(),
            "mixedcase.user@orig.example",
            "{variant}"
        );
    }
}

#[test]
fn null_sender_and_brackets() {
    let srs = postsrsd();
    assert_eq!(srs.forward_at("", DAY), "");
    assert_eq!(srs.forward_at("<>", DAY), "<>");
    assert_eq!(
        srs.forward_at("<test@otherdomain.com>", DAY),
        "<SRS0=vmyz=2W=otherdomain.com=test@example.com>"
    );
    assert_eq!(
        srs.reverse_at("<SRS0=vmyz=2W=otherdomain.com=test@example.com>", DAY)
            .unwrap(),
        "<test@otherdomain.com>"
    );
    assert!(srs.reverse_at("<>", DAY).is_err());
    assert!(srs.reverse_at("", DAY).is_err());
    assert!(!Srs::is_srs(""));
    assert!(!Srs::is_srs("<>"));
    assert!(Srs::is_srs("<srs1+x@y>"));
    assert!(!Srs::is_srs("srs2=x@y"));
}

#[test]
fn rotation_old_secret_verifies_new_signs() {
    let old = Srs::new(vec![b"old".to_vec()], "fwd.example", 21);
    let rotated = Srs::new(vec![b"new".to_vec(), b"old".to_vec()], "fwd.example", 21);
    let new_only = Srs::new(vec![b"new".to_vec()], "fwd.example", 21);

    let before = old.forward_at("a@orig.example", DAY);
    assert_eq!(
        rotated.reverse_at(&before, DAY + 1).unwrap(),
        "a@orig.example"
    );
    assert!(matches!(
        new_only.reverse_at(&before, DAY + 1),
        Err(SrsError::BadHash(_))
    ));

    let after = rotated.forward_at("a@orig.example", DAY);
    assert_eq!(after, new_only.forward_at("a@orig.example", DAY));
    assert_ne!(after, before);
    assert!(old.reverse_at(&after, DAY).is_err());
}

#[test]
fn without_secret_nothing_is_rewritten_or_reversed() {
    let srs = Srs::new(vec![Vec::new()], "fwd.example", 21);
    assert_eq!(srs.forward_at("a@orig.example", DAY), "a@orig.example");
    assert_eq!(
        srs.reverse_at("SRS0=vmyz=2W=otherdomain.com=test@example.com", DAY),
        Err(SrsError::NoSecret)
    );
}

#[test]
fn odd_inputs_do_not_panic() {
    let srs = postsrsd();
    for input in [
        "@",
        "@@",
        "a@",
        "@b",
        "SRS0",
        "SRS0=",
        "SRS1=",
        "SRS1==",
        "SRS1===",
        "SRS0====@",
        "SRS0=é=é=é=é@x",
        "SRS1=é=é=é@x",
        "<",
        ">",
        "<<>>",
        "é@é",
        "SRS0\u{e9}@x",
        "srs0=ab\u{1F600}=2W=h=u@x",
    ] {
        let _ = srs.forward_at(input, DAY);
        let _ = srs.reverse_at(input, DAY);
        let _ = Srs::is_srs(input);
    }
    let long = format!("{}@{}", "u".repeat(10_000), "h".repeat(10_000));
    let rewritten = srs.forward_at(&long, DAY);
    assert_eq!(srs.reverse_at(&rewritten, DAY).unwrap(), long);
}
