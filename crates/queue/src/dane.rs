//! DANE for SMTP (RFC 7672): the certificate of an MX host checked against the TLSA records
//! its signed zone publishes, instead of against public certificate authorities.
//!
//! - DANE-EE (usage 3, §3.1.1): the server's own certificate or public key; no name, chain or
//!   date check (the DNS is the authority).
//! - DANE-TA (usage 2, §3.1.2): a trust anchor the server includes in its chain (or that the
//!   record carries whole); the chain must lead to it, be in date, and name the MX host or the
//!   destination domain (§3.2.2).
//! - PKIX-TA and PKIX-EE (usages 0 and 1) are unusable for SMTP (§3.1.3), as are unknown
//!   selectors and matching types (RFC 6698 §4.1); a TLSA set with no usable record still
//!   requires TLS, unauthenticated (§2.2).

use facteur_dns::Tlsa;
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest;
use std::sync::Arc;

/// The usable records of a TLSA set (RFC 7672 §2.2: usages 2 and 3, selectors 0 and 1,
/// matching types 0, 1 and 2 with digests of the right length).
pub fn usable(records: &[Tlsa]) -> Vec<Tlsa> {
    records
        .iter()
        .filter(|r| matches!(r.usage, 2 | 3) && matches!(r.selector, 0 | 1))
        .filter(|r| match r.matching {
            0 => !r.data.is_empty(),
            1 => r.data.len() == 32,
            2 => r.data.len() == 64,
            _ => false,
        })
        .cloned()
        .collect()
}

/// A TLS client configuration that accepts exactly the certificates `records` (usable ones)
/// designate for `host`, reached as the MX of `domain`.
pub fn client_config(host: &str, domain: &str, records: Vec<Tlsa>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut names = Vec::new();
    for name in [host, domain] {
        if let Ok(n) = ServerName::try_from(name.trim_end_matches('.').to_string())
            && !names.contains(&n)
        {
            names.push(n);
        }
    }
    let verifier = Arc::new(DaneVerifier {
        host: host.to_string(),
        records,
        names,
        provider: provider.clone(),
    });
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
struct DaneVerifier {
    host: String,
    records: Vec<Tlsa>,
    /// Reference identifiers for DANE-TA (RFC 7672 §3.2.2): the MX host, the next-hop domain.
    names: Vec<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
}

/// Does `cert` match `record` (RFC 6698 §2.1.2-2.1.3)?
fn matches(record: &Tlsa, cert: &CertificateDer<'_>) -> bool {
    let selected: Vec<u8> = match record.selector {
        0 => cert.as_ref().to_vec(),
        1 => match x509_parser::parse_x509_certificate(cert.as_ref()) {
            Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw.to_vec(),
            Err(_) => return false,
        },
        _ => return false,
    };
    match record.matching {
        0 => selected == record.data,
        1 => sha2::Sha256::digest(&selected).as_slice() == record.data.as_slice(),
        2 => sha2::Sha512::digest(&selected).as_slice() == record.data.as_slice(),
        _ => false,
    }
}

impl DaneVerifier {
    /// DANE-TA: the chain leads to a matching anchor and names one of the reference names.
    fn trust_anchor(
        &self,
        record: &Tlsa,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), String> {
        let mut anchors: Vec<CertificateDer<'static>> = intermediates
            .iter()
            .filter(|c| matches(record, c))
            .map(|c| c.clone().into_owned())
            .collect();
        if record.selector == 0 && record.matching == 0 {
            anchors.push(CertificateDer::from(record.data.clone()));
        }
        if anchors.is_empty() {
            return Err("no certificate of the chain matches the DANE-TA record".into());
        }
        let mut last = String::new();
        for anchor in anchors {
            let mut roots = rustls::RootCertStore::empty();
            if let Err(e) = roots.add(anchor) {
                last = format!("the trust anchor cannot be used: {e}");
                continue;
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?;
            for name in &self.names {
                match webpki.verify_server_cert(end_entity, intermediates, name, &[], now) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("{e} (checked for {})", name.to_str()),
                }
            }
        }
        Err(last)
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // RFC 7672 §3.1.1: DANE-EE, the leaf itself.
        if self
            .records
            .iter()
            .any(|r| r.usage == 3 && matches(r, end_entity))
        {
            return Ok(ServerCertVerified::assertion());
        }
        let mut why = None;
        for record in self.records.iter().filter(|r| r.usage == 2) {
            match self.trust_anchor(record, end_entity, intermediates, now) {
                Ok(()) => return Ok(ServerCertVerified::assertion()),
                Err(e) => why = Some(e),
            }
        }
        Err(rustls::Error::General(format!(
            "DANE: the certificate of {} matches none of its {} usable TLSA record{}{}",
            self.host,
            self.records.len(),
            if self.records.len() == 1 { "" } else { "s" },
            why.map(|w| format!(" ({w})")).unwrap_or_default()
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlsa(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    #[test]
    fn unusable_records_are_dropped() {
        let records = vec![
            tlsa(0, 0, 1, vec![1; 32]),
            tlsa(1, 1, 1, vec![1; 32]),
            tlsa(3, 1, 1, vec![1; 31]),
            tlsa(3, 2, 1, vec![1; 32]),
            tlsa(3, 1, 3, vec![1; 32]),
            tlsa(2, 0, 2, vec![1; 64]),
            tlsa(3, 1, 1, vec![1; 32]),
            tlsa(3, 0, 0, vec![]),
        ];
        let kept = usable(&records);
        assert_eq!(kept, vec![records[5].clone(), records[6].clone()]);
    }

    #[test]
    fn matching_by_selector_and_type() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example.org".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().clone();
        let spki = key.public_key_der();
        assert!(matches(&tlsa(3, 0, 0, der.to_vec()), &der));
        assert!(matches(
            &tlsa(3, 0, 1, sha2::Sha256::digest(&der).to_vec()),
            &der
        ));
        assert!(matches(
            &tlsa(3, 1, 1, sha2::Sha256::digest(&spki).to_vec()),
            &der
        ));
        assert!(matches(
            &tlsa(3, 1, 2, sha2::Sha512::digest(&spki).to_vec()),
            &der
        ));
        assert!(!matches(
            &tlsa(3, 1, 1, sha2::Sha256::digest(&der).to_vec()),
            &der
        ));
        assert!(!matches(&tlsa(3, 1, 1, vec![0; 32]), &der));
    }
}
