//! `detect`: what the deadlock detector costs. The same lock workloads for gosync's `Mutex` and
//! `RwMutex`, tracing-mutex's tracing `Mutex`/`RwLock` (the peer: a lock-order detector) and
//! parking_lot (no detector, a control).
//!
//! One binary has gosync built either with the detector or without it, so the comparison of
//! the two builds takes two runs; `scripts/bench-detect.sh` makes both and prints the ratios:
//!
//! ```text
//! cargo run --release -p gosync-bench -- detect --json off.json
//! cargo run --release -p gosync-bench --features detect -- detect --compare off.json
//! ```
//!
//! tracing-mutex and parking_lot rows are the same code in both runs: their ratio between the
//! runs shows the noise, against which gosync's ratio (the detector's cost) is read.
//!
//! Workloads: `Uncontended` (one thread, lock + unlock), `Nested` (one thread holds A while it
//! takes B: the path where the order graph is consulted), `Contended` (one shared lock, all
//! threads), `ReadUncontended` (one thread, read lock + unlock).

use std::hint::black_box;

use crate::harness::{run_parallel, Ctx, Impl};

/// gosync's row keeps one name in both builds so `--compare` pairs them; the run's note
/// says which build it is.
fn gosync_name() -> &'static str {
    "gosync"
}

fn build_name() -> &'static str {
    if gosync::detect::is_enabled() {
        "gosync with the detector (feature deadlock-detection)"
    } else {
        "gosync without the detector (plain build)"
    }
}

/// The family entry point.
pub fn run(ctx: &mut Ctx) {
    ctx.note(format!(
        "detect: this run measures {}; compare with the other build via scripts/bench-detect.sh",
        build_name()
    ));
    single(ctx);
    for &t in &ctx.threads() {
        if t < 2 {
            continue;
        }
        let g = gosync::Mutex::new(0u64);
        let tm = tracing_mutex::stdsync::tracing::Mutex::new(0u64);
        let pl = parking_lot::Mutex::new(0u64);
        ctx.compare(
            "detect",
            "Contended",
            t,
            vec![
                Impl::new(gosync_name(), |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            *g.lock() += 1;
                        }
                    })
                    .into()
                }),
                Impl::new("tracing-mutex", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            *tm.lock().unwrap() += 1;
                        }
                    })
                    .into()
                }),
                Impl::new("parking_lot", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            *pl.lock() += 1;
                        }
                    })
                    .into()
                }),
            ],
        );
    }
}

/// Times `n` runs of `op` on the calling thread.
fn timed(n: u64, mut op: impl FnMut()) -> std::time::Duration {
    let start = std::time::Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed()
}

fn single(ctx: &mut Ctx) {
    let g = gosync::Mutex::new(0u64);
    let tm = tracing_mutex::stdsync::tracing::Mutex::new(0u64);
    let pl = parking_lot::Mutex::new(0u64);
    ctx.compare(
        "detect",
        "Uncontended",
        1,
        vec![
            Impl::new(gosync_name(), |n| {
                timed(n, || *black_box(&g).lock() += 1).into()
            }),
            Impl::new("tracing-mutex", |n| {
                timed(n, || *black_box(&tm).lock().unwrap() += 1).into()
            }),
            Impl::new("parking_lot", |n| {
                timed(n, || *black_box(&pl).lock() += 1).into()
            }),
        ],
    );

    let (ga, gb) = (gosync::Mutex::new(0u64), gosync::Mutex::new(0u64));
    let (ta, tb) = (
        tracing_mutex::stdsync::tracing::Mutex::new(0u64),
        tracing_mutex::stdsync::tracing::Mutex::new(0u64),
    );
    let (pa, pb) = (parking_lot::Mutex::new(0u64), parking_lot::Mutex::new(0u64));
    ctx.compare(
        "detect",
        "Nested",
        1,
        vec![
            Impl::new(gosync_name(), |n| {
                timed(n, || {
                    let mut a = black_box(&ga).lock();
                    *a += *black_box(&gb).lock();
                })
                .into()
            }),
            Impl::new("tracing-mutex", |n| {
                timed(n, || {
                    let mut a = black_box(&ta).lock().unwrap();
                    *a += *black_box(&tb).lock().unwrap();
                })
                .into()
            }),
            Impl::new("parking_lot", |n| {
                timed(n, || {
                    let mut a = black_box(&pa).lock();
                    *a += *black_box(&pb).lock();
                })
                .into()
            }),
        ],
    );

    let g = gosync::RwMutex::new(0u64);
    let tr = tracing_mutex::stdsync::tracing::RwLock::new(0u64);
    let pr = parking_lot::RwLock::new(0u64);
    ctx.compare(
        "detect",
        "ReadUncontended",
        1,
        vec![
            Impl::new(gosync_name(), |n| {
                timed(n, || {
                    black_box(*black_box(&g).read());
                })
                .into()
            }),
            Impl::new("tracing-mutex", |n| {
                timed(n, || {
                    black_box(*black_box(&tr).read().unwrap());
                })
                .into()
            }),
            Impl::new("parking_lot", |n| {
                timed(n, || {
                    black_box(*black_box(&pr).read());
                })
                .into()
            }),
        ],
    );
}
