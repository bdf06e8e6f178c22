//! The Bayesian classifier: a tokenizer and Gary Robinson's chi-square combining.
//!
//! References:
//! - Gary Robinson, "A Statistical Approach to the Spam Problem", Linux Journal, March 2003:
//!   the per-token probability f(w) = (s·x + n·p(w)) / (s + n) and Fisher's chi-square
//!   combining of those probabilities into an indicator.
//! - SpamBayes, "Background reading / Robinson's combining" and its `classifier.py`
//!   (`chi2_spamprob`, `chi2Q`, `max_discriminators = 150`, `minimum_prob_strength = 0.1`):
//!   the same method, which SpamAssassin's Bayes plugin also uses (`Bayes::CombineChi`).
//!
//! The crate keeps no state: the caller stores, per account, how many messages were learned
//! as spam and as ham ([`Learned`]) and, per token hash, in how many of those each token
//! appeared ([`TokenCounts`]). To classify, it computes [`tokens`], looks each up (absent
//! tokens count zero), and calls [`probability`]. To learn, it adds one to the counts of each
//! token of the message and to the learned total; unlearning subtracts. [`BayesMemory`] does
//! exactly that in memory and is the model for a database-backed store:
//!
//! ```
//! use facteur_spam::bayes::{self, BayesMemory};
//!
//! let mut memory = BayesMemory::with_min_learned(1);
//! memory.learn(b"Subject: cheap pills\r\n\r\nbuy cheap pills now\r\n", true);
//! memory.learn(b"Subject: lunch\r\n\r\nlunch at noon with the team\r\n", false);
//! let p = memory.classify(b"Subject: pills\r\n\r\ncheap pills here\r\n").unwrap();
//! assert!(p > 0.5);
//! if let Some(hit) = bayes::bayes_hit(p) {
//!     println!("{} {}", hit.name, hit.score);
//! }
//! ```

use std::collections::{HashMap, HashSet};

use crate::Hit;
use crate::message::Content;
use crate::text::registrable_domain;

/// The most tokens taken from one message. Header tokens come first, so a long body
/// cannot crowd them out.
pub const MAX_TOKENS: usize = 2000;
/// The fewest messages of each kind (spam and ham) learned before [`probability`] answers.
/// SpamAssassin waits for 200 of each (`bayes_min_spam_num`); a small server's users rarely
/// get there, so this is lower, and callers may choose with [`probability_with`].
pub const MIN_LEARNED: u32 = 10;
/// The most tokens combined: the most significant ones (SpamBayes' `max_discriminators`).
pub const MAX_DISCRIMINATORS: usize = 150;
/// Tokens whose probability is within this of 0.5 are ignored (SpamBayes'
/// `minimum_prob_strength`).
pub const MIN_PROB_STRENGTH: f64 = 0.1;
/// Robinson's s: the strength given to the assumed probability of a rarely seen token.
pub const STRENGTH: f64 = 1.0;
/// Robinson's x: the assumed probability of a token never seen.
pub const ASSUMED_PROBABILITY: f64 = 0.5;

/// The shortest and longest words (in characters) made into tokens.
const WORD_CHARS: std::ops::RangeInclusive<usize> = 3..=40;
/// The most words read from a message's text.
const MAX_WORDS: usize = 100_000;

/// How many messages were learned as spam and as ham.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Learned {
    /// Messages learned as spam.
    pub spam: u32,
    /// Messages learned as ham (not spam).
    pub ham: u32,
}

/// In how many learned spam and ham messages a token appeared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Learned spam messages holding the token.
    pub spam: u32,
    /// Learned ham messages holding the token.
    pub ham: u32,
}

/// FNV-1a, 64 bits (Fowler, Noll, Vo; draft-eastlake-fnv §2): offset basis
/// 0xcbf29ce484222325, prime 0x100000001b3, one byte at a time, XOR then multiply.
///
/// Token hashes are stored in databases: this function and the token texts it is given
/// (see [`token_texts`]) must never change, or every learned count is lost.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

/// The tokens of a message, hashed with [`fnv1a64`], deduplicated, at most [`MAX_TOKENS`].
pub fn tokens(message: &[u8]) -> Vec<u64> {
    token_texts(message)
        .iter()
        .map(|t| fnv1a64(t.as_bytes()))
        .collect()
}

