//! The SMTP command parser on arbitrary lines: never panics; a parse error is always a
//! 5xx reply with an enhanced status code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Err(reply) = facteur_smtp_session::command::parse(line) {
        assert!((500..600).contains(&reply.code), "{reply:?}");
        assert!(reply.status.is_some());
    }
});
