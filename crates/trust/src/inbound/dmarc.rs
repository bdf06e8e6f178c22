//! Finding the DMARC record that applies to a From domain, as text.
//!
//! mail-auth evaluates DMARC (alignment, policy selection) but hands back only the parsed
//! record, which has neither the text nor RFC 7489's `pct=` (§6.3; DMARCbis dropped it for
//! `t=`). This module repeats mail-auth's record discovery with the record text kept: the same
//! DNS tree walk (mail-auth follows DMARCbis: `_dmarc.<name>` from the From domain up to the
//! top-level domain, at most eight queries), the same record choice (the From domain's own
//! record, else the organizational domain's, RFC 7489 §6.6.3), and it stores each answer in
//! mail-auth's cache too, so mail-auth's own walk that follows asks the DNS nothing more.
//!
//! The organizational domain is found without a public suffix list: it is the highest name on
//! the walk that publishes a DMARC record (unless a record says `psd=y`/`psd=n`). For
//! `newsletter.example.com` under `example.com`'s record, both have the organizational domain
//! `example.com`, which is what relaxed alignment (RFC 7489 §3.1) compares.

use super::cache::{Caches, MAX_TTL};
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{Dmarc, Psd};
use mail_auth::{DnsError, Error, MessageAuthenticator, ResolverCache, Txt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `_dmarc.<name>` holds, as cached.
#[derive(Clone)]
pub(crate) enum DmarcTxt {
    /// A valid DMARC record: its text (the TXT strings joined) and its parsed form.
    Record { text: Arc<str>, parsed: Arc<Dmarc> },
    /// No DMARC record, or one that does not parse; the error is mail-auth's, so its walk
    /// treats the name exactly as it would have.
    Absent(Error),
}

/// A DMARC record found on the walk.
pub(crate) struct Found {
    /// The name below `_dmarc.`, lower case, A-labels.
    pub(crate) name: String,
    pub(crate) text: Arc<str>,
    pub(crate) parsed: Arc<Dmarc>,
}

/// The DMARC records from `domain` (lower case, A-labels) up to its top-level domain, longest
/// name first, as mail-auth's tree walk finds them. An error is a DNS failure (or a record that
/// does not parse), as mail-auth's walk would report it.
pub(crate) async fn walk(
    auth: &MessageAuthenticator,
    caches: &Caches,
    domain: &str,
) -> Result<Vec<Found>, Error> {
    let total = domain.split('.').filter(|l| !l.is_empty()).count();
    let mut found = Vec::new();
    if total < 2 {
        return Ok(found);
    }
    let mut count = total;
    loop {
        let name = drop_leftmost_labels(domain, total - count);
        let key = format!("_dmarc.{name}.");
        match lookup(auth, caches, &key).await {
            DmarcTxt::Record { text, parsed } => {
                let stop = matches!(parsed.psd, Psd::Yes | Psd::No);
                found.push(Found {
                    name: name.to_string(),
                    text,
                    parsed,
                });
                if stop {
                    break;
                }
            }
            DmarcTxt::Absent(Error::Dns(DnsError::RecordNotFound(_)))
            | DmarcTxt::Absent(Error::Dns(DnsError::InvalidRecordType)) => {}
            DmarcTxt::Absent(err) => return Err(err),
        }
        if count == 1 {
            break;
        }
        count = if count >= 8 { 7 } else { count - 1 };
    }
    Ok(found)
}

/// The record that applies to `from_domain`: its own, else its organizational domain's, else
/// the last one found (mail-auth's choice, RFC 7489 §6.6.3).
pub(crate) fn select<'a>(walk: &'a [Found], from_domain: &str) -> Option<&'a Found> {
    if let Some(own) = walk.iter().find(|f| f.name == from_domain) {
        return Some(own);
    }
    let org = organizational_domain(walk, from_domain).unwrap_or(from_domain);
    walk.iter().find(|f| f.name == org).or_else(|| walk.last())
}

/// The value of tag `name` in a DMARC record's text (RFC 7489 §6.4: `tag=value` separated by
/// semicolons, names compared without case).
pub(crate) fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// `pct=` (RFC 7489 §6.3): an integer from 0 to 100; absent or invalid, 100.
pub(crate) fn pct(text: &str) -> u8 {
    tag(text, "pct")
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|v| *v <= 100)
        .unwrap_or(100)
}

