//! The built-in rules: header, body, MIME and attachment tests on a message as received.
//!
//! Names and, as far as they apply, tests and scores follow SpamAssassin's well-known rules
//! (its `rules/` set: GTUBE, MISSING_DATE, MIME_HTML_ONLY, FREEMAIL_FORGED_REPLYTO…). The scores
//! are deliberately conservative: a legitimate newsletter, notification or personal message,
//! in French or English, must stay well below the usual 5.0 threshold whatever small sins
//! its sender commits; only GTUBE, executables and combinations of strong clues get far.
//!
//! Each rule fires at most once per message. Tiered rules (`ADVANCE_FEE_2`, `ADVANCE_FEE_4`)
//! are exclusive: only the tier matching the count of phrases found fires.

use crate::Hit;
use crate::message::Content;
use crate::phrases::{DEAR, MILLIONS, PHRASES};
use crate::text::{
    self, Url, address_domain, contains_phrase, find_addresses, fold_into, parse_url,
    registrable_domain,
};

/// The GTUBE test string (SpamAssassin's "Generic Test for Unsolicited Bulk Email"): a
/// message holding it is spam, for testing a setup end to end.
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The most folded text (subject and bodies) searched for phrases, in bytes.
const MAX_FOLDED: usize = 256 * 1024;

/// A built-in rule.
pub struct Rule {
    /// The name, upper case with underscores, as shown in `X-Spam-Status`.
    pub name: &'static str,
    /// The score added when the rule fires.
    pub score: f64,
    /// One line telling what the rule found.
    pub description: &'static str,
    test: fn(&Facts<'_>) -> bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("score", &self.score)
            .field("description", &self.description)
            .finish()
    }
}

impl Rule {
    fn hit(&self) -> Hit {
        Hit {
            name: self.name.to_string(),
            score: self.score,
            description: self.description.to_string(),
        }
    }
}

/// What the tests read: the message's content and what is derived from it once.
pub(crate) struct Facts<'c> {
    c: &'c Content<'c>,
    now: i64,
    /// The subject and the visible bodies, folded ([`text::fold_into`]).
    folded: String,
    /// The subject, folded.
    subject: String,
    /// Every URL of the message.
    urls: Vec<Url>,
    /// How many phrases of each list the folded text holds, counted once.
    counts: PhraseCounts,
}

/// The number of phrases found per list.
struct PhraseCounts {
    advance_fee: usize,
    lottery: usize,
    pharmacy: usize,
    phishing: usize,
    investment: usize,
    seo: usize,
    advert: usize,
    bulk: usize,
    macros: usize,
}

impl<'c> Facts<'c> {
    fn new(c: &'c Content<'c>, now: i64) -> Self {
        let subject = text::fold(c.subject.as_deref().unwrap_or(""), 4096);
        let mut folded = subject.clone();
        for body in c.body_texts() {
            folded.push(' ');
            fold_into(body, &mut folded, MAX_FOLDED);
        }
        // Every list in one pass over the text (the lists have hundreds of phrases).
        let [
            advance_fee,
            lottery,
            pharmacy,
            phishing,
            investment,
            seo,
            advert,
            bulk,
            macros,
        ] = PHRASES.count(&folded);
        let counts = PhraseCounts {
            advance_fee,
            lottery,
            pharmacy,
            phishing,
            investment,
            seo,
            advert,
            bulk,
            macros,
        };
        Facts {
            urls: c.urls().take(2000).collect(),
            c,
            now,
            folded,
            subject,
            counts,
        }
    }

    fn body_letters(&self) -> (usize, usize) {
        let (mut letters, mut upper) = (0, 0);
        for t in self.c.body_texts() {
            for ch in t.chars().filter(|ch| ch.is_alphabetic()) {
                letters += 1;
                if ch.is_uppercase() {
                    upper += 1;
                }
            }
        }
        (letters, upper)
    }
}

/// Evaluates every built-in rule on a raw message (header and body as received, CRLF line
/// ends), `now` being the current Unix time for the Date tests.
pub fn evaluate(message: &[u8], now: i64) -> Vec<Hit> {
    let content = Content::read(message);
    let facts = Facts::new(&content, now);
    RULES
        .iter()
        .filter(|r| (r.test)(&facts))
        .map(Rule::hit)
        .collect()
}

/// Free-mail providers: anyone can open an address there, so a Reply-To pointing to one
/// from a company's From is a classic of fraud (SpamAssassin's FreeMail plugin list, cut).
const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.fr",
    "yahoo.co.uk",
    "ymail.com",
    "rocketmail.com",
    "hotmail.com",
    "hotmail.fr",
    "hotmail.co.uk",
    "outlook.com",
    "outlook.fr",
    "live.com",
    "live.fr",
    "msn.com",
    "aol.com",
    "aol.fr",
    "gmx.com",
    "gmx.net",
    "gmx.fr",
    "gmx.de",
    "mail.com",
    "mail.ru",
    "yandex.ru",
    "yandex.com",
    "protonmail.com",
    "proton.me",
    "icloud.com",
    "me.com",
    "zoho.com",
    "laposte.net",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "sfr.fr",
    "neuf.fr",
    "bbox.fr",
    "aliceadsl.fr",
    "club-internet.fr",
    "tutanota.com",
    "qq.com",
    "163.com",
];

fn is_freemail(domain: &str) -> bool {
    FREEMAIL.contains(&domain)
}

/// URL shorteners: one link through them is common, several hide where a message leads.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "s.id",
    "v.gd",
    "lnkd.in",
    "bl.ink",
    "shorte.st",
    "adf.ly",
    "x.co",
    "qr.ae",
];

/// X-Mailer values of mass-mailing programs sold for spamming (lower case substrings).
const BULK_MAILERS: &[&str] = &[
    "send-safe",
    "dark mailer",
    "darkmailer",
    "atomic mail sender",
    "sendblaster",
    "advanced mass sender",
    "mass mailer",
    "bulk mailer",
    "maxbulk",
    "turbo mailer",
    "emarksman",
    "mailsbroadcast",
    "ultimate bulk",
    "massmail",
    "gammadyne",
    "group mail",
    "email extractor",
];

/// Charsets of scripts far from French and English mail (SpamAssassin's CHARSET_FARAWAY,
/// with `ok_locales` set to Latin scripts).
const FARAWAY_CHARSETS: &[&str] = &[
    "gb2312",
    "gbk",
    "gb18030",
    "hz-gb-2312",
    "big5",
    "big5-hkscs",
    "euc-kr",
    "ks_c_5601-1987",
    "iso-2022-kr",
    "koi8-r",
    "koi8-u",
    "windows-1251",
    "cp1251",
    "iso-8859-5",
    "iso-2022-jp",
    "shift_jis",
    "shift-jis",
    "euc-jp",
    "windows-874",
    "tis-620",
    "iso-8859-11",
];

