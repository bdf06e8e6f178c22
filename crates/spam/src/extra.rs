//! Hits the server adds from its own checks (authentication, connection), with names and
//! scores after SpamAssassin's rules of the same meaning. As with the built-in rules, the
//! scores are conservative: authentication failures are common on forwarded and
//! mailing-list mail, so none alone comes near the threshold.

use crate::{Hit, hit};

/// SPF (RFC 7208 §2.6.4) `fail` for MAIL FROM: the sending host is not allowed.
pub fn spf_fail() -> Hit {
    hit(
        "SPF_FAIL",
        1.0,
        "SPF: sender host not allowed by the domain (fail)",
    )
}

/// SPF (RFC 7208 §2.6.5) `softfail` for MAIL FROM.
pub fn spf_softfail() -> Hit {
    hit(
        "SPF_SOFTFAIL",
        0.7,
        "SPF: sender host probably not allowed (softfail)",
    )
}

/// SPF `fail` for the HELO identity (RFC 7208 §2.3).
pub fn spf_helo_fail() -> Hit {
    hit(
        "SPF_HELO_FAIL",
        0.5,
        "SPF: HELO host not allowed by its domain (fail)",
    )
}

/// SPF `pass` for MAIL FROM: a faint sign of legitimate mail.
pub fn spf_pass() -> Hit {
    hit(
        "SPF_PASS",
        -0.001,
        "SPF: sender host allowed by the domain (pass)",
    )
}

/// A DKIM signature (RFC 6376) is present but does not verify.
pub fn dkim_invalid() -> Hit {
    hit(
        "DKIM_INVALID",
        0.5,
        "DKIM: signature present but does not verify",
    )
}

/// A DKIM signature verifies.
pub fn dkim_valid() -> Hit {
    hit("DKIM_VALID", -0.1, "DKIM: a signature verifies")
}

/// A DKIM signature of the From domain (the author's) verifies.
pub fn dkim_valid_author() -> Hit {
    hit(
        "DKIM_VALID_AU",
        -0.1,
        "DKIM: a signature of the From: domain verifies",
    )
}

/// DMARC (RFC 7489 §6.6) fails and the domain asks to reject.
pub fn dmarc_reject() -> Hit {
    hit(
        "DMARC_REJECT",
        2.0,
        "DMARC: fails, the domain's policy is reject",
    )
}

/// DMARC fails and the domain asks for quarantine.
pub fn dmarc_quarantine() -> Hit {
    hit(
        "DMARC_QUARANTINE",
        1.5,
        "DMARC: fails, the domain's policy is quarantine",
    )
}

/// DMARC fails and the domain's policy is `none` (monitoring only).
pub fn dmarc_none() -> Hit {
    hit(
        "DMARC_NONE",
        0.3,
        "DMARC: fails, the domain's policy is none",
    )
}

/// DMARC passes.
pub fn dmarc_pass() -> Hit {
    hit("DMARC_PASS", -0.1, "DMARC: passes")
}

/// The connecting address has no reverse DNS name (RFC 8601 §3 iprev: no PTR).
pub fn rdns_none() -> Hit {
    hit("RDNS_NONE", 0.8, "Connecting host has no reverse DNS name")
}

/// A name from a DNS list's zone: `zen.spamhaus.example` → `ZEN_SPAMHAUS_EXAMPLE`.
fn zone_name(zone: &str) -> String {
    zone.trim_end_matches('.')
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The connecting address is listed in a DNS blocklist (RFC 5782 §2), with the score the
/// admin gave that list: `RCVD_IN_<ZONE>`.
pub fn dnsbl(zone: &str, score: f64) -> Hit {
    hit(
        &format!("RCVD_IN_{}", zone_name(zone)),
        score,
        &format!("Connecting address listed in {zone}"),
    )
}

/// A domain of the message's links is listed in a URI blocklist (RFC 5782 §2.2), with the
/// score the admin gave that list: `URIBL_<ZONE>`.
pub fn uribl(zone: &str, score: f64) -> Hit {
    hit(
        &format!("URIBL_{}", zone_name(zone)),
        score,
        &format!("A link's domain is listed in {zone}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scores() {
        let all = [
            spf_fail(),
            spf_softfail(),
            spf_helo_fail(),
            spf_pass(),
            dkim_invalid(),
            dkim_valid(),
            dkim_valid_author(),
            dmarc_reject(),
            dmarc_quarantine(),
            dmarc_none(),
            dmarc_pass(),
            rdns_none(),
        ];
        for h in &all {
            assert!(h.score < 5.0, "{} alone must not make spam", h.name);
            assert!(!h.description.is_empty());
        }
        let l = dnsbl("zen.dnsbl.example.", 3.0);
        assert_eq!(l.name, "RCVD_IN_ZEN_DNSBL_EXAMPLE");
        assert_eq!(l.score, 3.0);
        assert_eq!(
            uribl("multi.uribl.example", 2.0).name,
            "URIBL_MULTI_URIBL_EXAMPLE"
        );
    }
}
