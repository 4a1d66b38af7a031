//! AMQP topic matching, so the in-process bus routes exactly as the broker does.

/// Words split on `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_like_amqp() {
        assert!(topic_matches(
            "interview.completed.v1",
            "interview.completed.v1"
        ));
        assert!(topic_matches("interview.*.v1", "interview.completed.v1"));
        assert!(!topic_matches(
            "interview.*.v1",
            "interview.frame.captured.v1"
        ));
        assert!(topic_matches("interview.#", "interview.frame.captured.v1"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches("interview.#.v1", "interview.v1"));
        assert!(!topic_matches(
            "interview.completed.v1",
            "interview.completed.v2"
        ));
    }
}
