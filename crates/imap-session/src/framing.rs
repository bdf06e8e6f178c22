//! Command framing: lines and literals (RFC 9051 §4.3, LITERAL+/LITERAL- RFC 7888, literal8
//! of BINARY RFC 3516). Bytes in, whole commands out; a command is its lines and literal
//! octets concatenated, literals kept inline as `{N}\r\n<octets>` for the parser.
//!
//! Limits: a line past `max_line` is refused; a literal past `max_literal` is refused before
//! any of it is read (synchronizing) or discarded as it arrives (non-synchronizing); a command
//! past `max_command` in total is refused. Memory per connection is bounded by `max_command`.

/// What the framer produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command.
    Command(Vec<u8>),
    /// The client announced a synchronizing literal: send `+ ...` and read on.
    Continue,
    /// The command was refused; answer with this tag (if one was read) and the reason, the
    /// rest of the command has been or will be discarded.
    TooLong { tag: Option<String>, literal: bool },
}

#[derive(Debug)]
enum State {
    Line,
    Literal {
        remaining: usize,
    },
    /// Discarding a refused non-synchronizing literal, then the rest of its command.
    Discard {
        remaining: usize,
    },
    /// Discarding up to the end of a line that was too long.
    SkipLine,
}

#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    command: Vec<u8>,
    state: State,
    pub max_line: usize,
    pub max_literal: usize,
    pub max_command: usize,
}

impl Framer {
    pub fn new(max_line: usize, max_literal: usize, max_command: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            command: Vec::new(),
            state: State::Line,
            max_line,
            max_literal,
            max_command,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet framed (after STARTTLS they must be discarded).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.command.clear();
        self.state = State::Line;
    }

    /// Takes `n` raw bytes (an AUTHENTICATE or IDLE line is read by the caller as a line).
    pub fn take_line(&mut self) -> Option<Result<Vec<u8>, ()>> {
        match memchr(b'\n', &self.buf) {
            Some(i) => {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.len() > self.max_line {
                    return Some(Err(()));
                }
                let end =
                    line.len() - 1 - usize::from(line.len() >= 2 && line[line.len() - 2] == b'\r');
                Some(Ok(line[..end].to_vec()))
            }
            None if self.buf.len() > self.max_line => {
                self.buf.clear();
                self.state = State::SkipLine;
                Some(Err(()))
            }
            None => None,
        }
    }

