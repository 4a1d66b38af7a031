//! An answer as statements: its sentences, each cut at the words that turn one claim into the
//! next ("but", "so", "because"...), with two facts about each that the sentence model cannot see
//! reliably on its own: whether it is negated ("I would not cache..."), and whether its sentence is
//! a sentence at all or a list of keywords.

use crate::text;

/// How a sentence is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Ordinary sentences, with the small words that join ideas.
    Prose,
    /// Content words strung together with (almost) no function words: a recited list.
    KeywordList,
}

/// One claim of the answer, the unit that can cover an expected point.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub text: String,
    /// Index of the sentence it came from.
    pub sentence: usize,
    pub form: Form,
    /// Says the idea is not done, not needed, or pointless.
    pub negated: bool,
    pub word_count: usize,
    /// One of the pieces that tile the answer once (a clause, or a sentence not cut); false for a
    /// whole sentence also present as its clauses.
    pub piece: bool,
}

impl Statement {
    /// Only affirmed statements in prose can show that a point was understood.
    pub fn affirms(&self) -> bool {
        self.form == Form::Prose && !self.negated
    }
}

/// Under this share of function words a sentence of [`LIST_MIN_WORDS`] or more reads as a list:
/// English prose runs at 40-55% ("I would keep a counter in the database": 4 of 8), a recited
/// rubric near 0% ("unique short keys hashes database storage mapping").
pub const LIST_FUNCTION_SHARE: f32 = 0.2;
/// Shorter fragments ("Redis for hot links") are too short to judge their form.
pub const LIST_MIN_WORDS: usize = 6;

/// Sentences longer than this are also cut into clauses (as are negated ones): a long sentence
/// often holds several points, a short one rarely, and a short clause alone says less than its
/// sentence.
const CLAUSE_SPLIT_WORDS: usize = 16;

/// Words that end one claim and start another within a sentence. Negation does not reach across
/// them: in "we don't want collisions, so we generate unique keys" the keys are affirmed.
const CONNECTIVES: &[&str] = &[
    "but",
    "so",
    "because",
    "however",
    "although",
    "though",
    "whereas",
    "since",
    "therefore",
    "instead",
    "otherwise",
    "which",
    "while",
    "then",
    "unless",
];

/// Words that negate or reject the claim they are in.
const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "none",
    "nothing",
    "without",
    "neither",
    "nor",
    "pointless",
    "useless",
    "unnecessary",
    "needless",
    "overkill",
    "waste",
    "avoid",
    "skip",
    "reject",
    "irrelevant",
];

/// Phrases whose negation word does not negate ("not only", "no matter").
const NOT_NEGATIONS: &[&str] = &["not only", "no matter", "no doubt", "nothing but"];

/// Function words counted for [`Form`]: articles, pronouns, auxiliaries, prepositions and
/// conjunctions.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "i", "we", "you", "he", "she", "it", "they", "me", "us", "them", "my", "our",
    "your", "their", "its", "this", "that", "these", "those", "is", "are", "was", "were", "be",
    "been", "being", "am", "do", "does", "did", "have", "has", "had", "will", "would", "can",
    "could", "should", "shall", "may", "might", "must", "to", "of", "in", "on", "at", "by", "for",
    "with", "from", "into", "onto", "about", "as", "than", "and", "or", "but", "so", "if",
    "because", "when", "which", "who", "what", "where", "how", "then", "there", "not", "no",
    "each", "every", "all", "some", "any", "one", "up", "out", "over", "after", "before", "i'd",
    "i'm", "it's", "we'd", "we'll", "don't", "doesn't", "didn't", "isn't", "wouldn't",
];

/// Splits an answer into statements.
pub fn statements(transcript: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    for (index, sentence) in text::sentences(transcript).into_iter().enumerate() {
        let words = text::words(sentence);
        let function = words
            .iter()
            .filter(|w| FUNCTION_WORDS.contains(&w.as_str()))
            .count();
        let form = if words.len() >= LIST_MIN_WORDS
            && (function as f32) < LIST_FUNCTION_SHARE * words.len() as f32
        {
            Form::KeywordList
        } else {
            Form::Prose
        };
        // A sentence of several claims is kept whole (its clauses mean most together: "I am
        // applying here because your team builds fast systems") and also cut into its clauses, so
        // that one claim can match a point alone and what it affirms beside what it rejects still
        // counts. Counting words (depth, focus) uses only the pieces, never both.
        let pieces = if is_negated(&words) || words.len() > CLAUSE_SPLIT_WORDS {
            clauses(sentence)
        } else {
            vec![sentence.to_string()]
        };
        let mut push = |text: String, piece: bool| {
            let words = text::words(&text);
            if !words.is_empty() {
                out.push(Statement {
                    negated: is_negated(&words),
                    word_count: words.len(),
                    text: text.split_whitespace().collect::<Vec<_>>().join(" "),
                    sentence: index,
                    form,
                    piece,
                });
            }
        };
        if pieces.len() > 1 {
            push(sentence.to_string(), false);
            for clause in pieces {
                push(clause, true);
            }
        } else {
            push(sentence.to_string(), true);
        }
    }
    out
}

/// Subjects that open a new clause after ", and" / ", or" ("..., and I would cache them"); without
/// one the words after the comma continue a list ("not a cache, a queue, or read replicas") and
/// stay under the list's negation.
const SUBJECTS: &[&str] = &[
    "i", "we", "you", "it", "they", "he", "she", "this", "that", "there",
];