/// The tokens of a message as text, before hashing, in order, deduplicated, at most
/// [`MAX_TOKENS`]; for explaining a score. A token is one of:
///
/// - a word of the decoded text bodies and of the visible text of the HTML bodies, and of the
///   Subject: lower case, Unicode letters and digits with `-`, `_`, `.`, `$`, `€`, `£`, `%`,
///   `@` inside, split at apostrophes (French elisions: `l'offre` gives `offre`), every
///   decimal digit made `0`, 3 to 40 characters; longer words give `skip:<first
///   character>:<length rounded down to tens>`;
/// - `s:<word>` for the words of the Subject;
/// - `f:<domain>` and `fa:<address>` for the From address, `r:<domain>` for Reply-To;
/// - `x:<mailer>` for X-Mailer or User-Agent (lower case, digits made `0`, 40 characters);
/// - `u:<host>` and `u:<registrable domain>` for every URL (links, images, plain text);
/// - `ct:<type/subtype>` and `cs:<charset>` for every MIME part, `a:<extension>` for every
///   attachment;
/// - `h:<name>` for the name of every top-level header field, lower case.
pub fn token_texts(message: &[u8]) -> Vec<String> {
    let content = Content::read(message);
    let mut out = Tokens::default();
    header_tokens(&content, &mut out);
    if let Some(subject) = &content.subject {
        words(subject, "", &mut out);
    }
    for text in content.body_texts() {
        words(text, "", &mut out);
    }
    out.list
}

#[derive(Default)]
struct Tokens {
    list: Vec<String>,
    seen: HashSet<String>,
    words: usize,
}

impl Tokens {
    fn push(&mut self, token: String) {
        if self.list.len() < MAX_TOKENS && !self.seen.contains(&token) {
            self.seen.insert(token.clone());
            self.list.push(token);
        }
    }

    fn full(&self) -> bool {
        self.list.len() >= MAX_TOKENS || self.words >= MAX_WORDS
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '$' | '€' | '£' | '%' | '@')
}

fn words(text: &str, prefix: &str, out: &mut Tokens) {
    for raw in text.split(|c: char| !is_word_char(c)) {
        if out.full() {
            return;
        }
        let raw = raw.trim_matches(|c| matches!(c, '.' | '-' | '_'));
        if raw.is_empty() {
            continue;
        }
        out.words += 1;
        let mut word = String::with_capacity(raw.len());
        for c in raw.chars() {
            if c.is_numeric() {
                word.push('0');
            } else {
                word.extend(c.to_lowercase());
            }
        }
        let len = word.chars().count();
        if WORD_CHARS.contains(&len) {
            out.push(format!("{prefix}{word}"));
        } else if len > *WORD_CHARS.end() {
            let first = word.chars().next().unwrap_or('?');
            out.push(format!("{prefix}skip:{first}:{}", len / 10 * 10));
        }
    }
}

fn normalized_mailer(mailer: &str) -> String {
    mailer
        .chars()
        .take(40)
        .map(|c| if c.is_numeric() { '0' } else { c })
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .trim()
        .to_string()
}

fn header_tokens(c: &Content<'_>, out: &mut Tokens) {
    if let Some(subject) = &c.subject {
        words(subject, "s:", out);
    }
    if let Some(from) = &c.from_address {
        if let Some(domain) = crate::text::address_domain(from) {
            out.push(format!("f:{domain}"));
        }
        out.push(format!("fa:{from}"));
    }
    for r in &c.reply_to {
        if let Some(domain) = crate::text::address_domain(r) {
            out.push(format!("r:{domain}"));
        }
    }
    if let Some(mailer) = &c.mailer {
        out.push(format!("x:{}", normalized_mailer(mailer)));
    }
    for url in c.urls().take(1000) {
        let domain = registrable_domain(&url.host).to_string();
        out.push(format!("u:{}", url.host));
        out.push(format!("u:{domain}"));
    }
    for part in &c.parts {
        out.push(format!("ct:{}", part.content_type));
        if let Some(cs) = &part.charset {
            out.push(format!("cs:{cs}"));
        }
    }
    for a in &c.attachments {
        if let Some((_, ext)) = a.name.rsplit_once('.') {
            out.push(format!("a:{}", crate::text::truncate(ext, 16)));
        }
    }
    for (name, _) in &c.headers {
        out.push(format!(
            "h:{}",
            crate::text::truncate(name, 64).to_lowercase()
        ));
    }
}

