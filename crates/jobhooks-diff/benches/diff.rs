//! The diff engine against the fastest peer, measured side by side in one run.
//!
//! Each `diff_<case>` group times our [`jobhooks_diff::deep_diff`] and three peers on the same
//! pair of documents: `json_patch::diff` (json-patch 5), `treediff::diff` with a `Recorder`
//! (treediff 5) and `serde_json_diff::values` (serde_json_diff 0.2). Each library is called
//! through its natural API (serde_json_diff takes its inputs by value; the copies are made outside
//! the timing). `cargo xtask bench` divides
//! the fastest peer's median by ours (`diff_vs_fastest_peer`).
//!
//! `snapshots/device30_1` times [`jobhooks_diff::snapshots`] on a 30-field record with one field changed.
//!
//! `JOBHOOKS_BENCH_QUICK=1` shortens the measurement (`cargo xtask bench --quick`).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

// The allocator the `jobhooks` binary runs with (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use serde_json::{Value, json};

/// A device record as Nautobot serializes it: 30 fields of mixed kinds, nested references
/// included. Fields `0..changed` of the changeable ones differ between `round`s.
fn device(changed: usize, round: u32) -> Value {
    let mut record = json!({
        "id": "3c8e9f1a-6b7d-4e2f-9a1b-2c3d4e5f6a7b",
        "object_type": "dcim.device",
        "display": "edge-router-01",
        "url": "/api/dcim/devices/3c8e9f1a-6b7d-4e2f-9a1b-2c3d4e5f6a7b/",
        "natural_slug": "edge-router-01_site-a_3c8e",
        "face": "front",
        "local_config_context_data": null,
        "local_config_context_data_owner_object_id": null,
        "name": "edge-router-01",
        "serial": "FOC1234X0AB",
        "asset_tag": "A-000123",
        "position": 12,
        "device_redundancy_group_priority": null,
        "vc_position": null,
        "vc_priority": null,
        "comments": "",
        "created": "2026-01-12T08:30:00.000000Z",
        "last_updated": "2026-11-25T10:00:00.000000Z",
        "device_type": {"id": "9d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "object_type": "dcim.devicetype", "url": "/api/dcim/device-types/9d1e/"},
        "status": {"id": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", "object_type": "extras.status", "url": "/api/extras/statuses/1f2e/"},
        "role": {"id": "2a3b4c5d-6e7f-4081-9293-a4b5c6d7e8f9", "object_type": "extras.role", "url": "/api/extras/roles/2a3b/"},
        "tenant": null,
        "platform": {"id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "object_type": "dcim.platform", "url": "/api/dcim/platforms/5e6f/"},
        "location": {"id": "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", "object_type": "dcim.location", "url": "/api/dcim/locations/7c8d/"},
        "rack": {"id": "8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a", "object_type": "dcim.rack", "url": "/api/dcim/racks/8d9e/"},
        "primary_ip4": {"id": "0a1b2c3d-4e5f-4607-8192-a3b4c5d6e7f8", "object_type": "ipam.ipaddress", "url": "/api/ipam/ip-addresses/0a1b/"},
        "primary_ip6": null,
        "cluster": null,
        "virtual_chassis": null,
        "secrets_group": null,
    });
    let changeable = ["name", "serial", "asset_tag", "comments", "face", "position"];
    for field in &changeable[..changed] {
        let value = &mut record[*field];
        let changed_value = match &*value {
            Value::Number(n) => json!(n.as_u64().unwrap_or(0) + u64::from(round)),
            Value::String(s) => json!(format!("{s}-{round}")),
            other => other.clone(),
        };
        *value = changed_value;
    }
    record
}

/// A record whose 50-tag list loses the tag at `missing` (none when `missing` is 50).
fn tagged(missing: usize) -> Value {
    let tags: Vec<Value> = (0..50)
        .filter(|&i| i != missing)
        .map(|i| json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "name": format!("tag-{i}"), "color": "9e9e9e"}))
        .collect();
    json!({"name": "edge-router-01", "tags": tags})
}

/// A record with nested custom fields, three levels deep; `round` changes a few leaves.
fn custom_fields(round: u32) -> Value {
    let mut fields = serde_json::Map::new();
    for i in 0..20 {
        let leaf = if i % 7 == 0 { round } else { 0 };
        fields.insert(
            format!("cf_{i:02}"),
            json!({"owner": {"team": format!("team-{i}"), "contact": {"email": format!("ops{i}@example.com"), "oncall": leaf}},
                   "limits": [i, i * 2, i * 3 + leaf], "enabled": i % 2 == 0}),
        );
    }
    json!({"name": "edge-router-01", "custom_fields": fields})
}

/// A document of about 1 MB: an inventory of interface records; `round` changes one field in every
/// fiftieth record.
fn megabyte(round: u32) -> Value {
    let interfaces: Vec<Value> = (0..2_600)
        .map(|i| {
            let description = if i % 50 == 0 { format!("uplink {round}") } else { "access port".to_owned() };
            json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "name": format!("GigabitEthernet1/0/{i}"),
                   "description": description, "enabled": true, "mtu": 1500, "mode": "access",
                   "mac_address": format!("00:1b:54:{:02x}:{:02x}:01", i / 256, i % 256),
                   "untagged_vlan": {"id": format!("vlan-{}", i % 40), "vid": 100 + i % 40},
                   "tags": ["managed", "monitored"]})
        })
        .collect();
    json!({"device": "core-01", "interfaces": interfaces})
}

/// The corpus, named as the benchmark groups are.
fn corpus() -> Vec<(&'static str, Value, Value)> {
    vec![
        ("diff_device30_1", device(1, 0), device(1, 1)),
        ("diff_device30_5", device(5, 0), device(5, 1)),
        ("diff_tags50_remove1", tagged(50), tagged(17)),
        ("diff_custom_fields", custom_fields(0), custom_fields(1)),
        ("diff_doc_1mb", megabyte(0), megabyte(1)),
    ]
}

fn configured() -> Criterion {
    let criterion = Criterion::default();
    if std::env::var_os("JOBHOOKS_BENCH_QUICK").is_some() {
        criterion.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1))
    } else {
        criterion
    }
}

fn bench_diff(c: &mut Criterion) {
    for (name, before, after) in corpus() {
        let mut group = c.benchmark_group(name);
        group
            .bench_function("jobhooks", |b| b.iter(|| jobhooks_diff::deep_diff(black_box(&before), black_box(&after))));
        group.bench_function("json_patch", |b| b.iter(|| json_patch::diff(black_box(&before), black_box(&after))));
        group.bench_function("treediff", |b| {
            b.iter(|| {
                let mut recorder = treediff::tools::Recorder::default();
                treediff::diff(black_box(&before), black_box(&after), &mut recorder);
                recorder
            })
        });
        group.bench_function("serde_json_diff", |b| {
            // It takes its inputs by value: the copies are made outside the timing.
            b.iter_batched(
                || (before.clone(), after.clone()),
                |(a, b)| serde_json_diff::values(a, b),
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
    let (pre, post) = (device(1, 0), device(1, 1));
    let mut group = c.benchmark_group("snapshots");
    group.bench_function("device30_1", |b| {
        b.iter(|| jobhooks_diff::snapshots(Some(black_box(&pre)), Some(black_box(&post))))
    });
    group.finish();
}

criterion_group! { name = benches; config = configured(); targets = bench_diff }
criterion_main!(benches);