/// File extensions Windows runs, or that run script hosts, when opened.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe",
    "scr",
    "com",
    "pif",
    "bat",
    "cmd",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "hta",
    "msi",
    "msp",
    "jar",
    "ps1",
    "psm1",
    "lnk",
    "cpl",
    "reg",
    "dll",
    "application",
    "gadget",
    "msc",
    "scf",
    "inf",
    "sct",
    "chm",
    "appx",
    "msix",
    "appref-ms",
];

/// Content types of executables.
const EXECUTABLE_TYPES: &[&str] = &[
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-dosexec",
    "application/x-ms-shortcut",
    "application/hta",
    "application/x-javascript",
    "application/javascript",
    "text/javascript",
    "application/x-sh",
    "application/vnd.microsoft.portable-executable",
];

fn extension(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((_, ext)) => ext.trim_end_matches(['"', ' ', '.']),
        None => "",
    }
}

fn is_executable_name(name: &str) -> bool {
    EXECUTABLE_EXTENSIONS.contains(&extension(name))
}

fn tier(count: usize, low: usize, high: usize, is_high: bool) -> bool {
    if is_high {
        count >= high
    } else {
        count >= low && count < high
    }
}

/// Whether a text holds a currency amount of at least a million: `$1,500,000`, `€ 2.000.000`,
/// `3 500 000 EUR`.
fn has_million_amount(folded: &str) -> bool {
    let is_num =
        |c: char| c.is_ascii_digit() || matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'');
    for (at, c) in folded.char_indices() {
        let digits = match c {
            '$' | '€' | '£' => integer_digits(folded[at + c.len_utf8()..].chars()),
            'u' | 'e' if folded[at..].starts_with("usd") || folded[at..].starts_with("eur") => {
                // The number written before the currency code: the run of digits and
                // separators ending there.
                let before = &folded[..at];
                let start = before
                    .char_indices()
                    .rev()
                    .take(32)
                    .take_while(|&(_, c)| is_num(c))
                    .last()
                    .map_or(at, |(i, _)| i);
                integer_digits(
                    before[start..]
                        .trim_start_matches(|c: char| !c.is_ascii_digit())
                        .chars(),
                )
            }
            _ => continue,
        };
        if digits >= 7 {
            return true;
        }
    }
    false
}

/// The number of digits of the integer part of a number written with `,`, `.` or space
/// grouping, from the start of `chars` (`1,500,000.00` → 7).
fn integer_digits(chars: impl Iterator<Item = char>) -> usize {
    let mut groups: Vec<usize> = vec![0];
    let mut started = false;
    for c in chars.take(32) {
        if c.is_ascii_digit() {
            started = true;
            if let Some(last) = groups.last_mut() {
                *last += 1;
            }
        } else if started && matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'') {
            groups.push(0);
        } else if started || !c.is_whitespace() {
            break;
        }
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    // A last group of two digits after a separator is cents.
    if groups.len() > 1 && groups.last() == Some(&2) {
        groups.pop();
    }
    // Groups after the first must be of three digits to be thousands.
    if groups.iter().skip(1).all(|&g| g == 3) {
        groups.iter().sum()
    } else {
        groups.first().copied().unwrap_or(0)
    }
}

fn is_mixed_script(word: &str) -> bool {
    let (mut latin, mut other) = (false, false);
    for c in word.chars().filter(|c| c.is_alphabetic()) {
        match c as u32 {
            0x41..=0x24f => latin = true,
            // Greek (U+0370…) and Cyrillic (…U+052F).
            0x370..=0x52f => other = true,
            _ => {}
        }
    }
    latin && other
}

fn mixed_script_words(text: &str) -> usize {
    text.split_whitespace()
        .take(50_000)
        .filter(|w| is_mixed_script(w))
        .count()
}

/// Whether the text of a link shows a host name (`https://bank.example`, `www.bank.example`,
/// `bank.example.com`) and which.
fn shown_host(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches(['/', '.', ',']);
    if t.is_empty() || t.len() > 300 || t.contains(char::is_whitespace) {
        return None;
    }
    if let Some(url) = parse_url(t) {
        return Some(url.host);
    }
    let host = t.split('/').next().unwrap_or("").to_lowercase();
    let tld = host.rsplit('.').next().unwrap_or("");
    let looks_like_host = host.contains('.')
        && (2..=10).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    looks_like_host.then_some(host)
}

fn link_text_mismatch(f: &Facts<'_>) -> bool {
    f.c.html.iter().flat_map(|h| &h.links).any(|link| {
        let Some(target) = parse_url(&link.href) else {
            return false;
        };
        let Some(shown) = shown_host(&link.text) else {
            return false;
        };
        registrable_domain(&shown) != registrable_domain(&target.host)
    })
}

fn date_offset(f: &Facts<'_>) -> Option<i64> {
    f.c.date.map(|d| d - f.now)
}

fn subject_all_caps(f: &Facts<'_>) -> bool {
    let Some(subject) = f.c.subject.as_deref() else {
        return false;
    };
    let letters: Vec<char> = subject.chars().filter(|c| c.is_alphabetic()).collect();
    letters.len() >= 10
        && subject.split_whitespace().count() >= 2
        && letters.iter().all(|c| !c.is_lowercase())
}

fn to_undisclosed(f: &Facts<'_>) -> bool {
    match f.c.header_unfolded("To") {
        None => f.c.parsed,
        Some(to) => {
            let to = to.to_lowercase();
            to.is_empty()
                || (to.contains("undisclosed") && to.ends_with(":;"))
                || to.replace(' ', "") == "undisclosed-recipients:;"
        }
    }
}

fn from_name_other_address(f: &Facts<'_>) -> bool {
    let (Some(name), Some(addr)) = (&f.c.from_name, &f.c.from_address) else {
        return false;
    };
    let lower = name.to_lowercase();
    // Mailing lists rewriting From for DMARC (RFC 7960 §4.1.3.1) write "x via List".
    if lower.contains(" via ") {
        return false;
    }
    let from_domain = address_domain(addr).unwrap_or_default();
    find_addresses(name).iter().any(|shown| {
        shown != addr
            && address_domain(shown)
                .is_none_or(|d| registrable_domain(&d) != registrable_domain(&from_domain))
    })
}

