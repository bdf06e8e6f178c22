//! Commands on mailboxes (RFC 9051 §6.3): CREATE, DELETE, RENAME, SUBSCRIBE, LIST/LSUB with
//! LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154), NAMESPACE,
//! STATUS, APPEND with MULTIAPPEND (RFC 3502) and UIDPLUS (RFC 4315), QUOTA (RFC 9208).

use crate::connection::Session;
use facteur_imap_session::encode;
use facteur_imap_session::parse::{AppendMessage, CommandBody, ListReturn, StatusItem};
use facteur_model::SpecialUse;
use facteur_store::{MailboxRow, StoreError};
use std::collections::BTreeSet;

/// `*` matches anything, `%` anything but the separator (RFC 9051 §6.3.9). Dynamic
/// programming over (pattern, name) positions: linear in their product whatever the
/// wildcards, so a crafted pattern cannot make LIST take exponential time.
pub fn pattern_matches(pattern: &[char], name: &[char]) -> bool {
    // row[j]: pattern[..i] matches name[..j]
    let mut row = vec![false; name.len() + 1];
    row[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            '*' | '%' => {
                next[0] = row[0];
                for j in 1..=name.len() {
                    next[j] = row[j] || (next[j - 1] && (p == '*' || name[j - 1] != '/'));
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = row[j - 1] && name[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[name.len()]
}

fn special_use_of(attr: &str) -> Option<SpecialUse> {
    Some(match attr.to_ascii_lowercase().as_str() {
        "\\sent" => SpecialUse::Sent,
        "\\drafts" => SpecialUse::Drafts,
        "\\junk" => SpecialUse::Junk,
        "\\trash" => SpecialUse::Trash,
        "\\archive" => SpecialUse::Archive,
        _ => return None,
    })
}

fn attribute_of(special: Option<&str>) -> Option<&'static str> {
    Some(match special? {
        "sent" => "\\Sent",
        "drafts" => "\\Drafts",
        "junk" => "\\Junk",
        "trash" => "\\Trash",
        "archive" => "\\Archive",
        _ => return None,
    })
}

/// A name a client may create: no empty levels, no wildcards or controls, bounded.
fn valid_new_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && !name.starts_with('/')
        && !name.contains("//")
        && !name.chars().any(|c| c.is_control() || c == '*' || c == '%')
        && name.split('/').count() <= 32
}

impl Session {
    pub(crate) async fn mailbox_command(&mut self, tag: &str, body: CommandBody) {
        match body {
            CommandBody::Namespace => {
                self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.tagged(tag, "OK", "NAMESPACE completed");
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => self.create(tag, &mailbox, &special_use),
            CommandBody::Delete(mailbox) => self.delete(tag, &mailbox),
            CommandBody::Rename { from, to } => self.rename(tag, &from, &to),
            CommandBody::Subscribe(m) => self.subscribe(tag, &m, true),
            CommandBody::Unsubscribe(m) => self.subscribe(tag, &m, false),
            CommandBody::List {
                selection,
                reference,
                patterns,
                returns,
                lsub,
                extended,
            } => self.list(
                tag, &selection, &reference, &patterns, &returns, lsub, extended,
            ),
            CommandBody::Status { mailbox, items } => {
                let Some(name) = self.mailbox_name(&mailbox) else {
                    self.tagged(tag, "NO", "[NONEXISTENT] Invalid mailbox name");
                    return;
                };
                match self.ctx.store.mailbox_by_name(self.account(), &name) {
                    Ok(Some(mb)) => {
                        self.status_line(&mb, &items);
                        self.tagged(tag, "OK", "STATUS completed");
                    }
                    Ok(None) => self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox"),
                    Err(e) => self.server_error(tag, &e),
                }
            }
            CommandBody::Append { mailbox, messages } => self.append(tag, &mailbox, messages).await,
            CommandBody::GetQuotaRoot(mailbox) => {
                let Some(name) = self.mailbox_name(&mailbox) else {
                    self.tagged(tag, "NO", "[NONEXISTENT] Invalid mailbox name");
                    return;
                };
                match self.ctx.store.usage(self.account()) {
                    Ok((quota, used)) => {
                        self.out.extend_from_slice(b"* QUOTAROOT ");
                        self.write_mailbox(&name);
                        if quota > 0 {
                            self.out.extend_from_slice(b" \"\"\r\n");
                            self.untagged(&format!(
                                "QUOTA \"\" (STORAGE {} {})",
                                used / 1024,
                                quota / 1024
                            ));
                        } else {
                            self.out.extend_from_slice(b"\r\n");
                        }
                        self.tagged(tag, "OK", "GETQUOTAROOT completed");
                    }
                    Err(e) => self.server_error(tag, &e),
                }
            }
            CommandBody::GetQuota(root) => match self.ctx.store.usage(self.account()) {
                Ok((quota, used)) if quota > 0 && root.is_empty() => {
                    self.untagged(&format!(
                        "QUOTA \"\" (STORAGE {} {})",
                        used / 1024,
                        quota / 1024
                    ));
                    self.tagged(tag, "OK", "GETQUOTA completed");
                }
                Ok(_) => self.tagged(tag, "NO", "[NONEXISTENT] No such quota root"),
                Err(e) => self.server_error(tag, &e),
            },
            CommandBody::SetQuota => {
                self.tagged(tag, "NO", "[NOPERM] Quotas are set by the administrator")
            }
            body => self.selected_command(tag, body),
        }
    }

    pub(crate) fn server_error(&mut self, tag: &str, e: &StoreError) {
        tracing::error!(remote = %self.peer, error = %e, "store error");
        self.tagged(tag, "NO", "[SERVERBUG] Internal error, see the server log");
    }

    fn create(&mut self, tag: &str, raw: &[u8], special: &[String]) {
        let Some(name) = self.mailbox_name(raw).filter(|n| valid_new_name(n)) else {
            self.tagged(tag, "NO", "[CANNOT] Invalid mailbox name");
            return;
        };
        if name == "INBOX" {
            self.tagged(tag, "NO", "[ALREADYEXISTS] INBOX exists");
            return;
        }
        let use_ = match special {
            [] => None,
            [one] => match special_use_of(one) {
                Some(u) => Some(u),
                None => {
                    self.tagged(tag, "NO", "[USEATTR] Unsupported special-use attribute");
                    return;
                }
            },
            _ => {
                self.tagged(tag, "NO", "[USEATTR] One special-use attribute per mailbox");
                return;
            }
        };
        let account = self.account();
        if let Err(e) = self.create_parents(&name) {
            return self.server_error(tag, &e);
        }
        match self.ctx.store.create_mailbox(account, &name, use_) {
            Ok(_) => match self.ctx.store.mailbox_by_name(account, &name) {
                // RFC 8474: MAILBOXID is the UIDVALIDITY, unique and never reused.
                Ok(Some(mb)) => self.tagged(
                    tag,
                    "OK",
                    &format!("[MAILBOXID (F{})] CREATE completed", mb.uidvalidity),
                ),
                _ => self.tagged(tag, "OK", "CREATE completed"),
            },
            Err(StoreError::Conflict(m)) if m.contains("use") => {
                self.tagged(tag, "NO", "[USEATTR] Another mailbox has that special use")
            }
            Err(StoreError::Conflict(_)) => {
                self.tagged(tag, "NO", "[ALREADYEXISTS] Mailbox already exists")
            }
            Err(e) => self.server_error(tag, &e),
        }
    }

    /// RFC 9051 §6.3.4: the superior names of `name` are created as needed (CREATE, RENAME).
    fn create_parents(&self, name: &str) -> Result<(), StoreError> {
        let account = self.account();
        let levels: Vec<&str> = name.split('/').collect();
        for i in 1..levels.len() {
            let parent = levels[..i].join("/");
            if self.ctx.store.mailbox_by_name(account, &parent)?.is_none() {
                self.ctx.store.create_mailbox(account, &parent, None)?;
            }
        }
        Ok(())
    }

    fn delete(&mut self, tag: &str, raw: &[u8]) {
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        };
        if name == "INBOX" {
            self.tagged(tag, "NO", "[CANNOT] INBOX cannot be deleted");
            return;
        }
        let account = self.account();
        let all = match self.ctx.store.mailbox_list(account) {
            Ok(all) => all,
            Err(e) => return self.server_error(tag, &e),
        };
        let Some(mb) = all.iter().find(|m| m.name == name) else {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return;
        };
        let prefix = format!("{name}/");
        if all.iter().any(|m| m.name.starts_with(&prefix)) {
            self.tagged(
                tag,
                "NO",
                "[HASCHILDREN] Delete the mailboxes inside it first",
            );
            return;
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|v| v.mailbox.id == mb.id)
        {
            self.selected = None;
        }
        match self.ctx.store.delete_mailbox(account, mb.id) {
            Ok(()) => self.tagged(tag, "OK", "DELETE completed"),
            Err(e) => self.server_error(tag, &e),
        }
    }

    fn rename(&mut self, tag: &str, from: &[u8], to: &[u8]) {
        let (Some(from), Some(to)) = (
            self.mailbox_name(from),
            self.mailbox_name(to).filter(|n| valid_new_name(n)),
        ) else {
            self.tagged(tag, "NO", "[CANNOT] Invalid mailbox name");
            return;
        };
        if to == "INBOX" || to.starts_with(&format!("{from}/")) {
            self.tagged(tag, "NO", "[CANNOT] Cannot rename to that name");
            return;
        }
        let account = self.account();
        if let Err(e) = self.create_parents(&to) {
            return self.server_error(tag, &e);
        }
        match self.ctx.store.rename_mailbox(account, &from, &to) {
            Ok(()) => self.tagged(tag, "OK", "RENAME completed"),
            Err(StoreError::Conflict(_)) => {
                self.tagged(tag, "NO", "[ALREADYEXISTS] Target mailbox exists")
            }
            Err(StoreError::NotFound(_)) => self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox"),
            Err(e) => self.server_error(tag, &e),
        }
    }

    fn subscribe(&mut self, tag: &str, raw: &[u8], on: bool) {
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "[NONEXISTENT] Invalid mailbox name");
            return;
        };
        if on {
            match self.ctx.store.mailbox_by_name(self.account(), &name) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
                    return;
                }
                Err(e) => return self.server_error(tag, &e),
            }
        }
        match self.ctx.store.set_subscribed(self.account(), &name, on) {
            Ok(()) => self.tagged(
                tag,
                "OK",
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.server_error(tag, &e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        tag: &str,
        selection: &[String],
        reference: &[u8],
        patterns: &[Vec<u8>],
        returns: &ListReturn,
        lsub: bool,
        extended: bool,
    ) {
        let verb = if lsub { "LSUB" } else { "LIST" };
        let account = self.account();
        let reference = self.mailbox_name(reference).unwrap_or_default();
        // RFC 9051 §6.3.9: an empty pattern asks for the separator and the root.
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.untagged(&format!("{verb} (\\Noselect) \"/\" \"\""));
            self.tagged(tag, "OK", &format!("{verb} completed"));
            return;
        }
        let (all, subs) = match (
            self.ctx.store.mailbox_list(account),
            self.ctx.store.subscriptions(account),
        ) {
            (Ok(a), Ok(s)) => (a, s),
            (Err(e), _) | (_, Err(e)) => return self.server_error(tag, &e),
        };
        let subs: BTreeSet<String> = subs.into_iter().collect();
        let sel_subscribed = lsub || selection.iter().any(|s| s == "SUBSCRIBED");
        let sel_special = selection.iter().any(|s| s == "SPECIAL-USE");
        let recursive = selection.iter().any(|s| s == "RECURSIVEMATCH");
        let show_subscribed = returns.subscribed || sel_subscribed;
        let pats: Vec<Vec<char>> = patterns
            .iter()
            .filter_map(|p| {
                let p = self.mailbox_name(p)?;
                let full = if reference.is_empty() || p.starts_with('/') {
                    p
                } else if reference.ends_with('/') {
                    format!("{reference}{p}")
                } else {
                    format!("{reference}/{p}")
                };
                Some(fold_inbox(&full).chars().collect())
            })
            .collect();
        let matches = |name: &str| {
            let n: Vec<char> = name.chars().collect();
            pats.iter().any(|p| pattern_matches(p, &n))
        };
        let existing: BTreeSet<&str> = all.iter().map(|m| m.name.as_str()).collect();
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            existing.iter().any(|n| n.starts_with(&prefix))
        };
        // Candidates: existing mailboxes, subscribed names, and implied parents.
        let mut names: BTreeSet<String> = existing.iter().map(|s| s.to_string()).collect();
        if sel_subscribed {
            names.extend(subs.iter().cloned());
        }
        for n in names.clone() {
            let parts: Vec<&str> = n.split('/').collect();
            for i in 1..parts.len() {
                names.insert(parts[..i].join("/"));
            }
        }
        let mut ordered: Vec<String> = names.into_iter().collect();
        ordered.sort_by_key(|n| (n != "INBOX", n.clone()));
        for name in ordered {
            let exists = existing.contains(name.as_str());
            let subscribed = subs.contains(&name);
            let row = all.iter().find(|m| m.name == name);
            let special = row.and_then(|m| attribute_of(m.special_use.as_deref()));
            let mut child_info = None;
            let mut lsub_parent = false;
            if !matches(&name) {
                continue;
            }
            if sel_subscribed && !subscribed {
                // A subscribed mailbox below this one that the patterns do not show by itself:
                // RECURSIVEMATCH reports it as CHILDINFO (RFC 5258 §3.5), LSUB shows this
                // parent as \Noselect (RFC 3501 §6.3.9).
                let prefix = format!("{name}/");
                let hidden_child = subs.iter().any(|s| s.starts_with(&prefix) && !matches(s));
                if recursive && hidden_child {
                    child_info = Some("SUBSCRIBED");
                } else if lsub && hidden_child {
                    lsub_parent = true;
                } else {
                    continue;
                }
            }
            if sel_special && special.is_none() {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            if lsub_parent {
                attrs.push("\\Noselect");
            } else if !exists {
                if extended || self.rev2 {
                    attrs.push("\\NonExistent");
                } else {
                    attrs.push("\\Noselect");
                }
            }
            if !lsub {
                attrs.push(if has_children(&name) {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if show_subscribed && subscribed && !lsub {
                attrs.push("\\Subscribed");
            }
            if let Some(s) = special
                && (!lsub)
            {
                attrs.push(s);
            }
            self.out
                .extend_from_slice(format!("* {verb} ({}) \"/\" ", attrs.join(" ")).as_bytes());
            self.write_mailbox(&name);
            if let Some(ci) = child_info {
                self.out
                    .extend_from_slice(format!(" (\"CHILDINFO\" (\"{ci}\"))").as_bytes());
            }
            self.out.extend_from_slice(b"\r\n");
            if let (Some(items), Some(row)) = (&returns.status, row) {
                let row = row.clone();
                self.status_line(&row, items);
            }
        }
        self.tagged(tag, "OK", &format!("{verb} completed"));
    }

    pub(crate) fn status_line(&mut self, mb: &MailboxRow, items: &[StatusItem]) {
        let counts = if items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Messages
                    | StatusItem::Unseen
                    | StatusItem::Deleted
                    | StatusItem::Size
                    | StatusItem::Recent
            )
        }) {
            self.ctx.store.mailbox_counts(mb.id).unwrap_or_default()
        } else {
            Default::default()
        };
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", counts.messages),
                StatusItem::Recent => format!("RECENT {}", counts.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", mb.uidnext.0),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mb.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusItem::Deleted => format!("DELETED {}", counts.deleted),
                StatusItem::Size => format!("SIZE {}", counts.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", mb.highest_modseq.0),
                StatusItem::MailboxId => format!("MAILBOXID (F{})", mb.uidvalidity),
            });
        }
        self.out.extend_from_slice(b"* STATUS ");
        self.write_mailbox(&mb.name);
        self.out
            .extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    }

    async fn append(&mut self, tag: &str, raw: &[u8], messages: Vec<AppendMessage>) {
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
            return;
        };
        let account = self.account();
        let mb = match self.ctx.store.mailbox_by_name(account, &name) {
            Ok(Some(mb)) => mb,
            Ok(None) => {
                self.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
                return;
            }
            Err(e) => return self.server_error(tag, &e),
        };
        let mut uids = Vec::new();
        for m in messages {
            if m.data.is_empty() {
                self.undo_append(account, &mb, &uids);
                self.tagged(tag, "NO", "Empty message");
                return;
            }
            if m.data.len() as u64 > self.ctx.settings.max_append_size {
                self.undo_append(account, &mb, &uids);
                self.tagged(tag, "NO", "[TOOBIG] Message too large");
                return;
            }
            match self.append_one(account, &mb, m).await {
                Ok(uid) => uids.push(uid),
                Err((code, text)) => {
                    self.undo_append(account, &mb, &uids);
                    self.tagged(tag, "NO", format!("{code} {text}").trim_start());
                    return;
                }
            }
        }
        let set = encode::seq_set(&uids.iter().map(|u| u.0).collect::<Vec<_>>());
        tracing::info!(remote = %self.peer, user = %self.user.as_ref().map(|u| u.mailbox.address.as_str()).unwrap_or(""), mailbox = %name, messages = uids.len(), "append");
        // The session's own view learns of the new messages at the next sync point.
        self.sync_selected(true);
        self.tagged(
            tag,
            "OK",
            &format!("[APPENDUID {} {set}] APPEND completed", mb.uidvalidity),
        );
    }

    fn undo_append(
        &self,
        account: facteur_model::AccountId,
        mb: &MailboxRow,
        uids: &[facteur_model::Uid],
    ) {
        if !uids.is_empty() {
            let _ = self.ctx.store.expunge(account, mb.id, uids);
        }
    }

    async fn append_one(
        &self,
        account: facteur_model::AccountId,
        mb: &MailboxRow,
        m: AppendMessage,
    ) -> Result<facteur_model::Uid, (&'static str, &'static str)> {
        let store = &self.ctx.store;
        let fail = |e: StoreError| {
            tracing::error!(error = %e, "append failed");
            ("[SERVERBUG]", "Internal error, see the server log")
        };
        let mut meta = facteur_delivery::meta::parse(&m.data);
        let mut data = m.data;
        if data.contains(&0)
            && let Some(converted) = binary_parts_to_base64(&data, &meta.structure)
        {
            data = converted;
            meta = facteur_delivery::meta::parse(&data);
        }
        let mut writer = store.blob_writer();
        writer.write(&data).map_err(fail)?;
        let blob = writer.finish().map_err(fail)?;
        let flags: Vec<String> = m
            .flags
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent") && f != "\\*")
            .collect();
        let message = facteur_store::NewMessage {
            blob,
            internal_date: m.date.unwrap_or_else(now_unix),
            envelope: meta.envelope,
            structure: meta.structure,
            headers: meta.headers,
            search_text: meta.search_text,
            search_headers: meta.search_headers,
            queue_id: String::new(),
        };
        let target = facteur_store::Target {
            account,
            prefix: Vec::new(),
            enforce_quota: true,
            mailbox: Some(mb.id),
            flags: facteur_store::apply_flags("", facteur_store::FlagOp::Add, &flags),
        };
        match store.deliver(message, vec![target]).await {
            Ok(mut outcomes) => match outcomes.pop() {
                Some(Ok(d)) => Ok(d.uid),
                Some(Err(facteur_store::DeliverError::OverQuota)) => {
                    Err(("[OVERQUOTA]", "Quota exceeded"))
                }
                Some(Err(facteur_store::DeliverError::NoSuchMailbox)) => {
                    Err(("[TRYCREATE]", "No such mailbox"))
                }
                _ => Err(("[SERVERBUG]", "Internal error, see the server log")),
            },
            Err(e) => Err(fail(e)),
        }
    }
}

