//! The compiled pattern of a `regex` leaf: matched from the start of a string, in linear time.
//!
//! - A pattern is compiled by the `regex` crate always, and, while the process's budget for them
//!   lasts, to a dense DFA built ahead of time ([`regex_automata::dfa::dense`]). A change is
//!   checked against many hooks' patterns over short strings, where the lazy DFA's cache and
//!   per-search bookkeeping cost more than the matching; the ahead-built DFA has neither.
//! - The DFA is built for ASCII text (its classes are then a few bytes wide, and its tables a
//!   tenth of the Unicode ones: `\d` over Unicode is some 60 ranges of multi-byte sequences) and
//!   gives up on the first byte of any other text; the regex then answers. Over ASCII text a
//!   pattern read as ASCII matches exactly as read as Unicode: `\d`, `\w`, `\s`, `\b`, `.`,
//!   negated classes and case folding agree on ASCII characters. A pattern that needs Unicode to
//!   be read at all (`\p{Greek}`) has no DFA.
//! - Text shorter than the shortest match is refused without a search.
//! - The process compiles each distinct pattern once: hooks written with the same pattern share its
//!   compiled form, in memory and in the processor's caches. A compiled pattern is freed with the
//!   last condition that holds it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use regex_automata::Anchored;
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The most memory one pattern's DFA may take; a pattern whose DFA is larger uses the regex alone.
const DFA_SIZE_LIMIT: usize = 64 * 1024;

/// The most memory building one pattern's DFA may take.
const DETERMINIZE_SIZE_LIMIT: usize = 256 * 1024;

/// The most memory the DFAs of every pattern in the process may take together; beyond it, new
/// patterns use the regex alone. Memory is returned as patterns are freed.
const DFA_BUDGET: usize = 64 * 1024 * 1024;

/// How much of [`DFA_BUDGET`] the DFAs alive take.
static DFA_MEMORY: AtomicUsize = AtomicUsize::new(0);

/// The compiled patterns alive, by pattern and size limit.
type CompiledPatterns = HashMap<(String, usize), Weak<Compiled>>;

/// The compiled patterns alive, so that each is compiled once.
static COMPILED: Mutex<Option<CompiledPatterns>> = Mutex::new(None);

/// A `regex` leaf's pattern, anchored at the start as Python's `re.match`.
#[derive(Debug, Clone)]
pub(super) struct Pattern(Arc<Compiled>);

/// A pattern's compiled forms.
#[derive(Debug)]
struct Compiled {
    regex: regex::Regex,
    dfa: Option<BudgetedDfa>,
    /// The length of the shortest text that can match.
    minimum_len: usize,
}

/// A DFA whose memory counts against [`DFA_BUDGET`] until it is dropped, with the state an
/// anchored search starts in (there is nothing before the text to look behind at).
#[derive(Debug)]
struct BudgetedDfa {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    /// The literal every match starts with (ASCII), if there is one, and the state after it: text
    /// without it does not match, text with it is searched from after it.
    prefix: Option<(Box<[u8]>, StateID)>,
}

impl Pattern {
    /// Compiles `pattern`, anchored at the start, or shares its compiled form if the process has
    /// it; `size_limit` bounds the regex's compiled size.
    pub(super) fn new(pattern: &str, size_limit: usize) -> Result<Self, regex::Error> {
        let key = (pattern.to_owned(), size_limit);
        if let Some(compiled) = COMPILED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|kept| kept.get(&key))
            .and_then(Weak::upgrade)
        {
            return Ok(Self(compiled));
        }
        // Compiled outside the lock: two threads may compile the same pattern; the later one is kept.
        let compiled = Arc::new(Compiled::new(pattern, size_limit)?);
        let mut kept = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = kept.get_or_insert_with(HashMap::new);
        if kept.len() >= 64 && kept.len().is_power_of_two() {
            kept.retain(|_, compiled| compiled.strong_count() > 0);
        }
        kept.insert(key, Arc::downgrade(&compiled));
        Ok(Self(compiled))
    }

    /// Whether `text` matches from its start.
    pub(super) fn is_match(&self, text: &str) -> bool {
        let compiled = &*self.0;
        if text.len() < compiled.minimum_len {
            return false;
        }
        if let Some(answer) = compiled.dfa.as_ref().and_then(|dfa| dfa.is_match(text)) {
            return answer;
        }
        compiled.regex.is_match(text)
    }
}

