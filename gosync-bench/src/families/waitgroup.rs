//! `waitgroup`: Go's WaitGroup benchmarks (`src/sync/waitgroup_test.go`) mirrored, gosync
//! against crossbeam's clone/drop `WaitGroup` and Go.
//!
//! crossbeam's group counts handles: `clone()` is Go's `Add(1)`, dropping a clone is `Done()`
//! and `wait(self)` consumes a handle, so a group is single-use. Where Go's workload waits on
//! a group (`Uncontended`, `ActuallyWait`) the crossbeam side makes a fresh group per
//! iteration, which is how it has to be used.
//!
//! `WaitAsyncFanIn` (not in Go) is the async form: on a tokio multi-thread runtime, each round
//! spawns `t` tasks that finish at once while the coordinating task waits for all of them,
//! with gosync's `WaitGroup::wait_async` against what tokio code uses instead (tokio has no
//! WaitGroup): a `Notify` plus an atomic counter, and a `JoinSet`. ns/op is per round.

use std::hint::black_box;
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use gosync::WaitGroup;

use crate::go;
use crate::gowork;
use crate::harness::{run_parallel, Ctx, Impl};

const FAMILY: &str = "waitgroup";

/// Worker threads of the tokio runtime the async cells run on (their OS thread count).
const RUNTIME_WORKERS: usize = 2;

/// Go's `for i := 0; i < localWork; i++ { foo *= 2; foo /= 2 }` in the WaitGroup benchmarks:
/// `foo` is never read, so Go compiles it to `k` empty rounds, and so does this (see
/// [`crate::gowork`]).
#[inline(always)]
fn work(k: i64) {
    gowork::empty_loop(k);
}

/// Go benchmark name → workload name used here.
const GO_NAMES: &[(&str, &str)] = &[
    ("BenchmarkWaitGroupUncontended", "Uncontended"),
    ("BenchmarkWaitGroupAddDone", "AddDone"),
    ("BenchmarkWaitGroupAddDoneWork", "AddDoneWork"),
    ("BenchmarkWaitGroupWait", "Wait"),
    ("BenchmarkWaitGroupWaitWork", "WaitWork"),
    ("BenchmarkWaitGroupActuallyWait", "ActuallyWait"),
];

