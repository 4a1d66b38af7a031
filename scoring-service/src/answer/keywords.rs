//! The answer's keywords, as a recruiter would skim them.

use std::collections::{BTreeMap, HashSet};

use crate::text;

/// Up to eight content words, those that echo the question or its expected points first, then
/// by frequency; each shown in the form the candidate used first.
pub(super) fn keywords(transcript: &str, question: &str, expected: &[String]) -> Vec<String> {
    let echoes: HashSet<String> = expected
        .iter()
        .map(String::as_str)
        .chain([question])
        .flat_map(text::content_stems)
        .collect();
    let mut seen: BTreeMap<String, (usize, usize, String)> = BTreeMap::new(); // stem -> (count, first, surface)
    for (i, w) in text::words(transcript).into_iter().enumerate() {
        if w.chars().count() < 3 || text::is_stopword(&w) {
            continue;
        }
        let entry = seen.entry(text::stem(&w)).or_insert((0, i, w));
        entry.0 += 1;
    }
    let mut ranked: Vec<(bool, usize, usize, String)> = seen
        .into_iter()
        .map(|(stem, (count, first, surface))| (echoes.contains(&stem), count, first, surface))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    ranked.into_iter().take(8).map(|r| r.3).collect()
}
