//! Where the fetched models and test media live (`scripts/fetch-assets.sh` writes them).

use std::path::PathBuf;

/// `$AIV_ASSETS_DIR`, else `$XDG_CACHE_HOME/ai-interview`, else `~/.cache/ai-interview`.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIV_ASSETS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    cache_home().join("ai-interview")
}

/// The validators' virtual environment (`scripts/tools.sh` installs it): `$AIV_TOOLS_VENV`, else
/// `tools-venv` in the cache.
pub fn tools_venv() -> PathBuf {
    match std::env::var_os("AIV_TOOLS_VENV").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => cache_home().join("ai-interview").join("tools-venv"),
    }
}

/// `$XDG_CACHE_HOME`, else `~/.cache`.
fn cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache")
        })
}

/// The converted face models.
pub fn models_dir() -> PathBuf {
    dir().join("models")
}

/// The test media (stills, clips and their extracted frames).
pub fn media_dir() -> PathBuf {
    dir().join("media")
}
