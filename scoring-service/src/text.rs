//! Text primitives for scoring transcripts: words, sentences, stop words, a light stemmer, fillers.
//!
//! Deliberately simple and deterministic: every number a recruiter sees can be traced back to
//! counts a person could redo by hand.

/// Lower-cased word tokens (letters, digits, inner apostrophes and hyphens).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-' || c == '+' || c == '#'))
        .map(|w| {
            w.trim_matches(|c: char| c == '\'' || c == '-')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Sentences: split on terminal punctuation followed by a space or the end, so "e.g." inside a
/// word run and "99.9" stay whole; a transcript without any is one sentence.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_break = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        if matches!(c, '.' | '!' | '?' | ';') && next_is_break {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .collect()
}

const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "don't",
    "down",
    "during",
    "each",
    "even",
    "every",
    "few",
    "for",
    "from",
    "further",
    "get",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "i'm",
    "i've",
    "if",
    "in",
    "into",
    "is",
    "it",
    "it's",
    "its",
    "just",
    "let",
    "lot",
    "me",
    "more",
    "most",
    "much",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "really",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "way",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "tell",
    "describe",
    "explain",
    "give",
    "example",
    "time",
    "think",
    "know",
    "like",
    "make",
    "made",
    "well",
    "um",
    "uh",
    "er",
    "erm",
    "ah",
    "hmm",
    "basically",
    "actually",
    "literally",
    "yeah",
    "okay",
    "ok",
];

pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// A light suffix stripper: enough to match "tests"/"testing"/"tested", not a full Porter stemmer.
pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    let n = w.chars().count();
    let strip = |suffix: &str, min_rest: usize| -> Option<String> {
        w.strip_suffix(suffix)
            .filter(|rest| rest.chars().count() >= min_rest)
            .map(str::to_string)
    };
    if let Some(rest) = strip("ies", 3) {
        return rest + "y";
    }
    for (suffix, min_rest) in [("ing", 4), ("ed", 4), ("ly", 4), ("es", 4), ("s", 3)] {
        if n > min_rest
            && !(suffix == "s" && (w.ends_with("ss") || w.ends_with("us") || w.ends_with("is")))
            && let Some(rest) = strip(suffix, min_rest)
        {
            return rest;
        }
    }
    w.to_string()
}

/// Stems of the words that carry meaning (no stop words, no single letters).
pub fn content_stems(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() > 1 && !is_stopword(w))
        .map(|w| stem(&w))
        .collect()
}

const FILLER_WORDS: &[&str] = &[
    "um",
    "umm",
    "uh",
    "uhm",
    "er",
    "erm",
    "ah",
    "hmm",
    "basically",
    "literally",
];
const FILLER_PHRASES: &[&str] = &["you know", "i mean", "sort of", "kind of"];

/// Filler words and phrases; "like" counts only in its filler form, set off by commas.
pub fn filler_count(text: &str) -> usize {
    let lower = text.to_lowercase();
    let tokens = words(&lower);
    let single = tokens
        .iter()
        .filter(|w| FILLER_WORDS.contains(&w.as_str()))
        .count();
    let joined = format!(" {} ", tokens.join(" "));
    let phrases: usize = FILLER_PHRASES
        .iter()
        .map(|p| joined.matches(&format!(" {p} ")).count())
        .sum();
    let like = lower.matches(", like,").count();
    single + phrases + like
}

/// Words that signal reasoning or evidence rather than assertion.
const REASONING_MARKERS: &[&str] = &[
    "because",
    "therefore",
    "for example",
    "for instance",
    "such as",
    "which means",
    "as a result",
    "so that",
    "trade-off",
    "tradeoff",
    "instead",
    "however",
    "measured",
    "resulted",
    "in order to",
    "the reason",
];

pub fn reasoning_markers(text: &str) -> usize {
    let lower = format!(" {} ", words(text).join(" "));
    REASONING_MARKERS
        .iter()
        .map(|m| lower.matches(&format!(" {m} ")).count())
        .sum::<usize>()
        + words(text)
            .iter()
            .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
            .count()
            .min(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_keep_technical_tokens() {
        assert_eq!(
            words("I used C++ and Rust's tokio, e.g. async!"),
            vec![
                "i", "used", "c++", "and", "rust's", "tokio", "e", "g", "async"
            ]
        );
    }

    #[test]
    fn inflections_share_a_stem() {
        assert_eq!(stem("tests"), stem("testing"));
        assert_eq!(stem("tested"), stem("test"));
        assert_eq!(stem("queries"), "query");
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("status"), "status");
    }

    #[test]
    fn fillers_are_counted_but_like_as_a_verb_is_not() {
        assert_eq!(
            filler_count("Um, I like Rust, you know, and uh, like, it is basically fast"),
            5
        );
        assert_eq!(filler_count("I like Rust"), 0);
    }

    #[test]
    fn sentences_split_on_terminal_punctuation() {
        assert_eq!(sentences("One. Two? Three!").len(), 3);
        assert_eq!(sentences("no punctuation at all").len(), 1);
        assert!(sentences("  ... ").is_empty());
        assert_eq!(
            sentences("It cut latency to 99.9 ms. Then we shipped").len(),
            2
        );
    }
}
