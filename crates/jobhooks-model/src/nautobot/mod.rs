//! The bridge for teams still on Nautobot: deliveries of its webhooks read as changes
//! ([`NautobotDelivery`]), and its job hooks and job buttons, as its REST API exports them, read
//! as this crate's with their jobs mapped to Rust receivers ([`read_nautobot_catalog`]).

mod catalog;
mod delivery;

pub use catalog::{JobMapping, NautobotCatalog, NautobotCatalogError, Unmapped, read_nautobot_catalog};
pub use delivery::{NAUTOBOT_DETAIL, NautobotDelivery};