fn reply_to_domains(f: &Facts<'_>) -> Vec<String> {
    f.c.reply_to
        .iter()
        .filter_map(|a| address_domain(a))
        .collect()
}

fn freemail_replyto(f: &Facts<'_>) -> bool {
    let Some(from) = f.c.from_address.as_deref().and_then(address_domain) else {
        return false;
    };
    !is_freemail(&from)
        && reply_to_domains(f)
            .iter()
            .any(|d| is_freemail(d) && registrable_domain(d) != registrable_domain(&from))
}

fn freemail_forged_replyto(f: &Facts<'_>) -> bool {
    let Some(from) = f.c.from_address.as_deref() else {
        return false;
    };
    let Some(from_domain) = address_domain(from) else {
        return false;
    };
    is_freemail(&from_domain)
        && f.c
            .reply_to
            .iter()
            .any(|r| r != from && address_domain(r).is_some_and(|d| is_freemail(&d)))
}

fn html_image_only(f: &Facts<'_>) -> bool {
    let images: usize =
        f.c.html
            .iter()
            .map(|h| h.images.iter().filter(|s| !s.is_empty()).count())
            .sum();
    if images == 0 {
        return false;
    }
    let letters: usize =
        f.c.body_texts()
            .map(|t| t.chars().filter(|c| c.is_alphabetic()).count())
            .max()
            .unwrap_or(0);
    letters < 200
}

fn shortener_links(f: &Facts<'_>) -> usize {
    // Distinct links are what matters: the same short link in the text and the HTML
    // alternative is one.
    let mut links: Vec<&str> = f
        .urls
        .iter()
        .filter(|u| SHORTENERS.contains(&u.host.as_str()))
        .map(|u| u.text.as_str())
        .collect();
    links.sort_unstable();
    links.dedup();
    links.len()
}

