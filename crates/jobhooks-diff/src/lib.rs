//! Pure JSON diff algorithms for jobhooks.
//!
//! This crate answers one question: *how does one JSON document differ from another?* It offers
//! two answers:
//!
//! - [`snapshots`] and [`shallow_compare`]: the shape Nautobot's `ObjectChange.get_snapshots()`
//!   returns (`prechange`, `postchange`, `differences.added`, `differences.removed`), with Python
//!   truthiness (an empty object counts as absent), `last_updated` excluded, and nested values
//!   compared and reported whole.
//! - [`deep_diff`] and [`apply`]: a path-level diff whose operations are RFC 6902 JSON Patch
//!   operations addressed by RFC 6901 JSON Pointers. Lists are diffed element by element, so
//!   removing one tag from a list of fifty is one `remove` operation that carries that tag.
//!
//! ```
//! use serde_json::json;
//!
//! let pre = json!({"name": "r1", "serial": "A1", "tags": ["core", "edge"]});
//! let post = json!({"name": "r1", "serial": "B2", "tags": ["core"]});
//!
//! let snaps = jobhooks_diff::snapshots(Some(&pre), Some(&post));
//! assert_eq!(snaps.differences.added, Some(json!({"serial": "B2", "tags": ["core"]})));
//! assert_eq!(snaps.differences.removed, Some(json!({"serial": "A1", "tags": ["core", "edge"]})));
//!
//! let patch = jobhooks_diff::deep_diff(&pre, &post);
//! assert_eq!(
//!     serde_json::to_value(&patch).unwrap(),
//!     json!([
//!         {"op": "replace", "path": "/serial", "old": "A1", "value": "B2"},
//!         {"op": "remove", "path": "/tags/1", "old": "edge"},
//!     ])
//! );
//! assert_eq!(jobhooks_diff::apply(&pre, &patch).unwrap(), post);
//! ```
//!
//! Invariant: no IO, no async, no dependency on any other jobhooks crate. Everything here is a pure
//! function of its inputs.

mod deep;
mod members;
mod pointer;
mod snapshot;

pub use deep::{DeepChange, PatchError, apply, deep_diff};
pub use pointer::{escape_token, unescape_token};
pub use snapshot::{Differences, EXCLUDED_FROM_DIFF, Snapshots, is_truthy, shallow_compare, snapshots};
