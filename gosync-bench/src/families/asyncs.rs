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
//!
//! Peers: `tokio::sync::Mutex` and `tokio::sync::RwLock` (strict FIFO, one queue for readers
//! and writers). `WaitGroup::wait_async` is measured in the waitgroup family (`WaitAsyncFanIn`).

use std::hint::black_box;
use std::sync::Arc;

use gosync::{Mutex, RwMutex};

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
    ctx.note(
        "async: tasks on a tokio multi-thread runtime with 2 workers; the thread column is the \
         number of tasks; ns/op is per lock+unlock.",
    );
}