/// The built-in rules, in the order they are evaluated.
pub static RULES: &[Rule] = &[
    Rule {
        name: "GTUBE",
        score: 1000.0,
        description: "Generic Test for Unsolicited Bulk Email",
        test: |f| f.c.raw_text.contains(GTUBE) || f.c.body_texts().any(|t| t.contains(GTUBE)),
    },
    // Header fields (RFC 5322 §3.6: Date and From are required, Message-ID should be there).
    Rule {
        name: "MISSING_DATE",
        score: 1.0,
        description: "Missing Date: header",
        test: |f| f.c.header("Date").is_none(),
    },
    Rule {
        name: "INVALID_DATE",
        score: 0.8,
        description: "Date: header not in RFC 5322 format",
        test: |f| f.c.header("Date").is_some() && f.c.date.is_none(),
    },
    Rule {
        name: "DATE_IN_FUTURE",
        score: 1.5,
        description: "Date: is more than 12 hours ahead of the time of receipt",
        test: |f| date_offset(f).is_some_and(|d| d > 12 * 3600),
    },
    Rule {
        name: "DATE_IN_PAST",
        score: 0.8,
        description: "Date: is more than 96 hours before the time of receipt",
        test: |f| date_offset(f).is_some_and(|d| d < -96 * 3600),
    },
    Rule {
        name: "MISSING_MID",
        score: 0.5,
        description: "Missing Message-Id: header",
        test: |f| f.c.header("Message-ID").is_none(),
    },
    Rule {
        name: "INVALID_MSGID",
        score: 0.5,
        description: "Message-Id: is not a valid msg-id (RFC 5322 §3.6.4: <left@right>)",
        test: |f| {
            f.c.header_unfolded("Message-ID").is_some_and(|m| {
                !(m.starts_with('<') && m.ends_with('>') && m.contains('@') && m.len() > 4)
            })
        },
    },
    Rule {
        name: "MISSING_FROM",
        score: 1.0,
        description: "Missing From: header or no address in it",
        test: |f| f.c.from_address.is_none(),
    },
    Rule {
        name: "MISSING_SUBJECT",
        score: 0.5,
        description: "Missing Subject: header",
        test: |f| f.c.parsed && f.c.header("Subject").is_none(),
    },
    Rule {
        name: "FROM_NAME_OTHER_ADDR",
        score: 1.5,
        description: "From: display name shows another e-mail address than the sender's",
        test: from_name_other_address,
    },
    Rule {
        name: "FREEMAIL_REPLYTO",
        score: 1.0,
        description: "Reply-To: is a free-mail address, From: is not",
        test: freemail_replyto,
    },
    Rule {
        name: "FREEMAIL_FORGED_REPLYTO",
        score: 1.5,
        description: "From: and Reply-To: are two different free-mail addresses",
        test: freemail_forged_replyto,
    },
    Rule {
        name: "TO_UNDISCLOSED",
        score: 0.5,
        description: "To: missing, empty or undisclosed recipients",
        test: to_undisclosed,
    },
    Rule {
        name: "FAKE_REPLY",
        score: 0.8,
        description: "Subject says Re: but the message answers nothing (no In-Reply-To, References)",
        test: |f| {
            let s = f.subject.trim_start();
            (s.starts_with("re:") || s.starts_with("re :"))
                && f.c.header("In-Reply-To").is_none()
                && f.c.header("References").is_none()
        },
    },
    Rule {
        name: "UNDISC_MONEY",
        score: 1.5,
        description: "Undisclosed recipients and talk of large sums, inheritance or prizes",
        test: |f| {
            to_undisclosed(f)
                && (MILLIONS.iter().any(|m| contains_phrase(&f.folded, m))
                    || has_million_amount(&f.folded)
                    || f.counts.advance_fee >= 2
                    || f.counts.lottery >= 2)
        },
    },
    Rule {
        name: "XMAILER_BULK",
        score: 1.5,
        description: "X-Mailer: is a known mass-mailing program",
        test: |f| {
            f.c.mailer.as_deref().is_some_and(|m| {
                let m = m.to_lowercase();
                BULK_MAILERS.iter().any(|b| m.contains(b))
            })
        },
    },
    // Subject.
    Rule {
        name: "SUBJ_ALL_CAPS",
        score: 1.0,
        description: "Subject is all capitals",
        test: subject_all_caps,
    },
    Rule {
        name: "SUBJ_EXCESS_EXCLAIM",
        score: 0.8,
        description: "Subject has many exclamation marks",
        test: |f| {
            let s = f.c.subject.as_deref().unwrap_or("");
            s.contains("!!") || s.matches('!').count() >= 3
        },
    },
    Rule {
        name: "SUBJ_MONEY_SIGNS",
        score: 1.5,
        description: "Subject has repeated money signs ($$$, €€€)",
        test: |f| {
            let s = f.c.subject.as_deref().unwrap_or("");
            s.contains("$$$") || s.contains("€€€") || s.contains("£££")
        },
    },
    Rule {
        name: "MIXED_SCRIPT_HEADER",
        score: 1.5,
        description: "Subject or From name mixes Latin and Cyrillic or Greek letters in a word",
        test: |f| {
            mixed_script_words(&f.subject) > 0
                || f.c
                    .from_name
                    .as_deref()
                    .is_some_and(|n| mixed_script_words(n) > 0)
        },
    },
    // MIME structure (RFC 2045, RFC 2046).
    Rule {
        name: "MIME_HTML_ONLY",
        score: 0.7,
        description: "Message only has text/html MIME parts",
        test: |f| !f.c.html.is_empty() && f.c.plain.is_empty(),
    },
    Rule {
        name: "MIME_MISSING_BOUNDARY",
        score: 1.0,
        description: "Multipart without a boundary parameter, or whose boundary never occurs",
        test: |f| f.c.boundary_missing,
    },
    Rule {
        name: "MIME_UNTERMINATED",
        score: 0.5,
        description: "Multipart without its close delimiter (--boundary--)",
        test: |f| f.c.boundary_unterminated,
    },
    Rule {
        name: "MIME_BASE64_TEXT",
        score: 1.0,
        description: "Plain ASCII text disguised with base64 encoding",
        test: |f| f.c.parts.iter().any(|p| p.is_body && p.base64_ascii_text),
    },
    Rule {
        name: "MIME_CHARSET_FARAWAY",
        score: 0.8,
        description: "Body in a charset of a script other than Latin (CJK, Cyrillic, Thai)",
        test: |f| {
            f.c.parts.iter().any(|p| {
                p.is_body
                    && p.charset
                        .as_deref()
                        .is_some_and(|c| FARAWAY_CHARSETS.contains(&c))
            })
        },
    },
    Rule {
        name: "EMPTY_MESSAGE",
        score: 0.7,
        description: "Message has no text and no attachment",
        test: |f| {
            f.c.parsed
                && f.c.attachments.is_empty()
                && f.c
                    .body_texts()
                    .all(|t| !t.chars().any(char::is_alphanumeric))
        },
    },
    // Attachments.
    Rule {
        name: "EXECUTABLE_ATTACHMENT",
        score: 4.5,
        description: "Attachment is a program or script (.exe, .scr, .js, .vbs...)",
        test: |f| {
            f.c.attachments.iter().any(|a| {
                is_executable_name(&a.name) || EXECUTABLE_TYPES.contains(&a.content_type.as_str())
            })
        },
    },
    Rule {
        name: "ARCHIVE_EXECUTABLE",
        score: 4.0,
        description: "ZIP attachment holding a program or script",
        test: |f| {
            f.c.attachments
                .iter()
                .any(|a| a.archive_names.iter().any(|n| is_executable_name(n)))
        },
    },
    Rule {
        name: "DISK_IMAGE_ATTACHMENT",
        score: 2.5,
        description: "Attachment is a disk image (.iso, .img, .vhd), a way to ship programs",
        test: |f| {
            f.c.attachments
                .iter()
                .any(|a| matches!(extension(&a.name), "iso" | "img" | "vhd" | "vhdx"))
        },
    },
    Rule {
        name: "MACRO_ATTACHMENT",
        score: 1.5,
        description: "Attachment is an Office document with macros (.docm, .xlsm...)",
        test: |f| {
            f.c.attachments.iter().any(|a| {
                matches!(
                    extension(&a.name),
                    "docm" | "dotm" | "xlsm" | "xltm" | "xlam" | "pptm" | "potm" | "ppam"
                )
            })
        },
    },
    Rule {
        name: "HTML_ATTACHMENT",
        score: 1.0,
        description: "Attachment is an HTML or SVG page, a way to ship login forms",
        test: |f| {
            f.c.attachments.iter().any(|a| {
                matches!(
                    extension(&a.name),
                    "htm" | "html" | "shtml" | "xhtml" | "svg"
                )
            })
        },
    },
    Rule {
        name: "ATTACHMENT_ACTIVE_CONTENT",
        score: 2.5,
        description: "HTML attachment with a password form, or SVG attachment with a script",
        test: |f| f.c.attachments.iter().any(|a| a.active_content),
    },
    Rule {
        name: "ENABLE_MACROS",
        score: 2.0,
        description: "Asks the reader to enable macros or editing in a document",
        test: |f| f.counts.macros > 0,
    },
    // HTML.
    Rule {
        name: "HTML_HIDDEN_TEXT",
        score: 1.5,
        description: "HTML hides a lot of text from the reader",
        test: |f| f.c.html.iter().any(|h| h.hidden_chars >= 200),
    },
    Rule {
        name: "HTML_FONT_SIZE_HUGE",
        score: 0.5,
        description: "HTML text in a huge font",
        test: |f| f.c.html.iter().any(|h| h.huge_chars >= 10),
    },
    Rule {
        name: "HTML_IMAGE_ONLY",
        score: 1.2,
        description: "HTML with images and almost no text",
        test: html_image_only,
    },
    Rule {
        name: "LINK_TEXT_MISMATCH",
        score: 1.2,
        description: "Link text shows one domain, the link goes to another",
        test: link_text_mismatch,
    },
    // URLs.
    Rule {
        name: "NUMERIC_HTTP_ADDR",
        score: 1.5,
        description: "Link to a bare IP address",
        test: |f| f.urls.iter().any(Url::is_ip),
    },
    Rule {
        name: "URI_USERINFO",
        score: 1.5,
        description: "Link with a user name before the host (http://name@host/)",
        test: |f| f.urls.iter().any(|u| u.userinfo),
    },
    Rule {
        name: "URI_SHORTENER_MANY",
        score: 1.0,
        description: "Several links through URL shorteners",
        test: |f| shortener_links(f) >= 2,
    },
    // Text.
    Rule {
        name: "BODY_MOSTLY_CAPS",
        score: 1.0,
        description: "Body text mostly in capitals",
        test: |f| {
            let (letters, upper) = f.body_letters();
            letters >= 200 && upper * 10 >= letters * 7
        },
    },
    Rule {
        name: "MIXED_SCRIPT_BODY",
        score: 1.0,
        description: "Body has words mixing Latin and Cyrillic or Greek letters",
        test: |f| mixed_script_words(&f.folded) >= 3,
    },
    Rule {
        name: "DEAR_FRIEND",
        score: 1.0,
        description: "Salutation to no one in particular (Dear friend, Cher ami...)",
        test: |f| {
            let start = text::truncate(&f.folded, f.subject.len() + 600);
            DEAR.iter().any(|d| contains_phrase(start, d))
        },
    },
    Rule {
        name: "MILLION_MONEY",
        score: 1.0,
        description: "Talks of millions of dollars or euros",
        test: |f| {
            MILLIONS.iter().any(|m| contains_phrase(&f.folded, m)) || has_million_amount(&f.folded)
        },
    },
    Rule {
        name: "ADVANCE_FEE_2",
        score: 2.0,
        description: "Two or three phrases of advance-fee fraud",
        test: |f| tier(f.counts.advance_fee, 2, 4, false),
    },
    Rule {
        name: "ADVANCE_FEE_4",
        score: 3.5,
        description: "Four or more phrases of advance-fee fraud",
        test: |f| tier(f.counts.advance_fee, 2, 4, true),
    },
    Rule {
        name: "LOTTERY_2",
        score: 2.0,
        description: "Two or three phrases of lottery or prize scams",
        test: |f| tier(f.counts.lottery, 2, 4, false),
    },
    Rule {
        name: "LOTTERY_4",
        score: 3.5,
        description: "Four or more phrases of lottery or prize scams",
        test: |f| tier(f.counts.lottery, 2, 4, true),
    },
    Rule {
        name: "PHARMACY_2",
        score: 2.0,
        description: "Two or three words of pharmacy spam",
        test: |f| tier(f.counts.pharmacy, 2, 4, false),
    },
    Rule {
        name: "PHARMACY_4",
        score: 3.5,
        description: "Four or more words of pharmacy spam",
        test: |f| tier(f.counts.pharmacy, 2, 4, true),
    },
    Rule {
        name: "PHISHING_2",
        score: 2.0,
        description: "Two or three phrases of account or parcel phishing",
        test: |f| tier(f.counts.phishing, 2, 4, false),
    },
    Rule {
        name: "PHISHING_4",
        score: 3.5,
        description: "Four or more phrases of account or parcel phishing",
        test: |f| tier(f.counts.phishing, 2, 4, true),
    },
    Rule {
        name: "INVESTMENT_2",
        score: 2.0,
        description: "Two or three phrases of investment or crypto-currency scams",
        test: |f| tier(f.counts.investment, 2, 4, false),
    },
    Rule {
        name: "INVESTMENT_4",
        score: 3.5,
        description: "Four or more phrases of investment or crypto-currency scams",
        test: |f| tier(f.counts.investment, 2, 4, true),
    },
    Rule {
        name: "SEO_OFFER_2",
        score: 1.5,
        description: "Two or three phrases of unsolicited SEO or web-design offers",
        test: |f| tier(f.counts.seo, 2, 4, false),
    },
    Rule {
        name: "SEO_OFFER_4",
        score: 2.5,
        description: "Four or more phrases of unsolicited SEO or web-design offers",
        test: |f| tier(f.counts.seo, 2, 4, true),
    },
    Rule {
        name: "ADVERT_PHRASES_3",
        score: 0.5,
        description: "Three to five phrases of pushy advertising",
        test: |f| tier(f.counts.advert, 3, 6, false),
    },
    Rule {
        name: "ADVERT_PHRASES_6",
        score: 1.5,
        description: "Six or more phrases of pushy advertising",
        test: |f| tier(f.counts.advert, 3, 6, true),
    },
    Rule {
        name: "BULK_UNSUBSCRIBE",
        score: 0.2,
        description: "Bulk mail unsubscription text",
        test: |f| f.counts.bulk > 0,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A now close to the dates of the test messages: 2025-06-02 12:00:00 UTC.
    const NOW: i64 = 1_748_865_600;

    fn msg(headers: &str, body: &str) -> Vec<u8> {
        let mut m = String::new();
        for line in headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
            m.push_str(line);
            m.push_str("\r\n");
        }
        m.push_str("\r\n");
        m.push_str(&body.replace("\r\n", "\n").replace('\n', "\r\n"));
        m.into_bytes()
    }

    const BASE: &str = "From: Alice Martin <alice@example.com>
        To: Bob <bob@example.org>
        Subject: Dinner on Saturday
        Date: Mon, 2 Jun 2025 10:00:00 +0200
        Message-ID: <a1b2c3@mail.example.com>
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8";

    fn names(message: &[u8]) -> Vec<String> {
        evaluate(message, NOW).into_iter().map(|h| h.name).collect()
    }

    fn fires(message: &[u8], rule: &str) -> bool {
        names(message).iter().any(|n| n == rule)
    }

    /// A header section with one field replaced (or removed, with an empty value).
    fn with(field: &str, value: &str) -> String {
        let mut out = String::new();
        let mut done = false;
        for line in BASE.lines().map(str::trim) {
            if line
                .to_ascii_lowercase()
                .starts_with(&format!("{}:", field.to_ascii_lowercase()))
            {
                if !value.is_empty() {
                    out.push_str(&format!("{field}: {value}\n"));
                }
                done = true;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        if !done && !value.is_empty() {
            out.push_str(&format!("{field}: {value}\n"));
        }
        out
    }

    const PLAIN: &str =
        "Hi Bob,\nShall we have dinner at our place on Saturday? Bring the kids.\nAlice\n";

    #[test]
    fn rule_names_are_unique_upper_snake_and_described() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.name), "duplicate rule {}", r.name);
            assert!(
                r.name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                r.name
            );
            assert!(!r.description.is_empty() && !r.description.contains('\n'));
            assert!(r.score.is_finite());
        }
    }

    #[test]
    fn personal_mail_fires_nothing() {
        assert_eq!(names(&msg(BASE, PLAIN)), Vec::<String>::new());
    }

    #[test]
    fn gtube() {
        let hits = evaluate(&msg(BASE, &format!("test\n{GTUBE}\n")), NOW);
        let g = hits
            .iter()
            .find(|h| h.name == "GTUBE")
            .expect("GTUBE fires");
        assert_eq!(g.score, 1000.0);
        // Also when the body is base64.
        let b64 = "WEpTKkM0SkRCUUFETjEuTlNCTjMqMklETkVOKkdUVUJFLVNUQU5EQVJELUFOVEktVUJFLVRF\r\nU1QtRU1BSUwqQy4zNFg=\r\n";
        let h = with("Content-Transfer-Encoding", "base64");
        assert!(fires(&msg(&h, b64), "GTUBE"));
        assert!(!fires(&msg(BASE, "XJS*C4JDBQADN1.NSBN3 almost\n"), "GTUBE"));
    }

    #[test]
    fn date_rules() {
        assert!(fires(&msg(&with("Date", ""), PLAIN), "MISSING_DATE"));
        assert!(fires(
            &msg(&with("Date", "yesterday-ish"), PLAIN),
            "INVALID_DATE"
        ));
        assert!(!fires(&msg(BASE, PLAIN), "INVALID_DATE"));
        let future = with("Date", "Thu, 5 Jun 2025 10:00:00 +0000");
        assert!(fires(&msg(&future, PLAIN), "DATE_IN_FUTURE"));
        let soon = with("Date", "Mon, 2 Jun 2025 20:00:00 +0000");
        assert!(!fires(&msg(&soon, PLAIN), "DATE_IN_FUTURE"));
        let past = with("Date", "Mon, 26 May 2025 10:00:00 +0000");
        assert!(fires(&msg(&past, PLAIN), "DATE_IN_PAST"));
        let recent = with("Date", "Fri, 30 May 2025 10:00:00 +0000");
        assert!(!fires(&msg(&recent, PLAIN), "DATE_IN_PAST"));
    }

    #[test]
    fn message_id_from_subject_to() {
        assert!(fires(&msg(&with("Message-ID", ""), PLAIN), "MISSING_MID"));
        assert!(fires(
            &msg(&with("Message-ID", "<nothing>"), PLAIN),
            "INVALID_MSGID"
        ));
        assert!(fires(&msg(&with("From", ""), PLAIN), "MISSING_FROM"));
        assert!(fires(&msg(&with("Subject", ""), PLAIN), "MISSING_SUBJECT"));
        assert!(fires(&msg(&with("To", ""), PLAIN), "TO_UNDISCLOSED"));
        let undisclosed = with("To", "undisclosed-recipients:;");
        assert!(fires(&msg(&undisclosed, PLAIN), "TO_UNDISCLOSED"));
        for rule in [
            "MISSING_MID",
            "INVALID_MSGID",
            "MISSING_FROM",
            "TO_UNDISCLOSED",
        ] {
            assert!(!fires(&msg(BASE, PLAIN), rule));
        }
    }

    #[test]
    fn from_name_with_another_address() {
        let spoof = with(
            "From",
            "\"service@bank.example.com\" <random123@host.example.net>",
        );
        assert!(fires(&msg(&spoof, PLAIN), "FROM_NAME_OTHER_ADDR"));
        let same = with("From", "\"alice@example.com\" <alice@example.com>");
        assert!(!fires(&msg(&same, PLAIN), "FROM_NAME_OTHER_ADDR"));
        let list = with(
            "From",
            "\"alice@example.com via Parents\" <parents@lists.example.org>",
        );
        assert!(!fires(&msg(&list, PLAIN), "FROM_NAME_OTHER_ADDR"));
    }

    #[test]
    fn freemail_reply_to() {
        let company = with("Reply-To", "claims.desk.0000@gmail.com");
        assert!(fires(&msg(&company, PLAIN), "FREEMAIL_REPLYTO"));
        assert!(!fires(&msg(&company, PLAIN), "FREEMAIL_FORGED_REPLYTO"));
        let same_company = with("Reply-To", "orders@example.com");
        assert!(!fires(&msg(&same_company, PLAIN), "FREEMAIL_REPLYTO"));

        let forged = with("From", "Mr Nobody <nobody.0000@yahoo.com>")
            + "Reply-To: other.0000@outlook.com\n";
        assert!(fires(&msg(&forged, PLAIN), "FREEMAIL_FORGED_REPLYTO"));
        let own =
            with("From", "Mr Nobody <nobody.0000@yahoo.com>") + "Reply-To: nobody.0000@yahoo.com\n";
        assert!(!fires(&msg(&own, PLAIN), "FREEMAIL_FORGED_REPLYTO"));
    }

    #[test]
    fn bulk_mailer() {
        let bulk = with("X-Mailer", "Atomic Mail Sender 9.2");
        assert!(fires(&msg(&bulk, PLAIN), "XMAILER_BULK"));
        let mua = with("X-Mailer", "Apple Mail (2.3774)");
        assert!(!fires(&msg(&mua, PLAIN), "XMAILER_BULK"));
    }

    #[test]
    fn subject_rules() {
        let caps = with("Subject", "URGENT BUSINESS PROPOSAL");
        assert!(fires(&msg(&caps, PLAIN), "SUBJ_ALL_CAPS"));
        let short = with("Subject", "RE: FYI");
        assert!(!fires(&msg(&short, PLAIN), "SUBJ_ALL_CAPS"));
        let bang = with("Subject", "Act now!!");
        assert!(fires(&msg(&bang, PLAIN), "SUBJ_EXCESS_EXCLAIM"));
        let one = with("Subject", "Bravo !");
        assert!(!fires(&msg(&one, PLAIN), "SUBJ_EXCESS_EXCLAIM"));
        let money = with("Subject", "Make $$$ from home");
        assert!(fires(&msg(&money, PLAIN), "SUBJ_MONEY_SIGNS"));
        let price = with("Subject", "Your $25 receipt");
        assert!(!fires(&msg(&price, PLAIN), "SUBJ_MONEY_SIGNS"));
        let mixed = with("Subject", "Your Pаypal account"); // Cyrillic а
        assert!(fires(&msg(&mixed, PLAIN), "MIXED_SCRIPT_HEADER"));
        let russian = with("Subject", "Привет from Paris");
        assert!(!fires(&msg(&russian, PLAIN), "MIXED_SCRIPT_HEADER"));
    }

    fn html_headers() -> String {
        with("Content-Type", "text/html; charset=utf-8")
    }

    #[test]
    fn html_only_hidden_huge_image() {
        let h = html_headers();
        let normal = "<p>Hello Bob, see you on Saturday for dinner with the children.</p>";
        assert!(fires(&msg(&h, normal), "MIME_HTML_ONLY"));
        assert!(!fires(&msg(BASE, PLAIN), "MIME_HTML_ONLY"));
        for rule in ["HTML_HIDDEN_TEXT", "HTML_FONT_SIZE_HUGE", "HTML_IMAGE_ONLY"] {
            assert!(!fires(&msg(&h, normal), rule), "{rule}");
        }
        let hidden = format!(
            "<p>Hello</p><div style=\"display:none\">{}</div>",
            "lorem ipsum dolor sit amet ".repeat(20)
        );
        assert!(fires(&msg(&h, &hidden), "HTML_HIDDEN_TEXT"));
        let preheader = "<div style=\"display:none\">Our June news</div><p>Hello</p>";
        assert!(!fires(&msg(&h, preheader), "HTML_HIDDEN_TEXT"));
        let huge = "<font size=7>BUY CHEAP WATCHES</font>";
        assert!(fires(&msg(&h, huge), "HTML_FONT_SIZE_HUGE"));
        let image = "<a href=\"https://shop.example.net/\"><img src=\"https://img.example.net/offer.gif\"></a>";
        assert!(fires(&msg(&h, image), "HTML_IMAGE_ONLY"));
    }

    #[test]
    fn link_rules() {
        let h = html_headers();
        let mismatch = "<p>Log in at <a href=\"http://login.attacker.example.net/\">https://www.bank.example.com/</a></p>";
        assert!(fires(&msg(&h, mismatch), "LINK_TEXT_MISMATCH"));
        let same = "<p>Log in at <a href=\"https://secure.bank.example.com/login\">www.bank.example.com</a></p>";
        assert!(!fires(&msg(&h, same), "LINK_TEXT_MISMATCH"));
        let words = "<p><a href=\"https://tracker.example.net/c/1\">See the offer</a></p>";
        assert!(!fires(&msg(&h, words), "LINK_TEXT_MISMATCH"));

        let ip = "Go to http://203.0.113.9/account/verify now\n";
        assert!(fires(&msg(BASE, ip), "NUMERIC_HTTP_ADDR"));
        assert!(!fires(
            &msg(BASE, "Go to https://www.example.com/ now\n"),
            "NUMERIC_HTTP_ADDR"
        ));
        let userinfo = "<a href=\"http://www.bank.example.com@203.0.113.9/\">bank</a>";
        assert!(fires(&msg(&h, userinfo), "URI_USERINFO"));
        assert!(!fires(&msg(&h, words), "URI_USERINFO"));

        let short =
            "One https://bit.ly/aaaa two https://tinyurl.com/bbbb three https://is.gd/cccc\n";
        assert!(fires(&msg(BASE, short), "URI_SHORTENER_MANY"));
        let one = "See https://bit.ly/aaaa\n";
        assert!(!fires(&msg(BASE, one), "URI_SHORTENER_MANY"));
    }

    #[test]
    fn mime_rules() {
        let no_boundary = with("Content-Type", "multipart/mixed");
        assert!(fires(&msg(&no_boundary, PLAIN), "MIME_MISSING_BOUNDARY"));
        let unused = with("Content-Type", "multipart/mixed; boundary=\"zzz\"");
        assert!(fires(&msg(&unused, PLAIN), "MIME_MISSING_BOUNDARY"));
        let ok = "--zzz\nContent-Type: text/plain\n\nHello there\n--zzz--\n";
        assert!(!fires(&msg(&unused, ok), "MIME_MISSING_BOUNDARY"));
        assert!(!fires(&msg(&unused, ok), "MIME_UNTERMINATED"));
        let open = "--zzz\nContent-Type: text/plain\n\nHello there\n";
        assert!(fires(&msg(&unused, open), "MIME_UNTERMINATED"));

        let b64 = with("Content-Transfer-Encoding", "base64");
        // "Hello Bob, cheap offers inside, read on." in base64: ASCII needs no base64.
        let ascii = "SGVsbG8gQm9iLCBjaGVhcCBvZmZlcnMgaW5zaWRlLCByZWFkIG9uLg==\n";
        assert!(fires(&msg(&b64, ascii), "MIME_BASE64_TEXT"));
        // "Voilà l'été" in UTF-8, base64: a reason to encode.
        let accents = "Vm9pbMOgIGwnw6l0w6k=\n";
        assert!(!fires(&msg(&b64, accents), "MIME_BASE64_TEXT"));

        let far = with("Content-Type", "text/plain; charset=gb2312");
        assert!(fires(&msg(&far, PLAIN), "MIME_CHARSET_FARAWAY"));
        let latin = with("Content-Type", "text/plain; charset=iso-8859-15");
        assert!(!fires(&msg(&latin, PLAIN), "MIME_CHARSET_FARAWAY"));

        assert!(fires(&msg(BASE, "\n \n"), "EMPTY_MESSAGE"));
        assert!(!fires(&msg(BASE, PLAIN), "EMPTY_MESSAGE"));
    }

    fn with_attachment(name: &str, ctype: &str, data: &[u8]) -> Vec<u8> {
        let h = with("Content-Type", "multipart/mixed; boundary=\"b\"");
        let body = format!(
            "--b\nContent-Type: text/plain\n\nSee attached.\n--b\n\
             Content-Type: {ctype}; name=\"{name}\"\n\
             Content-Disposition: attachment; filename=\"{name}\"\n\
             Content-Transfer-Encoding: base64\n\n{}\n--b--\n",
            base64(data)
        );
        msg(&h, &body)
    }

    fn base64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn attachment_rules() {
        let exe = with_attachment("Facture_2025.pdf.exe", "application/octet-stream", b"MZ");
        assert!(fires(&exe, "EXECUTABLE_ATTACHMENT"));
        let js = with_attachment("invoice.js", "application/octet-stream", b"var a");
        assert!(fires(&js, "EXECUTABLE_ATTACHMENT"));
        let pdf = with_attachment("facture.pdf", "application/pdf", b"%PDF-1.4");
        for rule in [
            "EXECUTABLE_ATTACHMENT",
            "ARCHIVE_EXECUTABLE",
            "DISK_IMAGE_ATTACHMENT",
            "MACRO_ATTACHMENT",
            "HTML_ATTACHMENT",
        ] {
            assert!(!fires(&pdf, rule), "{rule}");
        }
        let zip = crate::message::tests::make_zip(&[("scan_0042.pdf.scr", b"MZ")]);
        let zipped = with_attachment("scan.zip", "application/zip", &zip);
        assert!(fires(&zipped, "ARCHIVE_EXECUTABLE"));
        let photos = crate::message::tests::make_zip(&[("plage.jpg", b"\xff\xd8")]);
        let photos = with_attachment("photos.zip", "application/zip", &photos);
        assert!(!fires(&photos, "ARCHIVE_EXECUTABLE"));
        let iso = with_attachment("DHL_document.iso", "application/octet-stream", b"CD001");
        assert!(fires(&iso, "DISK_IMAGE_ATTACHMENT"));
        let docm = with_attachment("commande.docm", "application/octet-stream", b"PK");
        assert!(fires(&docm, "MACRO_ATTACHMENT"));
        let htm = with_attachment("Remittance.htm", "text/html", b"<form>");
        assert!(fires(&htm, "HTML_ATTACHMENT"));
    }

    #[test]
    fn fake_reply_and_undisclosed_money() {
        let fake = with("Subject", "Re: your order");
        assert!(fires(&msg(&fake, PLAIN), "FAKE_REPLY"));
        let real = fake.clone() + "In-Reply-To: <x@example.com>\n";
        assert!(!fires(&msg(&real, PLAIN), "FAKE_REPLY"));
        assert!(!fires(&msg(BASE, PLAIN), "FAKE_REPLY"));

        let money = "I have 10.5 million dollars for you.\n";
        let undisclosed = with("To", "undisclosed-recipients:;");
        assert!(fires(&msg(&undisclosed, money), "UNDISC_MONEY"));
        assert!(!fires(&msg(BASE, money), "UNDISC_MONEY"));
        assert!(!fires(&msg(&undisclosed, PLAIN), "UNDISC_MONEY"));
    }

    #[test]
    fn active_attachments_and_macros() {
        let form = with_attachment(
            "Remittance.html",
            "text/html",
            b"<form action='http://x'><input type = \"password\"></form>",
        );
        assert!(fires(&form, "ATTACHMENT_ACTIVE_CONTENT"));
        let page = with_attachment("menu.html", "text/html", b"<h1>Menu of the week</h1>");
        assert!(!fires(&page, "ATTACHMENT_ACTIVE_CONTENT"));
        let svg = with_attachment(
            "voice.svg",
            "image/svg+xml",
            b"<svg><script>location='https://x'</script></svg>",
        );
        assert!(fires(&svg, "ATTACHMENT_ACTIVE_CONTENT"));
        let logo = with_attachment("logo.svg", "image/svg+xml", b"<svg><circle r='4'/></svg>");
        assert!(!fires(&logo, "ATTACHMENT_ACTIVE_CONTENT"));

        let lure = "Le document est protégé : activez les macros pour l'afficher.\n";
        assert!(fires(&msg(BASE, lure), "ENABLE_MACROS"));
        assert!(!fires(
            &msg(BASE, "Le tableur utilise des formules.\n"),
            "ENABLE_MACROS"
        ));
    }

    #[test]
    fn text_rules() {
        let caps = "DEAR CUSTOMER, YOUR ORDER IS READY. ".repeat(10);
        assert!(fires(&msg(BASE, &caps), "BODY_MOSTLY_CAPS"));
        assert!(!fires(&msg(BASE, &PLAIN.repeat(5)), "BODY_MOSTLY_CAPS"));
        let mixed = "Your Pаypal ассount has bееn limited, log in\n"; // Cyrillic letters
        assert!(fires(&msg(BASE, mixed), "MIXED_SCRIPT_BODY"));
        assert!(!fires(
            &msg(BASE, "Привет, Bob! Как дела?\n"),
            "MIXED_SCRIPT_BODY"
        ));
        assert!(fires(
            &msg(BASE, "Dear Friend,\nI write to you...\n"),
            "DEAR_FRIEND"
        ));
        assert!(fires(
            &msg(BASE, "Chère amie,\nje vous écris...\n"),
            "DEAR_FRIEND"
        ));
        assert!(!fires(&msg(BASE, "Dear Bob,\nthanks.\n"), "DEAR_FRIEND"));
        assert!(fires(
            &msg(BASE, "the sum of US$10,500,000.00 only\n"),
            "MILLION_MONEY"
        ));
        assert!(fires(
            &msg(BASE, "la somme de 2 500 000 EUR\n"),
            "MILLION_MONEY"
        ));
        assert!(fires(&msg(BASE, "7.5 million dollars\n"), "MILLION_MONEY"));
        assert!(!fires(
            &msg(BASE, "Total: $1,250.00 and 1500000 points\n"),
            "MILLION_MONEY"
        ));
    }

    #[test]
    fn phrase_tiers() {
        let fee = "I am contacting you about a business proposal of mutual benefit. \
                   It is strictly confidential. Send your full name.\n";
        let n = names(&msg(BASE, fee));
        assert!(n.contains(&"ADVANCE_FEE_4".to_string()), "{n:?}");
        assert!(!n.contains(&"ADVANCE_FEE_2".to_string()));
        let fee_fr = "Proposition d'affaire strictement confidentielle : feu mon mari...\n";
        let n = names(&msg(BASE, fee_fr));
        assert!(n.contains(&"ADVANCE_FEE_2".to_string()), "{n:?}");

        let lottery = "Votre adresse e-mail a été sélectionnée : vous avez gagné le gros lot !\n";
        assert!(fires(&msg(BASE, lottery), "LOTTERY_4") || fires(&msg(BASE, lottery), "LOTTERY_2"));
        let pharmacy = "Viagra et Cialis sans ordonnance, livraison discrète\n";
        assert!(fires(&msg(BASE, pharmacy), "PHARMACY_4"));
        let phishing = "Activité inhabituelle : votre compte sera suspendu. \
                        Cliquez sur le lien ci-dessous dans les 24 heures.\n";
        assert!(fires(&msg(BASE, phishing), "PHISHING_4"));
        let invest = "Passive income with our trading robot: guaranteed returns!\n";
        assert!(fires(&msg(BASE, invest), "INVESTMENT_2"));
        let seo = "Votre site n'est pas sur la première page de Google. Référencement naturel.\n";
        assert!(fires(&msg(BASE, seo), "SEO_OFFER_2"));
        let advert = "100% gratuit, offre limitée, cliquez ici, dernière chance !\n";
        assert!(fires(&msg(BASE, advert), "ADVERT_PHRASES_3"));
        let bulk = "Pour ne plus recevoir nos e-mails, suivez ce lien.\n";
        assert!(fires(&msg(BASE, bulk), "BULK_UNSUBSCRIBE"));

        // Ordinary mail mentioning one such word fires no tier.
        let ham = "Le notaire a parlé de la succession ; la loterie de l'école est samedi.\n";
        let n = names(&msg(BASE, ham));
        assert!(n.is_empty(), "{n:?}");
    }

    #[test]
    fn million_amount_parsing() {
        assert_eq!(integer_digits("1,500,000.00".chars()), 7);
        assert_eq!(integer_digits("12.50".chars()), 2);
        assert_eq!(integer_digits("2 500 000".chars()), 7);
        assert_eq!(integer_digits("1500000".chars()), 7);
        assert_eq!(integer_digits("12,5".chars()), 2);
    }
}
