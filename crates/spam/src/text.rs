//! Text helpers shared by the rules and the tokenizer: folding text for phrase matching, finding
//! URLs in plain text, host names and their registrable domains.

use std::net::IpAddr;

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The base letter of a Latin letter with a diacritic (`é` → `e`, `ç` → `c`), the letter
/// itself otherwise. Covers Latin-1 and the French ligatures, which is what the phrases need.
pub(crate) fn strip_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        _ => c,
    }
}

/// Appends `text` to `out` folded for phrase matching: lower case, accents removed, the
/// typographic apostrophes and quotes made ASCII, every run of white space (including the
/// no-break and zero-width spaces of HTML mail) made one space. Stops once `out` holds `max`
/// bytes, so the work is bounded whatever the input.
pub(crate) fn fold_into(text: &str, out: &mut String, max: usize) {
    let mut last_space = out.is_empty() || out.ends_with(' ');
    for c in text.chars() {
        if out.len() >= max {
            return;
        }
        let c = match c {
            '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' | '\u{b4}' => '\'',
            '\u{201c}' | '\u{201d}' | '\u{ab}' | '\u{bb}' => '"',
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}' => continue,
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
            continue;
        }
        last_space = false;
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                match l {
                    'œ' => out.push_str("oe"),
                    'æ' => out.push_str("ae"),
                    l => out.push(strip_accent(l)),
                }
            }
        }
    }
}

/// Folds a short text (a subject, a display name) with [`fold_into`].
pub(crate) fn fold(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    fold_into(text, &mut out, max);
    out
}

/// Whether `haystack` (folded) holds `phrase` (folded) as whole words: the characters on
/// either side of the match, if any, are not letters or digits.
pub(crate) fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return false;
    }
    let first_alnum = phrase.chars().next().is_some_and(char::is_alphanumeric);
    let last_alnum = phrase
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric);
    for (at, _) in haystack.match_indices(phrase) {
        let before_ok = !first_alnum
            || haystack[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
        let after_ok = !last_alnum
            || haystack[at + phrase.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
        if before_ok && after_ok {
            return true;
        }
    }
    false
}

/// How many of `phrases` occur in `haystack` (each counted once).
#[cfg(test)]
pub(crate) fn count_phrases(haystack: &str, phrases: &[&str]) -> usize {
    phrases
        .iter()
        .filter(|p| contains_phrase(haystack, p))
        .count()
}

/// `N` lists of folded phrases searched in one pass (Aho-Corasick over every phrase): for
/// each list, how many of its phrases occur in a text as whole words, as
/// [`contains_phrase`] decides, each counted once.
pub(crate) struct PhraseSet<const N: usize> {
    automaton: aho_corasick::AhoCorasick,
    /// Per pattern: its list, its index among all patterns (for counting it once).
    list_of: Vec<usize>,
    /// Per pattern: whether its first and last characters are letters or digits.
    edges: Vec<(bool, bool)>,
}

impl<const N: usize> PhraseSet<N> {
    pub(crate) fn new(lists: [&[&str]; N]) -> PhraseSet<N> {
        let mut patterns = Vec::new();
        let mut list_of = Vec::new();
        let mut edges = Vec::new();
        for (list, phrases) in lists.iter().enumerate() {
            for phrase in phrases.iter().filter(|p| !p.is_empty()) {
                patterns.push(*phrase);
                list_of.push(list);
                edges.push((
                    phrase.chars().next().is_some_and(char::is_alphanumeric),
                    phrase
                        .chars()
                        .next_back()
                        .is_some_and(char::is_alphanumeric),
                ));
            }
        }
        let automaton = aho_corasick::AhoCorasick::new(&patterns)
            .expect("the built-in phrase lists make a valid automaton");
        PhraseSet {
            automaton,
            list_of,
            edges,
        }
    }

    pub(crate) fn count(&self, haystack: &str) -> [usize; N] {
        let mut seen = vec![false; self.list_of.len()];
        let mut counts = [0usize; N];
        // Overlapping matches: a phrase inside another one still counts for its own list.
        for m in self.automaton.find_overlapping_iter(haystack) {
            let id = m.pattern().as_usize();
            if seen[id] {
                continue;
            }
            let (first_alnum, last_alnum) = self.edges[id];
            let before_ok = !first_alnum
                || haystack[..m.start()]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric());
            let after_ok = !last_alnum
                || haystack[m.end()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric());
            if before_ok && after_ok {
                seen[id] = true;
                counts[self.list_of[id]] += 1;
            }
        }
        counts
    }
}

