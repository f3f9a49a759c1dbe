//! One module per resource the command line acts on: its subcommands and what they do.

pub(crate) mod buttons;
pub(crate) mod changes;
pub(crate) mod hooks;
pub(crate) mod jobs;
pub(crate) mod nautobot;
pub(crate) mod objects;
pub(crate) mod results;
pub(crate) mod transfer;
pub(crate) mod users;
