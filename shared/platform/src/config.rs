//! Typed configuration from environment variables with documented defaults.
//!
//! Services read through an [`EnvSource`] so tests hand in a map instead of mutating the process
//! environment (which is unsafe with threads and leaks between tests).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Where configuration values come from.
pub trait EnvSource: Send + Sync {
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// An environment made of `pairs`, for tests.
#[cfg(test)]
pub(crate) fn env_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("configuration {key}={value:?} is not valid: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    /// What was expected.
    pub reason: String,
    /// The parser's own error, when there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConfigError {
    /// A value that is readable but not acceptable, and what was expected instead.
    pub fn invalid(key: &str, value: &str, reason: &str) -> Self {
        Self {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
            source: None,
        }
    }
}

/// Typed reads over an [`EnvSource`]; empty values count as unset.
pub struct Env<'a> {
    source: &'a dyn EnvSource,
}

impl<'a> Env<'a> {
    pub fn new(source: &'a dyn EnvSource) -> Self {
        Self { source }
    }

    pub fn optional(&self, key: &str) -> Option<String> {
        self.source.get(key).filter(|v| !v.trim().is_empty())
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.optional(key).unwrap_or_else(|| default.to_string())
    }

    pub fn parse<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.optional(key) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError {
                key: key.to_string(),
                value: value.clone(),
                reason: format!("expected a {}", std::any::type_name::<T>()),
                source: Some(Box::new(e)),
            }),
        }
    }

    /// A comma-separated list, items trimmed, empty items dropped (empty when unset).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.string(key, "")
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect()
    }

    /// A duration given in milliseconds.
    pub fn millis(&self, key: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.parse(key, default_ms).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_empty_values_fall_back_to_the_default() {
        let map: HashMap<String, String> = [("A".to_string(), " ".to_string())].into();
        let env = Env::new(&map);
        assert_eq!(env.parse("A", 7u16).unwrap(), 7);
        assert_eq!(env.parse("B", 9u16).unwrap(), 9);
    }

    #[test]
    fn a_list_drops_blank_items() {
        let map: HashMap<String, String> = [("K".to_string(), " a, ,b ,".to_string())].into();
        assert_eq!(Env::new(&map).list("K"), ["a", "b"]);
        assert!(Env::new(&map).list("UNSET").is_empty());
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let map: HashMap<String, String> = [("PORT".to_string(), "eighty".to_string())].into();
        let err = Env::new(&map).parse("PORT", 1u16).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
    }
}
