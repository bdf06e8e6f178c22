//! The command grammar of RFC 9051 §9 and RFC 3501 §9, with the extensions facteur announces
//! (CONDSTORE/QRESYNC RFC 7162, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE and
//! CREATE-SPECIAL-USE RFC 6154, ESEARCH RFC 4731, SEARCHRES RFC 5182, SORT/THREAD RFC 5256,
//! MOVE RFC 6851, UIDPLUS RFC 4315, BINARY RFC 3516, MULTIAPPEND RFC 3502, QUOTA RFC 9208,
//! ID RFC 2971, ENABLE RFC 5161, COMPRESS RFC 4978, OBJECTID RFC 8474, WITHIN RFC 5032).
//!
//! Input is one framed command (see `framing`): literals are inline as `{N}\r\n<octets>`.

use std::fmt;

pub type Result<T> = std::result::Result<T, ParseError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ParseError(msg.into()))
}

pub use crate::command::*;

pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

fn is_atom_char(b: u8) -> bool {
    (b > 0x20 && b != 0x7f) && !b"(){%*\"\\]".contains(&b)
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

pub struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8]) -> Parser<'a> {
        Parser { input, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            err(format!("expected '{}'", b as char))
        }
    }

    fn sp(&mut self) -> Result<()> {
        self.expect(b' ')
    }

    fn end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            err("unexpected text after the command")
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    pub fn atom(&mut self) -> Result<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return err("expected an atom");
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    fn keyword(&mut self) -> Result<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    fn number(&mut self) -> Result<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 19 {
            return err("expected a number");
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ParseError("number too large".into()))
    }

    fn nz_number(&mut self) -> Result<u32> {
        let n = self.number()?;
        if n == 0 || n > u32::MAX as u64 {
            return err("expected a number from 1 to 4294967295");
        }
        Ok(n as u32)
    }

    fn literal(&mut self) -> Result<Vec<u8>> {
        self.eat(b'~');
        self.expect(b'{')?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}')?;
        if !(self.eat(b'\r') && self.eat(b'\n')) {
            return err("expected CRLF after a literal's size");
        }
        if self.input.len() - self.pos < n {
            return err("literal shorter than announced");
        }
        let v = self.input[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(v)
    }

    fn quoted(&mut self) -> Result<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return err("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return err("bad escape in quoted string"),
                    }
                }
                Some(b'\r' | b'\n') => return err("CR or LF in a quoted string"),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// True at `{` or at `~{` (a literal8, RFC 3516); a lone `~` is an atom character.
    fn at_literal(&self) -> bool {
        match self.peek() {
            Some(b'{') => true,
            Some(b'~') => self.input.get(self.pos + 1) == Some(&b'{'),
            _ => false,
        }
    }

    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ if self.at_literal() => self.literal(),
            _ => err("expected a string"),
        }
    }

    pub fn astring(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.string(),
            _ if self.at_literal() => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return err("expected a string or atom");
                }
                Ok(a.to_vec())
            }
        }
    }

    fn astring_utf8(&mut self) -> Result<String> {
        String::from_utf8(self.astring()?).map_err(|_| ParseError("invalid UTF-8".into()))
    }

    fn list_mailbox(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.string(),
            _ if self.at_literal() => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return err("expected a mailbox pattern");
                }
                Ok(a.to_vec())
            }
        }
    }

    fn seq_num(&mut self) -> Result<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else {
            Ok(SeqNum::Num(self.nz_number()?))
        }
    }

    fn ranges(&mut self) -> Result<Vec<(SeqNum, SeqNum)>> {
        let mut out = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            out.push((a, b));
            if !self.eat(b',') {
                return Ok(out);
            }
        }
    }

    pub fn seq_set(&mut self) -> Result<SeqSet> {
        if self.eat(b'$') {
            return Ok(SeqSet::Saved);
        }
        Ok(SeqSet::Ranges(self.ranges()?))
    }

    fn flag(&mut self) -> Result<String> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok("\\*".into());
            }
            let a = self.atom()?;
            let canon = match a.to_ascii_lowercase().as_str() {
                "seen" => "\\Seen",
                "answered" => "\\Answered",
                "flagged" => "\\Flagged",
                "deleted" => "\\Deleted",
                "draft" => "\\Draft",
                "recent" => "\\Recent",
                _ => return Ok(format!("\\{a}")),
            };
            Ok(canon.into())
        } else {
            self.atom()
        }
    }

    fn flag_list(&mut self) -> Result<Vec<String>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(self.flag()?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    /// `date-time` (RFC 9051 §9): `"dd-Mon-yyyy hh:mm:ss +zzzz"` as seconds since the epoch.
    fn date_time(&mut self) -> Result<i64> {
        let raw = self.quoted()?;
        let s = String::from_utf8_lossy(&raw);
        crate::date::parse_date_time(s.trim_start())
            .ok_or_else(|| ParseError("bad date-time".into()))
    }

    /// `date` of SEARCH: `d-Mon-yyyy`, quoted or not; the start of that day, UTC.
    fn date(&mut self) -> Result<i64> {
        let raw = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-')
                .to_vec()
        };
        crate::date::parse_date(&String::from_utf8_lossy(&raw))
            .ok_or_else(|| ParseError("bad date".into()))
    }

    fn paren_list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }
}

