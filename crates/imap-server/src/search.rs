//! SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182), CONDSTORE's MODSEQ
//! (RFC 7162 §3.1.5), WITHIN (RFC 5032); SORT and THREAD (RFC 5256).
//!
//! Flags, UIDs and MODSEQs come from the session's view; header keys and dates from the header
//! fields stored at delivery; BODY and TEXT from the store's trigram index, so no message is
//! read from disk. Matching is case-insensitive substring matching on decoded text.

use crate::connection::Session;
use crate::selected::{View, has_flag};
use facteur_imap_session::encode;
use facteur_imap_session::parse::{SearchKey, SearchReturn, SeqSet, SortKey, ThreadAlgorithm};
use facteur_imap_session::structure::decode_words;
use facteur_imap_session::thread::{self, ThreadMsg};
use facteur_model::{MailboxId, Uid};
use facteur_store::{SearchRow, Store, StoreError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

fn needs_rows(k: &SearchKey) -> bool {
    match k {
        SearchKey::And(v) => v.iter().any(needs_rows),
        SearchKey::Or(a, b) => needs_rows(a) || needs_rows(b),
        SearchKey::Not(a) => needs_rows(a),
        SearchKey::Header(..)
        | SearchKey::Text(_)
        | SearchKey::Before(_)
        | SearchKey::On(_)
        | SearchKey::Since(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Larger(_)
        | SearchKey::Smaller(_)
        | SearchKey::Older(_)
        | SearchKey::Younger(_)
        | SearchKey::EmailId(_) => true,
        _ => false,
    }
}

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::And(v) => v.iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(a) => uses_modseq(a),
        SearchKey::ModSeq(_) => true,
        _ => false,
    }
}

fn body_needles(k: &SearchKey, out: &mut Vec<String>) {
    match k {
        SearchKey::And(v) => v.iter().for_each(|k| body_needles(k, out)),
        SearchKey::Or(a, b) => {
            body_needles(a, out);
            body_needles(b, out);
        }
        SearchKey::Not(a) => body_needles(a, out),
        SearchKey::Body(s) | SearchKey::Text(s) => out.push(s.clone()),
        _ => {}
    }
}

/// ASCII pieces that every match must hold in its header fields or envelope: from the header
/// keys of the top-level conjunction (an OR or NOT could match without them).
fn prefilter(key: &SearchKey) -> Vec<String> {
    let keys: Vec<&SearchKey> = match key {
        SearchKey::And(v) => v.iter().collect(),
        k => vec![k],
    };
    let mut out = Vec::new();
    for k in keys {
        if let SearchKey::Header(_, needle) = k
            && needle.is_ascii()
        {
            out.extend(
                needle
                    .split(['@', '<', '>', ' ', '"', '\\', '\t'])
                    .filter(|p| !p.is_empty())
                    .map(|p| p.to_ascii_lowercase()),
            );
        }
    }
    out
}

/// Needles of header keys in the top-level conjunction that the header text index can answer:
/// ASCII (the index holds mail-parser's decoding, the exact check ours) and 3 characters or
/// more (trigrams).
fn indexed_header_needles(key: &SearchKey) -> Vec<String> {
    let keys: Vec<&SearchKey> = match key {
        SearchKey::And(v) => v.iter().collect(),
        k => vec![k],
    };
    keys.into_iter()
        .filter_map(|k| match k {
            SearchKey::Header(_, needle) if needle.is_ascii() && needle.trim().len() >= 3 => {
                Some(needle.trim().to_string())
            }
            _ => None,
        })
        .collect()
}

/// A message's header fields, parsed from their JSON on first use.
struct Headers<'a> {
    raw: &'a str,
    parsed: Option<Vec<(String, String)>>,
    envelope: &'a str,
}