/// Robinson's f(w) for one token: p(w) = (b/nspam) / (b/nspam + g/nham), then
/// f(w) = (s·x + n·p(w)) / (s + n) with n = b + g.
fn token_probability(learned: Learned, counts: TokenCounts) -> f64 {
    let n = f64::from(counts.spam) + f64::from(counts.ham);
    if n == 0.0 {
        return ASSUMED_PROBABILITY;
    }
    let spam_ratio = (f64::from(counts.spam) / f64::from(learned.spam.max(1))).min(1.0);
    let ham_ratio = (f64::from(counts.ham) / f64::from(learned.ham.max(1))).min(1.0);
    let p = if spam_ratio + ham_ratio > 0.0 {
        spam_ratio / (spam_ratio + ham_ratio)
    } else {
        ASSUMED_PROBABILITY
    };
    (STRENGTH * ASSUMED_PROBABILITY + n * p) / (STRENGTH + n)
}

/// The probability that a chi-square variable of `v` (even) degrees of freedom is at
/// least `x2` (SpamBayes' `chi2Q`), summed in logarithms so that no term underflows.
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    if m <= 0.0 || !m.is_finite() {
        return if m.is_nan() {
            1.0
        } else {
            f64::from(u8::from(m <= 0.0))
        };
    }
    let ln_m = m.ln();
    let mut ln_term = -m;
    let mut sum = ln_term.exp();
    for i in 1..v / 2 {
        ln_term += ln_m - (i as f64).ln();
        sum += ln_term.exp();
    }
    sum.min(1.0)
}

/// The probability that a message is spam, from the counts of its tokens (in any order,
/// absent tokens zero), waiting for [`MIN_LEARNED`] messages of each kind.
pub fn probability(learned: Learned, counts: &[TokenCounts]) -> Option<f64> {
    probability_with(learned, counts, MIN_LEARNED)
}

/// [`probability`] with the caller's minimum of learned messages of each kind. Returns
/// `None` below it: the classifier knows too little to say.
///
/// The [`MAX_DISCRIMINATORS`] tokens farthest from 0.5 (by more than [`MIN_PROB_STRENGTH`])
/// are combined with Fisher's method as in Robinson's paper: H = C⁻¹(−2 ln ∏ f(w), 2n),
/// S = C⁻¹(−2 ln ∏ (1 − f(w)), 2n), and the result is (1 + S' − H') / 2 with S' = 1 − S and
/// H' = 1 − H (SpamBayes `chi2_spamprob`). No significant token gives 0.5.
pub fn probability_with(learned: Learned, counts: &[TokenCounts], min_learned: u32) -> Option<f64> {
    if learned.spam < min_learned || learned.ham < min_learned {
        return None;
    }
    let mut clues: Vec<f64> = counts
        .iter()
        .map(|&c| token_probability(learned, c))
        .filter(|p| (p - 0.5).abs() > MIN_PROB_STRENGTH)
        .collect();
    if clues.is_empty() {
        return Some(0.5);
    }
    // Most significant first; ties keep the caller's order (stable sort).
    clues.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    clues.truncate(MAX_DISCRIMINATORS);
    let n = clues.len();
    let ln_ham: f64 = clues.iter().map(|p| p.ln()).sum();
    let ln_spam: f64 = clues.iter().map(|p| (1.0 - p).ln()).sum();
    let spamminess = 1.0 - chi2q(-2.0 * ln_spam, 2 * n);
    let hamminess = 1.0 - chi2q(-2.0 * ln_ham, 2 * n);
    let p = (spamminess - hamminess + 1.0) / 2.0;
    Some(p.clamp(0.0, 1.0))
}

