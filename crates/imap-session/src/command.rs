//! Commands as the parser gives them (RFC 9051 §6 and the extensions facteur announces): what a
//! session acts on, without the grammar.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// One end of a sequence range: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Num(u32),
    Star,
}

/// A sequence set (RFC 9051 §9 `sequence-set`), or `$` (SEARCHRES, RFC 5182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqSet {
    Ranges(Vec<(SeqNum, SeqNum)>),
    Saved,
}

impl SeqSet {
    /// The numbers of the set among 1..=max (`*` is max), sorted, without duplicates.
    pub fn resolve(ranges: &[(SeqNum, SeqNum)], max: u32) -> Vec<u32> {
        let val = |n: SeqNum| match n {
            SeqNum::Num(n) => n,
            SeqNum::Star => max,
        };
        let mut out: Vec<u32> = Vec::new();
        for &(a, b) in ranges {
            let (lo, hi) = {
                let (a, b) = (val(a), val(b));
                (a.min(b), a.max(b))
            };
            let hi = hi.min(max);
            if lo > hi || max == 0 {
                continue;
            }
            out.extend(lo.max(1)..=hi);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// True when `n` is in the set, `*` being `max`.
    pub fn contains(ranges: &[(SeqNum, SeqNum)], n: u32, max: u32) -> bool {
        let val = |x: SeqNum| match x {
            SeqNum::Num(v) => v,
            SeqNum::Star => max,
        };
        ranges.iter().any(|&(a, b)| {
            let (a, b) = (val(a), val(b));
            a.min(b) <= n && n <= a.max(b)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
    MailboxId,
}

pub type Ranges = Vec<(SeqNum, SeqNum)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<Vec<(SeqNum, SeqNum)>>,
    pub seq_match: Option<(Ranges, Ranges)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<i64>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields { not: bool, fields: Vec<String> },
    Text,
    Mime,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    BodyStructure,
    /// BODY without a section: the non-extensible BODYSTRUCTURE.
    Body,
    Uid,
    ModSeq,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u64, u64)>,
    },
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u64, u64)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
    EmailId,
    ThreadId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    SeqSet(SeqSet),
    Uid(SeqSet),
    Flag(String, bool),
    New,
    Old,
    Recent,
    Header(String, String),
    Body(String),
    Text(String),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    ModSeq(u64),
    Older(u64),
    Younger(u64),
    EmailId(String),
    ThreadId(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: String,
        password: String,
    },
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Enable(Vec<String>),
    Id(Vec<(String, Option<String>)>),
    Compress(String),
    Select {
        mailbox: Vec<u8>,
        examine: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create {
        mailbox: Vec<u8>,
        special_use: Vec<String>,
    },
    Delete(Vec<u8>),
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List {
        selection: Vec<String>,
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        returns: ListReturn,
        lsub: bool,
        /// LIST with extended syntax (RFC 5258): replies carry the extended data.
        extended: bool,
    },
    Namespace,
    Status {
        mailbox: Vec<u8>,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: Vec<u8>,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SeqSet>,
    },
    Search {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        unchanged_since: Option<u64>,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: Vec<u8>,
        moving: bool,
    },
    Sort {
        uid: bool,
        criteria: Vec<(bool, SortKey)>,
        ret: Option<Vec<SearchReturn>>,
        key: SearchKey,
    },
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: SearchKey,
    },
    GetQuota(Vec<u8>),
    GetQuotaRoot(Vec<u8>),
    SetQuota,
    Unauthenticate,
}