/// Parses one framed command.
pub fn parse_command(input: &[u8]) -> std::result::Result<Command, (Option<String>, ParseError)> {
    let mut p = Parser::new(input);
    let tag = p.take_while(is_tag_char);
    if tag.is_empty() {
        return Err((None, ParseError("missing tag".into())));
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let body = (|| {
        p.sp()?;
        let body = command_body(&mut p)?;
        p.end()?;
        Ok(body)
    })();
    match body {
        Ok(body) => Ok(Command { tag, body }),
        Err(e) => Err((Some(tag), e)),
    }
}

fn command_body(p: &mut Parser<'_>) -> Result<CommandBody> {
    let name = p.keyword()?;
    Ok(match name.as_str() {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "IDLE" => CommandBody::Idle,
        "NAMESPACE" => CommandBody::Namespace,
        "UNAUTHENTICATE" => CommandBody::Unauthenticate,
        "LOGIN" => {
            p.sp()?;
            let user = p.astring_utf8()?;
            p.sp()?;
            let password = p.astring_utf8()?;
            CommandBody::Login { user, password }
        }
        "AUTHENTICATE" => {
            p.sp()?;
            let mechanism = p.keyword()?;
            let initial = if p.eat(b' ') {
                Some(
                    p.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                        .to_vec(),
                )
            } else {
                None
            };
            CommandBody::Authenticate { mechanism, initial }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(p.keyword()?);
            }
            if caps.is_empty() {
                return err("ENABLE needs a capability");
            }
            CommandBody::Enable(caps)
        }
        "ID" => {
            p.sp()?;
            let mut fields = Vec::new();
            if p.peek() == Some(b'(') {
                p.expect(b'(')?;
                if !p.eat(b')') {
                    loop {
                        let k = String::from_utf8_lossy(&p.string()?).into_owned();
                        p.sp()?;
                        let v = nstring(p)?.map(|v| String::from_utf8_lossy(&v).into_owned());
                        fields.push((k, v));
                        if p.eat(b')') {
                            break;
                        }
                        p.sp()?;
                    }
                }
            } else if p.keyword()? != "NIL" {
                return err("ID takes a list or NIL");
            }
            CommandBody::Id(fields)
        }
        "COMPRESS" => {
            p.sp()?;
            CommandBody::Compress(p.keyword()?)
        }
        "SELECT" | "EXAMINE" => {
            p.sp()?;
            let mailbox = p.astring()?;
            let (mut condstore, mut qresync) = (false, None);
            if p.eat(b' ') {
                p.expect(b'(')?;
                loop {
                    match p.keyword()?.as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" => {
                            p.sp()?;
                            p.expect(b'(')?;
                            let uidvalidity = p.nz_number()?;
                            p.sp()?;
                            let modseq = p.number()?;
                            let mut q = Qresync {
                                uidvalidity,
                                modseq,
                                known_uids: None,
                                seq_match: None,
                            };
                            if p.eat(b' ') {
                                if p.peek() != Some(b'(') {
                                    q.known_uids = Some(p.ranges()?);
                                    p.eat(b' ');
                                }
                                if p.eat(b'(') {
                                    let seqs = p.ranges()?;
                                    p.sp()?;
                                    let uids = p.ranges()?;
                                    p.expect(b')')?;
                                    q.seq_match = Some((seqs, uids));
                                }
                            }
                            p.expect(b')')?;
                            qresync = Some(q);
                        }
                        other => return err(format!("unknown SELECT parameter {other}")),
                    }
                    if p.eat(b')') {
                        break;
                    }
                    p.sp()?;
                }
            }
            CommandBody::Select {
                mailbox,
                examine: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => {
            p.sp()?;
            let mailbox = p.astring()?;
            let mut special_use = Vec::new();
            if p.eat(b' ') {
                p.expect(b'(')?;
                loop {
                    match p.keyword()?.as_str() {
                        "USE" => {
                            p.sp()?;
                            special_use = p.paren_list(|p| {
                                p.expect(b'\\')?;
                                Ok(format!("\\{}", p.atom()?))
                            })?;
                        }
                        other => return err(format!("unknown CREATE parameter {other}")),
                    }
                    if p.eat(b')') {
                        break;
                    }
                    p.sp()?;
                }
            }
            CommandBody::Create {
                mailbox,
                special_use,
            }
        }
        "DELETE" => {
            p.sp()?;
            CommandBody::Delete(p.astring()?)
        }
        "RENAME" => {
            p.sp()?;
            let from = p.astring()?;
            p.sp()?;
            let to = p.astring()?;
            CommandBody::Rename { from, to }
        }
        "SUBSCRIBE" => {
            p.sp()?;
            CommandBody::Subscribe(p.astring()?)
        }
        "UNSUBSCRIBE" => {
            p.sp()?;
            CommandBody::Unsubscribe(p.astring()?)
        }
        "LIST" | "LSUB" => list(p, name == "LSUB")?,
        "STATUS" => {
            p.sp()?;
            let mailbox = p.astring()?;
            p.sp()?;
            CommandBody::Status {
                mailbox,
                items: p.paren_list(status_item)?,
            }
        }
        "APPEND" => append(p)?,
        "EXPUNGE" => CommandBody::Expunge { uids: None },
        "SEARCH" => search(p, false)?,
        "FETCH" => fetch(p, false)?,
        "STORE" => store(p, false)?,
        "COPY" | "MOVE" => copy(p, false, name == "MOVE")?,
        "SORT" => sort(p, false)?,
        "THREAD" => thread(p, false)?,
        "UID" => {
            p.sp()?;
            let sub = p.keyword()?;
            match sub.as_str() {
                "SEARCH" => search(p, true)?,
                "FETCH" => fetch(p, true)?,
                "STORE" => store(p, true)?,
                "COPY" | "MOVE" => copy(p, true, sub == "MOVE")?,
                "SORT" => sort(p, true)?,
                "THREAD" => thread(p, true)?,
                "EXPUNGE" => {
                    p.sp()?;
                    CommandBody::Expunge {
                        uids: Some(p.seq_set()?),
                    }
                }
                other => return err(format!("unknown UID command {other}")),
            }
        }
        "GETQUOTA" => {
            p.sp()?;
            CommandBody::GetQuota(p.astring()?)
        }
        "GETQUOTAROOT" => {
            p.sp()?;
            CommandBody::GetQuotaRoot(p.astring()?)
        }
        "SETQUOTA" => {
            p.pos = p.input.len();
            CommandBody::SetQuota
        }
        other => return err(format!("unknown command {other}")),
    })
}

