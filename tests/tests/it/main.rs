//! The workspace's integration tests, in one binary (as ripgrep keeps them) so that CI links them
//! once. Each module is one subject; `crash_mid_run` stays a binary of its own because it runs
//! without the test harness (it kills and restarts itself).
//!
//! Every receiver registered by any module is linked into this binary, so a test that looks at
//! the whole registry filters it to the receivers it is about.

mod approval_warning;
mod crash_harness;
mod dispatch_failures;
mod export;
mod faults;
mod pg_lines;
mod registration;
mod run_tracing;
mod seed_scenarios;
mod snapshots;
mod webhooks;
