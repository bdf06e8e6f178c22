//! SORT and THREAD helpers (RFC 5256): the base subject (§2.1) and the ORDEREDSUBJECT and
//! REFERENCES threading algorithms (§3), rendered as THREAD response lists.

use std::collections::HashMap;

/// RFC 5256 §2.1 base subject: decoded, whitespace collapsed, `Re:`/`Fwd:` leaders, `[blob]`
/// prefixes, `(fwd)` trailers and `[fwd: ...]` wrappers removed, in upper case (the
/// i;ascii-casemap comparator of RFC 5256 §2.1 maps to upper case, so `[` sorts after `A`).
pub fn base_subject(raw: &str) -> String {
    base_subject_reply(raw).0
}

/// The base subject, and whether the subject was a reply or forward (something other than a
/// blob was removed), which REFERENCES threading needs (RFC 5256 §3, step 5).
pub fn base_subject_reply(raw: &str) -> (String, bool) {
    let mut reply = false;
    let decoded = crate::structure::decode_words(raw);
    let mut s: String = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let before = s.clone();
        // (2) trailers
        loop {
            let t = s.trim_end();
            if t.len() >= 5
                && t.get(t.len() - 5..)
                    .is_some_and(|e| e.eq_ignore_ascii_case("(fwd)"))
            {
                s = t[..t.len() - 5].to_string();
                reply = true;
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3) leaders
        loop {
            let t = s.trim_start();
            let rest = strip_leader(t);
            match rest {
                Some((r, refwd)) => {
                    reply |= refwd;
                    s = r.to_string();
                }
                None => {
                    s = t.to_string();
                    break;
                }
            }
        }
        // (4) [fwd: ...]
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].trim().to_string();
            reply = true;
            continue;
        }
        if s == before {
            break;
        }
    }
    (s.to_ascii_uppercase(), reply)
}

fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    if rest[..end].contains('[') {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

/// Removes one `Re:`-style leader (true) or a leading blob (false).
fn strip_leader(s: &str) -> Option<(&str, bool)> {
    let lower = s.to_ascii_lowercase();
    for word in ["re", "fwd", "fw"] {
        if lower.starts_with(word) {
            let mut rest = s[word.len()..].trim_start();
            while let Some(r) = strip_blob(rest) {
                rest = r;
            }
            if let Some(r) = rest.strip_prefix(':') {
                return Some((r, true));
            }
        }
    }
    // A blob is removed only when something follows it.
    let r = strip_blob(s)?;
    (!r.is_empty()).then_some((r, false))
}

/// What threading needs of a message.
#[derive(Debug, Clone)]
pub struct ThreadMsg {
    /// The number shown: sequence number or UID.
    pub id: u32,
    pub message_id: Option<String>,
    /// References, else the first In-Reply-To id, oldest first.
    pub references: Vec<String>,
    pub base_subject: String,
    /// The subject was a reply or forward (RFC 5256 §3 step 5C).
    pub is_reply: bool,
    pub date: i64,
}

/// Message ids `<...>` found in a header value.
pub fn message_ids(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(a) = rest.find('<') {
        let Some(b) = rest[a..].find('>') else { break };
        out.push(rest[a + 1..a + b].trim().to_string());
        rest = &rest[a + b + 1..];
    }
    out
}

#[derive(Debug, Default)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

fn render(nodes: &[Node], msgs: &[ThreadMsg], n: usize, out: &mut String) {
    let node = &nodes[n];
    let mut first = true;
    if let Some(m) = node.msg {
        out.push_str(&msgs[m].id.to_string());
        first = false;
    }
    match node.children.len() {
        0 => {}
        1 if node.msg.is_some() => {
            out.push(' ');
            render(nodes, msgs, node.children[0], out);
        }
        _ => {
            if !first {
                out.push(' ');
            }
            for &c in &node.children {
                out.push('(');
                render(nodes, msgs, c, out);
                out.push(')');
            }
        }
    }
}

fn earliest(nodes: &[Node], msgs: &[ThreadMsg], n: usize) -> (i64, u32) {
    let mut best = nodes[n]
        .msg
        .map(|m| (msgs[m].date, msgs[m].id))
        .unwrap_or((i64::MAX, u32::MAX));
    for &c in &nodes[n].children {
        best = best.min(earliest(nodes, msgs, c));
    }
    best
}

/// ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject, each thread its first
/// message with the others as its children, threads ordered by their first message's date.
pub fn ordered_subject(msgs: &[ThreadMsg]) -> String {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        (&msgs[a].base_subject, msgs[a].date, msgs[a].id).cmp(&(
            &msgs[b].base_subject,
            msgs[b].date,
            msgs[b].id,
        ))
    });
    let mut threads: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match threads.last_mut() {
            Some(t) if msgs[t[0]].base_subject == msgs[i].base_subject => t.push(i),
            _ => threads.push(vec![i]),
        }
    }
    threads.sort_by_key(|t| (msgs[t[0]].date, msgs[t[0]].id));
    let mut out = String::new();
    for t in threads {
        out.push('(');
        out.push_str(&msgs[t[0]].id.to_string());
        match t.len() {
            1 => {}
            2 => out.push_str(&format!(" {}", msgs[t[1]].id)),
            _ => {
                out.push(' ');
                for &c in &t[1..] {
                    out.push_str(&format!("({})", msgs[c].id));
                }
            }
        }
        out.push(')');
    }
    out
}