fn nstring(p: &mut Parser<'_>) -> Result<Option<Vec<u8>>> {
    if p.peek() == Some(b'"') || p.at_literal() {
        return p.string().map(Some);
    }
    if p.keyword()? == "NIL" {
        Ok(None)
    } else {
        err("expected a string or NIL")
    }
}

fn status_item(p: &mut Parser<'_>) -> Result<StatusItem> {
    Ok(match p.keyword()?.as_str() {
        "MESSAGES" => StatusItem::Messages,
        "RECENT" => StatusItem::Recent,
        "UIDNEXT" => StatusItem::UidNext,
        "UIDVALIDITY" => StatusItem::UidValidity,
        "UNSEEN" => StatusItem::Unseen,
        "DELETED" => StatusItem::Deleted,
        "SIZE" => StatusItem::Size,
        "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        "MAILBOXID" => StatusItem::MailboxId,
        other => return err(format!("unknown STATUS item {other}")),
    })
}

fn list(p: &mut Parser<'_>, lsub: bool) -> Result<CommandBody> {
    p.sp()?;
    let mut selection = Vec::new();
    let mut extended = false;
    if !lsub && p.peek() == Some(b'(') {
        selection = p.paren_list(|p| p.keyword())?;
        extended = true;
        p.sp()?;
    }
    let reference = p.astring()?;
    p.sp()?;
    let patterns = if !lsub && p.peek() == Some(b'(') {
        extended = true;
        p.paren_list(|p| p.list_mailbox())?
    } else {
        vec![p.list_mailbox()?]
    };
    let mut returns = ListReturn::default();
    if !lsub && p.eat(b' ') {
        if p.keyword()? != "RETURN" {
            return err("expected RETURN");
        }
        extended = true;
        p.sp()?;
        p.expect(b'(')?;
        if !p.eat(b')') {
            loop {
                match p.keyword()?.as_str() {
                    "SUBSCRIBED" => returns.subscribed = true,
                    "CHILDREN" => returns.children = true,
                    "SPECIAL-USE" => returns.special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        returns.status = Some(p.paren_list(status_item)?);
                    }
                    other => return err(format!("unknown LIST return option {other}")),
                }
                if p.eat(b')') {
                    break;
                }
                p.sp()?;
            }
        }
    }
    for s in &selection {
        if !matches!(
            s.as_str(),
            "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" | "SPECIAL-USE"
        ) {
            return err(format!("unknown LIST selection option {s}"));
        }
    }
    if selection.iter().any(|s| s == "RECURSIVEMATCH")
        && !selection
            .iter()
            .any(|s| s == "SUBSCRIBED" || s == "SPECIAL-USE")
    {
        return err("RECURSIVEMATCH needs another selection option");
    }
    Ok(CommandBody::List {
        selection,
        reference,
        patterns,
        returns,
        lsub,
        extended,
    })
}

