//! The message as the milter protocol sees it: a list of header fields and a body
//! (RFC 5322 §2.1, §2.2), and the header and body edits a filter asks for at end of message.

use crate::Modification;

/// One header field of the message as received.
pub(crate) struct Field<'m> {
    /// The field name, trailing white space before the colon removed (RFC 5322 §4.5.3).
    pub(crate) name: &'m [u8],
    /// What follows the colon, folding kept, up to (without) the field's last line ending.
    pub(crate) value: &'m [u8],
    /// The whole field as received, its line ending included.
    pub(crate) raw: &'m [u8],
}

/// A message split into its header section and body.
pub(crate) struct Parsed<'m> {
    pub(crate) fields: Vec<Field<'m>>,
    /// The empty line ending the header section; empty when the message has none (no body,
    /// or a line that is not a header field started the body, as Postfix's MIME state
    /// machine treats it).
    pub(crate) separator: &'m [u8],
    pub(crate) body: &'m [u8],
}

/// RFC 5322 §3.6.8 `ftext`: printable US-ASCII except the colon.
pub(crate) fn is_field_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

/// One line starting at `pos`: (line content without its ending, index after the ending).
fn line_at(message: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &message[pos..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let content = &rest[..nl];
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            (content, pos + nl + 1)
        }
        None => (rest, message.len()),
    }
}

/// Splits a message (header section, empty line, body: RFC 5322 §2.1) into fields and body.
/// Continuation lines (starting with white space, §2.2.3) belong to the field above.
pub(crate) fn parse(message: &[u8]) -> Parsed<'_> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    // For the field being read: where it starts, where its value starts, end of its content.
    let mut current: Option<(usize, usize, usize, &[u8])> = None;
    let mut pos = 0;
    let mut separator: &[u8] = b"";
    let mut body_start = message.len();
    while pos < message.len() {
        let (content, next) = line_at(message, pos);
        let content_end = pos + content.len();
        let is_continuation = matches!(content.first(), Some(b' ' | b'\t'));
        if is_continuation && current.is_some() {
            if let Some(field) = current.as_mut() {
                field.2 = content_end;
            }
            pos = next;
            continue;
        }
        if let Some((start, value_start, end, name)) = current.take() {
            fields.push(Field {
                name,
                value: &message[value_start..end],
                raw: &message[start..pos],
            });
        }
        if content.is_empty() {
            separator = &message[pos..next];
            body_start = next;
            break;
        }
        let colon = content.iter().position(|&b| b == b':');
        let name = colon.map(|c| {
            let name = &content[..c];
            let trimmed = name
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(0, |last| last + 1);
            &name[..trimmed]
        });
        match (colon, name) {
            (Some(c), Some(name)) if !is_continuation && is_field_name(name) => {
                current = Some((pos, pos + c + 1, content_end, name));
                pos = next;
            }
            _ => {
                body_start = pos;
                break;
            }
        }
    }
    if let Some((start, value_start, end, name)) = current.take() {
        fields.push(Field {
            name,
            value: &message[value_start..end],
            raw: &message[start..pos],
        });
    }
    Parsed {
        fields,
        separator,
        body: &message[body_start.min(message.len())..],
    }
}

/// A header field value for `SMFIC_HEADER`: folding kept with the bare LF line breaks Sendmail
/// and Postfix send, and (unless the filter negotiated `SMFIP_HDR_LEADSPC`) the one space
/// after the colon removed, as libmilter filters expect.
pub(crate) fn value_for_filter(value: &[u8], lead_space: bool) -> Vec<u8> {
    let value = if lead_space {
        value
    } else {
        value.strip_prefix(b" ").unwrap_or(value)
    };
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'\r' && value.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

/// A field value from a filter, made safe to write after `name:`: line breaks (LF, CRLF or a
/// lone CR) become CRLF, each continuation line starts with white space (RFC 5322 §2.2.3: an
/// unindented line would start a new field) and empty lines, which would end the header
/// section, are dropped.
fn fold_value(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let mut lines = value
        .split(|&b| b == b'\n' || b == b'\r')
        .enumerate()
        .filter(|(i, line)| *i == 0 || !line.iter().all(|&b| b == b' ' || b == b'\t'));
    if let Some((_, first)) = lines.next() {
        out.extend_from_slice(first);
    }
    for (_, line) in lines {
        out.extend_from_slice(b"\r\n");
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            out.push(b'\t');
        }
        out.extend_from_slice(line);
    }
    out
}

