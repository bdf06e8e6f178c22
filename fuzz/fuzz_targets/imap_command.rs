//! IMAP command framing and parsing fed arbitrary bytes in arbitrary pieces: the framer and the
//! parser never panic, literals never exceed their limits, and every structure helper survives
//! what the parser accepts.
#![no_main]

use facteur_imap_session::parse::{CommandBody, FetchItem};
use facteur_imap_session::{Frame, Framer, mutf7, parse_command, structure, thread};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&head, input)) = data.split_first() else { return };
    let mut framer = Framer::new(512, 1024, 2048);
    let piece = usize::from(head).max(1);
    for chunk in input.chunks(piece) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            if let Frame::Command(bytes) = frame {
                assert!(bytes.len() <= 2048 + 512);
                if let Ok(cmd) = parse_command(&bytes) {
                    if let CommandBody::Fetch { items, .. } = &cmd.body {
                        for item in items {
                            if let FetchItem::BodySection { section, .. } = item
                                && let Some(facteur_imap_session::parse::SectionText::HeaderFields { fields, not }) = &section.text
                            {
                                structure::header_fields(input, fields, *not);
                            }
                        }
                    }
                }
            }
        }
        let _ = framer.take_line();
    }
    let text = String::from_utf8_lossy(input);
    let _ = mutf7::decode(&text);
    let _ = mutf7::encode(&text);
    let _ = structure::decode_words(&text);
    let _ = structure::base64_decode(input);
    let _ = structure::qp_decode(input, true);
    let _ = thread::base_subject(&text);
    let _ = thread::message_ids(&text);
});