/// Runs the family.
pub fn run(ctx: &mut Ctx) {
    let threads = ctx.threads();
    // With --go, Go's benchmarks run interleaved with the Rust implementations of each cell.
    go::mirror(ctx, FAMILY, go::Target::Std("sync"), GO_NAMES);
    go::mirror(
        ctx,
        FAMILY,
        go::Target::Dir("go/mirror"),
        &[("BenchmarkWaitGroupWorkOnly", "work-only")],
    );

    // Go's loop without the group (`benchmarkWaitGroupAddDone(100)` minus Add/Done; Go's side:
    // go/mirror). `k` comes through `black_box` because Go's closure reads `localWork` from its
    // context.
    for &t in &threads {
        let k = black_box(100);
        ctx.compare(
            FAMILY,
            "work-only",
            t,
            vec![Impl::new("rust", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        work(k);
                    }
                })
                .into()
            })],
        );
    }

    // BenchmarkWaitGroupUncontended: each thread its own (padded) group; Add(1); Done(); Wait().
    for &t in &threads {
        let groups: Vec<CachePadded<WaitGroup>> =
            (0..t).map(|_| CachePadded::new(WaitGroup::new())).collect();
        ctx.compare(
            FAMILY,
            "Uncontended",
            t,
            vec![
                Impl::new("gosync", |n| {
                    run_parallel(t, n, |tid, it| {
                        let wg = &*groups[tid];
                        while it.next() {
                            wg.add(1);
                            wg.done();
                            wg.wait();
                        }
                    })
                    .into()
                }),
                Impl::new("crossbeam (new group each time)", |n| {
                    run_parallel(t, n, |_, it| {
                        while it.next() {
                            let wg = crossbeam_utils::sync::WaitGroup::new();
                            drop(black_box(wg.clone()));
                            wg.wait();
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    // The add/done pair alone, uncontended: each thread its own group.
    for &t in &threads {
        let groups: Vec<CachePadded<WaitGroup>> =
            (0..t).map(|_| CachePadded::new(WaitGroup::new())).collect();
        let cb: Vec<CachePadded<crossbeam_utils::sync::WaitGroup>> = (0..t)
            .map(|_| CachePadded::new(crossbeam_utils::sync::WaitGroup::new()))
            .collect();
        ctx.compare(
            FAMILY,
            "AddDonePairUncontended",
            t,
            vec![
                Impl::new("gosync", |n| {
                    run_parallel(t, n, |tid, it| {
                        let wg = &*groups[tid];
                        while it.next() {
                            wg.add(1);
                            wg.done();
                        }
                    })
                    .into()
                }),
                Impl::new("crossbeam (clone/drop)", |n| {
                    run_parallel(t, n, |tid, it| {
                        let wg = &*cb[tid];
                        while it.next() {
                            drop(black_box(wg.clone()));
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    // BenchmarkWaitGroupAddDone / AddDoneWork: one shared group; Add(1); work; Done().
    for (name, k) in [("AddDone", 0), ("AddDoneWork", 100)] {
        for &t in &threads {
            let wg = WaitGroup::new();
            let cb = crossbeam_utils::sync::WaitGroup::new();
            ctx.compare(
                FAMILY,
                name,
                t,
                vec![
                    Impl::new("gosync", |n| {
                        run_parallel(t, n, |_, it| {
                            while it.next() {
                                wg.add(1);
                                work(k);
                                wg.done();
                            }
                        })
                        .into()
                    }),
                    Impl::new("crossbeam (clone/drop)", |n| {
                        run_parallel(t, n, |_, it| {
                            while it.next() {
                                let h = black_box(cb.clone());
                                work(k);
                                drop(h);
                            }
                        })
                        .into()
                    }),
                ],
            );
        }
    }

    // BenchmarkWaitGroupWait / WaitWork: a shared group at zero; Wait(); work.
    for (name, k) in [("Wait", 0), ("WaitWork", 100)] {
        for &t in &threads {
            let wg = WaitGroup::new();
            // crossbeam cannot wait on a group twice: `wait` consumes the handle, and a kept
            // handle holds the count above zero, so the non-blocking shape is a fresh group.
            ctx.compare(
                FAMILY,
                name,
                t,
                vec![
                    Impl::new("gosync", |n| {
                        run_parallel(t, n, |_, it| {
                            while it.next() {
                                wg.wait();
                                work(k);
                            }
                        })
                        .into()
                    }),
                    Impl::new("crossbeam (new group, wait)", |n| {
                        run_parallel(t, n, |_, it| {
                            while it.next() {
                                crossbeam_utils::sync::WaitGroup::new().wait();
                                work(k);
                            }
                        })
                        .into()
                    }),
                ],
            );
        }
    }

    // BenchmarkWaitGroupActuallyWait: per iteration a new group, Add(1), a new thread (Go: a
    // goroutine) calls Done, Wait. Thread spawning dominates; measured once, single-threaded.
    ctx.compare(
        FAMILY,
        "ActuallyWait",
        1,
        vec![
            Impl::new("gosync", |n| {
                let start = std::time::Instant::now();
                for _ in 0..n {
                    let wg = Arc::new(WaitGroup::new());
                    wg.go(|| {});
                    wg.wait();
                }
                start.elapsed().into()
            }),
            Impl::new("crossbeam", |n| {
                let start = std::time::Instant::now();
                for _ in 0..n {
                    let wg = crossbeam_utils::sync::WaitGroup::new();
                    let h = wg.clone();
                    std::thread::spawn(move || drop(h));
                    wg.wait();
                }
                start.elapsed().into()
            }),
        ],
    );

    wait_async(ctx);
}

/// `WaitAsyncFanIn`: rounds of `t` spawned tasks, joined by the coordinating task.
fn wait_async(ctx: &mut Ctx) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKERS)
        .build()
        .expect("tokio runtime");
    for &t in &ctx.threads() {
        ctx.compare_with_os_threads(
            FAMILY,
            "WaitAsyncFanIn",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |rounds| {
                    rt.block_on(async {
                        let wg = Arc::new(WaitGroup::new());
                        let start = Instant::now();
                        for _ in 0..rounds {
                            wg.add(t as isize);
                            for _ in 0..t {
                                let wg = Arc::clone(&wg);
                                tokio::spawn(async move { wg.done() });
                            }
                            wg.wait_async().await;
                        }
                        start.elapsed()
                    })
                    .into()
                }),
                Impl::new("tokio Notify + AtomicUsize", |rounds| {
                    rt.block_on(async {
                        let left = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
                        let start = Instant::now();
                        for _ in 0..rounds {
                            left.0.store(t, Ordering::Relaxed);
                            for _ in 0..t {
                                let left = Arc::clone(&left);
                                tokio::spawn(async move {
                                    if left.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                                        left.1.notify_one();
                                    }
                                });
                            }
                            left.1.notified().await;
                        }
                        start.elapsed()
                    })
                    .into()
                }),
                Impl::new("tokio JoinSet", |rounds| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..rounds {
                            let mut set = tokio::task::JoinSet::new();
                            for _ in 0..t {
                                set.spawn(async {});
                            }
                            while let Some(r) = set.join_next().await {
                                r.expect("task panicked");
                            }
                        }
                        start.elapsed()
                    })
                    .into()
                }),
            ],
        );
    }
}