impl Headers<'_> {
    fn fields(&mut self) -> &[(String, String)] {
        if self.parsed.is_none() {
            let v: Vec<(String, String)> = serde_json::from_str(self.raw).unwrap_or_default();
            self.parsed = Some(v);
        }
        self.parsed.as_deref().unwrap_or_default()
    }

    fn contains(&mut self, name: Option<&str>, needle_lower: &str) -> bool {
        // Cheap test first: the raw text must hold the needle unless encoded-words hide it.
        if !needle_lower.is_empty()
            && needle_lower.is_ascii()
            && !needle_lower.contains(['"', '\\'])
            && !self.raw.contains("=?")
            && !ascii_lower_contains(self.raw, needle_lower)
        {
            return false;
        }
        self.fields().iter().any(|(n, v)| {
            name.is_none_or(|name| n.eq_ignore_ascii_case(name))
                && (needle_lower.is_empty()
                    || decode_words(v).to_lowercase().contains(needle_lower))
        })
    }

    /// Address fields also match on their parsed form (`name <mailbox@host>`), so comments
    /// and odd spacing in the raw header do not hide an address.
    fn address_contains(&self, name: &str, needle_lower: &str) -> bool {
        let field = match name.to_ascii_lowercase().as_str() {
            "from" => "from",
            "to" => "to",
            "cc" => "cc",
            "bcc" => "bcc",
            "sender" => "sender",
            "reply-to" => "reply_to",
            _ => return false,
        };
        // Cheap test first: every piece of the needle must be somewhere in the raw JSON.
        if needle_lower.is_ascii()
            && !self.envelope.contains("=?")
            && !needle_lower
                .split(['@', '<', '>', ' ', '"', '\\'])
                .filter(|p| !p.is_empty())
                .all(|p| ascii_lower_contains(self.envelope, p))
        {
            return false;
        }
        let Ok(env) = serde_json::from_str::<Value>(self.envelope) else {
            return false;
        };
        let one = |a: &Value| {
            let text = format!(
                "{} <{}@{}>",
                a["name"].as_str().map(decode_words).unwrap_or_default(),
                a["mailbox"].as_str().unwrap_or(""),
                a["host"].as_str().unwrap_or("")
            );
            text.to_lowercase().contains(needle_lower)
        };
        env[field].as_array().into_iter().flatten().any(|a| {
            one(a)
                || a["members"].as_array().into_iter().flatten().any(one)
                || a["group"]
                    .as_str()
                    .is_some_and(|g| g.to_lowercase().contains(needle_lower))
        })
    }

    fn get(&mut self, name: &str) -> Option<String> {
        self.fields()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn ascii_lower_contains(hay: &str, needle_lower: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len())
        .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

fn day_of(ts: i64) -> i64 {
    ts.div_euclid(86_400) * 86_400
}

/// The day of the Date header in its own zone (RFC 9051: SENT* disregard time and zone).
fn sent_day(date: Option<&str>, fallback: i64) -> i64 {
    match date.and_then(mail_parser::DateTime::parse_rfc822) {
        Some(d) => {
            facteur_model::calendar::days_from_civil(d.year as i64, d.month as u32, d.day as u32)
                * 86_400
        }
        None => day_of(fallback),
    }
}

struct Ctx<'a> {
    view: &'a View,
    bodies: HashMap<String, HashSet<Uid>>,
    now: i64,
}

