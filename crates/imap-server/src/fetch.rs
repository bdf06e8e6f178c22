//! FETCH (RFC 9051 §6.4.5) with CONDSTORE's CHANGEDSINCE and QRESYNC's VANISHED (RFC 7162),
//! BINARY (RFC 3516) and OBJECTID (RFC 8474). Flags come from the session's view; ENVELOPE
//! and BODYSTRUCTURE from metadata stored at delivery; the message is read only for sections.

use crate::connection::Session;
use crate::selected::has_flag;
use facteur_imap_session::encode;
use facteur_imap_session::parse::{FetchItem, Section, SectionText, SeqSet};
use facteur_imap_session::structure::{self, Layout};
use facteur_model::{ModSeq, Uid};
use facteur_store::{FlagOp, MessageInfo};
use serde_json::Value;

/// Messages read from the store per batch: bounds memory for `FETCH 1:* BODY[]`.
const BATCH: usize = 64;

fn needs_row(item: &FetchItem) -> bool {
    !matches!(item, FetchItem::Flags | FetchItem::Uid | FetchItem::ModSeq)
}

fn needs_content(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Header
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { .. }
            | FetchItem::Binary { .. }
            | FetchItem::BinarySize { .. }
    )
}

fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
    )
}

fn section_name(s: &Section) -> String {
    let mut out: Vec<String> = Vec::new();
    if !s.part.is_empty() {
        out.push(
            s.part
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("."),
        );
    }
    match &s.text {
        None => {}
        Some(SectionText::Header) => out.push("HEADER".into()),
        Some(SectionText::Text) => out.push("TEXT".into()),
        Some(SectionText::Mime) => out.push("MIME".into()),
        Some(SectionText::HeaderFields { not, fields }) => {
            let mut quoted = Vec::new();
            for f in fields {
                let mut b = Vec::new();
                encode::string(&mut b, f.to_ascii_uppercase().as_bytes());
                quoted.push(String::from_utf8_lossy(&b).into_owned());
            }
            out.push(format!(
                "HEADER.FIELDS{} ({})",
                if *not { ".NOT" } else { "" },
                quoted.join(" ")
            ));
        }
    }
    out.join(".")
}

/// The bytes a section names; None when the part does not exist.
fn section_bytes(content: &[u8], root: &Value, section: &Section) -> Option<Vec<u8>> {
    let prefix = content
        .len()
        .saturating_sub(root["end"].as_u64().unwrap_or(0) as usize);
    let layout = Layout {
        prefix,
        total: content.len(),
    };
    let slice =
        |(a, b): (usize, usize)| content[a.min(content.len())..b.min(content.len())].to_vec();
    match &section.text {
        None if section.part.is_empty() => Some(content.to_vec()),
        None => Some(slice(
            layout.body(structure::find_part(root, &section.part)?),
        )),
        Some(SectionText::Mime) => Some(slice(
            layout.header(structure::find_part(root, &section.part)?),
        )),
        Some(text) => {
            let (msg, holder) = structure::message_of(root, &section.part)?;
            let header = slice(layout.header(msg));
            match text {
                SectionText::Header => Some(header),
                SectionText::Text => Some(slice(layout.text(msg, holder))),
                SectionText::HeaderFields { not, fields } => {
                    Some(structure::header_fields(&header, fields, *not))
                }
                SectionText::Mime => None,
            }
        }
    }
}

/// A part number as written in a response: `1.2.3`.
fn part_name(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn partial_of(data: Vec<u8>, partial: Option<(u64, u64)>) -> Vec<u8> {
    match partial {
        None => data,
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            data[s..e].to_vec()
        }
    }
}

/// BINARY: the part decoded from its Content-Transfer-Encoding. Err(()) for an unknown one.
fn binary_bytes(content: &[u8], root: &Value, part: &[u32]) -> Result<Option<Vec<u8>>, ()> {
    if part.is_empty() {
        return Ok(Some(content.to_vec()));
    }
    let Some(node) = structure::find_part(root, part) else {
        return Ok(None);
    };
    let prefix = content
        .len()
        .saturating_sub(root["end"].as_u64().unwrap_or(0) as usize);
    let layout = Layout {
        prefix,
        total: content.len(),
    };
    let (a, b) = layout.body(node);
    let body = &content[a.min(content.len())..b.min(content.len())];
    structure::decode_body(node["encoding"].as_str(), body)
        .map(Some)
        .ok_or(())
}