    /// The next frame, or None when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::SkipLine => {
                    let i = memchr(b'\n', &self.buf);
                    match i {
                        Some(i) => {
                            self.buf.drain(..=i);
                            self.state = State::Line;
                        }
                        None => {
                            self.buf.clear();
                            return None;
                        }
                    }
                }
                State::Discard { remaining } => {
                    let n = remaining.min(self.buf.len());
                    self.buf.drain(..n);
                    if n < remaining {
                        self.state = State::Discard {
                            remaining: remaining - n,
                        };
                        return None;
                    }
                    // The rest of the command line may announce more literals: skip to the end
                    // of a line without one.
                    match memchr(b'\n', &self.buf) {
                        Some(i) => {
                            let line: Vec<u8> = self.buf.drain(..=i).collect();
                            match literal_at_end(trim_crlf(&line)) {
                                Some((n, _)) => self.state = State::Discard { remaining: n },
                                None => self.state = State::Line,
                            }
                        }
                        None => {
                            self.state = State::Discard { remaining: 0 };
                            return None;
                        }
                    }
                }
                State::Literal { remaining } => {
                    let n = remaining.min(self.buf.len());
                    self.command.extend(self.buf.drain(..n));
                    if n < remaining {
                        self.state = State::Literal {
                            remaining: remaining - n,
                        };
                        return None;
                    }
                    self.state = State::Line;
                }
                State::Line => {
                    let Some(i) = memchr(b'\n', &self.buf) else {
                        if self.buf.len() > self.max_line {
                            let tag = tag_of(if self.command.is_empty() {
                                &self.buf
                            } else {
                                &self.command
                            });
                            self.buf.clear();
                            self.command.clear();
                            self.state = State::SkipLine;
                            return Some(Frame::TooLong {
                                tag,
                                literal: false,
                            });
                        }
                        return None;
                    };
                    let line: Vec<u8> = self.buf.drain(..=i).collect();
                    if line.len() > self.max_line {
                        let tag = tag_of(if self.command.is_empty() {
                            &line
                        } else {
                            &self.command
                        });
                        self.command.clear();
                        return Some(Frame::TooLong {
                            tag,
                            literal: false,
                        });
                    }
                    let line = trim_crlf(&line);
                    self.command.extend_from_slice(line);
                    match literal_at_end(line) {
                        None => {
                            return Some(Frame::Command(std::mem::take(&mut self.command)));
                        }
                        Some((n, sync)) => {
                            if n > self.max_literal || self.command.len() + n > self.max_command {
                                let tag = tag_of(&self.command);
                                self.command.clear();
                                if sync {
                                    // The client waits for `+` and never sends the octets.
                                    self.state = State::Line;
                                } else {
                                    self.state = State::Discard { remaining: n };
                                }
                                return Some(Frame::TooLong { tag, literal: true });
                            }
                            self.command.extend_from_slice(b"\r\n");
                            self.state = State::Literal { remaining: n };
                            if sync {
                                return Some(Frame::Continue);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    if end > 0 && line[end - 1] == b'\n' {
        end -= 1;
    }
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    &line[..end]
}

/// `{N}`, `{N+}` (LITERAL+) or `~{N}` at the end of a line: (N, synchronizing).
pub fn literal_at_end(line: &[u8]) -> Option<(usize, bool)> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..line.len() - 1];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((usize::try_from(n).unwrap_or(usize::MAX), sync))
}

fn tag_of(command: &[u8]) -> Option<String> {
    let end = command
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(command.len());
    let tag = &command[..end];
    (!tag.is_empty() && tag.len() <= 64 && tag.iter().all(|&b| crate::parse::is_tag_char(b)))
        .then(|| String::from_utf8_lossy(tag).into_owned())
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_framed_inline() {
        let mut f = Framer::new(100, 1000, 10_000);
        f.push(b"a1 LOGIN {5}\r\n");
        assert_eq!(f.next_frame(), Some(Frame::Continue));
        assert_eq!(f.next_frame(), None);
        f.push(b"alice {3+}\r\npw!\r\n");
        assert_eq!(
            f.next_frame(),
            Some(Frame::Command(
                b"a1 LOGIN {5}\r\nalice {3+}\r\npw!".to_vec()
            ))
        );
    }

    #[test]
    fn oversized_literals_are_refused() {
        let mut f = Framer::new(100, 10, 10_000);
        f.push(b"a2 APPEND INBOX {50}\r\n");
        assert_eq!(
            f.next_frame(),
            Some(Frame::TooLong {
                tag: Some("a2".into()),
                literal: true
            })
        );
        f.push(b"a3 APPEND INBOX {20+}\r\n01234567890123456789\r\na4 NOOP\r\n");
        assert!(matches!(
            f.next_frame(),
            Some(Frame::TooLong { literal: true, .. })
        ));
        assert_eq!(f.next_frame(), Some(Frame::Command(b"a4 NOOP".to_vec())));
    }

    #[test]
    fn long_lines_are_refused_and_skipped() {
        let mut f = Framer::new(16, 10, 10_000);
        f.push(b"a5 NOOP xxxxxxxxxxxxxxxxxxxxxxxx");
        assert!(matches!(
            f.next_frame(),
            Some(Frame::TooLong { literal: false, .. })
        ));
        f.push(b"xxxx\r\na6 NOOP\r\n");
        assert_eq!(f.next_frame(), Some(Frame::Command(b"a6 NOOP".to_vec())));
    }
}