fn append(p: &mut Parser<'_>) -> Result<CommandBody> {
    p.sp()?;
    let mailbox = p.astring()?;
    let mut messages = Vec::new();
    while p.eat(b' ') {
        let mut flags = Vec::new();
        if p.peek() == Some(b'(') {
            flags = p.flag_list()?;
            p.sp()?;
        }
        let mut date = None;
        if p.peek() == Some(b'"') {
            date = Some(p.date_time()?);
            p.sp()?;
        }
        // RFC 3516 §4.4: APPEND with a literal8 is a binary upload; RFC 9051 UTF8 (literal).
        let data = if p.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            let kw = p.keyword()?;
            if kw != "UTF8" {
                return err(format!("unknown APPEND data extension {kw}"));
            }
            p.sp()?;
            p.expect(b'(')?;
            let d = p.literal()?;
            p.expect(b')')?;
            d
        } else {
            p.literal()?
        };
        messages.push(AppendMessage { flags, date, data });
    }
    if messages.is_empty() {
        return err("APPEND needs a message");
    }
    Ok(CommandBody::Append { mailbox, messages })
}

fn search_return(p: &mut Parser<'_>) -> Result<Option<Vec<SearchReturn>>> {
    let save = p.pos;
    if p.keyword().ok().as_deref() != Some("RETURN") {
        p.pos = save;
        return Ok(None);
    }
    p.sp()?;
    let opts = p.paren_list(|p| {
        Ok(match p.keyword()?.as_str() {
            "MIN" => SearchReturn::Min,
            "MAX" => SearchReturn::Max,
            "ALL" => SearchReturn::All,
            "COUNT" => SearchReturn::Count,
            "SAVE" => SearchReturn::Save,
            other => return err(format!("unknown SEARCH return option {other}")),
        })
    })?;
    p.sp()?;
    Ok(Some(opts))
}

