//! `cargo xtask bench [--quick]`: runs every bench, then writes `target/bench/summary.json` and the
//! figures table of `docs/benchmarks.md`.
//!
//! The benches measure; this file only reads what they wrote (criterion's `estimates.json`, the
//! JSON of `benches/load.rs` and the `match.json` of the store's commit bench) and states each
//! metric's target and baseline.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::cargo;

/// Where the table in `docs/benchmarks.md` starts and ends.
const TABLE_BEGIN: &str = "<!-- bench-table:begin -->";
const TABLE_END: &str = "<!-- bench-table:end -->";

/// The device records of the diff corpus (target 1.5), and the rest (target 1.0).
const DEVICE_CASES: [&str; 2] = ["diff_device30_1", "diff_device30_5"];
const OTHER_CASES: [&str; 3] = ["diff_tags50_remove1", "diff_custom_fields", "diff_doc_1mb"];
const PEERS: [&str; 3] = ["json_patch", "treediff", "serde_json_diff"];

struct Metric {
    name: &'static str,
    value: f64,
    unit: &'static str,
    target: &'static str,
    met: bool,
    baseline: String,
    how: String,
    detail: Value,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err("usage: cargo xtask bench [--quick]".to_owned()),
    };
    let root = crate::root()?;
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out_env = out.to_string_lossy().into_owned();
    let mut env = vec![("JOBHOOKS_BENCH_OUT", out_env.as_str())];
    if quick {
        env.push(("JOBHOOKS_BENCH_QUICK", "1"));
    }
    let postgres = crate::postgres_for_tests()?;
    env.push(("JOBHOOKS_TEST_PG", postgres.as_str()));
    for (package, bench) in [
        ("jobhooks-diff", "diff"),
        ("jobhooks-store", "commit"),
        ("jobhooks-tests", "e2e"),
        ("jobhooks-tests", "load"),
        ("jobhooks-tests", "pg"),
        ("jobhooks-tests", "pg_scale"),
        ("jobhooks-tests", "api"),
        ("jobhooks-tests", "ui"),
        ("jobhooks-tests", "change_log"),
    ] {
        cargo(&["bench", "--quiet", "--package", package, "--bench", bench], &env)?;
    }

    let criterion = root.join("target/criterion");
    let metrics = metrics(&criterion, &out)?;
    let machine = machine();
    let command = if quick { "cargo xtask bench --quick" } else { "cargo xtask bench" };
    let summary = json!({
        "machine": machine,
        "command": command,
        "metrics": metrics.iter().map(|m| (m.name.to_owned(), json!({
            "value": m.value, "unit": m.unit, "target": m.target, "met": m.met,
            "baseline": m.baseline, "how": m.how, "detail": m.detail,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    let summary_path = out.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(&summary_path, text + "\n").map_err(|e| format!("cannot write {}: {e}", summary_path.display()))?;
    refresh_table(&root.join("docs/benchmarks.md"), &machine, command, &metrics)?;
    println!("wrote {} and docs/benchmarks.md", summary_path.display());
    for m in &metrics {
        println!(
            "{:<24} {:>10.3} {:<14} target {:<10} {}",
            m.name,
            m.value,
            m.unit,
            m.target,
            if m.met { "met" } else { "NOT MET" }
        );
    }
    Ok(())
}

/// The median time of one criterion benchmark, in nanoseconds.
fn median_ns(criterion: &Path, group: &str, function: &str) -> Result<f64, String> {
    let path = criterion.join(group).join(function).join("new/estimates.json");
    let estimates = read_json(&path)?;
    estimates["median"]["point_estimate"].as_f64().ok_or_else(|| format!("{} has no median", path.display()))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

fn metrics(criterion: &Path, out: &Path) -> Result<Vec<Metric>, String> {
    let mut metrics = Vec::new();

    // Diff: the fastest peer's median divided by ours, per document.
    let mut ratios = serde_json::Map::new();
    let mut ratio_of = |case: &str| -> Result<f64, String> {
        let ours = median_ns(criterion, case, "jobhooks")?;
        let mut fastest = ("", f64::INFINITY);
        for peer in PEERS {
            let time = median_ns(criterion, case, peer)?;
            if time < fastest.1 {
                fastest = (peer, time);
            }
        }
        let ratio = fastest.1 / ours;
        ratios.insert(
            case.to_owned(),
            json!({"ratio": ratio, "ours_ns": ours, "fastest_peer": fastest.0, "peer_ns": fastest.1}),
        );
        Ok(ratio)
    };
    let device = DEVICE_CASES.iter().map(|c| ratio_of(c)).collect::<Result<Vec<_>, _>>()?;
    let others = OTHER_CASES.iter().map(|c| ratio_of(c)).collect::<Result<Vec<_>, _>>()?;
    let device_min = device.iter().copied().fold(f64::INFINITY, f64::min);
    let all_min = others.iter().copied().fold(device_min, f64::min);
    metrics.push(Metric {
        name: "diff_vs_fastest_peer",
        value: device_min,
        unit: "ratio",
        target: ">= 1.5 on device records, never < 1.0",
        met: device_min >= 1.5 && all_min >= 1.0,
        baseline: "fastest of json_patch::diff (json-patch 5), treediff 5 with a Recorder, serde_json_diff::values 0.2".into(),
        how: format!(
            "criterion medians, crates/jobhooks-diff/benches/diff.rs; value = lowest ratio over the device records; lowest over the whole corpus {all_min:.2}"
        ),
        detail: Value::Object(ratios),
    });

    let snapshots_us = median_ns(criterion, "snapshots", "device30_1")? / 1_000.0;
    metrics.push(Metric {
        name: "snapshots_us_per_record",
        value: snapshots_us,
        unit: "µs",
        target: "< 1",
        met: snapshots_us < 1.0,
        baseline: "Nautobot 3.2.7 get_snapshots(): about 1,200 µs per update (one database query)".into(),
        how: "criterion median of jobhooks_diff::snapshots on a 30-field record with one field changed".into(),
        detail: json!({}),
    });

    let matching = read_json(&out.join("match.json"))?;
    let median_of = |field: &str| matching[field].as_f64().ok_or(format!("match.json has no {field}"));
    let (ten, ten_thousand) = (median_of("hooks_10_ns")?, median_of("hooks_10000_ns")?);
    let ratio = ten_thousand / ten;
    metrics.push(Metric {
        name: "match_10k_vs_10_hooks",
        value: ratio,
        unit: "ratio",
        target: "<= 1.2",
        met: ratio <= 1.2,
        baseline: "the same commit with 10 hooks".into(),
        how: "medians of single commits (background flush) alternating between a store with 10,000 hooks and one with 10, all but one on other content types, every hook with a condition; crates/jobhooks-store/benches/commit.rs, match/interleaved".into(),
        detail: json!({"hooks_10_us": ten / 1_000.0, "hooks_10000_us": ten_thousand / 1_000.0}),
    });

    let conditions_us = median_ns(criterion, "conditions", "hooks100")? / 1_000.0;
    let distinct_patterns_us = median_ns(criterion, "conditions", "hooks100_distinct_patterns")? / 1_000.0;
    metrics.push(Metric {
        name: "conditions_us_per_change",
        value: conditions_us,
        unit: "µs",
        target: "< 5",
        met: conditions_us < 5.0,
        baseline: "Nautobot has no hook conditions; NetBox evaluates an event rule's conditions in Python per rule".into(),
        how: "criterion median of a HookMatcher (as the sled store keeps per content type and action) deciding one 30-field device update against 100 hooks on devices, each with a condition none admits (a third read the differences, a third list changed fields and match one shared regex); crates/jobhooks-store/benches/commit.rs, conditions/hooks100; the detail has the same with a regex of its own per hook".into(),
        detail: json!({"distinct_patterns_us": distinct_patterns_us}),
    });

    let (store, raw) = (median_ns(criterion, "group64", "store_commit")?, median_ns(criterion, "group64", "raw_sled")?);
    let ratio = raw / store;
    metrics.push(Metric {
        name: "commit_vs_raw_sled",
        value: ratio,
        unit: "ratio",
        target: ">= 0.5",
        met: ratio >= 0.5,
        baseline: format!(
            "raw sled: the records of a real commit, one batch per commit, 64 tasks, same group flush: {:.0} commits/s",
            64e9 / raw
        ),
        how: format!(
            "criterion medians, group64 (64 concurrent committers, group commit); store {:.0} commits/s",
            64e9 / store
        ),
        detail: json!({"store_commits_per_s": 64e9 / store, "raw_commits_per_s": 64e9 / raw}),
    });

    let (runs, raw_pattern) = (median_ns(criterion, "e2e", "runs")?, median_ns(criterion, "e2e", "raw_sled_pattern")?);
    let (runs_per_s, raw_per_s) = (64e9 / runs, 64e9 / raw_pattern);
    // Each half alone: if the machine's capacity is what binds, running both costs the sum of
    // their times per change.
    let (commits_alone, drain_alone) = (64e9 / store, 64e9 / median_ns(criterion, "e2e", "drain_queued")?);
    let both_halves = 1.0 / (1.0 / commits_alone + 1.0 / drain_alone);
    metrics.push(Metric {
        name: "e2e_runs_per_s",
        value: runs_per_s,
        unit: "changes/s",
        target: ">= 10000",
        met: runs_per_s >= 10_000.0,
        baseline: format!(
            "raw sled doing the issue's naive pattern in the same run: {raw_per_s:.0}/s (we reach {:.2} of it); Nautobot 3.2.7 + Celery: about 21/s. Each half alone: commits {commits_alone:.0}/s, draining a queue {drain_alone:.0}/s, so {both_halves:.0}/s for both on one machine",
            runs_per_s / raw_per_s
        ),
        how: "criterion median of e2e/runs: 64 committers, 30-field device updates, one hook, trivial receiver, durable results, drained; tests/benches/e2e.rs".into(),
        detail: json!({
            "raw_sled_pattern_per_s": raw_per_s,
            "ratio_to_raw_pattern": runs_per_s / raw_per_s,
            "commits_alone_per_s": commits_alone,
            "drain_alone_per_s": drain_alone,
            "both_halves_one_after_the_other_per_s": both_halves,
        }),
    });

    let best_per_s = 64e9 / median_ns(criterion, "e2e", "raw_sled_best")?;
    let to_best = runs_per_s / best_per_s;
    let costs = read_json(&out.join("e2e_costs.json"))?;
    let cost = |name: &str| {
        let of = &costs[name];
        format!(
            "{:.1} µs CPU and {:.0} bytes written",
            of["cpu_us_per_change"].as_f64().unwrap_or(f64::NAN),
            of["bytes_written_per_change"].as_f64().unwrap_or(f64::NAN)
        )
    };
    metrics.push(Metric {
        name: "e2e_vs_raw_sled_best",
        value: to_best,
        unit: "ratio",
        target: ">= 0.8",
        met: to_best >= 0.8,
        baseline: format!(
            "raw sled as a sled expert would write the same guarantees, in the same run: {best_per_s:.0}/s (the naive pattern: {raw_per_s:.0}/s). Per change: the store {}, the expert's program {}, the naive pattern {}",
            cost("runs"),
            cost("raw_sled_best"),
            cost("raw_sled_pattern")
        ),
        how: "criterion medians of e2e/runs and e2e/raw_sled_best: the same 64 committers and 30-field devices; raw_sled_best writes per change a record, the object and a run key in one batch and one flush per commit group (one writer task), hands runs to the workers in memory, and completes them one batch and one flush per worker batch; tests/benches/e2e.rs".into(),
        detail: json!({"e2e_runs_per_s": runs_per_s, "raw_sled_best_per_s": best_per_s, "per_change": costs}),
    });

    let latency = read_json(&out.join("latency.json"))?;
    let p99 = latency["p99_ms"].as_f64().ok_or("latency.json has no p99_ms")?;
    metrics.push(Metric {
        name: "e2e_p99_ms",
        value: p99,
        unit: "ms",
        target: "< 5",
        met: p99 < 5.0,
        baseline: "the offered load itself: 1,000 changes/s for 30 s".into(),
        how: format!(
            "commit returned -> receiver started, HDR histogram over {} samples: p50 {} ms, p999 {} ms; tests/benches/load.rs",
            latency["samples"], latency["p50_ms"], latency["p999_ms"]
        ),
        detail: latency,
    });

    let page = read_json(&out.join("ui.json"))?;
    let page_p99 = page["page_p99_ms"].as_f64().ok_or("ui.json has no page_p99_ms")?;
    metrics.push(Metric {
        name: "ui_object_page_p99_ms",
        value: page_p99,
        unit: "ms",
        target: "< 20",
        met: page_p99 < 20.0,
        baseline: format!(
            "the API's GET of the same object in the same run: p50 {} ms, p99 {} ms",
            page["api_p50_ms"], page["api_p99_ms"]
        ),
        how: format!(
            "GET /objects/dcim.device/busy/ (a device with {} changes, 20 buttons) as a logged-in user, alternated with the API's GET, {} samples each, HDR histogram: p50 {} ms; tests/benches/ui.rs",
            page["changes"], page["samples"], page["page_p50_ms"]
        ),
        detail: page,
    });

    let log = read_json(&out.join("change_log.json"))?;
    let filtered_p99 = log["filtered_p99_ms"].as_f64().ok_or("change_log.json has no filtered_p99_ms")?;
    metrics.push(Metric {
        name: "change_log_filtered_page_p99_ms",
        value: filtered_p99,
        unit: "ms",
        target: "< 5",
        met: filtered_p99 < 5.0,
        baseline: format!(
            "one change by id in the same run: p50 {} ms, p99 {} ms; a far offset of the whole log (?offset=999999999): p99 {} ms",
            log["by_id_p50_ms"], log["by_id_p99_ms"], log["far_offset_p99_ms"]
        ),
        how: format!(
            "GET /api/extras/object-changes/?changed_object_type=…&changed_object_id=…&limit=50 on a sled log of {} changes of {} devices, {} samples, HDR histogram: p50 {} ms; tests/benches/change_log.rs",
            log["changes"], log["devices"], log["samples"], log["filtered_p50_ms"]
        ),
        detail: log.clone(),
    });

    let export = &log["export"];
    let export_growth = export["streamed_rss_growth_mb"].as_f64().ok_or("change_log.json has no export")?;
    metrics.push(Metric {
        name: "export_rss_growth_mb",
        value: export_growth,
        unit: "MB",
        target: "< 100 (flat: a page of records, the store's cache)",
        met: export_growth < 100.0,
        baseline: format!(
            "the same export held whole in memory (transfer::export) in the same run: {:.0} MB of growth; the export is {:.0} MB",
            export["collected_rss_growth_mb"].as_f64().unwrap_or(f64::NAN),
            export["export_mb"].as_f64().unwrap_or(f64::NAN)
        ),
        how: format!(
            "GET /api/export/ of the sled store of {} changes, read to its end by a client in the same process, resident memory sampled every 5 ms; tests/benches/change_log.rs",
            log["changes"]
        ),
        detail: export.clone(),
    });

    let rss = read_json(&out.join("queue_rss.json"))?;
    let peak = rss["peak_rss_mb"].as_f64().ok_or("queue_rss.json has no peak_rss_mb")?;
    metrics.push(Metric {
        name: "rss_1m_queued_mb",
        value: peak,
        unit: "MB",
        target: "< 200",
        met: peak < 200.0,
        baseline: format!(
            "raw sled opening the same store and reading the queue's keys: {:.0} MB peak; then writing what draining as many runs writes: {:.0} MB",
            rss["raw_sled_open_peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
            rss["raw_sled_drain_peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
        ),
        how: "peak RSS (VmHWM) of a fresh process opening a store with 1,000,000 pending runs and draining 20,000 of them; tests/benches/load.rs".into(),
        detail: rss,
    });
    pg_metrics(criterion, out, &mut metrics)?;

    let (api, library) = (median_ns(criterion, "api", "e2e_changes")?, median_ns(criterion, "api", "library_changes")?);
    let (api_per_s, library_per_s) = (64e9 / api, 64e9 / library);
    let ratio = api_per_s / library_per_s;
    metrics.push(Metric {
        name: "api_e2e_changes_per_s",
        value: api_per_s,
        unit: "changes/s",
        target: ">= 0.5 of the library",
        met: ratio >= 0.5,
        baseline: format!(
            "the same writes through the library (a ChangeSession per write) in the same run: {library_per_s:.0}/s (the API reaches {ratio:.2} of it); Nautobot 3.2.7's API + Celery: about 21/s"
        ),
        how: "criterion medians of api/e2e_changes and api/library_changes: 64 HTTP clients PUT 30-field devices to a server on 127.0.0.1 (sled store, dispatcher beside it, one hook, trivial receiver), drained; tests/benches/api.rs".into(),
        detail: json!({"library_per_s": library_per_s, "ratio_to_library": ratio}),
    });
    Ok(metrics)
}

/// The PostgreSQL store's figures: `tests/benches/pg.rs` and `tests/benches/pg_scale.rs`.
fn pg_metrics(criterion: &Path, out: &Path, metrics: &mut Vec<Metric>) -> Result<(), String> {
    let per_s = |function: &str| median_ns(criterion, "pg", function).map(|ns| 64e9 / ns);
    let (ours, raw, graphile) = (per_s("e2e_changes")?, per_s("raw_sql")?, per_s("graphile_worker")?);
    let (of_raw, of_graphile) = (ours / raw, ours / graphile);
    metrics.push(Metric {
        name: "pg_e2e_changes_per_s",
        value: ours,
        unit: "changes/s",
        target: ">= 2000, >= 0.7 of raw SQL, >= 1.0 of graphile_worker",
        met: ours >= 2_000.0 && of_raw >= 0.7 && of_graphile >= 1.0,
        baseline: format!(
            "in the same run: raw SQL doing the naive pattern with the same client {raw:.0}/s (we reach {of_raw:.2} of it; it keeps no per-object order); graphile_worker 0.14 enqueueing and completing empty jobs {graphile:.0}/s (we reach {of_graphile:.2} of it); Nautobot 3.2.7 + Celery: about 21/s"
        ),
        how: "criterion medians of pg/e2e_changes, pg/raw_sql and pg/graphile_worker: 64 committers, 30-field device updates, one hook, trivial receiver, an in-process dispatcher with the default configuration, PostgreSQL's default durability; tests/benches/pg.rs".into(),
        detail: json!({"raw_sql_per_s": raw, "graphile_worker_per_s": graphile, "ratio_to_raw_sql": of_raw, "ratio_to_graphile_worker": of_graphile}),
    });

    // The ratios the targets name come from the alternating trials; criterion's medians beside.
    let alternated = read_json(&out.join("pg_alternated.json"))?;
    let ratio = |name: &str| alternated[name].as_f64().ok_or(format!("pg_alternated.json has no {name}"));
    let median = |name: &str| alternated["median_per_s"][name].as_f64().unwrap_or(f64::NAN);
    let trials =
        format!("{} alternating trials of {} changes each", alternated["trials"], alternated["changes_per_trial"]);
    let (best, tuned, long_run) =
        (per_s("raw_sql_best")?, per_s("graphile_worker_tuned")?, per_s("e2e_changes_long_run")?);
    let of_best = ratio("pg_vs_raw_sql_best")?;
    metrics.push(Metric {
        name: "pg_vs_raw_sql_best",
        value: of_best,
        unit: "ratio",
        target: ">= 0.7",
        met: of_best >= 0.7,
        baseline: format!(
            "medians of {trials}: pg/e2e_changes {:.0}/s, pg/raw_sql_best {:.0}/s (criterion: {ours:.0}/s and {best:.0}/s)",
            median("e2e_changes"),
            median("raw_sql_best")
        ),
        how: "pg_alternated.json: pg/e2e_changes against the expert's SQL for the same guarantees (application-side group commit, one statement per group with data-modifying CTEs over unnest arrays, four groups in flight; claims with SKIP LOCKED and completions batched by 32); tests/benches/pg.rs".into(),
        detail: json!({"raw_sql_best_per_s": best, "alternated": alternated.clone()}),
    });
    let of_tuned = ratio("pg_vs_graphile_worker_tuned")?;
    metrics.push(Metric {
        name: "pg_vs_graphile_worker_tuned",
        value: of_tuned,
        unit: "ratio",
        target: ">= 1.0",
        met: of_tuned >= 1.0,
        baseline: format!(
            "medians of {trials}: pg/e2e_changes {:.0}/s, pg/graphile_worker_tuned {:.0}/s (criterion: {ours:.0}/s and {tuned:.0}/s; graphile_worker with its defaults {graphile:.0}/s)",
            median("e2e_changes"),
            median("graphile_worker_tuned")
        ),
        how: "pg_alternated.json: pg/e2e_changes against graphile_worker 0.14 with the sqlx driver, a local queue of 64, completions batched every 2 ms and enqueues batched with add_jobs, its jobs empty (it stores no change and no object); tests/benches/pg.rs".into(),
        detail: json!({"graphile_worker_tuned_per_s": tuned, "graphile_worker_per_s": graphile}),
    });
    let long_vs_fresh = ratio("pg_long_run_vs_fresh")?;
    metrics.push(Metric {
        name: "pg_long_run_vs_fresh",
        value: long_vs_fresh,
        unit: "ratio",
        target: ">= 0.8",
        met: long_vs_fresh >= 0.8,
        baseline: format!(
            "medians of {trials}: pg/e2e_changes_long_run {:.0}/s, pg/e2e_changes on a fresh database {:.0}/s (criterion: {long_run:.0}/s and {ours:.0}/s)",
            median("e2e_changes_long_run"),
            median("e2e_changes")
        ),
        how: "pg_alternated.json: pg/e2e_changes on a database that already ran 1,000,000 changes with their runs (100,000 in quick mode; retention off) against a fresh one; tests/benches/pg.rs".into(),
        detail: json!({"long_run_per_s": long_run, "fresh_per_s": ours}),
    });

    let scale = read_json(&out.join("pg_scale.json"))?;
    let ratio = scale["ratio_2_vs_1"].as_f64().ok_or("pg_scale.json has no ratio_2_vs_1")?;
    metrics.push(Metric {
        name: "pg_scale_2_vs_1",
        value: ratio,
        unit: "ratio",
        target: "> 1 (or shows where PostgreSQL binds)",
        met: ratio > 1.0,
        baseline: format!(
            "one dispatcher process: {:.0} changes/s; two: {:.0} changes/s (medians of {} trials each, alternating)",
            scale["one_process_per_s"].as_f64().unwrap_or(f64::NAN),
            scale["two_processes_per_s"].as_f64().unwrap_or(f64::NAN),
            scale["trials"]
        ),
        how: "64 committers in the bench process, dispatchers in 1 or 2 other processes on one database; tests/benches/pg_scale.rs, scale".into(),
        detail: scale,
    });

    let latency = read_json(&out.join("pg_latency.json"))?;
    let p99 = latency["p99_ms"].as_f64().ok_or("pg_latency.json has no p99_ms")?;
    let ms = |name: &str| latency[name].as_f64().unwrap_or(f64::NAN);
    metrics.push(Metric {
        name: "pg_p99_ms",
        value: p99,
        unit: "ms",
        target: "< 20",
        met: p99 < 20.0,
        baseline: format!(
            "the commit itself, call to return: p50 {:.1} ms, p99 {:.1} ms; its return to the receiver's start: p50 {:.1} ms, p99 {:.1} ms; the naive raw-SQL commit at the same load in the same run: p50 {:.1} ms, p99 {:.1} ms",
            ms("commit_p50_ms"),
            ms("commit_p99_ms"),
            ms("delivery_p50_ms"),
            ms("delivery_p99_ms"),
            ms("raw_commit_p50_ms"),
            ms("raw_commit_p99_ms")
        ),
        how: format!(
            "commit call -> receiver start in another process, 500 changes/s offered for {} s after 1 s unrecorded, HDR histogram over {} samples: p50 {:.1} ms, p999 {:.1} ms; tests/benches/pg_scale.rs, latency",
            latency["seconds"],
            latency["samples"],
            ms("p50_ms"),
            ms("p999_ms")
        ),
        detail: latency,
    });

    let load = read_json(&out.join("pg_latency_load.json"))?;
    let points = load["points"].as_array().ok_or("pg_latency_load.json has no points")?;
    let at = |fraction: f64| points.iter().find(|point| point["fraction"].as_f64() == Some(fraction));
    let at_80 = at(0.8).ok_or("pg_latency_load.json has no point at 80%")?;
    let p99_at_80 = at_80["p99_ms"].as_f64().ok_or("pg_latency_load.json has no p99_ms at 80%")?;
    let point = |point: Option<&serde_json::Value>| {
        point.map_or_else(String::new, |point| {
            let ms = |name: &str| point[name].as_f64().unwrap_or(f64::NAN);
            format!(
                "at {:.0}/s: ours p50 {:.1} / p99 {:.1} / p999 {:.1} ms, raw_sql_best p50 {:.1} / p99 {:.1} / p999 {:.1} ms ({} samples each)",
                ms("offered_per_s"),
                ms("p50_ms"),
                ms("p99_ms"),
                ms("p999_ms"),
                ms("raw_sql_best_p50_ms"),
                ms("raw_sql_best_p99_ms"),
                ms("raw_sql_best_p999_ms"),
                point["samples"]
            )
        })
    };
    metrics.push(Metric {
        name: "pg_p99_ms_at_80pct",
        value: p99_at_80,
        unit: "ms",
        target: "< 50",
        met: p99_at_80 < 50.0,
        baseline: format!(
            "capacity {:.0}/s; 50%: {}; 80%: {}",
            load["capacity_per_s"].as_f64().unwrap_or(f64::NAN),
            point(at(0.5)),
            point(Some(at_80))
        ),
        how: "commit call -> receiver start in another process (raw_sql_best: commit call -> its run's claim), offered at 50% and 80% of the store's capacity measured first in the same run, over 64 devices, store and raw_sql_best one after the other at each point, after 1 s unrecorded; tests/benches/pg_scale.rs, load".into(),
        detail: load,
    });
    Ok(())
}

/// A one-line description of this machine: CPU, cores, kernel, rustc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!("{cpu}, {cores} cores, Linux {}, {}", output("uname", &["-r"]), output("rustc", &["--version"]))
}

/// Replaces the table between the markers of `docs/benchmarks.md` with this run's figures.
fn refresh_table(doc: &PathBuf, machine: &str, command: &str, metrics: &[Metric]) -> Result<(), String> {
    let text = std::fs::read_to_string(doc).map_err(|e| format!("cannot read {}: {e}", doc.display()))?;
    let (Some(begin), Some(end)) = (text.find(TABLE_BEGIN), text.find(TABLE_END)) else {
        return Err(format!("{} has no {TABLE_BEGIN} … {TABLE_END} markers", doc.display()));
    };
    let mut table = format!(
        "{TABLE_BEGIN}\nMachine: {machine}. Command: `{command}`.\n\n| metric | value | target | met | baseline |\n|---|---|---|---|---|\n"
    );
    for m in metrics {
        table.push_str(&format!(
            "| `{}` | {:.3} {} | {} | {} | {} |\n",
            m.name,
            m.value,
            m.unit,
            m.target,
            if m.met { "yes" } else { "**no**" },
            m.baseline.replace('|', "/")
        ));
    }
    let updated = format!("{}{table}{}", &text[..begin], &text[end..]);
    std::fs::write(doc, updated).map_err(|e| format!("cannot write {}: {e}", doc.display()))
}