impl Compiled {
    fn new(pattern: &str, size_limit: usize) -> Result<Self, regex::Error> {
        let anchored = format!("^(?:{pattern})");
        let regex = regex::RegexBuilder::new(&anchored).size_limit(size_limit).build()?;
        let hir = regex_syntax::parse(&anchored).ok();
        let minimum_len = hir.as_ref().and_then(|hir| hir.properties().minimum_len()).unwrap_or(0);
        Ok(Self { regex, dfa: BudgetedDfa::new(&anchored, hir.as_ref().and_then(literal_prefix)), minimum_len })
    }
}

impl BudgetedDfa {
    /// The DFA of `anchored`, if it is small enough and the budget has room for it; `prefix` is a
    /// literal every match starts with.
    fn new(anchored: &str, prefix: Option<Vec<u8>>) -> Option<Self> {
        if DFA_MEMORY.load(Ordering::Relaxed) >= DFA_BUDGET {
            return None;
        }
        let mut config = dense::Config::new()
            .start_kind(StartKind::Anchored)
            .dfa_size_limit(Some(DFA_SIZE_LIMIT))
            .determinize_size_limit(Some(DETERMINIZE_SIZE_LIMIT));
        for byte in 0x80..=0xFF {
            config = config.quit(byte, true);
        }
        let dfa = dense::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .build(anchored)
            .ok()?;
        let start = dfa.start_state(&start::Config::new().anchored(Anchored::Yes)).ok()?;
        // Kept only where the DFA reaches no match, dead end or quit within it.
        let prefix = prefix.and_then(|prefix| {
            let after = prefix.iter().try_fold(start, |state, &byte| {
                let next = dfa.next_state(state, byte);
                (!dfa.is_special_state(next)).then_some(next)
            })?;
            Some((prefix.into_boxed_slice(), after))
        });
        let size = dfa.memory_usage();
        let taken = DFA_MEMORY.fetch_add(size, Ordering::Relaxed);
        let dfa = Self { dfa, start, prefix };
        // Over the budget once this one counts: drop it (which gives its share back).
        (taken + size <= DFA_BUDGET).then_some(dfa)
    }

    /// Whether `text` matches from its start: `None` where the DFA cannot tell (it met a byte it
    /// quits on).
    fn is_match(&self, text: &str) -> Option<bool> {
        let dfa = &self.dfa;
        let (mut state, text) = match &self.prefix {
            None => (self.start, text.as_bytes()),
            Some((prefix, after)) => {
                let text = text.as_bytes();
                if text.len() < prefix.len() || !crate::short_text::same_bytes(&text[..prefix.len()], prefix) {
                    return Some(false);
                }
                (*after, &text[prefix.len()..])
            }
        };
        for &byte in text {
            state = dfa.next_state(state, byte);
            if dfa.is_special_state(state) {
                if dfa.is_match_state(state) {
                    return Some(true);
                } else if dfa.is_dead_state(state) {
                    return Some(false);
                } else if dfa.is_quit_state(state) {
                    return None;
                }
            }
        }
        Some(dfa.is_match_state(dfa.next_eoi_state(state)))
    }
}

/// The one literal every match of `hir` starts with, if it has one, is not empty and is ASCII.
fn literal_prefix(hir: &regex_syntax::hir::Hir) -> Option<Vec<u8>> {
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    match prefixes.literals()? {
        [only] if !only.as_bytes().is_empty() && only.as_bytes().is_ascii() => Some(only.as_bytes().to_vec()),
        _ => None,
    }
}