/// RFC 3516 §4.4: a message appended with binary parts (NUL bytes) is kept with those parts
/// in base64, so BODY[] never sends NUL in a literal; BINARY[] decodes them back.
fn binary_parts_to_base64(data: &[u8], structure: &str) -> Option<Vec<u8>> {
    fn leaves(node: &serde_json::Value, data: &[u8], out: &mut Vec<(usize, usize, usize)>) {
        if let Some(parts) = node["parts"].as_array() {
            parts.iter().for_each(|p| leaves(p, data, out));
            return;
        }
        if node["message"].is_object() {
            leaves(&node["message"]["structure"], data, out);
            return;
        }
        let at = |k: &str| node[k].as_u64().map(|v| v as usize);
        if let (Some(h), Some(b), Some(e)) = (at("header_start"), at("body_start"), at("end"))
            && h <= b
            && b <= e
            && e <= data.len()
            && data[b..e].contains(&0)
        {
            out.push((h, b, e));
        }
    }
    let root: serde_json::Value = serde_json::from_str(structure).ok()?;
    let mut parts = Vec::new();
    leaves(&root, data, &mut parts);
    if parts.is_empty() {
        return None;
    }
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let mut out = data.to_vec();
    for (h, b, e) in parts {
        let encoded = facteur_imap_session::structure::base64_encode(&data[b..e]);
        let mut body = Vec::with_capacity(encoded.len() * 78 / 76 + 2);
        for line in encoded.as_bytes().chunks(76) {
            body.extend_from_slice(line);
            body.extend_from_slice(b"\r\n");
        }
        out.splice(b..e, body);
        // The part's header: its Content-Transfer-Encoding becomes base64.
        let header = &data[h..b];
        let mut new_header = Vec::with_capacity(header.len() + 40);
        let mut skipping = false;
        for line in header.split_inclusive(|&c| c == b'\n') {
            let continuation = matches!(line.first(), Some(b' ' | b'\t'));
            if skipping && continuation {
                continue;
            }
            skipping =
                line.len() >= 26 && line[..26].eq_ignore_ascii_case(b"content-transfer-encoding:");
            if skipping {
                continue;
            }
            if line == b"\r\n" || line == b"\n" {
                new_header.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
            }
            new_header.extend_from_slice(line);
        }
        out.splice(h..b, new_header);
    }
    Some(out)
}

fn fold_inbox(name: &str) -> String {
    if name
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("INBOX"))
    {
        let rest = &name[5..];
        if rest.is_empty() || rest.starts_with('/') {
            return format!("INBOX{rest}");
        }
    }
    name.to_string()
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        pattern_matches(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn list_patterns() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "a"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a*c", "a/b/c"));
        assert!(m("INBOX", "INBOX"));
        assert!(!m("INBOX", "INBOX/x"));
        assert!(m("%/%", "a/b"));
        assert!(!m("a%", "a/b"));
        let hostile = "*a".repeat(40) + "b";
        assert!(!m(&hostile, &"a".repeat(200)));
    }
}