fn eval(
    k: &SearchKey,
    ctx: &Ctx<'_>,
    seq: usize,
    row: Option<&SearchRow>,
    headers: &mut Option<Headers<'_>>,
) -> bool {
    let e = &ctx.view.entries[seq];
    match k {
        SearchKey::All => true,
        SearchKey::And(v) => v.iter().all(|k| eval(k, ctx, seq, row, headers)),
        SearchKey::Or(a, b) => eval(a, ctx, seq, row, headers) || eval(b, ctx, seq, row, headers),
        SearchKey::Not(a) => !eval(a, ctx, seq, row, headers),
        SearchKey::SeqSet(SeqSet::Ranges(r)) => {
            SeqSet::contains(r, seq as u32 + 1, ctx.view.entries.len() as u32)
        }
        SearchKey::SeqSet(SeqSet::Saved) | SearchKey::Uid(SeqSet::Saved) => {
            ctx.view.saved.contains(&e.uid)
        }
        SearchKey::Uid(SeqSet::Ranges(r)) => SeqSet::contains(r, e.uid.0, ctx.view.max_uid()),
        SearchKey::Flag(f, set) => has_flag(&e.flags, f) == *set,
        SearchKey::Recent => ctx.view.is_recent(e.uid),
        SearchKey::New => ctx.view.is_recent(e.uid) && !has_flag(&e.flags, "\\Seen"),
        SearchKey::Old => !ctx.view.is_recent(e.uid),
        SearchKey::ModSeq(m) => e.modseq.0 >= *m,
        SearchKey::Body(s) => ctx.bodies.get(s).is_some_and(|b| b.contains(&e.uid)),
        SearchKey::Text(s) => {
            ctx.bodies.get(s).is_some_and(|b| b.contains(&e.uid))
                || headers
                    .as_mut()
                    .is_some_and(|h| h.contains(None, &s.to_lowercase()))
        }
        SearchKey::Header(name, v) => headers.as_mut().is_some_and(|h| {
            let needle = v.to_lowercase();
            h.contains(Some(name), &needle)
                || (!needle.is_empty() && h.address_contains(name, &needle))
        }),
        SearchKey::Before(d) => row.is_some_and(|r| day_of(r.internal_date) < *d),
        SearchKey::On(d) => row.is_some_and(|r| day_of(r.internal_date) == *d),
        SearchKey::Since(d) => row.is_some_and(|r| day_of(r.internal_date) >= *d),
        SearchKey::SentBefore(d) | SearchKey::SentOn(d) | SearchKey::SentSince(d) => {
            let Some(r) = row else { return false };
            let date = headers.as_mut().and_then(|h| h.get("Date"));
            let day = sent_day(date.as_deref(), r.internal_date);
            match k {
                SearchKey::SentBefore(_) => day < *d,
                SearchKey::SentOn(_) => day == *d,
                _ => day >= *d,
            }
        }
        SearchKey::Larger(n) => row.is_some_and(|r| r.size > *n),
        SearchKey::Smaller(n) => row.is_some_and(|r| r.size < *n),
        SearchKey::Older(s) => row.is_some_and(|r| r.internal_date <= ctx.now - *s as i64),
        SearchKey::Younger(s) => row.is_some_and(|r| r.internal_date >= ctx.now - *s as i64),
        SearchKey::EmailId(id) => row.is_some_and(|r| {
            let hex = r.blob.to_hex();
            id.len() > 1 && id.starts_with('M') && hex.starts_with(&id[1..])
        }),
        SearchKey::ThreadId(_) => false,
    }
}

/// Positions in the view of the messages matching `key`.
fn run(
    store: &Store,
    mailbox: MailboxId,
    view: &View,
    key: &SearchKey,
) -> Result<Vec<usize>, StoreError> {
    let mut needles = Vec::new();
    body_needles(key, &mut needles);
    let mut bodies = HashMap::new();
    for n in needles {
        if let std::collections::hash_map::Entry::Vacant(slot) = bodies.entry(n) {
            let set: HashSet<Uid> = store
                .search_body(mailbox, slot.key())?
                .into_iter()
                .collect();
            slot.insert(set);
        }
    }
    let ctx = Ctx {
        view,
        bodies,
        now: crate::mailboxes::now_unix(),
    };
    // Header keys of the top-level conjunction narrow the candidates through the header
    // text index first; the keys are then checked exactly on those alone.
    let mut candidates: Option<HashSet<Uid>> = None;
    for needle in indexed_header_needles(key) {
        if let Some(uids) = store.search_header_index(mailbox, &needle)? {
            let set: HashSet<Uid> = uids.into_iter().collect();
            candidates = Some(match candidates {
                None => set,
                Some(c) => c.intersection(&set).copied().collect(),
            });
        }
    }
    let rows = if needs_rows(key) {
        let only: Option<Vec<Uid>> = candidates.as_ref().map(|c| {
            let mut v: Vec<Uid> = c.iter().copied().collect();
            v.sort_unstable();
            v
        });
        store.search_rows(mailbox, &prefilter(key), only.as_deref())?
    } else {
        Vec::new()
    };
    let by_uid: HashMap<Uid, usize> = rows.iter().enumerate().map(|(i, r)| (r.uid, i)).collect();
    let mut out = Vec::new();
    for seq in 0..view.entries.len() {
        if let Some(c) = &candidates
            && !c.contains(&view.entries[seq].uid)
        {
            continue;
        }
        let row = by_uid.get(&view.entries[seq].uid).map(|&i| &rows[i]);
        let mut headers = row.map(|r| Headers {
            raw: &r.headers,
            parsed: None,
            envelope: &r.envelope,
        });
        if eval(key, &ctx, seq, row, &mut headers) {
            out.push(seq);
        }
    }
    Ok(out)
}

