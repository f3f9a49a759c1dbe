//! Webhook signatures as Nautobot computes them: the hex HMAC-SHA512 of the request's body keyed
//! with the webhook's secret, sent in `X-Hook-Signature`.

use hmac::{Hmac, Mac};
use sha2::Sha512;

/// The header a signature travels in.
pub const SIGNATURE_HEADER: &str = "X-Hook-Signature";

/// The signature of `body` under `secret`: 128 lowercase hex digits, as Nautobot's
/// `generate_signature` (`hmac.new(secret, body, sha512).hexdigest()`).
///
/// ```
/// let signature = jobhooks_model::sign_body("s3cret", b"{}");
/// assert_eq!(signature.len(), 128);
/// assert!(jobhooks_model::signature_matches("s3cret", b"{}", &signature));
/// assert!(!jobhooks_model::signature_matches("other", b"{}", &signature));
/// ```
pub fn sign_body(secret: &str, body: &[u8]) -> String {
    let digest = keyed(secret, body).finalize().into_bytes();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// Whether `signature` (hex, in any case) is the signature of `body` under `secret`, compared in
/// constant time.
pub fn signature_matches(secret: &str, body: &[u8], signature: &str) -> bool {
    let Some(bytes) = from_hex(signature.trim()) else { return false };
    keyed(secret, body).verify_slice(&bytes).is_ok()
}

fn keyed(secret: &str, body: &[u8]) -> Hmac<Sha512> {
    // An HMAC takes a key of any length.
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn matches_pythons_hmac_sha512_hexdigest() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", hashlib.sha512).hexdigest())'
        assert_eq!(
            sign_body("key", b"The quick brown fox jumps over the lazy dog"),
            "b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb\
             82f948a549f7b791a5b41915ee4d1ec3935357e4e2317250d0372afa2ebeeb3a"
        );
    }

    #[test]
    fn malformed_signatures_do_not_match() {
        for signature in ["", "zz", "abc", "é1", &"0".repeat(128)] {
            assert!(!signature_matches("key", b"body", signature), "{signature:?}");
        }
        assert!(signature_matches("key", b"body", &sign_body("key", b"body").to_uppercase()));
    }

    proptest! {
        #[test]
        fn a_body_matches_its_own_signature_only(secret in ".{0,40}", body in any::<Vec<u8>>(), other in any::<Vec<u8>>()) {
            let signature = sign_body(&secret, &body);
            prop_assert!(signature_matches(&secret, &body, &signature));
            prop_assert_eq!(signature_matches(&secret, &other, &signature), other == body);
        }
    }
}
