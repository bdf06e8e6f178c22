//! Application passwords (docs/decisions/0010). facteur generates them, 24 characters from a
//! 56-character alphabet (about 139 bits), so a SHA-256 digest protects them as well as
//! Argon2id protects a human password, at the cost of one hash per login.

use crate::{DirectoryError, Result};
use sha2::{Digest, Sha256};

pub fn generate() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        // Rejection sampling: no bias towards the first characters of the alphabet.
        if (byte[0] as usize) < 256 - 256 % ALPHABET.len() {
            out.push(ALPHABET[byte[0] as usize % ALPHABET.len()] as char);
        }
    }
    out
}

pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A name an admin can type and read back: 1-64 printable characters without spaces.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "`{name}` is not an application password name (1-64 letters, digits, - _ . @)"
        )))
    }
}
