//! The storage contract of jobhooks as a test suite: what a store must do to serve the
//! dispatcher, the command line and the server, checked the same way on every store.
//!
//! A store runs the kit from one of its integration tests with [`store_contract!`], giving an
//! async function that makes a fresh, empty store and whatever keeps it alive (a temporary
//! directory, a throwaway database):
//!
//! ```
//! use jobhooks_store_memory::MemoryStore;
//!
//! async fn fresh() -> (MemoryStore, ()) {
//!     (MemoryStore::new(), ())
//! }
//!
//! jobhooks_conformance::store_contract!(fresh);
//! # fn main() {}
//! ```
//!
//! Each case of [`cases`] becomes one `#[test]`, named after the case, so a failure names the
//! rule that broke; [`CASES`] lists them (a store's closing note gives the count it passes).
//! `cargo test -p my-store` runs them. The queue's state machine is also checked as a proptest
//! against a model ([`cases::queue_follows_its_model`]); `PROPTEST_CASES` sets how many
//! sequences it tries.

pub mod cases;
mod support;

pub use support::{BUTTON_JOB, HOOK_JOB, LEASE};

/// The name of every case, in the order [`store_contract!`] declares them.
pub const CASES: [&str; 28] = [
    "catalog_validates_with_nautobots_messages",
    "catalog_records_have_ids_and_times",
    "catalog_lists_are_filtered_in_the_store",
    "job_sync_follows_its_mode",
    "restoring_jobs_enables_what_a_sync_disabled",
    "a_job_under_a_former_class_path_is_renamed",
    "users_are_stored_and_names_checked",
    "tokens_are_kept_by_hash_and_revoked",
    "passwords_and_login_sessions_are_kept_and_ended",
    "commits_record_changes_and_objects",
    "hook_conditions_decide_at_commit_and_no_op_saves_record_nothing",
    "webhook_hooks_and_their_runs_keep_their_hook",
    "record_only_commits_leave_the_repository_alone",
    "changes_are_found_by_object_request_and_time",
    "changes_are_found_by_every_filter",
    "a_change_and_its_runs_are_committed_together",
    "a_claim_reads_what_its_runs_start_with",
    "runs_of_one_object_start_one_at_a_time_in_order",
    "leases_lapse_and_are_taken_over",
    "released_runs_count_the_attempt_and_given_back_runs_do_not",
    "retries_wait_for_their_time_and_hold_the_line",
    "dead_letters_free_the_line_and_replays_join_its_back",
    "a_success_commits_its_writes_and_a_failure_drops_them",
    "results_are_listed_newest_first_and_filtered",
    "retention_prunes_only_what_it_may",
    "walks_page_by_page_through_every_record",
    "work_is_signalled",
    "lines_keep_moving_under_concurrent_commits_and_completions",
];

/// Declares one `#[test]` per case of the contract (and the queue proptest), each on a store
/// made by `$fresh`: an `async fn() -> (S, G)` where `S` implements every port and `G` keeps
/// what the store needs alive until the test ends.
#[macro_export]
macro_rules! store_contract {
    ($fresh:path) => {
        $crate::store_contract!(@cases $fresh;
            catalog_validates_with_nautobots_messages,
            catalog_records_have_ids_and_times,
            catalog_lists_are_filtered_in_the_store,
            job_sync_follows_its_mode,
            restoring_jobs_enables_what_a_sync_disabled,
            a_job_under_a_former_class_path_is_renamed,
            users_are_stored_and_names_checked,
            tokens_are_kept_by_hash_and_revoked,
            passwords_and_login_sessions_are_kept_and_ended,
            commits_record_changes_and_objects,
            hook_conditions_decide_at_commit_and_no_op_saves_record_nothing,
            webhook_hooks_and_their_runs_keep_their_hook,
            record_only_commits_leave_the_repository_alone,
            changes_are_found_by_object_request_and_time,
            changes_are_found_by_every_filter,
            a_change_and_its_runs_are_committed_together,
            a_claim_reads_what_its_runs_start_with,
            runs_of_one_object_start_one_at_a_time_in_order,
            leases_lapse_and_are_taken_over,
            released_runs_count_the_attempt_and_given_back_runs_do_not,
            retries_wait_for_their_time_and_hold_the_line,
            dead_letters_free_the_line_and_replays_join_its_back,
            a_success_commits_its_writes_and_a_failure_drops_them,
            results_are_listed_newest_first_and_filtered,
            retention_prunes_only_what_it_may,
            walks_page_by_page_through_every_record,
            work_is_signalled,
            lines_keep_moving_under_concurrent_commits_and_completions,
        );

        #[test]
        fn queue_follows_its_model() {
            $crate::cases::queue_follows_its_model(|| async { $fresh().await });
        }

        #[test]
        fn a_snapshot_restores_into_a_new_store_as_it_was() {
            $crate::run_case(|| async {
                let (source, source_guard) = $fresh().await;
                let (target, target_guard) = $fresh().await;
                $crate::cases::a_snapshot_restores_into_a_new_store_as_it_was(&source, &target).await;
                drop((source, target, source_guard, target_guard));
            });
        }
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case(|| async {
                    let (store, guard) = $fresh().await;
                    $crate::cases::$case(&store).await;
                    drop(store);
                    drop(guard);
                });
            }
        )*
    };
}

/// Runs one case on a fresh multi-threaded runtime (two workers, as CI machines have).
#[doc(hidden)]
pub fn run_case<F, Fut>(case: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the case");
    runtime.block_on(case());
}
