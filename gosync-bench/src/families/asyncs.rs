//! `async`: the async lock forms against tokio's locks, on one tokio multi-thread runtime
//! (2 workers), with 1/2/4/8 tasks each running its share of the operations.
//!
//! - `lock_async_uncontended`: each task locks its own mutex (never waits).
//! - `lock_async_short`: one shared mutex, a short section with no `.await` inside (the
//!   common case: tasks barge in while the lock is free).
//! - `lock_async_held_across_await`: one shared mutex held across one `yield_now().await`,
//!   so every other task queues behind it.
//! - `rw_async_write10`: one shared lock, every tenth operation a write, the others reads
//!   (Go's `RWMutexWrite10` shape), short sections.
//! - `rw_async_held_across_await`: as `rw_async_write10`, each section holding the lock
//!   across one `yield_now().await`.
//!
//! - `wait_async_round`: one round = spawn N tasks that each finish one unit of work, then
//!   wait for all of them: `WaitGroup` (`add`, `done`, `wait_async`) against the usual tokio
//!   substitutes, an atomic counter with a `Notify`, and a `JoinSet`. Spawning is in every
//!   implementation's round; ns/op is per round.
//!
//! Peers: `tokio::sync::Mutex` and `tokio::sync::RwLock` (strict FIFO, one queue for readers
//! and writers).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::{AtomicUsize, Ordering};

use gosync::{Mutex, RwMutex, WaitGroup};

use crate::harness::{run_tasks, Ctx, Impl};

const FAMILY: &str = "async";

/// Worker threads of the tokio runtime the cells run on (their OS thread count).
const RUNTIME_WORKERS: usize = 2;

/// Runs the family.
pub fn run(ctx: &mut Ctx) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let threads = ctx.threads();

    for &t in &threads {
        let g: Arc<Vec<Mutex<u64>>> = Arc::new((0..t).map(|_| Mutex::new(0)).collect());
        let k: Arc<Vec<tokio::sync::Mutex<u64>>> =
            Arc::new((0..t).map(|_| tokio::sync::Mutex::new(0)).collect());
        ctx.compare_with_os_threads(
            FAMILY,
            "lock_async_uncontended",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |iters| {
                    run_tasks(&rt, t, iters, |i, n| {
                        let locks = Arc::clone(&g);
                        async move {
                            for _ in 0..n {
                                *locks[i].lock_async().await += 1;
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("tokio Mutex", |iters| {
                    run_tasks(&rt, t, iters, |i, n| {
                        let locks = Arc::clone(&k);
                        async move {
                            for _ in 0..n {
                                *locks[i].lock().await += 1;
                            }
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    for (workload, across_await) in [
        ("lock_async_short", false),
        ("lock_async_held_across_await", true),
    ] {
        for &t in &threads {
            let g = Arc::new(Mutex::new(0u64));
            let k = Arc::new(tokio::sync::Mutex::new(0u64));
            ctx.compare_with_os_threads(
                FAMILY,
                workload,
                t,
                RUNTIME_WORKERS,
                vec![
                    Impl::new("gosync", |iters| {
                        run_tasks(&rt, t, iters, |_, n| {
                            let m = Arc::clone(&g);
                            async move {
                                for _ in 0..n {
                                    let mut v = m.lock_async().await;
                                    *v += 1;
                                    if across_await {
                                        tokio::task::yield_now().await;
                                    }
                                }
                            }
                        })
                        .into()
                    }),
                    Impl::new("tokio Mutex", |iters| {
                        run_tasks(&rt, t, iters, |_, n| {
                            let m = Arc::clone(&k);
                            async move {
                                for _ in 0..n {
                                    let mut v = m.lock().await;
                                    *v += 1;
                                    if across_await {
                                        tokio::task::yield_now().await;
                                    }
                                }
                            }
                        })
                        .into()
                    }),
                ],
            );
        }
    }

    for (workload, across_await) in [
        ("rw_async_write10", false),
        ("rw_async_held_across_await", true),
    ] {
        for &t in &threads {
            let g = Arc::new(RwMutex::new(0u64));
            let k = Arc::new(tokio::sync::RwLock::new(0u64));
            ctx.compare_with_os_threads(
                FAMILY,
                workload,
                t,
                RUNTIME_WORKERS,
                vec![
                    Impl::new("gosync", |iters| {
                        run_tasks(&rt, t, iters, |_, n| {
                            let l = Arc::clone(&g);
                            async move {
                                for op in 0..n {
                                    if op % 10 == 0 {
                                        *l.write_async().await += 1;
                                    } else {
                                        let v = l.read_async().await;
                                        black_box(*v);
                                        if across_await {
                                            tokio::task::yield_now().await;
                                        }
                                    }
                                }
                            }
                        })
                        .into()
                    }),
                    Impl::new("tokio RwLock", |iters| {
                        run_tasks(&rt, t, iters, |_, n| {
                            let l = Arc::clone(&k);
                            async move {
                                for op in 0..n {
                                    if op % 10 == 0 {
                                        *l.write().await += 1;
                                    } else {
                                        let v = l.read().await;
                                        black_box(*v);
                                        if across_await {
                                            tokio::task::yield_now().await;
                                        }
                                    }
                                }
                            }
                        })
                        .into()
                    }),
                ],
            );
        }
    }
    for &t in &threads {
        ctx.compare_with_os_threads(
            FAMILY,
            "wait_async_round",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |iters| {
                    rt.block_on(async {
                        let t0 = Instant::now();
                        for _ in 0..iters {
                            let wg = Arc::new(WaitGroup::new());
                            wg.add(t as isize);
                            for _ in 0..t {
                                let wg = Arc::clone(&wg);
                                tokio::spawn(async move {
                                    black_box(&wg);
                                    wg.done();
                                });
                            }
                            wg.wait_async().await;
                        }
                        t0.elapsed()
                    })
                    .into()
                }),
                Impl::new("tokio Notify+counter", |iters| {
                    rt.block_on(async {
                        let t0 = Instant::now();
                        for _ in 0..iters {
                            let state = Arc::new((AtomicUsize::new(t), tokio::sync::Notify::new()));
                            for _ in 0..t {
                                let state = Arc::clone(&state);
                                tokio::spawn(async move {
                                    black_box(&state);
                                    if state.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                                        state.1.notify_waiters();
                                    }
                                });
                            }
                            loop {
                                let notified = state.1.notified();
                                let mut notified = std::pin::pin!(notified);
                                notified.as_mut().enable();
                                if state.0.load(Ordering::Acquire) == 0 {
                                    break;
                                }
                                notified.await;
                            }
                        }
                        t0.elapsed()
                    })
                    .into()
                }),
                Impl::new("tokio JoinSet", |iters| {
                    rt.block_on(async {
                        let t0 = Instant::now();
                        for _ in 0..iters {
                            let mut set = tokio::task::JoinSet::new();
                            for _ in 0..t {
                                set.spawn(async { black_box(()) });
                            }
                            while let Some(r) = set.join_next().await {
                                r.expect("benchmark task panicked");
                            }
                        }
                        t0.elapsed()
                    })
                    .into()
                }),
            ],
        );
    }
    ctx.note(
        "async: tasks on a tokio multi-thread runtime with 2 workers; the thread column is the \
         number of tasks; ns/op is per lock+unlock (wait_async_round: per round of N tasks).",
    );
}
