//! Equality of short byte strings (field names) without a call to `memcmp`: a change's conditions
//! compare such names many times, and for strings of a few bytes the call costs more than the
//! comparison.

/// Whether `left` and `right` are the same bytes.
#[inline]
pub(crate) fn same_bytes(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let mut left_words = left.chunks_exact(8);
    let mut right_words = right.chunks_exact(8);
    let words_equal = left_words.by_ref().zip(right_words.by_ref()).all(|(a, b)| a == b);
    words_equal && left_words.remainder().iter().zip(right_words.remainder()).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_is_string_equality(left in "[ab]{0,20}", right in "[ab]{0,20}") {
            prop_assert_eq!(super::same_bytes(left.as_bytes(), right.as_bytes()), left == right);
            prop_assert!(super::same_bytes(left.as_bytes(), left.clone().as_bytes()));
        }
    }
}
