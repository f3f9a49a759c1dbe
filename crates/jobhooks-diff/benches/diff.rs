//! Criterion benches of the diff engine. The benchmark issue adds the peer libraries and corpus.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use serde_json::{Value, json};

fn device(fields: usize, changed: usize) -> Value {
    let mut map = serde_json::Map::new();
    for i in 0..fields {
        let value = if i < changed { json!(format!("changed-{i}")) } else { json!(format!("value-{i}")) };
        map.insert(format!("field_{i:02}"), value);
    }
    Value::Object(map)
}

fn bench_diff(c: &mut Criterion) {
    let (pre, post) = (device(30, 0), device(30, 1));
    c.bench_function("snapshots/device_30_fields_1_changed", |b| {
        b.iter(|| jobhooks_diff::snapshots(Some(black_box(&pre)), Some(black_box(&post))))
    });
    c.bench_function("deep_diff/device_30_fields_1_changed", |b| {
        b.iter(|| jobhooks_diff::deep_diff(black_box(&pre), black_box(&post)))
    });
}

criterion_group!(benches, bench_diff);
criterion_main!(benches);