/// A URL found in a message: in a link, an image or the plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// The host, lower case, without port, user information or trailing dot; the address
    /// itself for a literal (`192.0.2.1`, `[2001:db8::1]` → `2001:db8::1`).
    pub host: String,
    /// The URL as written, lower case, without a trailing slash, at most 512 bytes: to tell
    /// distinct links apart.
    pub text: String,
    /// The authority has user information (`http://bank.example@203.0.113.5/`): RFC 3986
    /// §3.2.1 allows it, phishing uses it to show a trusted name first.
    pub userinfo: bool,
}

impl Url {
    /// Whether the host is an IP address literal.
    pub fn is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

/// Reads the host of an absolute `http`, `https` or `ftp` URL or of a bare `www.` name
/// (RFC 3986 §3.2: authority = [ userinfo "@" ] host [ ":" port ]). Also reads hosts written
/// with a decimal, octal or hexadecimal number as IPv4 addresses are not followed: those stay
/// names. Returns `None` for anything else (`mailto:`, `cid:`, relative references).
pub(crate) fn parse_url(s: &str) -> Option<Url> {
    let s = s.trim();
    let lower_prefix = truncate(s, 8).to_ascii_lowercase();
    let rest = if lower_prefix.starts_with("http://") {
        &s[7..]
    } else if lower_prefix.starts_with("https://") {
        &s[8..]
    } else if lower_prefix.starts_with("ftp://") {
        &s[6..]
    } else if lower_prefix.starts_with("www.") {
        s
    } else if lower_prefix.starts_with("//") {
        &s[2..]
    } else {
        return None;
    };
    let end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#' | '\\') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (true, &authority[at + 1..]),
        None => (false, authority),
    };
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.').to_lowercase();
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return None;
    }
    let text = truncate(s, 512).trim_end_matches('/').to_lowercase();
    Some(Url {
        host,
        userinfo,
        text,
    })
}

/// Finds the URLs written in plain text (`http://…`, `https://…`, `www.…`), at most `max`.
pub(crate) fn find_urls(text: &str, max: usize, out: &mut Vec<Url>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut found = 0;
    while i < bytes.len() && found < max {
        let Some(rel) = text[i..].find(['h', 'H', 'w', 'W']) else {
            break;
        };
        let at = i + rel;
        let tail = &bytes[at..];
        let starts = |p: &[u8]| tail.len() >= p.len() && tail[..p.len()].eq_ignore_ascii_case(p);
        let boundary = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        if boundary && (starts(b"http://") || starts(b"https://") || starts(b"www.")) {
            let end = text[at..]
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | ')'))
                .map_or(text.len(), |e| at + e);
            let candidate = text[at..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
            if let Some(url) = parse_url(candidate) {
                out.push(url);
                found += 1;
            }
            i = end.max(at + 1);
        } else {
            i = at + 1;
        }
    }
}

/// Second-level labels under which names are registered (`example.co.uk`), for the most
/// common country codes. A shortened stand-in for the Public Suffix List, enough to compare
/// the domain a link shows with the domain it goes to.
const SECOND_LEVEL: &[&str] = &[
    "ac.uk", "co.uk", "gov.uk", "ltd.uk", "me.uk", "net.uk", "org.uk", "plc.uk", "com.au",
    "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "co.jp", "ne.jp", "or.jp", "ac.jp",
    "co.kr", "or.kr", "com.br", "net.br", "org.br", "com.cn", "net.cn", "org.cn", "com.tw",
    "com.hk", "co.in", "net.in", "org.in", "co.za", "org.za", "com.mx", "com.ar", "com.tr",
    "com.sg", "com.my", "com.ng", "com.pk", "com.ua", "co.il", "co.id", "com.co", "gouv.fr",
    "asso.fr", "nom.fr", "tm.fr", "com.fr", "gov.fr", "qc.ca", "gc.ca", "com.ru", "co.ke", "co.ma",
    "com.eg", "com.vn", "com.ph",
];

