//! `once`: Go's Once benchmarks (`BenchmarkOnce`, and the `v=Global` cases of
//! `BenchmarkOnceFunc`/`OnceValue`/`OnceValues`) mirrored: the already-initialised fast path,
//! gosync against std's `Once`/`OnceLock`/`LazyLock`, once_cell and Go.
//!
//! Every implementation reads a `static` through `black_box(&STATIC)` so the load cannot be
//! hoisted out of the loop; all of them pay the same loop and `black_box` overhead.

use std::hint::black_box;
use std::sync::{LazyLock, Once as StdOnce, OnceLock};

use gosync::{Once, OnceFunc, OnceValue, OnceValues, TryOnce};

use crate::go;
use crate::harness::{run_parallel, Ctx, Impl};

const FAMILY: &str = "once";

fn forty_two() -> u64 {
    42
}

fn pair() -> Result<u64, bool> {
    Ok(42)
}

fn nothing() {}

static G_ONCE: Once = Once::new();
static STD_ONCE: StdOnce = StdOnce::new();
static STD_LOCK: OnceLock<u64> = OnceLock::new();
static CELL: once_cell::sync::OnceCell<u64> = once_cell::sync::OnceCell::new();

static G_VALUE: OnceValue<u64> = OnceValue::new(forty_two);
static STD_LAZY: LazyLock<u64> = LazyLock::new(forty_two);
static CELL_LAZY: once_cell::sync::Lazy<u64> = once_cell::sync::Lazy::new(forty_two);

static G_FUNC: OnceFunc = OnceFunc::new(nothing);
static G_VALUES: OnceValues<u64, bool> = OnceValues::new(pair);
static STD_LOCK_RESULT: OnceLock<Result<u64, bool>> = OnceLock::new();

static G_TRY: TryOnce = TryOnce::new();
static CELL_TRY: once_cell::sync::OnceCell<()> = once_cell::sync::OnceCell::new();

/// Runs the family.
pub fn run(ctx: &mut Ctx) {
    // Initialise everything once, so every workload measures the fast path, as Go's do.
    G_ONCE.call_once(nothing);
    STD_ONCE.call_once(nothing);
    STD_LOCK.get_or_init(forty_two);
    CELL.get_or_init(forty_two);
    G_VALUE.get();
    LazyLock::force(&STD_LAZY);
    once_cell::sync::Lazy::force(&CELL_LAZY);
    G_FUNC.call();
    let _ = G_VALUES.get();
    STD_LOCK_RESULT.get_or_init(pair);
    let _ = G_TRY.call_once(|| Ok::<(), ()>(()));
    let _ = CELL_TRY.get_or_try_init(|| Ok::<(), ()>(()));

    // BenchmarkOnce: RunParallel, once.Do(empty) on a done Once.
    for &t in &ctx.threads() {
        ctx.compare(
            FAMILY,
            "Once",
            t,
            vec![
                Impl::new("gosync Once::call_once", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(&G_ONCE).call_once(nothing);
                        }
                    })
                    .into()
                }),
                Impl::new("std OnceLock::get", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(black_box(&STD_LOCK).get());
                        }
                    })
                    .into()
                }),
                Impl::new("std Once::call_once", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(&STD_ONCE).call_once(nothing);
                        }
                    })
                    .into()
                }),
                Impl::new("once_cell OnceCell::get", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(black_box(&CELL).get());
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    // BenchmarkOnceValue (v=Global): read an initialised lazy value.
    for &t in &ctx.threads() {
        ctx.compare(
            FAMILY,
            "OnceValue",
            t,
            vec![
                Impl::new("gosync OnceValue::get", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(black_box(&G_VALUE).get());
                        }
                    })
                    .into()
                }),
                Impl::new("std OnceLock::get_or_init", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(black_box(&STD_LOCK).get_or_init(forty_two));
                        }
                    })
                    .into()
                }),
                Impl::new("std LazyLock", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(**black_box(&STD_LAZY));
                        }
                    })
                    .into()
                }),
                Impl::new("once_cell Lazy", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            black_box(**black_box(&CELL_LAZY));
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    // BenchmarkOnceFunc / BenchmarkOnceValues (v=Global), single thread as in Go; the baseline
    // is Go's v=Once case (a plain Once guarding the function).
    ctx.compare(
        FAMILY,
        "OnceFunc",
        1,
        vec![
            Impl::new("gosync OnceFunc::call", |n| {
                run_parallel(1, n, |_, it| {
                    while it.next() {
                        black_box(&G_FUNC).call();
                    }
                })
                .into()
            }),
            Impl::new("std Once::call_once", |n| {
                run_parallel(1, n, |_, it| {
                    while it.next() {
                        black_box(&STD_ONCE).call_once(nothing);
                    }
                })
                .into()
            }),
        ],
    );
    ctx.compare(
        FAMILY,
        "OnceValues",
        1,
        vec![
            Impl::new("gosync OnceValues::get", |n| {
                run_parallel(1, n, |_, it| {
                    while it.next() {
                        let _ = black_box(black_box(&G_VALUES).get());
                    }
                })
                .into()
            }),
            Impl::new("std OnceLock<Result>::get_or_init", |n| {
                run_parallel(1, n, |_, it| {
                    while it.next() {
                        black_box(black_box(&STD_LOCK_RESULT).get_or_init(pair));
                    }
                })
                .into()
            }),
        ],
    );

    // The retryable Once once it has succeeded (the seed's rewrite_once fast path).
    ctx.compare(
        FAMILY,
        "TryOnce",
        1,
        vec![
            Impl::new("gosync TryOnce::call_once", |n| {
                run_parallel(1, n, |_, it| {
                    while it.next() {
                        let _ = black_box(black_box(&G_TRY).call_once(|| Ok::<(), ()>(())));
                    }
                })
                .into()
            }),
            Impl::new("once_cell OnceCell::get_or_try_init", |n| {
                run_parallel(1, n, |_, it| {
                    while it.next() {
                        let _ =
                            black_box(black_box(&CELL_TRY).get_or_try_init(|| Ok::<(), ()>(())));
                    }
                })
                .into()
            }),
        ],
    );

    // Go 1.19 has BenchmarkOnce; OnceFunc/OnceValue(s) benchmarks need Go ≥ 1.21.
    let threads = ctx.threads();
    let rows = go::bench_std(
        ctx,
        "sync",
        "BenchmarkOnce$|BenchmarkOnceFunc|BenchmarkOnceValue",
        &threads,
    );
    go::add_rows(
        ctx,
        FAMILY,
        &rows,
        &[
            ("BenchmarkOnce", "Once"),
            ("BenchmarkOnceFunc/v=Global", "OnceFunc"),
            ("BenchmarkOnceValue/v=Global", "OnceValue"),
            ("BenchmarkOnceValues/v=Global", "OnceValues"),
        ],
    );
}
