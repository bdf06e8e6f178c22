//! A workaround for mail-auth 0.13's relaxed body canonicalization (RFC 6376 §3.4.4): it keeps
//! the line breaks before blank lines that hold spaces or tabs at the very end of a body, where
//! the RFC (and dkimpy, OpenDKIM) drop them. A body ending `text\r\n   \r\n\t\r\n` is
//! `text\r\n` once canonicalized; mail-auth hashes `text\r\n\r\n\r\n`, so its signatures of
//! such bodies fail elsewhere and others' signatures fail here (found by
//! tests/interop/07-auth).
//!
//! Under relaxed body canonicalization those trailing blank lines never count, so a message
//! without them has the same canonical body: signing that copy gives a signature valid for the
//! original, and verifying relaxed-body signatures on that copy gives the right answer. Simple
//! body canonicalization keeps them (only empty lines go, §3.4.3): those signatures are
//! verified on the message as received.

use mail_auth::DkimOutput;
use mail_auth::dkim::Canonicalization;

/// `message` without the lines made only of spaces and tabs (or empty) that end its body, the
/// last line of text keeping its CRLF; None when the body does not end so (nothing to do).
pub fn without_trailing_blank_lines(message: &[u8]) -> Option<Vec<u8>> {
    let body_start = find(message, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(message, b"\n\n").map(|i| i + 2))?;
    let body = &message[body_start..];
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let kept = match body.iter().rposition(|b| !blank(b)) {
        // The end of the last line with text, its line break included.
        Some(last) => match body[last..].iter().position(|b| *b == b'\n') {
            Some(nl) => last + nl + 1,
            None => body.len(),
        },
        None => 0,
    };
    // Only a body whose trailing blank lines hold spaces or tabs is affected.
    if !body[kept..].iter().any(|b| matches!(b, b' ' | b'\t')) {
        return None;
    }
    let mut out = message[..body_start + kept].to_vec();
    if kept > 0 && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

/// The results of a message's signatures: those with relaxed body canonicalization from the
/// copy without trailing blank lines (`trimmed`, in the same order), when there is one.
pub fn relaxed_body_results<'a>(
    original: Vec<DkimOutput<'a>>,
    trimmed: Vec<DkimOutput<'a>>,
) -> Vec<DkimOutput<'a>> {
    if trimmed.len() != original.len() {
        return original;
    }
    original
        .into_iter()
        .zip(trimmed)
        .map(|(o, t)| match o.signature() {
            Some(sig) if sig.cb == Canonicalization::Relaxed => t,
            _ => o,
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_blank_lines_with_spaces_go() {
        let m = b"Subject: x\r\n\r\ntext\r\n   \r\n\t\r\n\r\n";
        assert_eq!(
            without_trailing_blank_lines(m).unwrap(),
            b"Subject: x\r\n\r\ntext\r\n"
        );
        // Only empty lines at the end: mail-auth is right, nothing to do.
        assert!(without_trailing_blank_lines(b"S: x\r\n\r\ntext\r\n\r\n\r\n").is_none());
        assert!(without_trailing_blank_lines(b"S: x\r\n\r\ntext  \r\n").is_none());
        // A body of blanks only becomes empty.
        assert_eq!(
            without_trailing_blank_lines(b"S: x\r\n\r\n \r\n\t\r\n").unwrap(),
            b"S: x\r\n\r\n"
        );
        // A last line without its break keeps its text and gets one.
        assert_eq!(
            without_trailing_blank_lines(b"S: x\r\n\r\na\r\nb").unwrap_or_default(),
            b""
        );
        assert!(without_trailing_blank_lines(b"no body").is_none());
    }
}