impl Drop for BudgetedDfa {
    fn drop(&mut self) {
        DFA_MEMORY.fetch_sub(self.dfa.memory_usage(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns_match_from_the_start_only() {
        let pattern = Pattern::new(r"sw-\d+", 1 << 20).unwrap();
        assert!(pattern.0.dfa.is_some());
        assert!(pattern.is_match("sw-01") && pattern.is_match("sw-٣") && !pattern.is_match("a-sw-01"));
        assert!(!pattern.is_match("sw-"), "shorter than the shortest match");
        let either = Pattern::new(r"a|b", 1 << 20).unwrap();
        assert!(either.is_match("b") && !either.is_match("cb"), "the anchor covers every branch");
    }

    #[test]
    fn a_literal_prefix_is_compared_then_skipped() {
        let prefixed = |pattern: &str| {
            let pattern = Pattern::new(pattern, 1 << 20).unwrap();
            let prefix = pattern.0.dfa.as_ref().unwrap().prefix.as_ref().map(|(prefix, _)| prefix.to_vec());
            (pattern, prefix)
        };
        let (pattern, prefix) = prefixed(r"value-\d+-x");
        assert_eq!(prefix.as_deref(), Some(&b"value-"[..]));
        assert!(pattern.is_match("value-12-x") && !pattern.is_match("value-12-y") && !pattern.is_match("valve-12-x"));
        assert!(!pattern.is_match("valué-1-x") && pattern.is_match("value-٣-x"), "non-ASCII text, either side");
        // No single prefix: alternatives, case folding.
        assert_eq!(prefixed(r"ab|cd").1, None);
        assert_eq!(prefixed(r"(?i)ab").1, None);
        // A prefix that is the whole pattern: the DFA reports the match after it.
        let (whole, prefix) = prefixed(r"edge");
        assert_eq!(prefix.as_deref(), Some(&b"edge"[..]));
        assert!(
            whole.is_match("edge") && whole.is_match("edge-1") && !whole.is_match("edg") && !whole.is_match("edgy")
        );
    }

    #[test]
    fn a_large_pattern_uses_the_regex_alone() {
        let large = Pattern::new(r"[a-z]{6000}", 1 << 22).unwrap();
        assert!(large.0.dfa.is_none());
        let text = "a".repeat(6000);
        assert!(large.is_match(&text) && !large.is_match(&text[1..]));
    }

    #[test]
    fn non_ascii_text_is_answered_by_the_regex() {
        let pattern = Pattern::new(r"sw-\d+\b", 1 << 20).unwrap();
        assert!(pattern.0.dfa.as_ref().is_some_and(|dfa| dfa.dfa.memory_usage() < 4096), "ASCII tables are small");
        assert!(pattern.is_match("sw-01 é") && pattern.is_match("sw-٣") && !pattern.is_match("sw-1é"));
        let unicode_only = Pattern::new(r"\p{Greek}+", 1 << 20).unwrap();
        assert!(unicode_only.0.dfa.is_none());
        assert!(unicode_only.is_match("αβ") && !unicode_only.is_match("ab"));
    }

    #[test]
    fn a_pattern_is_compiled_once_and_freed_with_its_last_holder() {
        let first = Pattern::new(r"shared-\d+", 1 << 20).unwrap();
        let second = Pattern::new(r"shared-\d+", 1 << 20).unwrap();
        assert!(Arc::ptr_eq(&first.0, &second.0));
        let other_limit = Pattern::new(r"shared-\d+", 1 << 19).unwrap();
        assert!(!Arc::ptr_eq(&first.0, &other_limit.0));
        let weak = Arc::downgrade(&first.0);
        drop((first, second));
        assert!(weak.upgrade().is_none(), "freed with the last condition holding it");
        let again = Pattern::new(r"shared-\d+", 1 << 20).unwrap();
        assert!(again.is_match("shared-1"));
    }

    proptest! {
        #[test]
        fn patterns_answer_as_the_regex_crate(
            pattern in "(\\^|\\$|\\\\b|\\\\B|\\\\d|\\\\D|\\\\w|\\\\W|\\\\s|\\(\\?i\\)|\\[\\^a\\]|[akKé.]|\\(a\\|é\\)|[*+?]){0,6}",
            text in "[aAkK\\u{212A}é1٣ .\t_]{0,8}",
        ) {
            if let Ok(compiled) = Pattern::new(&pattern, 1 << 20) {
                prop_assert_eq!(compiled.is_match(&text), compiled.0.regex.is_match(&text), "{} on {:?}", pattern, text);
            }
        }
    }
}
