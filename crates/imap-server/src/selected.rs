//! The selected state (RFC 9051 §6.3.2, §6.4): the mailbox view with sequence numbers, its
//! resynchronisation from the store, SELECT/EXAMINE with CONDSTORE and QRESYNC (RFC 7162),
//! CLOSE, UNSELECT, EXPUNGE, STORE, COPY and MOVE (RFC 6851) with UIDPLUS (RFC 4315).

use crate::connection::Session;
use facteur_imap_session::encode;
use facteur_imap_session::parse::{CommandBody, Qresync, SeqNum, SeqSet, StoreOp};
use facteur_model::{ModSeq, Uid};
use facteur_store::{FlagOp, MailboxRow, StoreError, ViewEntry};
use std::collections::BTreeSet;

/// Messages above which SEARCH, SORT and THREAD leave the async worker thread.
const LARGE_MAILBOX: usize = 5_000;

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// A selected mailbox as this session knows it. Message sequence numbers are positions in
/// `entries` (UID order); they change only when this session announces an expunge.
pub(crate) struct View {
    pub mailbox: MailboxRow,
    pub read_only: bool,
    /// Shared with other sessions while it is exactly the mailbox at `known_modseq`
    /// (`Context::share_view`); copied on the first change of this session's own.
    pub entries: std::sync::Arc<Vec<ViewEntry>>,
    /// Every change up to this MODSEQ has been applied to `entries`.
    pub known_modseq: ModSeq,
    /// Keywords announced in the last FLAGS response.
    pub keywords: BTreeSet<String>,
    /// SEARCHRES (RFC 5182): the UIDs `$` stands for.
    pub saved: Vec<Uid>,
    /// UID ranges `[first, end)` \Recent in this session (RFC 3501 §2.3.2; gone in
    /// IMAP4rev2): claims are ranges, so a first SELECT of 100,000 messages is one pair.
    pub recent: Vec<(u32, u32)>,
    /// IMAP4rev1 session: \Recent is shown in FLAGS.
    pub show_recent: bool,
}

impl View {
    pub fn position(&self, uid: Uid) -> Option<usize> {
        self.entries.binary_search_by_key(&uid, |e| e.uid).ok()
    }

    pub fn is_recent(&self, uid: Uid) -> bool {
        self.recent.iter().any(|&(a, b)| a <= uid.0 && uid.0 < b)
    }

    /// Messages of the view that are \Recent.
    pub fn recent_count(&self) -> usize {
        self.recent
            .iter()
            .map(|&(a, b)| {
                self.entries.partition_point(|e| e.uid.0 < b)
                    - self.entries.partition_point(|e| e.uid.0 < a)
            })
            .sum()
    }

    /// The parenthesized flag list of a message, with \Recent for IMAP4rev1 clients.
    pub fn flags_of(&self, e: &ViewEntry) -> String {
        if self.show_recent && self.is_recent(e.uid) {
            if e.flags.is_empty() {
                "(\\Recent)".to_string()
            } else {
                format!("({} \\Recent)", e.flags)
            }
        } else {
            format!("({})", e.flags)
        }
    }

    pub fn max_uid(&self) -> u32 {
        self.entries.last().map_or(0, |e| e.uid.0)
    }

    /// Indexes into `entries` named by a set: sequence numbers, or UIDs with `uid`.
    /// Err when a sequence number is past the end (RFC 9051 §9 says it is invalid).
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Result<Vec<usize>, &'static str> {
        let ranges = match set {
            SeqSet::Saved => {
                return Ok(self
                    .saved
                    .iter()
                    .filter_map(|u| self.position(*u))
                    .collect());
            }
            SeqSet::Ranges(r) => r,
        };
        if uid {
            let max = self.max_uid();
            let mut out = Vec::new();
            for &(a, b) in ranges {
                let v = |n: SeqNum| match n {
                    SeqNum::Num(n) => n,
                    SeqNum::Star => max,
                };
                let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
                let start = self.entries.partition_point(|e| e.uid.0 < lo);
                let end = self.entries.partition_point(|e| e.uid.0 <= hi);
                out.extend(start..end);
            }
            out.sort_unstable();
            out.dedup();
            Ok(out)
        } else {
            let n = self.entries.len() as u32;
            for &(a, b) in ranges {
                for x in [a, b] {
                    if let SeqNum::Num(x) = x
                        && x > n
                    {
                        return Err("Invalid message sequence number");
                    }
                }
                if n == 0 {
                    return Err("No messages");
                }
            }
            Ok(SeqSet::resolve(ranges, n)
                .into_iter()
                .map(|s| s as usize - 1)
                .collect())
        }
    }
}