fn charset(p: &mut Parser<'_>) -> Result<()> {
    let save = p.pos;
    if p.keyword().ok().as_deref() == Some("CHARSET") {
        p.sp()?;
        let cs = p.astring()?;
        let cs = String::from_utf8_lossy(&cs).to_ascii_uppercase();
        if cs != "UTF-8" && cs != "US-ASCII" {
            return err("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
        }
        p.sp()?;
    } else {
        p.pos = save;
    }
    Ok(())
}

fn search(p: &mut Parser<'_>, uid: bool) -> Result<CommandBody> {
    p.sp()?;
    let ret = search_return(p)?;
    charset(p)?;
    let key = search_keys(p)?;
    Ok(CommandBody::Search { uid, ret, key })
}

fn search_keys(p: &mut Parser<'_>) -> Result<SearchKey> {
    let mut keys = vec![search_key(p, 0)?];
    while p.eat(b' ') {
        keys.push(search_key(p, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

fn search_string(p: &mut Parser<'_>) -> Result<String> {
    p.sp()?;
    Ok(String::from_utf8_lossy(&p.astring()?).into_owned())
}

fn search_key(p: &mut Parser<'_>, depth: usize) -> Result<SearchKey> {
    if depth > 64 {
        return err("search keys nested too deeply");
    }
    if p.eat(b'(') {
        let mut keys = vec![search_key(p, depth + 1)?];
        while p.eat(b' ') {
            keys.push(search_key(p, depth + 1)?);
        }
        p.expect(b')')?;
        return Ok(SearchKey::And(keys));
    }
    if matches!(p.peek(), Some(b'0'..=b'9' | b'*' | b'$')) {
        return Ok(SearchKey::SeqSet(p.seq_set()?));
    }
    let flag = |name: &str, set: bool| Ok(SearchKey::Flag(name.into(), set));
    let kw = p.keyword()?;
    match kw.as_str() {
        "ALL" => Ok(SearchKey::All),
        "ANSWERED" => flag("\\Answered", true),
        "DELETED" => flag("\\Deleted", true),
        "DRAFT" => flag("\\Draft", true),
        "FLAGGED" => flag("\\Flagged", true),
        "SEEN" => flag("\\Seen", true),
        "UNANSWERED" => flag("\\Answered", false),
        "UNDELETED" => flag("\\Deleted", false),
        "UNDRAFT" => flag("\\Draft", false),
        "UNFLAGGED" => flag("\\Flagged", false),
        "UNSEEN" => flag("\\Seen", false),
        "NEW" => Ok(SearchKey::New),
        "OLD" => Ok(SearchKey::Old),
        "RECENT" => Ok(SearchKey::Recent),
        "KEYWORD" | "UNKEYWORD" => {
            p.sp()?;
            let k = p.flag()?;
            Ok(SearchKey::Flag(k, kw == "KEYWORD"))
        }
        "BCC" | "CC" | "FROM" | "SUBJECT" | "TO" => {
            let v = search_string(p)?;
            let name = match kw.as_str() {
                "BCC" => "Bcc",
                "CC" => "Cc",
                "FROM" => "From",
                "SUBJECT" => "Subject",
                _ => "To",
            };
            Ok(SearchKey::Header(name.into(), v))
        }
        "HEADER" => {
            p.sp()?;
            let name = String::from_utf8_lossy(&p.astring()?).into_owned();
            let v = search_string(p)?;
            Ok(SearchKey::Header(name, v))
        }
        "BODY" => Ok(SearchKey::Body(search_string(p)?)),
        "TEXT" => Ok(SearchKey::Text(search_string(p)?)),
        "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
            p.sp()?;
            let d = p.date()?;
            Ok(match kw.as_str() {
                "BEFORE" => SearchKey::Before(d),
                "ON" => SearchKey::On(d),
                "SINCE" => SearchKey::Since(d),
                "SENTBEFORE" => SearchKey::SentBefore(d),
                "SENTON" => SearchKey::SentOn(d),
                _ => SearchKey::SentSince(d),
            })
        }
        "LARGER" => {
            p.sp()?;
            Ok(SearchKey::Larger(p.number()?))
        }
        "SMALLER" => {
            p.sp()?;
            Ok(SearchKey::Smaller(p.number()?))
        }
        "OLDER" => {
            p.sp()?;
            Ok(SearchKey::Older(p.number()?))
        }
        "YOUNGER" => {
            p.sp()?;
            Ok(SearchKey::Younger(p.number()?))
        }
        "UID" => {
            p.sp()?;
            Ok(SearchKey::Uid(p.seq_set()?))
        }
        "NOT" => {
            p.sp()?;
            Ok(SearchKey::Not(Box::new(search_key(p, depth + 1)?)))
        }
        "OR" => {
            p.sp()?;
            let a = search_key(p, depth + 1)?;
            p.sp()?;
            let b = search_key(p, depth + 1)?;
            Ok(SearchKey::Or(Box::new(a), Box::new(b)))
        }
        "MODSEQ" => {
            p.sp()?;
            // RFC 7162 §3.1.5: an optional entry name and type precede the value.
            if p.peek() == Some(b'"') {
                p.quoted()?;
                p.sp()?;
                p.keyword()?;
                p.sp()?;
            }
            Ok(SearchKey::ModSeq(p.number()?))
        }
        "EMAILID" => Ok(SearchKey::EmailId(search_string(p)?)),
        "THREADID" => Ok(SearchKey::ThreadId(search_string(p)?)),
        other => err(format!("unknown search key {other}")),
    }
}

fn part_numbers(p: &mut Parser<'_>) -> Vec<u32> {
    let mut part = Vec::new();
    loop {
        let save = p.pos;
        match p.nz_number() {
            Ok(n) => {
                part.push(n);
                if !p.eat(b'.') {
                    return part;
                }
                if !p.peek().is_some_and(|b| b.is_ascii_digit()) {
                    // `1.HEADER`: give the dot back to the caller.
                    p.pos -= 1;
                    return part;
                }
            }
            Err(_) => {
                p.pos = save;
                return part;
            }
        }
    }
}

fn section(p: &mut Parser<'_>) -> Result<Section> {
    p.expect(b'[')?;
    let mut s = Section::default();
    if p.eat(b']') {
        return Ok(s);
    }
    s.part = part_numbers(p);
    if !s.part.is_empty() && !p.eat(b'.') {
        p.expect(b']')?;
        return Ok(s);
    }
    let kw = p.keyword()?;
    s.text = Some(match kw.as_str() {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !s.part.is_empty() => SectionText::Mime,
        "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
            p.sp()?;
            let fields =
                p.paren_list(|p| Ok(String::from_utf8_lossy(&p.astring()?).into_owned()))?;
            if fields.is_empty() {
                return err("HEADER.FIELDS needs a field name");
            }
            SectionText::HeaderFields {
                not: kw.ends_with(".NOT"),
                fields,
            }
        }
        other => return err(format!("unknown section {other}")),
    });
    p.expect(b']')?;
    Ok(s)
}

fn partial(p: &mut Parser<'_>) -> Result<Option<(u64, u64)>> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let start = p.number()?;
    p.expect(b'.')?;
    let len = p.number()?;
    if len == 0 {
        return err("a partial of zero octets");
    }
    p.expect(b'>')?;
    Ok(Some((start, len)))
}

fn fetch_att(p: &mut Parser<'_>) -> Result<FetchItem> {
    let start = p.pos;
    let name = p.take_while(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let _ = start;
    Ok(match name.as_str() {
        "FLAGS" => FetchItem::Flags,
        "INTERNALDATE" => FetchItem::InternalDate,
        "RFC822.SIZE" => FetchItem::Rfc822Size,
        "ENVELOPE" => FetchItem::Envelope,
        "BODYSTRUCTURE" => FetchItem::BodyStructure,
        "UID" => FetchItem::Uid,
        "MODSEQ" => FetchItem::ModSeq,
        "RFC822" => FetchItem::Rfc822,
        "RFC822.HEADER" => FetchItem::Rfc822Header,
        "RFC822.TEXT" => FetchItem::Rfc822Text,
        "EMAILID" => FetchItem::EmailId,
        "THREADID" => FetchItem::ThreadId,
        "BODY" | "BODY.PEEK" => {
            if p.peek() != Some(b'[') {
                if name == "BODY.PEEK" {
                    return err("BODY.PEEK needs a section");
                }
                return Ok(FetchItem::Body);
            }
            let section = section(p)?;
            FetchItem::BodySection {
                peek: name == "BODY.PEEK",
                section,
                partial: partial(p)?,
            }
        }
        "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
            p.expect(b'[')?;
            let part = part_numbers(p);
            p.expect(b']')?;
            if name == "BINARY.SIZE" {
                FetchItem::BinarySize { part }
            } else {
                FetchItem::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial: partial(p)?,
                }
            }
        }
        "" => return err("expected a fetch item"),
        other => return err(format!("unknown fetch item {other}")),
    })
}

fn fetch(p: &mut Parser<'_>, uid: bool) -> Result<CommandBody> {
    p.sp()?;
    let set = p.seq_set()?;
    p.sp()?;
    let items = if p.peek() == Some(b'(') {
        p.paren_list(fetch_att)?
    } else {
        let save = p.pos;
        match p.keyword()?.as_str() {
            "ALL" => vec![
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
            ],
            "FAST" => vec![
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
            ],
            "FULL" => vec![
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
                FetchItem::Body,
            ],
            _ => {
                p.pos = save;
                vec![fetch_att(p)?]
            }
        }
    };
    let (mut changed_since, mut vanished) = (None, false);
    if p.eat(b' ') {
        p.expect(b'(')?;
        loop {
            match p.keyword()?.as_str() {
                "CHANGEDSINCE" => {
                    p.sp()?;
                    changed_since = Some(p.number()?);
                }
                "VANISHED" => vanished = true,
                other => return err(format!("unknown FETCH modifier {other}")),
            }
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
    }
    if vanished && (!uid || changed_since.is_none()) {
        return err("VANISHED needs UID FETCH with CHANGEDSINCE");
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        items,
        changed_since,
        vanished,
    })
}

fn store(p: &mut Parser<'_>, uid: bool) -> Result<CommandBody> {
    p.sp()?;
    let set = p.seq_set()?;
    p.sp()?;
    let mut unchanged_since = None;
    if p.eat(b'(') {
        if p.keyword()? != "UNCHANGEDSINCE" {
            return err("unknown STORE modifier");
        }
        p.sp()?;
        unchanged_since = Some(p.number()?);
        p.expect(b')')?;
        p.sp()?;
    }
    let op = if p.eat(b'+') {
        StoreOp::Add
    } else if p.eat(b'-') {
        StoreOp::Remove
    } else {
        StoreOp::Replace
    };
    let item = p.keyword()?;
    let silent = match item.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return err("expected FLAGS or FLAGS.SILENT"),
    };
    p.sp()?;
    let flags = if p.peek() == Some(b'(') {
        p.flag_list()?
    } else {
        let mut v = vec![p.flag()?];
        while p.eat(b' ') {
            v.push(p.flag()?);
        }
        v
    };
    Ok(CommandBody::Store {
        uid,
        set,
        unchanged_since,
        op,
        silent,
        flags,
    })
}

fn copy(p: &mut Parser<'_>, uid: bool, moving: bool) -> Result<CommandBody> {
    p.sp()?;
    let set = p.seq_set()?;
    p.sp()?;
    Ok(CommandBody::Copy {
        uid,
        set,
        mailbox: p.astring()?,
        moving,
    })
}

fn sort(p: &mut Parser<'_>, uid: bool) -> Result<CommandBody> {
    p.sp()?;
    let ret = search_return(p)?;
    let mut criteria = Vec::new();
    p.expect(b'(')?;
    let mut reverse = false;
    loop {
        let kw = p.keyword()?;
        if kw == "REVERSE" {
            reverse = true;
            p.sp()?;
            continue;
        }
        let key = match kw.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            other => return err(format!("unknown sort key {other}")),
        };
        criteria.push((reverse, key));
        reverse = false;
        if p.eat(b')') {
            break;
        }
        p.sp()?;
    }
    p.sp()?;
    p.astring()?; // charset: UTF-8 and US-ASCII are both read as UTF-8
    p.sp()?;
    let key = search_keys(p)?;
    Ok(CommandBody::Sort {
        uid,
        criteria,
        ret,
        key,
    })
}

