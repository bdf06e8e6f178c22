//! The DATA receiver: RFC 5321 §4.1.1.4 (end of data is CRLF.CRLF) and §4.5.2 (dot
//! unstuffing).
//!
//! Invariant (SMTP smuggling): only `<CRLF>.<CRLF>` ends the message. A line start exists only
//! after CRLF, so `<LF>.<CRLF>`, `<CR>.<CRLF>` and `<LF>.<LF>` are content, never an end. Bare CR
//! or LF is recorded so the session can refuse the message (RFC 5321 §2.3.8).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    InLine,
    Cr,
    Dot,
    DotCr,
}

#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    size: u64,
    max: u64,
    pub bare_line_ending: bool,
}

/// What one call consumed.
pub struct Progress {
    /// Bytes of input consumed.
    pub consumed: usize,
    /// Whether the end of data was reached (the terminator is consumed, not emitted).
    pub done: bool,
}

impl DataReceiver {
    pub fn new(max: u64) -> DataReceiver {
        DataReceiver {
            state: State::LineStart,
            size: 0,
            max,
            bare_line_ending: false,
        }
    }

    /// Size of the content so far (including what was dropped once over the limit).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn too_big(&self) -> bool {
        self.size > self.max
    }

    /// Decodes `input` into `out`; stops right after the terminator. Over the size limit it keeps
    /// scanning for the end but emits nothing more.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        for (i, &b) in input.iter().enumerate() {
            match (self.state, b) {
                (State::LineStart, b'.') => self.state = State::Dot,
                (State::LineStart | State::InLine, b'\r') => self.state = State::Cr,
                (State::LineStart | State::InLine, b'\n') => {
                    self.bare_line_ending = true;
                    self.emit(out, b"\n");
                    self.state = State::InLine;
                }
                (State::LineStart | State::InLine, _) => {
                    self.emit(out, &[b]);
                    self.state = State::InLine;
                }
                (State::Cr, b'\n') => {
                    self.emit(out, b"\r\n");
                    self.state = State::LineStart;
                }
                (State::Cr, b'\r') => {
                    self.bare_line_ending = true;
                    self.emit(out, b"\r");
                }
                (State::Cr, _) => {
                    self.bare_line_ending = true;
                    self.emit(out, &[b'\r', b]);
                    self.state = State::InLine;
                }
                (State::Dot, b'\r') => self.state = State::DotCr,
                // §4.5.2: a leading dot followed by more text is removed.
                (State::Dot, b'\n') => {
                    self.bare_line_ending = true;
                    self.emit(out, b"\n");
                    self.state = State::InLine;
                }
                (State::Dot, _) => {
                    self.emit(out, &[b]);
                    self.state = State::InLine;
                }
                (State::DotCr, b'\n') => {
                    return Progress {
                        consumed: i + 1,
                        done: true,
                    };
                }
                (State::DotCr, _) => {
                    // ".\rX": the dot was stuffing; CR not followed by LF is bare.
                    self.bare_line_ending = true;
                    self.emit(out, b"\r");
                    if b == b'\r' {
                        self.state = State::Cr;
                    } else {
                        self.emit(out, &[b]);
                        self.state = State::InLine;
                    }
                }
            }
        }
        Progress {
            consumed: input.len(),
            done: false,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size <= self.max {
            out.extend_from_slice(bytes);
        }
    }
}

/// Tracks bare CR/LF across BDAT chunks (RFC 3030 content has no dot stuffing).
#[derive(Debug, Default)]
pub struct LineEndingCheck {
    after_cr: bool,
    pub bare: bool,
}

impl LineEndingCheck {
    pub fn scan(&mut self, chunk: &[u8]) {
        for &b in chunk {
            match (self.after_cr, b) {
                (true, b'\n') => self.after_cr = false,
                (true, b'\r') => self.bare = true,
                (true, _) => {
                    self.bare = true;
                    self.after_cr = false;
                }
                (false, b'\r') => self.after_cr = true,
                (false, b'\n') => self.bare = true,
                _ => {}
            }
        }
    }

    /// Call at the end of the content: a final lone CR is bare too.
    pub fn finish(&mut self) -> bool {
        self.bare |= self.after_cr;
        self.bare
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, Option<usize>, bool) {
        let mut r = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let p = r.feed(input, &mut out);
        (out, p.done.then_some(p.consumed), r.bare_line_ending)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        assert_eq!(run(b"a\r\n.\r\nNEXT"), (b"a\r\n".to_vec(), Some(6), false));
        assert_eq!(run(b".\r\n"), (b"".to_vec(), Some(3), false));
        // Smuggling attempts: none of these ends the data.
        for input in [
            &b"a\n.\r\nMAIL"[..],
            b"a\r.\r\nMAIL",
            b"a\n.\nMAIL",
            b"a\r\n.\nMAIL",
            b"a\r\n.\r MAIL",
        ] {
            let (_, end, bare) = run(input);
            assert_eq!(end, None, "{:?}", String::from_utf8_lossy(input));
            assert!(bare, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn unstuffs_leading_dots_byte_by_byte() {
        let input = b"..a\r\n...\r\nb\r\n.\r\n";
        let mut r = DataReceiver::new(100);
        let mut out = Vec::new();
        let mut done = false;
        for b in input.iter() {
            done = r.feed(std::slice::from_ref(b), &mut out).done;
        }
        assert!(done);
        assert_eq!(out, b".a\r\n..\r\nb\r\n");
    }

    #[test]
    fn stops_emitting_over_the_limit_but_finds_the_end() {
        let mut r = DataReceiver::new(4);
        let mut out = Vec::new();
        let p = r.feed(b"abcdefgh\r\n.\r\n", &mut out);
        assert!(p.done && r.too_big());
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn bdat_line_endings() {
        let mut c = LineEndingCheck::default();
        c.scan(b"a\r");
        c.scan(b"\nb\r\n");
        assert!(!c.finish());
        let mut c = LineEndingCheck::default();
        c.scan(b"a\nb");
        assert!(c.finish());
    }
}