impl Session {
    fn numbers(&self, positions: &[usize], uid: bool) -> Vec<u32> {
        let view = self.selected.as_ref().expect("selected");
        let mut v: Vec<u32> = positions
            .iter()
            .map(|&p| {
                if uid {
                    view.entries[p].uid.0
                } else {
                    p as u32 + 1
                }
            })
            .collect();
        if uid {
            v.sort_unstable();
        }
        v
    }

    fn esearch(
        &mut self,
        tag: &str,
        uid: bool,
        ret: &[SearchReturn],
        nums: &[u32],
        sorted: bool,
        modseq: Option<u64>,
    ) {
        let mut line = format!("ESEARCH (TAG \"{tag}\")");
        if uid {
            line.push_str(" UID");
        }
        let all = ret.is_empty();
        // Search results are ascending; RFC 5267 §3.2 (ESORT): for SORT, MIN and MAX are the
        // first and last in sort order. Either way: the ends of the list.
        let (min, max) = (nums.first(), nums.last());
        if ret.contains(&SearchReturn::Min)
            && let Some(m) = min
        {
            line.push_str(&format!(" MIN {m}"));
        }
        if ret.contains(&SearchReturn::Max)
            && let Some(m) = max
        {
            line.push_str(&format!(" MAX {m}"));
        }
        if ret.contains(&SearchReturn::Count) {
            line.push_str(&format!(" COUNT {}", nums.len()));
        }
        if (all || ret.contains(&SearchReturn::All)) && !nums.is_empty() {
            if sorted {
                // RFC 5267 §3.2: a sequence set in sort order; runs of consecutive numbers
                // may still be written as ranges.
                let mut parts: Vec<String> = Vec::new();
                let mut i = 0;
                while i < nums.len() {
                    let mut j = i;
                    while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                        j += 1;
                    }
                    parts.push(if j > i {
                        format!("{}:{}", nums[i], nums[j])
                    } else {
                        nums[i].to_string()
                    });
                    i = j + 1;
                }
                line.push_str(&format!(" ALL {}", parts.join(",")));
            } else {
                line.push_str(&format!(" ALL {}", encode::seq_set(nums)));
            }
        }
        if let Some(m) = modseq {
            line.push_str(&format!(" MODSEQ {m}"));
        }
        self.untagged(&line);
    }

    pub(crate) fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        key: &SearchKey,
    ) {
        let view = self.selected.as_ref().expect("selected");
        let mailbox = view.mailbox.id;
        let found = match run(&self.ctx.store, mailbox, view, key) {
            Ok(f) => f,
            Err(e) => return self.server_error(tag, &e),
        };
        // RFC 7162 §3.1.5: the highest MODSEQ of the messages returned; with only MIN and/or
        // MAX asked, of those messages alone.
        let only_ends = ret.as_ref().is_some_and(|r| {
            r.iter().all(|x| {
                matches!(
                    x,
                    SearchReturn::Min | SearchReturn::Max | SearchReturn::Save
                )
            }) && r
                .iter()
                .any(|x| matches!(x, SearchReturn::Min | SearchReturn::Max))
        });
        let modseq = uses_modseq(key).then(|| {
            let returned: Vec<usize> = if only_ends {
                let r = ret.as_deref().unwrap_or_default();
                let mut v = Vec::new();
                if r.contains(&SearchReturn::Min) {
                    v.extend(found.first());
                }
                if r.contains(&SearchReturn::Max) {
                    v.extend(found.last());
                }
                v
            } else {
                found.clone()
            };
            returned
                .iter()
                .map(|&p| view.entries[p].modseq.0)
                .max()
                .unwrap_or(0)
        });
        if uses_modseq(key) {
            self.enable_condstore();
        }
        let nums = self.numbers(&found, uid);
        let save = ret
            .as_ref()
            .is_some_and(|r| r.contains(&SearchReturn::Save));
        if save {
            let view = self.selected.as_ref().expect("selected");
            let r = ret.as_deref().unwrap_or_default();
            let only_minmax = r.iter().all(|x| {
                matches!(
                    x,
                    SearchReturn::Save | SearchReturn::Min | SearchReturn::Max
                )
            }) && r.len() > 1;
            let mut saved: Vec<Uid> = found.iter().map(|&p| view.entries[p].uid).collect();
            if only_minmax && !saved.is_empty() {
                let (lo, hi) = (saved[0], saved[saved.len() - 1]);
                saved.clear();
                if r.contains(&SearchReturn::Min) {
                    saved.push(lo);
                }
                if r.contains(&SearchReturn::Max) && hi != lo {
                    saved.push(hi);
                }
            }
            self.selected.as_mut().expect("selected").saved = saved;
        }
        match ret {
            Some(r) => {
                let shown: Vec<SearchReturn> =
                    r.into_iter().filter(|x| *x != SearchReturn::Save).collect();
                // SAVE alone: no ESEARCH response (RFC 5182 §2.4).
                if !(save && shown.is_empty()) {
                    self.esearch(tag, uid, &shown, &nums, false, modseq.filter(|&m| m > 0));
                }
            }
            None if self.rev2 => {
                self.esearch(tag, uid, &[], &nums, false, modseq.filter(|&m| m > 0))
            }
            None => {
                let mut line = String::from("SEARCH");
                for n in &nums {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.untagged(&line);
            }
        }
        self.sync_selected(uid);
        self.tagged(tag, "OK", "SEARCH completed");
    }

    /// The messages matching `key`, with the envelope and header data SORT and THREAD
    /// compare: (position in the view, row).
    fn sort_data(
        &self,
        key: &SearchKey,
    ) -> Result<Vec<(usize, facteur_store::MessageInfo)>, StoreError> {
        let view = self.selected.as_ref().expect("selected");
        let found = run(&self.ctx.store, view.mailbox.id, view, key)?;
        let uids: Vec<Uid> = found.iter().map(|&p| view.entries[p].uid).collect();
        let rows = self.ctx.store.messages_by_uid(view.mailbox.id, &uids)?;
        Ok(found
            .iter()
            .filter_map(|&p| {
                let uid = view.entries[p].uid;
                rows.binary_search_by_key(&uid, |r| r.uid)
                    .ok()
                    .map(|i| (p, rows[i].clone()))
            })
            .collect())
    }

    pub(crate) fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: &[(bool, SortKey)],
        ret: Option<Vec<SearchReturn>>,
        key: &SearchKey,
    ) {
        let data = match self.sort_data(key) {
            Ok(d) => d,
            Err(e) => return self.server_error(tag, &e),
        };
        #[derive(PartialEq, PartialOrd)]
        enum K {
            N(i64),
            S(String),
        }
        let keyed: Vec<(Vec<K>, usize)> = data
            .iter()
            .map(|(p, m)| {
                let env: Value = serde_json::from_str(&m.envelope).unwrap_or(Value::Null);
                // RFC 5256 §3: the first address's mailbox; a group's start marker carries
                // the group name. RFC 5957: the display name, else the address. Compared
                // with i;ascii-casemap (upper case).
                let first = |field: &str, display: bool| -> String {
                    let a = &env[field][0];
                    if let Some(group) = a["group"].as_str() {
                        return group.to_ascii_uppercase();
                    }
                    let mailbox = a["mailbox"].as_str().unwrap_or("");
                    let key = if display {
                        a["name"]
                            .as_str()
                            .map(decode_words)
                            .filter(|n| !n.trim().is_empty())
                            .unwrap_or_else(|| match a["host"].as_str() {
                                Some(h) if !h.is_empty() => format!("{mailbox}@{h}"),
                                _ => mailbox.to_string(),
                            })
                    } else {
                        mailbox.to_string()
                    };
                    key.to_ascii_uppercase()
                };
                let keys = criteria
                    .iter()
                    .map(|(_, k)| match k {
                        SortKey::Arrival => K::N(m.internal_date),
                        SortKey::Size => K::N(m.size as i64),
                        SortKey::Date => {
                            let d = env["date"]
                                .as_str()
                                .and_then(mail_parser::DateTime::parse_rfc822)
                                .map(|d| d.to_timestamp())
                                .unwrap_or(m.internal_date);
                            K::N(d)
                        }
                        SortKey::Subject => {
                            K::S(thread::base_subject(env["subject"].as_str().unwrap_or("")))
                        }
                        SortKey::From => K::S(first("from", false)),
                        SortKey::To => K::S(first("to", false)),
                        SortKey::Cc => K::S(first("cc", false)),
                        SortKey::DisplayFrom => K::S(first("from", true)),
                        SortKey::DisplayTo => K::S(first("to", true)),
                    })
                    .collect();
                (keys, *p)
            })
            .collect();
        let mut order: Vec<usize> = (0..keyed.len()).collect();
        order.sort_by(|&a, &b| {
            for (i, (rev, _)) in criteria.iter().enumerate() {
                let o = keyed[a].0[i]
                    .partial_cmp(&keyed[b].0[i])
                    .unwrap_or(std::cmp::Ordering::Equal);
                let o = if *rev { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            keyed[a].1.cmp(&keyed[b].1)
        });
        let view = self.selected.as_ref().expect("selected");
        let nums: Vec<u32> = order
            .iter()
            .map(|&i| {
                let p = keyed[i].1;
                if uid {
                    view.entries[p].uid.0
                } else {
                    p as u32 + 1
                }
            })
            .collect();
        match ret {
            Some(r) => {
                let r: Vec<SearchReturn> =
                    r.into_iter().filter(|x| *x != SearchReturn::Save).collect();
                self.esearch(tag, uid, &r, &nums, true, None)
            }
            None => {
                let list: Vec<String> = nums.iter().map(u32::to_string).collect();
                self.untagged(format!("SORT {}", list.join(" ")).trim_end());
            }
        }
        self.sync_selected(uid);
        self.tagged(tag, "OK", "SORT completed");
    }

    pub(crate) fn thread(
        &mut self,
        tag: &str,
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: &SearchKey,
    ) {
        let data = match self.sort_data(key) {
            Ok(d) => d,
            Err(e) => return self.server_error(tag, &e),
        };
        let view = self.selected.as_ref().expect("selected");
        let msgs: Vec<ThreadMsg> = data
            .iter()
            .map(|(p, m)| {
                let fields: Vec<(String, String)> =
                    serde_json::from_str(&m.headers).unwrap_or_default();
                let get = |n: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(n))
                        .map(|(_, v)| v.as_str())
                };
                let mut references = get("References")
                    .map(thread::message_ids)
                    .unwrap_or_default();
                if references.is_empty() {
                    references = get("In-Reply-To")
                        .map(thread::message_ids)
                        .unwrap_or_default()
                        .into_iter()
                        .take(1)
                        .collect();
                }
                let date = get("Date")
                    .and_then(mail_parser::DateTime::parse_rfc822)
                    .map(|d| d.to_timestamp())
                    .unwrap_or(m.internal_date);
                let base_subject = thread::base_subject_reply(get("Subject").unwrap_or(""));
                ThreadMsg {
                    id: if uid {
                        view.entries[*p].uid.0
                    } else {
                        *p as u32 + 1
                    },
                    message_id: get("Message-ID")
                        .and_then(|v| thread::message_ids(v).into_iter().next()),
                    references,
                    base_subject: base_subject.0,
                    is_reply: base_subject.1,
                    date,
                }
            })
            .collect();
        let result = match algorithm {
            ThreadAlgorithm::OrderedSubject => thread::ordered_subject(&msgs),
            ThreadAlgorithm::References => thread::references(&msgs),
        };
        self.untagged(format!("THREAD {result}").trim_end());
        self.sync_selected(uid);
        self.tagged(tag, "OK", "THREAD completed");
    }
}