/// A sentence cut before each connective; a clause of one or two words stays with its
/// neighbour ("so far", "but then").
fn clauses(sentence: &str) -> Vec<String> {
    let tokens: Vec<&str> = sentence.split_whitespace().collect();
    let bare = |t: &str| {
        t.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
            .to_lowercase()
    };
    let mut out: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let word = bare(token);
        let after_comma = current.last().is_some_and(|w| w.ends_with([',', ';', ':']));
        let new_subject = tokens
            .get(i + 1)
            .is_some_and(|next| SUBJECTS.contains(&bare(next).as_str()));
        let boundary = CONNECTIVES.contains(&word.as_str())
            || (after_comma && (word == "and" || word == "or") && new_subject);
        if boundary && current.len() > 2 {
            out.push(current.join(" "));
            current.clear();
        }
        current.push(token);
    }
    if !current.is_empty() {
        match out.last_mut() {
            Some(last) if current.len() <= 2 => {
                last.push(' ');
                last.push_str(&current.join(" "));
            }
            _ => out.push(current.join(" ")),
        }
    }
    out.into_iter()
        .map(|c| {
            c.trim_matches(|ch: char| ch == ',' || ch.is_whitespace())
                .to_string()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

fn is_negated(words: &[String]) -> bool {
    let joined = format!(" {} ", words.join(" "));
    let exempt = NOT_NEGATIONS
        .iter()
        .any(|p| joined.contains(&format!(" {p} ")));
    !exempt
        && words
            .iter()
            .any(|w| NEGATIONS.contains(&w.as_str()) || w.ends_with("n't"))
}

/// What a question asks about in the negative: the word after each negation ("when would you not
/// add one?" gives "add"). A statement negating the same word answers the question ("I would not
/// add one on a boolean column") instead of rejecting a point ("an index does not speed up
/// lookups").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NegativeAsk(Vec<String>);

impl NegativeAsk {
    pub fn of(question: &str) -> Self {
        Self(negated_words(&text::words(question)))
    }

    /// Whether a negated statement answers the question rather than rejecting something.
    pub fn answered_by(&self, statement: &Statement) -> bool {
        statement.negated
            && negated_words(&text::words(&statement.text))
                .iter()
                .any(|w| self.0.contains(w))
    }
}

/// Whether an expected point is itself put in the negative or as a contrast ("compile-time checks
/// instead of runtime locks"): a negated statement may then say the same thing ("there is no
/// runtime lock cost"), so negation does not decide it.
pub fn is_negative_phrase(text: &str) -> bool {
    let words = text::words(text);
    is_negated(&words) || words.iter().any(|w| w == "instead" || w == "rather")
}

/// The stem of the first content word after each negation.
fn negated_words(words: &[String]) -> Vec<String> {
    words
        .iter()
        .enumerate()
        .filter(|(_, w)| NEGATIONS.contains(&w.as_str()) || w.ends_with("n't"))
        .filter_map(|(i, _)| {
            words[i + 1..]
                .iter()
                .find(|w| !FUNCTION_WORDS.contains(&w.as_str()) && !text::is_stopword(w))
                .map(|w| text::stem(w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negation_stays_within_its_clause() {
        let s = statements("We don't want collisions, so we generate unique keys with a counter.");
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s[0].negated && !s[0].piece, "the whole sentence");
        assert!(s[1].negated && s[1].piece);
        assert!(!s[2].negated && s[2].text.starts_with("so we generate"));
    }

    #[test]
    fn a_rejected_list_is_negated_as_a_whole() {
        for text in [
            "I would not generate unique short keys, store mappings in a database or cache popular redirects.",
            "Unique keys, a mapping table and caching popular redirects are all pointless.",
        ] {
            let s = statements(text);
            assert_eq!(s.len(), 1, "{s:?}");
            assert!(s[0].negated, "{text}");
        }
    }

    #[test]
    fn a_list_after_a_negation_stays_negated() {
        let s = statements("I would not use a cache, a queue, or read replicas behind a balancer.");
        assert!(s.iter().all(|s| s.negated), "{s:?}");
        let s = statements("I would not hash the URL, and I would use a counter instead.");
        assert!(s.iter().any(|s| s.piece && !s.negated), "{s:?}");
    }

    #[test]
    fn not_only_is_not_a_negation() {
        assert!(!statements("It is not only faster but cheaper to run.")[0].negated);
    }

    #[test]
    fn recited_keywords_are_a_list_and_prose_is_not() {
        let list = statements(
            "unique short keys hashes database storage mapping keys URLs cache popular redirects",
        );
        assert_eq!(list[0].form, Form::KeywordList);
        let prose = statements("I would keep a counter in the database and encode it in base 62.");
        assert_eq!(prose[0].form, Form::Prose);
        assert!(prose[0].affirms());
    }

    #[test]
    fn a_negative_question_is_answered_by_the_same_negation_only() {
        let ask = NegativeAsk::of("What is a database index, and when would you not add one?");
        let answers = statements("I would not add an index on a boolean column.");
        assert!(ask.answered_by(&answers[0]));
        let rejects = statements("An index does not speed up lookups.");
        assert!(!ask.answered_by(&rejects[0]));
        let plain = NegativeAsk::of("How would you design a URL shortening service?");
        assert!(!plain.answered_by(&answers[0]));
    }

    #[test]
    fn a_short_sentence_stays_whole_and_a_long_one_is_also_cut() {
        let s =
            statements("I am applying here because your team builds fast systems, so I can grow.");
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(s[0].piece);
        let long = statements(
            "I own the services that plan delivery routes, and I mentor two junior developers, \
             because our team grew quickly last year.",
        );
        assert!(!long[0].piece, "a long sentence is also kept whole");
        assert_eq!(long.iter().filter(|s| s.piece).count(), 3, "{long:?}");
    }
}