/// `rua=` as published (RFC 7489 §6.3: comma-separated URIs, usually `mailto:`).
pub(crate) fn rua(text: &str) -> Vec<String> {
    tag(text, "rua")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

async fn lookup(auth: &MessageAuthenticator, caches: &Caches, key: &str) -> DmarcTxt {
    if let Some(cached) = caches.dmarc.get(key) {
        return cached;
    }
    let Ok(name) = Name::from_str_relaxed(key) else {
        return DmarcTxt::Absent(Error::ParseError);
    };
    let (answer, until) = match auth.resolver().txt_lookup(name).await {
        Ok(lookup) => {
            let until = lookup.valid_until();
            // mail-auth's rule: the first record that parses; otherwise the last one's error.
            let mut answer = DmarcTxt::Absent(Error::Dns(DnsError::InvalidRecordType));
            for record in lookup.answers() {
                let RData::TXT(txt) = &record.data else {
                    continue;
                };
                let bytes: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect();
                match Dmarc::parse(&bytes) {
                    Ok(parsed) => {
                        answer = DmarcTxt::Record {
                            text: String::from_utf8_lossy(&bytes).into(),
                            parsed: Arc::new(parsed),
                        };
                        break;
                    }
                    Err(err) => answer = DmarcTxt::Absent(err),
                }
            }
            (answer, until)
        }
        Err(err) => {
            let negative_ttl = match &err {
                NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => nr.negative_ttl,
                _ => None,
            };
            let err = Error::from(err);
            if !matches!(err, Error::Dns(DnsError::RecordNotFound(_))) {
                // A failure, not an answer: nothing to keep.
                return DmarcTxt::Absent(err);
            }
            let ttl = Duration::from_secs(u64::from(negative_ttl.unwrap_or(1)).max(1));
            (DmarcTxt::Absent(err), Instant::now() + ttl.min(MAX_TTL))
        }
    };
    caches.dmarc.insert(key.into(), answer.clone(), until);
    let for_mail_auth = match &answer {
        DmarcTxt::Record { parsed, .. } => Txt::Dmarc(parsed.clone()),
        DmarcTxt::Absent(err) => Txt::Error(err.clone()),
    };
    caches.txt.insert(key.into(), for_mail_auth, until);
    answer
}

/// mail-auth's organizational domain from a walk (DMARCbis tree walk, `psd=` aware).
fn organizational_domain<'a>(walk: &'a [Found], start: &'a str) -> Option<&'a str> {
    for found in walk {
        match found.parsed.psd {
            Psd::No => return Some(&found.name),
            Psd::Yes if found.name != start => {
                return Some(one_label_below(&found.name, start));
            }
            _ => {}
        }
    }
    walk.last().map(|f| f.name.as_str())
}

fn one_label_below<'x>(psd_name: &str, start: &'x str) -> &'x str {
    let depth = psd_name.split('.').filter(|l| !l.is_empty()).count() + 1;
    let start_labels = start.split('.').filter(|l| !l.is_empty()).count();
    drop_leftmost_labels(start, start_labels.saturating_sub(depth))
}

fn drop_leftmost_labels(domain: &str, n: usize) -> &str {
    let mut suffix = domain;
    for _ in 0..n {
        match suffix.split_once('.') {
            Some((_, rest)) => suffix = rest,
            None => return "",
        }
    }
    suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_from_the_text() {
        let text = "v=DMARC1; p=reject; PCT = 25 ; rua=mailto:a@example.com, mailto:b@example.net";
        assert_eq!(pct(text), 25);
        assert_eq!(
            rua(text),
            vec!["mailto:a@example.com", "mailto:b@example.net"]
        );
        assert_eq!(pct("v=DMARC1; p=none"), 100);
        assert_eq!(pct("v=DMARC1; p=none; pct=250"), 100);
        assert_eq!(pct("v=DMARC1; p=none; pct=x"), 100);
        assert!(rua("v=DMARC1; p=none").is_empty());
    }

    #[test]
    fn labels_are_dropped_from_the_left() {
        assert_eq!(drop_leftmost_labels("a.b.example.com", 2), "example.com");
        assert_eq!(drop_leftmost_labels("com", 3), "");
        assert_eq!(one_label_below("com", "a.b.example.com"), "example.com");
    }
}