/// The score hit for a Bayes probability, in bands like SpamAssassin's BAYES_00 … BAYES_99.
/// The uncertain middle (over 0.40 and under 0.60) and NaN give none.
pub fn bayes_hit(p: f64) -> Option<Hit> {
    let (name, score, description) = if p.is_nan() {
        return None;
    } else if p >= 0.99 {
        // Strong enough to file into Junk on its own (rspamd weighs its BAYES_SPAM up to 5.1):
        // the account's user taught it exactly this, message after message.
        ("BAYES_99", 5.0, "Bayes spam probability is 99 to 100%")
    } else if p >= 0.95 {
        ("BAYES_95", 3.5, "Bayes spam probability is 95 to 99%")
    } else if p >= 0.80 {
        ("BAYES_80", 2.0, "Bayes spam probability is 80 to 95%")
    } else if p >= 0.60 {
        ("BAYES_60", 1.0, "Bayes spam probability is 60 to 80%")
    } else if p > 0.40 {
        return None;
    } else if p > 0.20 {
        ("BAYES_40", -0.2, "Bayes spam probability is 20 to 40%")
    } else if p > 0.05 {
        ("BAYES_20", -0.5, "Bayes spam probability is 5 to 20%")
    } else if p > 0.01 {
        ("BAYES_05", -1.9, "Bayes spam probability is 1 to 5%")
    } else {
        ("BAYES_00", -2.5, "Bayes spam probability is 0 to 1%")
    };
    Some(crate::hit(name, score, description))
}

/// A Bayes store in memory: the learned counts of one account, for tests and evaluations,
/// and the model of what a database-backed store does.
#[derive(Debug, Clone)]
pub struct BayesMemory {
    learned: Learned,
    counts: HashMap<u64, TokenCounts>,
    min_learned: u32,
}

impl Default for BayesMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl BayesMemory {
    /// An empty store answering from [`MIN_LEARNED`] messages of each kind.
    pub fn new() -> Self {
        Self::with_min_learned(MIN_LEARNED)
    }

    /// An empty store answering from `min_learned` messages of each kind.
    pub fn with_min_learned(min_learned: u32) -> Self {
        BayesMemory {
            learned: Learned::default(),
            counts: HashMap::new(),
            min_learned,
        }
    }

    /// How many messages were learned.
    pub fn learned(&self) -> Learned {
        self.learned
    }

    /// How many distinct tokens are stored.
    pub fn token_count(&self) -> usize {
        self.counts.len()
    }

    /// Learns a message as spam (`true`) or ham.
    pub fn learn(&mut self, message: &[u8], spam: bool) {
        self.learn_tokens(&tokens(message), spam);
    }

    /// Forgets a message learned before as spam (`true`) or ham, as when a user corrects a
    /// classification: unlearn as the old kind, learn as the new one.
    pub fn unlearn(&mut self, message: &[u8], spam: bool) {
        self.unlearn_tokens(&tokens(message), spam);
    }

    /// Learns the tokens of one message (deduplicated, as [`tokens`] gives them).
    pub fn learn_tokens(&mut self, tokens: &[u64], spam: bool) {
        let total = if spam {
            &mut self.learned.spam
        } else {
            &mut self.learned.ham
        };
        *total = total.saturating_add(1);
        for &t in tokens {
            let c = self.counts.entry(t).or_default();
            if spam {
                c.spam = c.spam.saturating_add(1);
            } else {
                c.ham = c.ham.saturating_add(1);
            }
        }
    }

    /// Forgets the tokens of one message learned before.
    pub fn unlearn_tokens(&mut self, tokens: &[u64], spam: bool) {
        let total = if spam {
            &mut self.learned.spam
        } else {
            &mut self.learned.ham
        };
        *total = total.saturating_sub(1);
        for t in tokens {
            if let Some(c) = self.counts.get_mut(t) {
                if spam {
                    c.spam = c.spam.saturating_sub(1);
                } else {
                    c.ham = c.ham.saturating_sub(1);
                }
                if c.spam == 0 && c.ham == 0 {
                    self.counts.remove(t);
                }
            }
        }
    }

    /// The stored counts of the tokens, in the same order, zero for those never seen.
    pub fn counts(&self, tokens: &[u64]) -> Vec<TokenCounts> {
        tokens
            .iter()
            .map(|t| self.counts.get(t).copied().unwrap_or_default())
            .collect()
    }

    /// The spam probability of a message; `None` until enough was learned.
    pub fn classify(&self, message: &[u8]) -> Option<f64> {
        self.classify_tokens(&tokens(message))
    }

