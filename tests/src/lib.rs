//! Cross-layer integration tests of jobhooks live in `tests/tests/`; this crate holds no code of its
//! own. Each test binary exercises several layers together, the way an application uses them, and
//! the seed scenarios of `../shared/seeds/` as the layers they need exist.

/// The README's Rust example, compiled and run as a doc test so the front page cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