/// REFERENCES (RFC 5256 §3, after Zawinski): parent links from References/In-Reply-To,
/// empty containers pruned, roots with the same base subject gathered, siblings by date.
pub fn references(msgs: &[ThreadMsg]) -> String {
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut container = |id: &str, nodes: &mut Vec<Node>| -> usize {
        *by_id.entry(id.to_string()).or_insert_with(|| {
            nodes.push(Node::default());
            nodes.len() - 1
        })
    };
    let is_ancestor = |nodes: &[Node], a: usize, mut b: usize| -> bool {
        // true when a is b or an ancestor of b
        let mut guard = 0;
        loop {
            if a == b {
                return true;
            }
            match nodes[b].parent {
                Some(p) if guard < 10_000 => {
                    b = p;
                    guard += 1;
                }
                _ => return false,
            }
        }
    };
    for (i, m) in msgs.iter().enumerate() {
        let c = match &m.message_id {
            Some(id) => {
                let c = container(id, &mut nodes);
                if nodes[c].msg.is_some() {
                    // A duplicate Message-ID: its own container (RFC 5256 §3 step 1A).
                    nodes.push(Node::default());
                    nodes.len() - 1
                } else {
                    c
                }
            }
            None => {
                nodes.push(Node::default());
                nodes.len() - 1
            }
        };
        nodes[c].msg = Some(i);
        let mut prev: Option<usize> = None;
        for r in &m.references {
            let rc = container(r, &mut nodes);
            if let Some(p) = prev
                && nodes[rc].parent.is_none()
                && !is_ancestor(&nodes, rc, p)
            {
                nodes[rc].parent = Some(p);
            }
            prev = Some(rc);
        }
        // Step 1C: the last reference is the message's parent.
        nodes[c].parent = None;
        if let Some(p) = prev
            && !is_ancestor(&nodes, c, p)
        {
            nodes[c].parent = Some(p);
        }
    }
    for n in 0..nodes.len() {
        if let Some(p) = nodes[n].parent {
            nodes[p].children.push(n);
        }
    }
    let mut roots: Vec<usize> = (0..nodes.len())
        .filter(|&n| nodes[n].parent.is_none())
        .collect();
    // Step 4: prune empty containers.
    fn prune(nodes: &mut Vec<Node>, list: Vec<usize>, at_root: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for n in list {
            let kids = std::mem::take(&mut nodes[n].children);
            let kids = prune(nodes, kids, false);
            if nodes[n].msg.is_none() {
                if kids.is_empty() {
                    continue;
                }
                if !at_root || kids.len() == 1 {
                    out.extend(kids);
                    continue;
                }
            }
            nodes[n].children = kids;
            out.push(n);
        }
        out
    }
    roots = prune(&mut nodes, roots, true);
    // Step 5: gather roots by base subject.
    let subject_of = |nodes: &[Node], n: usize| -> String {
        let m = nodes[n]
            .msg
            .or_else(|| nodes[n].children.first().and_then(|&c| nodes[c].msg));
        m.map(|m| msgs[m].base_subject.clone()).unwrap_or_default()
    };
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    let mut merged = Vec::new();
    for r in roots {
        let subj = subject_of(&nodes, r);
        if subj.is_empty() {
            merged.push(r);
            continue;
        }
        match by_subject.get(&subj).copied() {
            None => {
                by_subject.insert(subj, r);
                merged.push(r);
            }
            Some(first) => {
                let reply_of = |nodes: &[Node], n: usize| nodes[n].msg.map(|m| msgs[m].is_reply);
                if nodes[first].msg.is_none() {
                    nodes[first].children.push(r);
                } else if nodes[r].msg.is_none() {
                    // The dummy takes the other as a child and its place.
                    nodes[r].children.push(first);
                    if let Some(pos) = merged.iter().position(|&x| x == first) {
                        merged[pos] = r;
                    }
                    by_subject.insert(subj, r);
                } else if reply_of(&nodes, first) == Some(false)
                    && reply_of(&nodes, r) == Some(true)
                {
                    // RFC 5256 §3 step 5C: a reply becomes a child of the original.
                    nodes[first].children.push(r);
                } else if reply_of(&nodes, first) == Some(true)
                    && reply_of(&nodes, r) == Some(false)
                {
                    nodes[r].children.push(first);
                    if let Some(pos) = merged.iter().position(|&x| x == first) {
                        merged[pos] = r;
                    }
                    by_subject.insert(subj, r);
                } else {
                    // Both real: a new empty parent holds them (RFC 5256 step 5C).
                    nodes.push(Node {
                        msg: None,
                        parent: None,
                        children: vec![first, r],
                    });
                    let new = nodes.len() - 1;
                    if let Some(pos) = merged.iter().position(|&x| x == first) {
                        merged[pos] = new;
                    }
                    by_subject.insert(subj, new);
                }
            }
        }
    }
    // Step 6: siblings by date.
    fn sort_children(nodes: &mut Vec<Node>, msgs: &[ThreadMsg], n: usize) {
        let mut kids = std::mem::take(&mut nodes[n].children);
        for &k in &kids {
            sort_children(nodes, msgs, k);
        }
        kids.sort_by_key(|&k| earliest(nodes, msgs, k));
        nodes[n].children = kids;
    }
    for &r in &merged {
        sort_children(&mut nodes, msgs, r);
    }
    merged.sort_by_key(|&r| earliest(&nodes, msgs, r));
    let mut out = String::new();
    for r in merged {
        out.push('(');
        render(&nodes, msgs, r, &mut out);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        assert_eq!(base_subject("Re: Fwd: [list] Hello (fwd)"), "HELLO");
        assert_eq!(base_subject("[fwd: Re: test]"), "TEST");
        assert_eq!(base_subject("  RE:  lunch   plans "), "LUNCH PLANS");
        assert_eq!(base_subject("[only]"), "[ONLY]");
        assert_eq!(base_subject("Réunion déjà"), "RéUNION DéJà");
        assert_eq!(base_subject("é(fwd)é"), "é(FWD)é");
        assert_eq!(base_subject("Ad: Re: Ad: x"), "AD: RE: AD: X");
        assert_eq!(base_subject_reply("[list] news"), ("NEWS".into(), false));
        assert_eq!(base_subject_reply("Re: news"), ("NEWS".into(), true));
    }

    fn m(id: u32, mid: &str, refs: &[&str], subj: &str, date: i64) -> ThreadMsg {
        let (base_subject, is_reply) = base_subject_reply(subj);
        ThreadMsg {
            id,
            message_id: Some(mid.into()),
            references: refs.iter().map(|s| s.to_string()).collect(),
            base_subject,
            is_reply,
            date,
        }
    }

    #[test]
    fn threads_by_references_and_subject() {
        let msgs = vec![
            m(1, "a", &[], "hello", 1),
            m(2, "b", &["a"], "Re: hello", 2),
            m(3, "c", &[], "other", 3),
            m(4, "d", &["a"], "Re: hello", 4),
            m(5, "e", &["a", "b"], "Re: hello", 5),
        ];
        assert_eq!(references(&msgs), "(1 (2 5)(4))(3)");
        // imaptest thread3/thread4: a reply with the same subject joins its original.
        let dup = vec![m(1, "a@b", &[], "foo", 1), m(2, "a@b", &[], "Re: foo", 2)];
        assert_eq!(references(&dup), "(1 2)");
        let lost = vec![
            m(1, "a@b", &[], "foo", 1),
            m(2, "b@b", &["c@b"], "Re: foo", 2),
        ];
        assert_eq!(references(&lost), "(1 2)");
        assert_eq!(ordered_subject(&msgs), "(1 (2)(4)(5))(3)");
    }
}