    /// The spam probability of a message's tokens; `None` until enough was learned.
    pub fn classify_tokens(&self, tokens: &[u64]) -> Option<f64> {
        probability_with(self.learned, &self.counts(tokens), self.min_learned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: Alice Martin <alice@example.com>\r\n\
        To: bob@example.org\r\n\
        Subject: R\xc3\xa9union du 12 juin\r\n\
        X-Mailer: Mailer 2.1\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        \r\n\
        Bonjour, la r\xc3\xa9union aura lieu \xc3\xa0 l'\xc3\xa9cole le 12/06/2025.\r\n\
        Voir https://www.ecole.example.fr/agenda et APPELEZ-moi.\r\n";

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors (draft-eastlake-fnv, appendix C).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn token_texts_of_a_fixed_message() {
        let t = token_texts(MESSAGE);
        let expected = [
            "s:réunion",
            "s:juin",
            "f:example.com",
            "fa:alice@example.com",
            "x:mailer 0.0",
            "u:www.ecole.example.fr",
            "u:example.fr",
            "ct:text/plain",
            "cs:utf-8",
            "h:from",
            "h:to",
            "h:subject",
            "h:x-mailer",
            "h:content-type",
            "réunion",
            "juin",
            "bonjour",
            "aura",
            "lieu",
            "école",
            "0000",
        ];
        for e in expected {
            assert!(t.iter().any(|x| x == e), "missing {e} in {t:?}");
        }
        // Short words, elisions and duplicates are gone; case is folded.
        assert!(!t.iter().any(|x| x == "la" || x == "l'école" || x == "s:du"));
        assert!(t.iter().any(|x| x == "appelez-moi"));
        assert_eq!(t.len(), t.iter().collect::<HashSet<_>>().len());
    }

    #[test]
    fn token_hashes_are_stable() {
        // These values are stored in databases: they must never change. They were computed
        // apart from this code (FNV-1a 64 of the token's UTF-8 bytes).
        let h = tokens(MESSAGE);
        assert_eq!(
            h[..3],
            [
                0x3472_ffa4_b171_bde9, // "s:réunion"
                0x2e5d_b8d3_a6da_a02a, // "s:juin"
                0x9395_9fae_762f_d55a, // "f:example.com"
            ]
        );
        assert!(h.contains(&0x5773_ed00_2e20_7a40), "bonjour");
        assert!(h.contains(&0xcc08_d719_85d9_4200), "école");
        assert_eq!(h.len(), token_texts(MESSAGE).len());
        assert_eq!(tokens(MESSAGE), h, "tokenizing twice gives the same hashes");
    }

    #[test]
    fn long_words_and_bounds() {
        let long = format!("Subject: x\r\n\r\n{} ok\r\n", "a".repeat(95));
        let t = token_texts(long.as_bytes());
        assert!(t.iter().any(|x| x == "skip:a:90"), "{t:?}");
        let many: String = (0..10_000).map(|i| format!("w{i}x{} ", i * 7919)).collect();
        let msg = format!("Subject: many\r\n\r\n{many}\r\n");
        let t = tokens(msg.as_bytes());
        assert!(t.len() <= MAX_TOKENS);
    }

    fn learned(spam: u32, ham: u32) -> Learned {
        Learned { spam, ham }
    }

    #[test]
    fn too_little_learned_gives_none() {
        let c = [TokenCounts { spam: 5, ham: 0 }];
        assert_eq!(probability(learned(9, 100), &c), None);
        assert_eq!(probability(learned(100, 9), &c), None);
        assert!(probability(learned(10, 10), &c).is_some());
        assert!(probability_with(learned(1, 1), &c, 1).is_some());
    }

    #[test]
    fn unknown_tokens_give_one_half() {
        let unknown = vec![TokenCounts::default(); 50];
        assert_eq!(probability(learned(100, 100), &unknown), Some(0.5));
        assert_eq!(probability(learned(100, 100), &[]), Some(0.5));
        // Balanced tokens are not significant either.
        let even = vec![TokenCounts { spam: 30, ham: 30 }; 20];
        let p = probability(learned(100, 100), &even).unwrap();
        assert!((p - 0.5).abs() < 1e-9, "{p}");
    }

    #[test]
    fn spam_tokens_push_up_and_ham_tokens_down() {
        let l = learned(100, 100);
        let spammy = vec![TokenCounts { spam: 40, ham: 1 }; 15];
        let hammy = vec![TokenCounts { spam: 1, ham: 40 }; 15];
        let ps = probability(l, &spammy).unwrap();
        let ph = probability(l, &hammy).unwrap();
        assert!(ps > 0.99, "{ps}");
        assert!(ph < 0.01, "{ph}");
        // Symmetric evidence gives one half.
        let mixed: Vec<_> = spammy.iter().chain(&hammy).copied().collect();
        let pm = probability(l, &mixed).unwrap();
        assert!((pm - 0.5).abs() < 0.05, "{pm}");
        // One weak clue moves little.
        let weak = [TokenCounts { spam: 1, ham: 0 }];
        let pw = probability(l, &weak).unwrap();
        assert!(pw > 0.5 && pw < 0.8, "{pw}");
    }

    #[test]
    fn robinson_f_of_w() {
        let l = learned(10, 10);
        assert_eq!(token_probability(l, TokenCounts::default()), 0.5);
        // Seen once in spam: p = 1, f = (0.5 + 1) / 2.
        assert!((token_probability(l, TokenCounts { spam: 1, ham: 0 }) - 0.75).abs() < 1e-12);
        // Counts above the learned totals (an inconsistent store) stay in range.
        let f = token_probability(learned(1, 1), TokenCounts { spam: 50, ham: 0 });
        assert!(f > 0.9 && f < 1.0);
    }

    #[test]
    fn chi2q_reference_values() {
        // Q(x2, v) for v = 2 is exp(-x2/2).
        assert!((chi2q(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        // For v = 4: exp(-m)(1 + m).
        assert!((chi2q(4.0, 4) - (-2.0f64).exp() * 3.0).abs() < 1e-12);
        assert_eq!(chi2q(0.0, 10), 1.0);
        assert!(chi2q(1e6, 300) < 1e-100);
        assert_eq!(chi2q(f64::NAN, 4), 1.0);
    }

    #[test]
    fn bayes_bands() {
        let name = |p| bayes_hit(p).map(|h| h.name);
        assert_eq!(name(1.0).as_deref(), Some("BAYES_99"));
        assert_eq!(name(0.96).as_deref(), Some("BAYES_95"));
        assert_eq!(name(0.85).as_deref(), Some("BAYES_80"));
        assert_eq!(name(0.7).as_deref(), Some("BAYES_60"));
        assert_eq!(name(0.5), None);
        assert_eq!(name(0.3).as_deref(), Some("BAYES_40"));
        assert_eq!(name(0.1).as_deref(), Some("BAYES_20"));
        assert_eq!(name(0.03).as_deref(), Some("BAYES_05"));
        assert_eq!(name(0.0).as_deref(), Some("BAYES_00"));
        assert_eq!(name(f64::NAN), None);
        assert_eq!(bayes_hit(0.995).map(|h| h.score), Some(5.0));
        assert_eq!(bayes_hit(0.001).map(|h| h.score), Some(-2.5));
    }

    #[test]
    fn memory_learns_and_unlearns() {
        let spam = b"Subject: cheap watches\r\n\r\nreplica watches cheap discount luxury\r\n";
        let ham = b"Subject: minutes\r\n\r\nminutes of the committee meeting attached\r\n";
        let mut m = BayesMemory::with_min_learned(2);
        assert_eq!(m.classify(spam), None);
        for _ in 0..3 {
            m.learn(spam, true);
            m.learn(ham, false);
        }
        assert_eq!(m.learned(), learned(3, 3));
        let test = b"Subject: watches\r\n\r\ndiscount replica watches\r\n";
        assert!(m.classify(test).unwrap() > 0.9);
        let test_ham = b"Subject: committee\r\n\r\nthe committee meeting minutes\r\n";
        assert!(m.classify(test_ham).unwrap() < 0.1);
        let before = m.token_count();
        for _ in 0..3 {
            m.unlearn(spam, true);
            m.unlearn(ham, false);
        }
        assert_eq!(m.learned(), learned(0, 0));
        assert_eq!(m.token_count(), 0, "was {before}");
        // Unlearning more than learned saturates at zero.
        m.unlearn(spam, true);
        assert_eq!(m.learned(), learned(0, 0));
    }
}
