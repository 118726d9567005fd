//! Label values a caller can choose (GraphQL operation names) or that come from outside
//! (WeChat's errcodes), kept to a bounded set.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// The value every label past the cap (or not a plain name) becomes.
pub const OTHER: &str = "other";

/// The first `cap` distinct values seen are labels of their own; every later one, and any value
/// that is not 1 to 64 of `[A-Za-z0-9_-]`, is [`OTHER`]. A process-wide set: a restart forgets it.
pub struct BoundedLabel {
    cap: usize,
    seen: Mutex<BTreeSet<String>>,
}

impl BoundedLabel {
    /// A set of at most `cap` values.
    pub const fn new(cap: usize) -> Self {
        Self {
            cap,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// `value`, or [`OTHER`].
    pub fn label(&self, value: &str) -> String {
        let plain = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !plain {
            return OTHER.to_owned();
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < self.cap {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        OTHER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_or_not_plain_collapse_to_other() {
        let labels = BoundedLabel::new(2);
        assert_eq!(labels.label("Me"), "Me");
        assert_eq!(labels.label("Login"), "Login");
        assert_eq!(labels.label("Third"), OTHER);
        assert_eq!(labels.label("Me"), "Me");
        assert_eq!(labels.label("a b"), OTHER);
        assert_eq!(labels.label(&"x".repeat(65)), OTHER);
        assert_eq!(labels.label(""), OTHER);
    }
}
