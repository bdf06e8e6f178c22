//! DKIM results mail-auth accepts and RFC 6376 / RFC 8301 do not: found by cross-checking
//! with dkimpy and OpenDKIM (tests/interop/07-auth). A refused signature becomes a permanent
//! error whose text says why ([`super::REFUSAL`]).

use super::{AuthenticatedMessage, CryptoError, DkimOutput, DkimResult, Error, Inner, REFUSAL};
use mail_auth::common::crypto::Algorithm;

impl Inner {
    /// RFC 6376 §3.6.1 / §6.1.2: a key record whose `h=` does not list the signature's hash
    /// must be ignored (PERMFAIL); mail-auth parses `h=` but does not apply it. The key was
    /// just fetched into the cache by the verification.
    pub(super) async fn refuse_key_hash_mismatch<'a>(
        &self,
        output: DkimOutput<'a>,
        message: Option<&'a AuthenticatedMessage<'a>>,
    ) -> DkimOutput<'a> {
        use mail_auth::ResolverCache;
        // mail-auth's flags for h=sha1 and h=sha256 (common::crypto::R_HASH_*).
        const SHA1: u64 = 0x01;
        const SHA256: u64 = 0x02;
        let (wanted, name, b) = match output.signature() {
            Some(sig) if *output.result() == DkimResult::Pass => (
                if sig.a == Algorithm::RsaSha1 {
                    SHA1
                } else {
                    SHA256
                },
                format!("{}._domainkey.{}.", sig.s, sig.d).to_ascii_lowercase(),
                sig.b.clone(),
            ),
            _ => return output,
        };
        // The parsed key the verification just cached; a record kept for no time (TTL 0) is
        // read again.
        let flags = match self.caches.txt.get::<str>(&name) {
            Some(mail_auth::Txt::DomainKey(key)) => Some(key.f & (SHA1 | SHA256)),
            _ => self
                .within(self.auth.txt_raw_lookup(name.as_str()))
                .await
                .and_then(|r| r.ok())
                .map(|raw| hash_tag_flags(&String::from_utf8_lossy(&raw))),
        };
        let Some(listed) = flags else {
            return output;
        };
        if listed == 0 || listed & wanted != 0 {
            return output;
        }
        let refused = DkimOutput::perm_err(Error::Crypto(CryptoError::Library(format!(
            "{REFUSAL}the key at {name} does not allow this hash (h=)"
        ))));
        let signature = message.and_then(|m| {
            m.dkim_headers
                .iter()
                .find_map(|h| (h.header.b == b).then_some(&h.header))
        });
        match signature {
            Some(sig) => refused.with_signature(sig),
            None => refused,
        }
    }
}

/// The hashes a key record's `h=` tag lists (RFC 6376 §3.6.1), as mail-auth's flags (0x01
/// sha1, 0x02 sha256); 0 when the tag is absent (every hash allowed).
fn hash_tag_flags(record: &str) -> u64 {
    record
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .filter(|(name, _)| name.trim() == "h")
        .flat_map(|(_, value)| value.split(':'))
        .map(|h| match h.trim().to_ascii_lowercase().as_str() {
            "sha1" => 0x01,
            "sha256" => 0x02,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// RFC 8301 §3.1: verifiers MUST NOT consider rsa-sha1 signatures valid (SHA-1 collisions
/// make them forgeable); such a signature that verifies is a permanent error here, so it can
/// never carry DMARC.
pub(super) fn refuse_rsa_sha1<'a>(
    output: DkimOutput<'a>,
    message: Option<&'a AuthenticatedMessage<'a>>,
) -> DkimOutput<'a> {
    let b = match output.signature() {
        Some(sig) if sig.a == Algorithm::RsaSha1 && *output.result() == DkimResult::Pass => {
            sig.b.clone()
        }
        _ => return output,
    };
    let refused = DkimOutput::perm_err(Error::Crypto(CryptoError::Library(format!(
        "{REFUSAL}rsa-sha1 is not accepted (RFC 8301)"
    ))));
    let signature = message.and_then(|m| {
        m.dkim_headers
            .iter()
            .find_map(|h| (h.header.b == b).then_some(&h.header))
    });
    match signature {
        Some(sig) => refused.with_signature(sig),
        None => refused,
    }
}