fn thread(p: &mut Parser<'_>, uid: bool) -> Result<CommandBody> {
    p.sp()?;
    let algorithm = match p.keyword()?.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        other => return err(format!("unknown THREAD algorithm {other}")),
    };
    p.sp()?;
    p.astring()?;
    p.sp()?;
    let key = search_keys(p)?;
    Ok(CommandBody::Thread {
        uid,
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CommandBody {
        parse_command(s.as_bytes()).expect(s).body
    }

    #[test]
    fn fetch_items_and_sections() {
        let CommandBody::Fetch { items, .. } = parse(
            "a UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (Subject From)]<0.100> BINARY[2] BODY[1.MIME] BODY[])",
        ) else {
            panic!()
        };
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[1],
            FetchItem::BodySection {
                peek: true,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::HeaderFields {
                        not: false,
                        fields: vec!["Subject".into(), "From".into()]
                    })
                },
                partial: Some((0, 100))
            }
        );
        assert!(matches!(parse("a FETCH 1 ALL"), CommandBody::Fetch { .. }));
    }

    #[test]
    fn search_keys_nest() {
        let CommandBody::Search { key, .. } =
            parse("a SEARCH CHARSET UTF-8 OR (FROM alice SINCE 1-Feb-2024) NOT SEEN UID 1:5,7")
        else {
            panic!()
        };
        let SearchKey::And(keys) = key else { panic!() };
        assert_eq!(keys.len(), 2);
        assert!(matches!(keys[0], SearchKey::Or(..)));
    }

    #[test]
    fn literals_in_login_and_append() {
        assert_eq!(
            parse("a LOGIN {5}\r\nalice \"p\\\"w\""),
            CommandBody::Login {
                user: "alice".into(),
                password: "p\"w".into()
            }
        );
        let CommandBody::Append { messages, .. } = parse(
            "a APPEND INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0100\" {3+}\r\nabc (\\Flagged) {2}\r\nxy",
        ) else {
            panic!()
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].date, Some(1_704_099_600));
        assert_eq!(messages[1].data, b"xy");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for s in [
            "",
            "a",
            "a FETCH",
            "a FETCH 0 FLAGS",
            "a FETCH 1:* (FLAGS",
            "a LOGIN {99}\r\nab",
            "a SEARCH ((((",
            "a STORE 1 +FLAGS (\\Seen",
            "a SELECT INBOX (QRESYNC (1",
            "a SEARCH SINCE 1-Jan-99999999999999999",
            "a APPEND INBOX \"01-Jan-2024 99999999999999:00:00 +0000\" {1}\r\nx",
        ] {
            assert!(parse_command(s.as_bytes()).is_err(), "{s}");
        }
    }
}
