//! Email authentication results as names (RFC 8601 §2.7): what the MX's checks found, for the
//! filters that come after them (spam scoring, greylisting).

/// The results of one message's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResults {
    /// SPF for MAIL FROM (for HELO with the null sender): "pass", "fail", "softfail"...
    pub spf: &'static str,
    /// Each DKIM signature checked: (its d= domain, its result).
    pub dkim: Vec<(String, &'static str)>,
    /// DMARC for each From domain: (the domain, "pass", "fail", "none", "temperror"...,
    /// the policy that applied: "reject", "quarantine", "none", or "" without a record).
    pub dmarc: Vec<(String, &'static str, String)>,
    /// Domains this message is authenticated for, lower case: the MAIL FROM domain with SPF
    /// pass, the d= of each DKIM pass, the From domain with DMARC pass.
    pub authenticated: Vec<String>,
}
