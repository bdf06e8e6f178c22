//! Line framing for text protocols (SMTP, LMTP, POP3, IMAP): bytes in, lines out, every line
//! length-limited.
//!
//! Invariants:
//! - the buffer never holds more than what is unread: consumed bytes are released on `push`;
//! - a line longer than the limit is reported once (`TooLong`) and the rest of it, up to its
//!   line feed, is discarded unseen, even when it arrives in later reads: nothing of an
//!   over-long line is ever executed (RFC 5321 §4.5.3.1.4, RFC 2449 §4);
//! - lines end at LF; a CR before it is removed (CRLF is the norm, a bare LF is tolerated for
//!   commands; message content is framed by the protocols' own receivers).
#![forbid(unsafe_code)]

/// What the next line is.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A complete line without its line ending.
    Line(Vec<u8>),
    /// The line was longer than the limit; it is being discarded.
    TooLong,
    /// No complete line yet.
    NeedMore,
}

#[derive(Debug)]
pub struct LineBuffer {
    input: Vec<u8>,
    pos: usize,
    discarding: bool,
    max: usize,
}

impl LineBuffer {
    /// `max` counts the line with its CRLF.
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer {
            input: Vec::new(),
            pos: 0,
            discarding: false,
            max,
        }
    }

    /// Appends bytes read from the connection, first releasing what was consumed.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.drain(..self.pos);
        self.pos = 0;
        self.input.extend_from_slice(bytes);
    }

    /// Drops everything buffered (e.g. bytes pipelined behind STARTTLS).
    pub fn clear(&mut self) {
        self.input.clear();
        self.pos = 0;
        self.discarding = false;
    }

    /// The bytes not yet consumed, for receivers that read raw content (DATA, BDAT, literals).
    pub fn unread(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// Marks `n` unread bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.input.len());
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Bytes held, consumed ones included until the next `push` (for bounds in tests).
    pub fn held(&self) -> usize {
        self.input.len()
    }

    pub fn next_line(&mut self) -> Next {
        loop {
            let unread = &self.input[self.pos..];
            let newline = unread.iter().position(|&b| b == b'\n');
            if self.discarding {
                match newline {
                    Some(i) => {
                        self.pos += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.pos = self.input.len();
                        return Next::NeedMore;
                    }
                }
            }
            let Some(i) = newline else {
                if unread.len() >= self.max {
                    self.pos = self.input.len();
                    self.discarding = true;
                    return Next::TooLong;
                }
                return Next::NeedMore;
            };
            self.pos += i + 1;
            if i + 1 > self.max {
                return Next::TooLong;
            }
            let end = if i > 0 && unread[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            return Next::Line(unread[..end].to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_crlf_and_bare_lf() {
        let mut b = LineBuffer::new(16);
        b.push(b"NOOP\r\nQUIT\nHA");
        assert_eq!(b.next_line(), Next::Line(b"NOOP".to_vec()));
        assert_eq!(b.next_line(), Next::Line(b"QUIT".to_vec()));
        assert_eq!(b.next_line(), Next::NeedMore);
        b.push(b"LF\r\n");
        assert_eq!(b.next_line(), Next::Line(b"HALF".to_vec()));
        assert!(b.is_empty());
    }

    #[test]
    fn too_long_once_then_tail_discarded_across_reads() {
        let mut b = LineBuffer::new(8);
        b.push(b"0123456789");
        assert_eq!(b.next_line(), Next::TooLong);
        b.push(b"QUIT\r\nNOOP\r\n");
        assert_eq!(b.next_line(), Next::Line(b"NOOP".to_vec()));
        b.push(b"012345678\r\nOK\r\n");
        assert_eq!(b.next_line(), Next::TooLong);
        assert_eq!(b.next_line(), Next::Line(b"OK".to_vec()));
    }

    #[test]
    fn consumed_bytes_are_released() {
        let mut b = LineBuffer::new(64);
        b.push(b"NO");
        for _ in 0..1000 {
            b.push(b"OP\r\nNO");
            assert_eq!(b.next_line(), Next::Line(b"NOOP".to_vec()));
        }
        assert!(b.held() < 16);
        b.consume(100);
        assert!(b.is_empty());
    }
}
