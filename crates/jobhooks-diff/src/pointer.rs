//! RFC 6901 JSON Pointer token escaping.

use std::borrow::Cow;

/// Escapes one reference token for use in a JSON Pointer (`~` becomes `~0`, `/` becomes `~1`).
///
/// ```
/// assert_eq!(jobhooks_diff::escape_token("a/b~c"), "a~1b~0c");
/// ```
pub fn escape_token(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// Reverses [`escape_token`] (`~1` becomes `/`, then `~0` becomes `~`).
///
/// ```
/// assert_eq!(jobhooks_diff::unescape_token("a~1b~0c"), "a/b~c");
/// ```
pub fn unescape_token(token: &str) -> Cow<'_, str> {
    if token.contains('~') { Cow::Owned(token.replace("~1", "/").replace("~0", "~")) } else { Cow::Borrowed(token) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn escaping_round_trips(token in ".*") {
            let escaped = escape_token(&token);
            prop_assert!(!escaped.contains('/'));
            prop_assert_eq!(unescape_token(&escaped), token.as_str());
        }
    }
}
