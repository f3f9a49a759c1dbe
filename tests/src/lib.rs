//! Cross-layer integration tests of jobhooks live in `tests/tests/`; this crate holds no code of its
//! own. Each test binary exercises several layers together, the way an application uses them, and
//! the seed scenarios of `../shared/seeds/` as the layers they need exist.