/// The registrable domain of a host: its last two labels, or three under a known
/// second-level suffix (`www.shop.example.co.uk` → `example.co.uk`). An IP address is its
/// own domain.
pub(crate) fn registrable_domain(host: &str) -> &str {
    if host.parse::<IpAddr>().is_ok() {
        return host;
    }
    let dots: Vec<usize> = host.match_indices('.').map(|(i, _)| i).collect();
    if dots.len() < 2 {
        return host;
    }
    let last_two = &host[dots[dots.len() - 2] + 1..];
    if SECOND_LEVEL.contains(&last_two) {
        if dots.len() >= 3 {
            &host[dots[dots.len() - 3] + 1..]
        } else {
            host
        }
    } else {
        last_two
    }
}

/// The domain of an e-mail address, lower case; `None` without `@`.
pub(crate) fn address_domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('>').trim_end_matches('.');
    if domain.is_empty() {
        None
    } else {
        Some(domain.to_lowercase())
    }
}

/// Finds the e-mail addresses written in a text (a display name, say): runs of address
/// characters around an `@`, with a dot in the domain.
pub(crate) fn find_addresses(text: &str) -> Vec<String> {
    let is_addr = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '@');
    text.split(|c: char| !is_addr(c))
        .filter(|w| {
            let Some((local, domain)) = w.split_once('@') else {
                return false;
            };
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        .map(|w| w.trim_matches('.').to_lowercase())
        .take(8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_lowercases_strips_accents_and_collapses_spaces() {
        assert_eq!(
            fold(
                "Félicitations,\u{a0}\u{a0}VOUS avez\tgagné l\u{2019}ŒUVRE",
                100
            ),
            "felicitations, vous avez gagne l'oeuvre"
        );
        assert_eq!(fold("abcdef", 3), "abc");
    }

    #[test]
    fn phrases_match_whole_words_only() {
        assert!(contains_phrase("you won the lottery today", "lottery"));
        assert!(!contains_phrase("lotteryx", "lottery"));
        assert!(!contains_phrase("xlottery", "lottery"));
        assert!(contains_phrase("(lottery)", "lottery"));
        assert!(contains_phrase("100% free", "100% free"));
        // One pass over several lists gives what each list alone gives.
        let a: &[&str] = &["lottery", "you won", "won the lottery"];
        let b: &[&str] = &["the lottery", "100% free", "lot"];
        let set = PhraseSet::new([a, b]);
        for text in [
            "you won the lottery today, 100% free",
            "lotteryx xlottery the lottery lot",
            "",
        ] {
            assert_eq!(
                set.count(text),
                [count_phrases(text, a), count_phrases(text, b)],
                "{text}"
            );
        }
        assert!(!contains_phrase("", "a"));
    }

    #[test]
    fn urls_are_found_and_parsed() {
        let mut urls = Vec::new();
        find_urls(
            "see https://User@Shop.Example.com:8443/path?x and www.example.org/a, \
             http://[2001:db8::1]/x http://192.0.2.7/login",
            10,
            &mut urls,
        );
        let hosts: Vec<&str> = urls.iter().map(|u| u.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "shop.example.com",
                "www.example.org",
                "2001:db8::1",
                "192.0.2.7"
            ]
        );
        assert!(urls[0].userinfo);
        assert!(!urls[1].userinfo);
        assert!(urls[2].is_ip() && urls[3].is_ip() && !urls[0].is_ip());
        assert_eq!(parse_url("mailto:a@example.com"), None);
        assert_eq!(parse_url("cid:image001"), None);
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable_domain("www.shop.example.com"), "example.com");
        assert_eq!(registrable_domain("example.com"), "example.com");
        assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("impots.gouv.fr"), "impots.gouv.fr");
        assert_eq!(registrable_domain("192.0.2.1"), "192.0.2.1");
        assert_eq!(registrable_domain("localhost"), "localhost");
    }

    #[test]
    fn addresses_in_text() {
        assert_eq!(
            find_addresses("Service <support@bank.example.com> (via x)"),
            ["support@bank.example.com"]
        );
        assert!(find_addresses("Alice Martin").is_empty());
        assert!(find_addresses("a@b").is_empty());
        assert_eq!(
            address_domain("Someone@Example.ORG"),
            Some("example.org".into())
        );
    }
}
