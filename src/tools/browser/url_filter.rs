//! Allow and deny lists of URL patterns.
//!
//! # Pattern syntax
//!
//! A pattern is a glob matched against the whole normalised URL
//! (`https://docs.example.com/guide?x=1`: scheme and host lower-case, a `/`
//! path when the URL has none):
//!
//! - `*` matches any run of characters, `/` included;
//! - `?` matches one character; `[abc]` one of a set; `{a,b}` either branch;
//! - matching is case-insensitive.
//!
//! Examples: `*://*.example.com/*` (every subdomain of example.com, but not
//! `example.com` itself: add `*://example.com/*` for that),
//! `http://127.0.0.1:*/*`, `https://github.com/openhands/*`.
//!
//! A URL is refused when a deny pattern matches it, or when allow patterns
//! exist and none matches it. `about:blank` is always allowed: it is where a
//! refused navigation leaves the tab.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// The compiled allow and deny lists of one tool set.
#[derive(Clone, Debug)]
pub struct UrlFilter {
    allowed: Option<GlobSet>,
    denied: Option<GlobSet>,
}

fn compile(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob: Glob = GlobBuilder::new(pattern)
            .case_insensitive(true)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid URL pattern '{pattern}': {e}"))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| format!("invalid URL patterns: {e}"))
}

impl UrlFilter {
    /// Compiles the patterns; the error names the bad pattern.
    pub fn new(allowed: &[String], denied: &[String]) -> Result<Self, String> {
        Ok(Self {
            allowed: compile(allowed)?,
            denied: compile(denied)?,
        })
    }

    /// Whether the browser may open `url`.
    pub fn allows(&self, url: &str) -> bool {
        let normalised = match url::Url::parse(url) {
            Ok(parsed) => parsed.to_string(),
            Err(_) => url.to_string(),
        };
        if normalised == "about:blank" {
            return true;
        }
        if self
            .denied
            .as_ref()
            .is_some_and(|d| d.is_match(&normalised))
        {
            return false;
        }
        self.allowed
            .as_ref()
            .is_none_or(|a| a.is_match(&normalised))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allowed: &[&str], denied: &[&str]) -> UrlFilter {
        let own = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        UrlFilter::new(&own(allowed), &own(denied)).unwrap()
    }

    #[test]
    fn empty_lists_allow_everything() {
        assert!(filter(&[], &[]).allows("https://example.com/x"));
    }

    #[test]
    fn allow_list_restricts_and_deny_wins() {
        let f = filter(&["*://*.example.com/*"], &["*://secret.example.com/*"]);
        assert!(f.allows("https://docs.example.com/a/b?c=d"));
        assert!(f.allows("HTTPS://Docs.Example.com"));
        assert!(!f.allows("https://example.com/"));
        assert!(!f.allows("https://secret.example.com/x"));
        assert!(!f.allows("https://other.org/"));
        assert!(f.allows("about:blank"));
        assert!(!f.allows("data:text/html,hi"));
    }

    #[test]
    fn ports_and_paths() {
        let f = filter(&[], &["http://127.0.0.1:*/private/*"]);
        assert!(!f.allows("http://127.0.0.1:8080/private/page"));
        assert!(f.allows("http://127.0.0.1:8080/public/page"));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        let err = UrlFilter::new(&["http://[".to_string()], &[]).unwrap_err();
        assert!(err.contains("http://["));
    }
}