impl Session {
    pub(crate) fn selected_command(&mut self, tag: &str, body: CommandBody) {
        if let CommandBody::Select {
            mailbox,
            examine,
            condstore,
            qresync,
        } = body
        {
            return self.select(tag, &mailbox, examine, condstore, qresync);
        }
        if self.selected.is_none() {
            self.errors_inc();
            self.tagged(tag, "BAD", "No mailbox selected");
            return;
        }
        match body {
            CommandBody::Close => {
                if let Some(view) = self.selected.take()
                    && !view.read_only
                {
                    let deleted: Vec<Uid> = view
                        .entries
                        .iter()
                        .filter(|e| has_flag(&e.flags, "\\Deleted"))
                        .map(|e| e.uid)
                        .collect();
                    if !deleted.is_empty()
                        && let Err(e) =
                            self.ctx
                                .store
                                .expunge(self.account(), view.mailbox.id, &deleted)
                    {
                        return self.server_error(tag, &e);
                    }
                }
                self.tagged(tag, "OK", "CLOSE completed");
            }
            CommandBody::Unselect => {
                self.selected = None;
                self.tagged(tag, "OK", "UNSELECT completed");
            }
            CommandBody::Expunge { uids } => self.expunge(tag, uids),
            CommandBody::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            } => self.store_flags(tag, uid, &set, unchanged_since, op, silent, flags),
            CommandBody::Copy {
                uid,
                set,
                mailbox,
                moving,
            } => self.copy(tag, uid, &set, &mailbox, moving),
            CommandBody::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => self.fetch(tag, uid, &set, &items, changed_since, vanished),
            CommandBody::Search { uid, ret, key } => self.heavy(|s| s.search(tag, uid, ret, &key)),
            CommandBody::Sort {
                uid,
                criteria,
                ret,
                key,
            } => self.heavy(|s| s.sort(tag, uid, &criteria, ret, &key)),
            CommandBody::Thread {
                uid,
                algorithm,
                key,
            } => self.heavy(|s| s.thread(tag, uid, algorithm, &key)),
            _ => {
                self.errors_inc();
                self.tagged(tag, "BAD", "Command not valid in this state");
            }
        }
    }

    fn select(
        &mut self,
        tag: &str,
        raw: &[u8],
        examine: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    ) {
        if self.selected.take().is_some() {
            // RFC 7162 §3.2.11 and RFC 9051 §6.3.2: the old mailbox is closed first.
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        if qresync.is_some() && !self.qresync {
            self.tagged(tag, "BAD", "ENABLE QRESYNC first");
            return;
        }
        if condstore {
            self.condstore = true;
        }
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        };
        let mb = match self.ctx.store.mailbox_by_name(self.account(), &name) {
            Ok(Some(mb)) => mb,
            Ok(None) => {
                self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
                return;
            }
            Err(e) => return self.server_error(tag, &e),
        };
        let key = (mb.id, mb.uidvalidity);
        let (at, entries) = match self.ctx.shared_view(key, mb.highest_modseq) {
            Some(shared) => (mb.highest_modseq, shared),
            None => match self.ctx.store.view_at(mb.id) {
                Ok((at, v)) => (at, self.ctx.share_view(key, at, std::sync::Arc::new(v))),
                Err(e) => return self.server_error(tag, &e),
            },
        };
        // The mailbox's MODSEQ is read before the view: changes in between are seen twice,
        // never missed.
        let mut keywords = BTreeSet::new();
        for e in entries.iter() {
            for f in e.flags.split_ascii_whitespace() {
                if !f.starts_with('\\') {
                    keywords.insert(f.to_string());
                }
            }
        }
        let kw: Vec<&str> = keywords.iter().map(String::as_str).collect();
        let flags = if kw.is_empty() {
            SYSTEM_FLAGS.to_string()
        } else {
            format!("{SYSTEM_FLAGS} {}", kw.join(" "))
        };
        self.untagged(&format!("FLAGS ({flags})"));
        if examine {
            self.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox");
        } else {
            self.untagged(&format!(
                "OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"
            ));
        }
        // \Recent: SELECT claims what no session has seen; EXAMINE only looks.
        let upto = Uid(mb.uidnext.0.max(entries.last().map_or(0, |e| e.uid.0 + 1)));
        let first_recent = if examine {
            Ok(mb.recent_uid)
        } else {
            self.ctx.store.claim_recent(mb.id, upto)
        };
        let first_recent = match first_recent {
            Ok(u) => u,
            Err(e) => return self.server_error(tag, &e),
        };
        let recent = vec![(first_recent.0, upto.0)];
        let recent_count = entries.len() - entries.partition_point(|e| e.uid < first_recent);
        self.untagged(&format!("{} EXISTS", entries.len()));
        if !self.rev2 {
            self.untagged(&format!("{recent_count} RECENT"));
            if let Some(first) = entries.iter().position(|e| !has_flag(&e.flags, "\\Seen")) {
                self.untagged(&format!("OK [UNSEEN {}] First unseen", first + 1));
            }
        }
        self.untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", mb.uidvalidity));
        self.untagged(&format!("OK [UIDNEXT {}] Predicted next UID", mb.uidnext.0));
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            mb.highest_modseq.0
        ));
        self.untagged(&format!("OK [MAILBOXID (F{})] Ok", mb.uidvalidity));
        if self.rev2 {
            self.out.extend_from_slice(b"* LIST () \"/\" ");
            self.write_mailbox(&mb.name);
            self.out.extend_from_slice(b"\r\n");
        }
        let view = View {
            mailbox: mb.clone(),
            read_only: examine,
            entries,
            known_modseq: at,
            keywords,
            saved: Vec::new(),
            recent,
            show_recent: !self.rev2,
        };
        if let Some(q) = qresync
            && q.uidvalidity == mb.uidvalidity
        {
            self.qresync_select(&view, &q);
        }
        self.selected = Some(view);
        self.tagged(
            tag,
            "OK",
            if examine {
                "[READ-ONLY] EXAMINE completed"
            } else {
                "[READ-WRITE] SELECT completed"
            },
        );
    }

    /// RFC 7162 §3.2.5.1: what changed since the client's MODSEQ, as VANISHED (EARLIER) and
    /// FETCH responses.
    fn qresync_select(&mut self, view: &View, q: &Qresync) {
        let Ok(changes) = self
            .ctx
            .store
            .changes_since(view.mailbox.id, ModSeq(q.modseq))
        else {
            return;
        };
        let max = view.max_uid().max(changes.uidnext.0.saturating_sub(1));
        let known = |u: Uid| {
            q.known_uids
                .as_ref()
                .is_none_or(|k| SeqSet::contains(k, u.0, max))
        };
        let vanished: Vec<u32> = changes
            .expunged
            .iter()
            .filter(|u| known(**u))
            .map(|u| u.0)
            .collect();
        if !vanished.is_empty() {
            self.untagged(&format!(
                "VANISHED (EARLIER) {}",
                encode::seq_set(&vanished)
            ));
        }
        for e in &changes.updated {
            if let Some(pos) = view.position(e.uid) {
                let cur = &view.entries[pos];
                self.untagged(&format!(
                    "{} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                    pos + 1,
                    cur.uid.0,
                    view.flags_of(cur),
                    cur.modseq.0
                ));
            }
        }
    }

    /// A CONDSTORE-enabling command (RFC 7162 §3.1) while a mailbox is selected: the client
    /// learns the HIGHESTMODSEQ at once.
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(view) = &self.selected {
            let m = view.mailbox.highest_modseq.0;
            self.untagged(&format!("OK [HIGHESTMODSEQ {m}] Highest"));
        }
    }

    /// Runs a command that reads the whole mailbox: on a large one it may take tens of
    /// milliseconds of store reads, so the runtime is told to move other sessions off this
    /// worker thread meanwhile.
    fn heavy(&mut self, f: impl FnOnce(&mut Self)) {
        let large = self
            .selected
            .as_ref()
            .is_some_and(|v| v.entries.len() > LARGE_MAILBOX);
        if large
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        {
            tokio::task::block_in_place(|| f(self));
        } else {
            f(self);
        }
    }

    pub(crate) fn errors_inc(&mut self) {
        self.errors += 1;
    }

    /// Brings the selected view up to date and queues the untagged responses: new messages
    /// (EXISTS), flag changes (FETCH), and, when `expunges` is true, removals (EXPUNGE, or
    /// VANISHED once QRESYNC is enabled). With `expunges` false (during FETCH, STORE, SEARCH,
    /// RFC 9051 §7.5.1) removed messages keep their sequence numbers until a later sync.
    pub(crate) fn sync_selected(&mut self, expunges: bool) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        let changes = match self
            .ctx
            .store
            .changes_since(view.mailbox.id, view.known_modseq)
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "resync failed");
                return;
            }
        };
        if changes.highest_modseq <= view.known_modseq {
            return;
        }
        let mut out = Vec::new();
        let mut vanished = Vec::new();
        let mut held_back = false;
        if !changes.expunged.is_empty() {
            if expunges {
                for uid in &changes.expunged {
                    if let Some(pos) = view.position(*uid) {
                        std::sync::Arc::make_mut(&mut view.entries).remove(pos);
                        if self.qresync {
                            vanished.push(uid.0);
                        } else {
                            out.push(format!("* {} EXPUNGE\r\n", pos + 1));
                        }
                    }
                }
            } else {
                held_back = changes.expunged.iter().any(|u| view.position(*u).is_some());
            }
        }
        let before = view.entries.len();
        let mut new_keywords = false;
        let mut new_uids = Vec::new();
        for e in changes.updated {
            match view.position(e.uid) {
                Some(pos) => {
                    let cur = &view.entries[pos];
                    if cur.flags != e.flags || (self.condstore && cur.modseq != e.modseq) {
                        let changed_flags = cur.flags != e.flags;
                        std::sync::Arc::make_mut(&mut view.entries)[pos] = e.clone();
                        if changed_flags || self.condstore {
                            let mut line = format!("* {} FETCH (", pos + 1);
                            if self.qresync {
                                line.push_str(&format!("UID {} ", e.uid.0));
                            }
                            line.push_str(&format!("FLAGS {}", view.flags_of(&e)));
                            if self.condstore {
                                line.push_str(&format!(" MODSEQ ({})", e.modseq.0));
                            }
                            line.push_str(")\r\n");
                            out.push(line);
                        }
                    }
                }
                None if e.uid.0 > view.max_uid() => {
                    new_uids.push(e.uid);
                    std::sync::Arc::make_mut(&mut view.entries).push(e.clone());
                }
                None => {}
            }
            for f in e.flags.split_ascii_whitespace() {
                if !f.starts_with('\\') && view.keywords.insert(f.to_string()) {
                    new_keywords = true;
                }
            }
        }
        if !held_back {
            view.known_modseq = changes.highest_modseq;
            // Exactly the mailbox at that MODSEQ now: share it, or take the shared copy.
            let mine = std::sync::Arc::clone(&view.entries);
            view.entries = self.ctx.share_view(
                (view.mailbox.id, view.mailbox.uidvalidity),
                view.known_modseq,
                mine,
            );
        }
        if let Some(last) = new_uids.last() {
            let first = if view.read_only {
                Ok(view.mailbox.recent_uid)
            } else {
                self.ctx
                    .store
                    .claim_recent(view.mailbox.id, Uid(last.0 + 1))
            };
            if let Ok(first) = first {
                view.recent.push((first.0, last.0 + 1));
            }
        }
        let recent_count = view.recent_count();
        let show_recent = view.show_recent;
        view.mailbox.uidnext = changes.uidnext;
        view.mailbox.highest_modseq = changes.highest_modseq;
        let exists = view.entries.len();
        let kw: Vec<String> = view.keywords.iter().cloned().collect();
        if new_keywords {
            let flags = format!("{SYSTEM_FLAGS} {}", kw.join(" "));
            self.untagged(&format!("FLAGS ({flags})"));
            self.untagged(&format!(
                "OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"
            ));
        }
        if !vanished.is_empty() {
            vanished.sort_unstable();
            self.untagged(&format!("VANISHED {}", encode::seq_set(&vanished)));
        }
        for line in out.iter().filter(|l| l.ends_with("EXPUNGE\r\n")) {
            self.out.extend_from_slice(line.as_bytes());
        }
        if exists > before {
            self.untagged(&format!("{exists} EXISTS"));
            if show_recent {
                self.untagged(&format!("{recent_count} RECENT"));
            }
        }
        for line in out.iter().filter(|l| !l.ends_with("EXPUNGE\r\n")) {
            self.out.extend_from_slice(line.as_bytes());
        }
    }

    fn expunge(&mut self, tag: &str, uids: Option<SeqSet>) {
        let account = self.account();
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if view.read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return;
        }
        let scope = match &uids {
            Some(set) => match view.resolve(set, true) {
                Ok(v) => v,
                Err(m) => return self.tagged(tag, "BAD", m),
            },
            None => (0..view.entries.len()).collect(),
        };
        let deleted: Vec<Uid> = scope
            .into_iter()
            .map(|i| &view.entries[i])
            .filter(|e| has_flag(&e.flags, "\\Deleted"))
            .map(|e| e.uid)
            .collect();
        let mailbox = view.mailbox.id;
        if !deleted.is_empty()
            && let Err(e) = self.ctx.store.expunge(account, mailbox, &deleted)
        {
            return self.server_error(tag, &e);
        }
        self.sync_selected(true);
        self.tagged(tag, "OK", "EXPUNGE completed");
    }

    #[allow(clippy::too_many_arguments)]
    fn store_flags(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        unchanged_since: Option<u64>,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
    ) {
        let account = self.account();
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if view.read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return;
        }
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let view = self.selected.as_ref().expect("selected");
        let idx = match view.resolve(set, uid) {
            Ok(v) => v,
            Err(m) => return self.tagged(tag, "BAD", m),
        };
        let uids: Vec<Uid> = idx.iter().map(|&i| view.entries[i].uid).collect();
        let flags: Vec<String> = flags
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent") && f != "\\*")
            .collect();
        let op = match op {
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
            StoreOp::Replace => FlagOp::Replace,
        };
        let mailbox = view.mailbox.id;
        let outcome = match self.ctx.store.store_flags(
            account,
            mailbox,
            &uids,
            op,
            &flags,
            unchanged_since.map(ModSeq),
        ) {
            Ok(o) => o,
            Err(e) => return self.server_error(tag, &e),
        };
        let condstore = self.condstore;
        let mut lines = Vec::new();
        let mut new_kw = false;
        let view = self.selected.as_mut().expect("selected");
        for e in &outcome.changed {
            if let Some(pos) = view.position(e.uid) {
                std::sync::Arc::make_mut(&mut view.entries)[pos] = e.clone();
                for f in e.flags.split_ascii_whitespace() {
                    if !f.starts_with('\\') && view.keywords.insert(f.to_string()) {
                        new_kw = true;
                    }
                }
                let mut items = Vec::new();
                if uid {
                    items.push(format!("UID {}", e.uid.0));
                }
                if !silent {
                    items.push(format!("FLAGS {}", view.flags_of(e)));
                }
                if condstore {
                    items.push(format!("MODSEQ ({})", e.modseq.0));
                }
                if !silent || condstore {
                    lines.push(format!("* {} FETCH ({})\r\n", pos + 1, items.join(" ")));
                }
            }
        }
        if new_kw {
            let kw: Vec<String> = view.keywords.iter().cloned().collect();
            let flags = format!("{SYSTEM_FLAGS} {}", kw.join(" "));
            self.untagged(&format!("FLAGS ({flags})"));
            self.untagged(&format!(
                "OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"
            ));
        }
        for l in lines {
            self.out.extend_from_slice(l.as_bytes());
        }
        self.sync_selected(uid);
        if outcome.modified.is_empty() {
            self.tagged(tag, "OK", "STORE completed");
        } else {
            let view = self.selected.as_ref().expect("selected");
            let nums: Vec<u32> = outcome
                .modified
                .iter()
                .filter_map(|u| {
                    if uid {
                        Some(u.0)
                    } else {
                        view.position(*u).map(|p| p as u32 + 1)
                    }
                })
                .collect();
            self.tagged(
                tag,
                "OK",
                &format!(
                    "[MODIFIED {}] Conditional STORE failed",
                    encode::seq_set(&nums)
                ),
            );
        }
    }

    fn copy(&mut self, tag: &str, uid: bool, set: &SeqSet, raw: &[u8], moving: bool) {
        let account = self.account();
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
            return;
        };
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if moving && view.read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return;
        }
        let idx = match view.resolve(set, uid) {
            Ok(v) => v,
            Err(m) => return self.tagged(tag, "BAD", m),
        };
        let uids: Vec<Uid> = idx.iter().map(|&i| view.entries[i].uid).collect();
        let from = view.mailbox.id;
        let target = match self.ctx.store.mailbox_by_name(account, &name) {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
                return;
            }
            Err(e) => return self.server_error(tag, &e),
        };
        if uids.is_empty() {
            self.tagged(
                tag,
                "OK",
                if moving {
                    "MOVE completed"
                } else {
                    "COPY completed"
                },
            );
            return;
        }
        // MOVE into the same mailbox copies then expunges: new UIDs, as Dovecot does.
        let result = if moving {
            self.ctx
                .store
                .move_messages(account, from, &uids, target.id)
        } else {
            self.ctx
                .store
                .copy_messages(account, from, &uids, target.id)
        };
        match result {
            Ok((validity, pairs)) => {
                // RFC 6154 §2 \Junk: into it is "this is spam", out of it (but not into the
                // Trash) is "this is not".
                let junk = |m: &Option<String>| m.as_deref() == Some("junk");
                let into_junk = junk(&target.special_use);
                let out_of_junk = !into_junk
                    && target.special_use.as_deref() != Some("trash")
                    && self
                        .selected
                        .as_ref()
                        .is_some_and(|v| junk(&v.mailbox.special_use));
                if (into_junk || out_of_junk)
                    && let Some(training) = &self.ctx.junk_training
                {
                    training(
                        account,
                        target.id,
                        pairs.iter().map(|p| p.1).collect(),
                        into_junk,
                    );
                }
                let src: Vec<u32> = pairs.iter().map(|p| p.0.0).collect();
                let dst: Vec<u32> = pairs.iter().map(|p| p.1.0).collect();
                let code = format!(
                    "COPYUID {validity} {} {}",
                    encode::seq_set(&src),
                    encode::seq_set(&dst)
                );
                if moving {
                    self.untagged(&format!("OK [{code}] Moved"));
                    self.sync_selected(true);
                    self.tagged(tag, "OK", "MOVE completed");
                } else {
                    self.sync_selected(uid);
                    self.tagged(tag, "OK", &format!("[{code}] COPY completed"));
                }
            }
            Err(StoreError::OverQuota) => self.tagged(tag, "NO", "[OVERQUOTA] Quota exceeded"),
            Err(StoreError::NotFound(_)) => self.tagged(tag, "NO", "[TRYCREATE] No such mailbox"),
            Err(e) => self.server_error(tag, &e),
        }
    }
}

pub(crate) fn has_flag(flags: &str, flag: &str) -> bool {
    flags
        .split_ascii_whitespace()
        .any(|f| f.eq_ignore_ascii_case(flag))
}
