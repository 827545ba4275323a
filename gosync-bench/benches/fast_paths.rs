//! Criterion microbenchmarks of fast paths that take about a nanosecond, where the
//! interleaved `gosync-bench` harness cannot separate implementations: a completed `Once`,
//! a computed `OnceValue`, and an uncontended lock/unlock.
//!
//! Run: `cargo bench -p gosync-bench --bench fast_paths` (criterion prints each median with
//! its confidence interval; compare the rows of one group).

use std::hint::black_box;
use std::sync::{LazyLock, OnceLock};

use criterion::{criterion_group, criterion_main, Criterion};

fn once_done(c: &mut Criterion) {
    let mut g = c.benchmark_group("once_done");
    let go = gosync::sync::Once::new();
    go.call_once(|| {});
    g.bench_function("gosync Once::call_once", |b| {
        b.iter(|| black_box(&go).call_once(|| unreachable!()))
    });
    let std_once = std::sync::Once::new();
    std_once.call_once(|| {});
    g.bench_function("std Once::call_once", |b| {
        b.iter(|| black_box(&std_once).call_once(|| unreachable!()))
    });
    g.finish();
}

fn once_value(c: &mut Criterion) {
    let mut g = c.benchmark_group("once_value_get");
    let go = gosync::sync::OnceValue::new(|| 42u64);
    go.get();
    g.bench_function("gosync OnceValue::get", |b| {
        b.iter(|| *black_box(&go).get())
    });
    let lazy = LazyLock::new(|| 42u64);
    LazyLock::force(&lazy);
    g.bench_function("std LazyLock deref", |b| b.iter(|| **black_box(&lazy)));
    let cell = OnceLock::new();
    cell.get_or_init(|| 42u64);
    g.bench_function("std OnceLock::get_or_init", |b| {
        b.iter(|| *black_box(&cell).get_or_init(|| unreachable!()))
    });
    g.finish();
}

fn uncontended_lock(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_uncontended");
    let go = gosync::sync::Mutex::new(0u64);
    g.bench_function("gosync Mutex", |b| b.iter(|| *black_box(&go).lock() += 1));
    let std_m = std::sync::Mutex::new(0u64);
    g.bench_function("std Mutex", |b| {
        b.iter(|| *black_box(&std_m).lock().unwrap() += 1)
    });
    let pl = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot Mutex", |b| {
        b.iter(|| *black_box(&pl).lock() += 1)
    });
    g.finish();
}

criterion_group!(benches, once_done, once_value, uncontended_lock);
criterion_main!(benches);