fn field_bytes(name: &[u8], value: &str) -> Vec<u8> {
    let value = value.as_bytes();
    let mut out = Vec::with_capacity(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.push(b':');
    out.extend_from_slice(&fold_value(value));
    out.extend_from_slice(b"\r\n");
    out
}

/// Body text with every line ending as CRLF (RFC 5321 §2.3.8), ending with CRLF when not
/// empty.
pub(crate) fn crlf_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// See [`crate::apply`].
pub(crate) fn apply(message: &[u8], modifications: &[Modification]) -> Vec<u8> {
    let parsed = parse(message);
    // (name, whole field with its line ending)
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = parsed
        .fields
        .iter()
        .map(|f| (f.name.to_vec(), f.raw.to_vec()))
        .collect();
    // A message whose last field has no line ending gets one before anything follows it.
    if let Some((_, raw)) = fields.last_mut()
        && !raw.ends_with(b"\n")
    {
        raw.extend_from_slice(b"\r\n");
    }
    let mut body: Option<Vec<u8>> = None;
    for modification in modifications {
        match modification {
            // smfi_addheader: appended after the last field.
            Modification::AddHeader { name, value } => {
                fields.push((
                    name.as_bytes().to_vec(),
                    field_bytes(name.as_bytes(), value),
                ));
            }
            // smfi_insheader: index 0 is the top; past the end appends.
            Modification::InsertHeader { index, name, value } => {
                let at = usize::try_from(*index)
                    .unwrap_or(usize::MAX)
                    .min(fields.len());
                fields.insert(
                    at,
                    (
                        name.as_bytes().to_vec(),
                        field_bytes(name.as_bytes(), value),
                    ),
                );
            }
            // smfi_chgheader: the index-th field of that name (1-based, 0 taken as 1 as
            // Sendmail and Postfix do); an empty value deletes it; a missing field with a
            // value is added at the end (Sendmail's behaviour).
            Modification::ChangeHeader { name, index, value } => {
                let wanted = usize::try_from((*index).max(1)).unwrap_or(usize::MAX);
                let found = fields
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name.as_bytes()))
                    .nth(wanted - 1)
                    .map(|(i, _)| i);
                match (found, value.is_empty()) {
                    (Some(i), true) => {
                        fields.remove(i);
                    }
                    (Some(i), false) => {
                        let original = fields[i].0.clone();
                        fields[i].1 = field_bytes(&original, value);
                    }
                    (None, false) => {
                        fields.push((
                            name.as_bytes().to_vec(),
                            field_bytes(name.as_bytes(), value),
                        ));
                    }
                    (None, true) => {}
                }
            }
            Modification::ReplaceBody(new) => body = Some(crlf_body(new)),
            Modification::ChangeFrom(_)
            | Modification::AddRecipient(_)
            | Modification::DeleteRecipient(_) => {}
        }
    }
    let replaced = body.is_some();
    let body: &[u8] = body.as_deref().unwrap_or(parsed.body);
    let mut out = Vec::with_capacity(message.len() + 256);
    for (_, raw) in &fields {
        out.extend_from_slice(raw);
    }
    if !parsed.separator.is_empty() {
        out.extend_from_slice(parsed.separator);
    } else if replaced && !body.is_empty() {
        // A new body needs the empty line; an original one without it stays as received.
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_folding_and_body() {
        let m = b"From: a@example.org\r\nSubject: one\r\n\ttwo\r\nX-Empty:\r\n\r\nbody\r\n";
        let p = parse(m);
        assert_eq!(p.fields.len(), 3);
        assert_eq!(p.fields[1].name, b"Subject");
        assert_eq!(p.fields[1].value, b" one\r\n\ttwo");
        assert_eq!(p.fields[1].raw, b"Subject: one\r\n\ttwo\r\n");
        assert_eq!(p.fields[2].value, b"");
        assert_eq!(p.separator, b"\r\n");
        assert_eq!(p.body, b"body\r\n");
    }

    #[test]
    fn a_non_header_line_starts_the_body() {
        let p = parse(b"From: a\r\nnot a header\r\nmore\r\n");
        assert_eq!(p.fields.len(), 1);
        assert_eq!(p.separator, b"");
        assert_eq!(p.body, b"not a header\r\nmore\r\n");
        let p = parse(b" leading space\r\n\r\nx");
        assert!(p.fields.is_empty());
        assert_eq!(p.body, b" leading space\r\n\r\nx");
    }

    #[test]
    fn headers_only_and_no_final_line_ending() {
        let p = parse(b"A: 1\r\nB: 2");
        assert_eq!(p.fields.len(), 2);
        assert_eq!(p.fields[1].value, b" 2");
        assert!(p.body.is_empty());
        assert_eq!(
            apply(
                b"A: 1\r\nB: 2",
                &[Modification::AddHeader {
                    name: "C".into(),
                    value: " 3".into()
                }]
            ),
            b"A: 1\r\nB: 2\r\nC: 3\r\n"
        );
    }

    #[test]
    fn name_with_space_before_colon() {
        let p = parse(b"Subject : x\r\n\r\n");
        assert_eq!(p.fields[0].name, b"Subject");
        assert_eq!(p.fields[0].value, b" x");
    }

    #[test]
    fn values_for_the_filter() {
        assert_eq!(value_for_filter(b" one\r\n\ttwo", false), b"one\n\ttwo");
        assert_eq!(value_for_filter(b" one", true), b" one");
        assert_eq!(value_for_filter(b"\tx", false), b"\tx");
    }

    #[test]
    fn folding_from_the_filter_is_made_safe() {
        assert_eq!(fold_value(b" a\n\tb"), b" a\r\n\tb");
        assert_eq!(fold_value(b" a\r\n b"), b" a\r\n b");
        assert_eq!(fold_value(b" a\nInjected: yes"), b" a\r\n\tInjected: yes");
        assert_eq!(fold_value(b" a\n\n\nb"), b" a\r\n\tb");
    }

    #[test]
    fn change_header_index_semantics() {
        let m = b"X: 1\r\nY: a\r\nx: 2\r\nX: 3\r\n\r\nb\r\n";
        let change = |index, value: &str| Modification::ChangeHeader {
            name: "X".into(),
            index,
            value: value.into(),
        };
        assert_eq!(
            apply(m, &[change(2, " two")]),
            b"X: 1\r\nY: a\r\nx: two\r\nX: 3\r\n\r\nb\r\n"
        );
        assert_eq!(
            apply(m, &[change(0, " one")]),
            b"X: one\r\nY: a\r\nx: 2\r\nX: 3\r\n\r\nb\r\n"
        );
        assert_eq!(
            apply(m, &[change(3, "")]),
            b"X: 1\r\nY: a\r\nx: 2\r\n\r\nb\r\n"
        );
        // Deleting the first shifts the indexes of the next change.
        assert_eq!(
            apply(m, &[change(1, ""), change(1, "")]),
            b"Y: a\r\nX: 3\r\n\r\nb\r\n"
        );
        assert_eq!(
            apply(m, &[change(9, " new")]),
            b"X: 1\r\nY: a\r\nx: 2\r\nX: 3\r\nX: new\r\n\r\nb\r\n"
        );
        assert_eq!(apply(m, &[change(9, "")]), m);
    }

    #[test]
    fn insert_header_positions() {
        let m = b"A: 1\r\nB: 2\r\n\r\n";
        let ins = |index| Modification::InsertHeader {
            index,
            name: "N".into(),
            value: " v".into(),
        };
        assert_eq!(apply(m, &[ins(0)]), b"N: v\r\nA: 1\r\nB: 2\r\n\r\n");
        assert_eq!(apply(m, &[ins(1)]), b"A: 1\r\nN: v\r\nB: 2\r\n\r\n");
        assert_eq!(apply(m, &[ins(100)]), b"A: 1\r\nB: 2\r\nN: v\r\n\r\n");
    }

    #[test]
    fn body_replacement() {
        let m = b"A: 1\r\n\r\nold\r\n";
        assert_eq!(
            apply(m, &[Modification::ReplaceBody(b"new\nlines".to_vec())]),
            b"A: 1\r\n\r\nnew\r\nlines\r\n"
        );
        assert_eq!(
            apply(b"A: 1\r\n", &[Modification::ReplaceBody(b"x\r\n".to_vec())]),
            b"A: 1\r\n\r\nx\r\n"
        );
        assert_eq!(
            apply(m, &[Modification::ReplaceBody(Vec::new())]),
            b"A: 1\r\n\r\n"
        );
    }

    #[test]
    fn untouched_message_is_identical() {
        let m = b"A: 1\r\n  folded\r\nB:2\r\n\r\nbody\r\n\r\n";
        assert_eq!(apply(m, &[]), m);
        let m = b"A: 1\r\nbody without separator\r\n";
        assert_eq!(apply(m, &[]), m);
    }
}