/// A FETCH being answered, a batch at a time so the output is flushed as it goes.
pub(crate) struct FetchJob {
    tag: String,
    uid: bool,
    items: Vec<FetchItem>,
    changed_since: Option<u64>,
    remaining: std::collections::VecDeque<usize>,
    seen_now: Vec<Uid>,
    unknown_cte: bool,
}

impl Session {
    pub(crate) fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        items: &[FetchItem],
        changed_since: Option<u64>,
        vanished: bool,
    ) {
        let account = self.account();
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        let mut idx = match view.resolve(set, uid) {
            Ok(v) => v,
            Err(m) => {
                self.errors_inc();
                return self.tagged(tag, "BAD", m);
            }
        };
        let mailbox = view.mailbox.id;
        let read_only = view.read_only;
        if changed_since.is_some() || items.contains(&FetchItem::ModSeq) {
            self.enable_condstore();
        }
        if let Some(since) = changed_since {
            let view = self.selected.as_ref().expect("selected");
            idx.retain(|&i| view.entries[i].modseq.0 > since);
            if vanished {
                if !self.qresync {
                    self.tagged(tag, "BAD", "ENABLE QRESYNC first");
                    return;
                }
                let max = view.max_uid();
                if let (Ok(ch), SeqSet::Ranges(r)) =
                    (self.ctx.store.changes_since(mailbox, ModSeq(since)), set)
                {
                    let gone: Vec<u32> = ch
                        .expunged
                        .iter()
                        .map(|u| u.0)
                        .filter(|&u| SeqSet::contains(r, u, max.max(u)))
                        .collect();
                    if !gone.is_empty() {
                        self.untagged(&format!("VANISHED (EARLIER) {}", encode::seq_set(&gone)));
                    }
                }
            }
        }
        // Implicit \Seen (RFC 9051 §6.4.5) before answering, so FLAGS shows it.
        let mut seen_now: Vec<Uid> = Vec::new();
        if !read_only && items.iter().any(sets_seen) {
            let view = self.selected.as_ref().expect("selected");
            let unseen: Vec<Uid> = idx
                .iter()
                .map(|&i| &view.entries[i])
                .filter(|e| !has_flag(&e.flags, "\\Seen"))
                .map(|e| e.uid)
                .collect();
            if !unseen.is_empty() {
                match self.ctx.store.store_flags(
                    account,
                    mailbox,
                    &unseen,
                    FlagOp::Add,
                    &["\\Seen".to_string()],
                    None,
                ) {
                    Ok(outcome) => {
                        let view = self.selected.as_mut().expect("selected");
                        for e in outcome.changed {
                            if let Some(p) = view.position(e.uid) {
                                std::sync::Arc::make_mut(&mut view.entries)[p] = e.clone();
                                seen_now.push(e.uid);
                            }
                        }
                    }
                    Err(e) => return self.server_error(tag, &e),
                }
            }
        }
        self.pending_fetch = Some(FetchJob {
            tag: tag.to_string(),
            uid,
            items: items.to_vec(),
            changed_since,
            remaining: idx.into(),
            seen_now,
            unknown_cte: false,
        });
    }

    /// Answers the next batch of a pending FETCH; the last one also completes it.
    pub(crate) fn fetch_step(&mut self) {
        let Some(mut job) = self.pending_fetch.take() else {
            return;
        };
        let utf8 = self.utf8_names();
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        let mailbox = view.mailbox.id;
        let (uid, changed_since) = (job.uid, job.changed_since);
        let items = std::mem::take(&mut job.items);
        let items = &items[..];
        let want_row = items.iter().any(needs_row);
        let want_content = items.iter().any(needs_content);
        let n = job.remaining.len().min(BATCH);
        let chunk: Vec<usize> = job.remaining.drain(..n).collect();
        {
            let view = self.selected.as_ref().expect("selected");
            let entries: Vec<(usize, facteur_store::ViewEntry)> = chunk
                .iter()
                .map(|&i| (i, view.entries[i].clone()))
                .collect();
            let rows: Vec<MessageInfo> = if want_row {
                let uids: Vec<Uid> = entries.iter().map(|(_, e)| e.uid).collect();
                match self.ctx.store.messages_by_uid(mailbox, &uids) {
                    Ok(r) => r,
                    Err(e) => return self.server_error(&job.tag, &e),
                }
            } else {
                Vec::new()
            };
            for (i, entry) in entries {
                let row = if want_row {
                    match rows.binary_search_by_key(&entry.uid, |r| r.uid) {
                        Ok(p) => Some(&rows[p]),
                        // Expunged by another session meanwhile: nothing to show.
                        Err(_) => continue,
                    }
                } else {
                    None
                };
                let content = if want_content {
                    match self.ctx.store.message_content(mailbox, entry.uid) {
                        Ok(c) => Some(c),
                        Err(_) => continue,
                    }
                } else {
                    None
                };
                let structure_json: Option<Value> = row.and_then(|r| {
                    (items.iter().any(|it| {
                        matches!(it, FetchItem::BodyStructure | FetchItem::Body)
                            || needs_content(it)
                    }))
                    .then(|| serde_json::from_str(&r.structure).unwrap_or(Value::Null))
                });
                let mut out = Vec::with_capacity(256);
                out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
                let mut first = true;
                let mut sep = |out: &mut Vec<u8>| {
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                };
                if uid && !items.contains(&FetchItem::Uid) {
                    sep(&mut out);
                    out.extend_from_slice(format!("UID {}", entry.uid.0).as_bytes());
                }
                let mut flags_sent = false;
                for item in items {
                    match item {
                        FetchItem::Uid => {
                            sep(&mut out);
                            out.extend_from_slice(format!("UID {}", entry.uid.0).as_bytes());
                        }
                        FetchItem::Flags => {
                            sep(&mut out);
                            flags_sent = true;
                            out.extend_from_slice(
                                format!("FLAGS {}", view.flags_of(&entry)).as_bytes(),
                            );
                        }
                        FetchItem::ModSeq => {}
                        FetchItem::InternalDate => {
                            sep(&mut out);
                            out.extend_from_slice(b"INTERNALDATE ");
                            out.extend_from_slice(
                                facteur_imap_session::date::date_time(
                                    row.map_or(0, |r| r.internal_date),
                                )
                                .as_bytes(),
                            );
                        }
                        FetchItem::Rfc822Size => {
                            sep(&mut out);
                            out.extend_from_slice(
                                format!("RFC822.SIZE {}", row.map_or(0, |r| r.size)).as_bytes(),
                            );
                        }
                        FetchItem::Envelope => {
                            sep(&mut out);
                            out.extend_from_slice(b"ENVELOPE ");
                            let env: Value = row
                                .and_then(|r| serde_json::from_str(&r.envelope).ok())
                                .unwrap_or(Value::Null);
                            structure::envelope(&mut out, &env, utf8);
                        }
                        FetchItem::BodyStructure | FetchItem::Body => {
                            sep(&mut out);
                            let ext = *item == FetchItem::BodyStructure;
                            out.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                            structure::body_structure(
                                &mut out,
                                structure_json.as_ref().unwrap_or(&Value::Null),
                                ext,
                                utf8,
                            );
                        }
                        FetchItem::EmailId => {
                            sep(&mut out);
                            let hex = row.map(|r| r.blob.to_hex()).unwrap_or_default();
                            out.extend_from_slice(
                                format!("EMAILID (M{})", &hex[..hex.len().min(24)]).as_bytes(),
                            );
                        }
                        FetchItem::ThreadId => {
                            sep(&mut out);
                            out.extend_from_slice(b"THREADID NIL");
                        }
                        FetchItem::Rfc822 | FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
                            let content = content.as_deref().unwrap_or_default();
                            let root = structure_json.as_ref().unwrap_or(&Value::Null);
                            let (name, section) = match item {
                                FetchItem::Rfc822 => ("RFC822", Section::default()),
                                FetchItem::Rfc822Header => (
                                    "RFC822.HEADER",
                                    Section {
                                        part: vec![],
                                        text: Some(SectionText::Header),
                                    },
                                ),
                                _ => (
                                    "RFC822.TEXT",
                                    Section {
                                        part: vec![],
                                        text: Some(SectionText::Text),
                                    },
                                ),
                            };
                            let data = section_bytes(content, root, &section).unwrap_or_default();
                            sep(&mut out);
                            out.extend_from_slice(name.as_bytes());
                            out.push(b' ');
                            encode::literal(&mut out, &data);
                        }
                        FetchItem::BodySection {
                            section, partial, ..
                        } => {
                            let content = content.as_deref().unwrap_or_default();
                            let root = structure_json.as_ref().unwrap_or(&Value::Null);
                            let data = section_bytes(content, root, section);
                            sep(&mut out);
                            out.extend_from_slice(
                                format!("BODY[{}]", section_name(section)).as_bytes(),
                            );
                            if let Some((start, _)) = partial {
                                out.extend_from_slice(format!("<{start}>").as_bytes());
                            }
                            out.push(b' ');
                            match data {
                                Some(d) => encode::literal(&mut out, &partial_of(d, *partial)),
                                None => out.extend_from_slice(b"NIL"),
                            }
                        }
                        FetchItem::Binary { part, partial, .. } => {
                            let content = content.as_deref().unwrap_or_default();
                            let root = structure_json.as_ref().unwrap_or(&Value::Null);
                            match binary_bytes(content, root, part) {
                                Ok(data) => {
                                    sep(&mut out);
                                    let name = part_name(part);
                                    out.extend_from_slice(format!("BINARY[{name}]").as_bytes());
                                    if let Some((start, _)) = partial {
                                        out.extend_from_slice(format!("<{start}>").as_bytes());
                                    }
                                    out.push(b' ');
                                    match data {
                                        Some(d) => {
                                            let d = partial_of(d, *partial);
                                            if d.contains(&0) {
                                                encode::literal8(&mut out, &d);
                                            } else {
                                                encode::literal(&mut out, &d);
                                            }
                                        }
                                        None => out.extend_from_slice(b"NIL"),
                                    }
                                }
                                Err(()) => job.unknown_cte = true,
                            }
                        }
                        FetchItem::BinarySize { part } => {
                            let content = content.as_deref().unwrap_or_default();
                            let root = structure_json.as_ref().unwrap_or(&Value::Null);
                            match binary_bytes(content, root, part) {
                                Ok(data) => {
                                    sep(&mut out);
                                    let name = part_name(part);
                                    out.extend_from_slice(
                                        format!(
                                            "BINARY.SIZE[{name}] {}",
                                            data.map_or(0, |d| d.len())
                                        )
                                        .as_bytes(),
                                    );
                                }
                                Err(()) => job.unknown_cte = true,
                            }
                        }
                    }
                }
                if !flags_sent && job.seen_now.contains(&entry.uid) {
                    sep(&mut out);
                    out.extend_from_slice(format!("FLAGS {}", view.flags_of(&entry)).as_bytes());
                }
                if changed_since.is_some() || items.contains(&FetchItem::ModSeq) {
                    sep(&mut out);
                    out.extend_from_slice(format!("MODSEQ ({})", entry.modseq.0).as_bytes());
                }
                out.extend_from_slice(b")\r\n");
                self.out.extend_from_slice(&out);
            }
        }
        job.items = items.to_vec();
        if !job.remaining.is_empty() {
            self.pending_fetch = Some(job);
            return;
        }
        self.sync_selected(uid);
        if job.unknown_cte {
            self.tagged(
                &job.tag,
                "NO",
                "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding",
            );
        } else {
            self.tagged(&job.tag, "OK", "FETCH completed");
        }
    }
}
