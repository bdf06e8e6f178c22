//! The few encodings DKIM keys travel in: base64 (RFC 4648 §4), PEM (RFC 7468) and the DER
//! envelopes around an RSA key (PKCS#8, RFC 5208 §5; SubjectPublicKeyInfo, RFC 5280
//! §4.1.2.7, with the rsaEncryption identifier of RFC 8017 Appendix A.1).
//!
//! Only what keys need: no general ASN.1 parser. Decoding never panics, whatever the input.

/// The base64 alphabet of RFC 4648 §4.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// DER encoding of the rsaEncryption OID, 1.2.840.113549.1.1.1 (RFC 8017 Appendix A.1).
pub(crate) const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
/// DER encoding of the Ed25519 OID, 1.3.101.112 (RFC 8410 §3).
pub(crate) const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// PKCS#8 version 1 of an Ed25519 key up to its 32-octet seed (RFC 8410 §7):
/// SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }.
pub(crate) const ED25519_PKCS8_V1_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Base64 with padding (RFC 4648 §4), no line breaks.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64, skipping whitespace (PEM bodies are folded); `None` on any other
/// character outside the alphabet, on misplaced padding or on a truncated last group.
pub(crate) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0usize;
    let mut symbols = 0usize;
    for &c in text {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                symbols += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        symbols += 1;
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 || (padding > 0 && !symbols.is_multiple_of(4)) || symbols % 4 == 1 {
        return None;
    }
    Some(out)
}

/// A PEM document (RFC 7468 §2): `-----BEGIN label-----`, base64, `-----END label-----`.
pub(crate) struct Pem {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Why a PEM text could not be read, in words for an administrator.
pub(crate) fn pem_decode(text: &str) -> Result<Pem, String> {
    const BEGIN: &str = "-----BEGIN ";
    let start = text
        .find(BEGIN)
        .ok_or_else(|| "not a PEM key: no \"-----BEGIN\" line".to_string())?;
    let after = &text[start + BEGIN.len()..];
    let label_end = after
        .find("-----")
        .ok_or_else(|| "not a PEM key: the \"-----BEGIN\" line is incomplete".to_string())?;
    let label = after[..label_end].trim().to_string();
    if label.contains('\n') {
        return Err("not a PEM key: the \"-----BEGIN\" line is incomplete".to_string());
    }
    let body = &after[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body
        .find(&end_marker)
        .ok_or_else(|| format!("the PEM key has no \"{end_marker}\" line"))?;
    let body = &body[..body_end];
    if body.contains(':') {
        // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED"): a passphrase-protected key.
        return Err("the PEM key is encrypted: store it without a passphrase \
                    (openssl pkey -in KEY -out KEY.plain)"
            .to_string());
    }
    let der = base64_decode(body.as_bytes())
        .ok_or_else(|| "the PEM key's base64 body is damaged".to_string())?;
    if der.is_empty() {
        return Err("the PEM key is empty".to_string());
    }
    Ok(Pem { label, der })
}

/// PEM text (RFC 7468 §2): base64 lines of 64 characters, LF line ends, a final LF.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // The base64 alphabet is ASCII: every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER TLV (X.690 §8.1) with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// AlgorithmIdentifier for rsaEncryption, with its NULL parameters (RFC 8017 Appendix A.1).
fn rsa_algorithm_identifier() -> Vec<u8> {
    let mut content = OID_RSA_ENCRYPTION.to_vec();
    content.extend_from_slice(&[0x05, 0x00]);
    tlv(0x30, &content)
}

/// PKCS#1 RSAPrivateKey DER wrapped as a PKCS#8 PrivateKeyInfo (RFC 5208 §5, version 0).
pub(crate) fn pkcs1_private_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let mut content = vec![0x02, 0x01, 0x00];
    content.extend_from_slice(&rsa_algorithm_identifier());
    content.extend_from_slice(&tlv(0x04, pkcs1));
    tlv(0x30, &content)
}

/// PKCS#1 RSAPublicKey DER wrapped as a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), the form
/// DKIM records carry in p= (RFC 6376 §3.6.1).
pub(crate) fn rsa_public_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = vec![0x00];
    bits.extend_from_slice(pkcs1);
    let mut content = rsa_algorithm_identifier();
    content.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &content)
}

/// The key algorithm named in a PKCS#8 PrivateKeyInfo (RFC 5208 §5 / RFC 5958 §2): the OID
/// right after the version, looked for where it must be.
pub(crate) fn pkcs8_algorithm(der: &[u8]) -> Option<&'static [u8]> {
    // SEQUENCE { INTEGER version, SEQUENCE { OID, ... }, ... }
    let inner = read_tlv(der, 0x30)?.0;
    let (_, rest) = read_tlv(inner, 0x02)?;
    let algorithm = read_tlv(rest, 0x30)?.0;
    [OID_RSA_ENCRYPTION, OID_ED25519]
        .into_iter()
        .find(|oid| algorithm.starts_with(oid))
}

/// Reads one TLV with the expected tag: (content, what follows).
fn read_tlv(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *der.first()? != tag {
        return None;
    }
    let first = *der.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..count {
            len = (len << 8) | usize::from(*der.get(2 + i)?);
        }
        (len, 2 + count)
    };
    let end = header.checked_add(len)?;
    Some((der.get(header..end)?, der.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_rfc4648_vectors() {
        // RFC 4648 §10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode(b"Zm9v\r\nYmFy").unwrap(), b"foobar");
        assert!(base64_decode(b"Zm9v!").is_none());
        assert!(base64_decode(b"Z").is_none());
        assert!(base64_decode(b"Zg==Zg==").is_none());
    }

    #[test]
    fn pem_round_trips() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = pem_encode("PRIVATE KEY", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = pem_decode(&pem).unwrap();
        assert_eq!(back.label, "PRIVATE KEY");
        assert_eq!(back.der, der);
        assert!(pem_decode("garbage").is_err());
        assert!(pem_decode("-----BEGIN X-----\nAAAA\n").is_err());
    }

    #[test]
    fn long_der_lengths() {
        let content = vec![7u8; 300];
        let encoded = tlv(0x04, &content);
        assert_eq!(&encoded[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (back, rest) = read_tlv(&encoded, 0x04).unwrap();
        assert_eq!(back, &content[..]);
        assert!(rest.is_empty());
        assert!(read_tlv(&encoded[..10], 0x04).is_none());
    }
}
