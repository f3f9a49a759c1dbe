//! Commit throughput: change-context commits against raw sled inserts of the same bytes with the
//! same flush policy, single and grouped (filled in by the benchmark issue).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};

fn bench_placeholder(_c: &mut Criterion) {}

criterion_group!(benches, bench_placeholder);
criterion_main!(benches);
