//! `x`: golang.org/x/sync counterparts.
//!
//! - Async semaphore, acquire(1)/release: gosync `Semaphore::acquire_async` against
//!   `tokio::sync::Semaphore::acquire`, on one tokio multi-thread runtime (2 workers), with
//!   1/2/4/8 tasks each running its share of the operations.
//!   - `sem_async_uncontended`: as many permits as tasks (never waits).
//!   - `sem_async_contended`: 1 permit, held across one `yield_now().await` (every other task
//!     queues behind it, so each operation goes through the FIFO wait queue).
//! - Blocking semaphore, acquire(1)/release: gosync `Semaphore::acquire` against the classic
//!   `Mutex<usize>` + `Condvar` semaphore, `run_parallel` on 1/2/4/8 threads.
//!   - `sem_blocking_uncontended`: as many permits as threads.
//!   - `sem_blocking_contended`: 1 permit; a little work inside and outside (`WORK` multiply-adds).
//!   - `sem_blocking_wait` (2/4/8 threads): the contended loop again, timing every acquire;
//!     also against tokio's Semaphore driven from the threads with `Handle::block_on`;
//!     the latency columns are the acquisition waits (the fairness of the semaphores:
//!     gosync bounds a waiter's wait, the condvar semaphore lets running threads win for as
//!     long as the scheduler lets them).
//!   - `sem_blocking_fairness` (2/4/8 threads): the shape of the mutex family's `Fairness`:
//!     each thread holds the permit ~10 µs and asks again at once; the latency columns are the
//!     acquisition waits (tokio's Semaphore via `Handle::block_on` too). Here the releaser is
//!     always the one running, so the maximum wait shows whether the semaphore bounds it.
//! - `singleflight_stampede`: 1000 tasks ask for one key at once; the computation is a 1 ms
//!   async sleep. ns/op is per stampede; `computations` (extra) counts how many times the work
//!   ran per stampede; the latency percentiles are each caller's wait. Baseline: no
//!   deduplication (every caller computes).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gosync::x::{Semaphore, SingleFlight};
use hdrhistogram::Histogram;

use crate::harness::{latency_histogram, run_parallel, run_tasks, Ctx, Impl, Sample};

const FAMILY: &str = "x";

/// Worker threads of the tokio runtime the async cells run on (their OS thread count).
const RUNTIME_WORKERS: usize = 2;

/// The textbook blocking semaphore: a counter under a mutex, a condvar to wait on. It
/// notifies only when someone waits (std's `notify_one` is a syscall even with no waiter).
struct CondvarSemaphore {
    /// (permits, waiting threads)
    state: Mutex<(usize, usize)>,
    cv: Condvar,
}

impl CondvarSemaphore {
    fn new(n: usize) -> Self {
        CondvarSemaphore {
            state: Mutex::new((n, 0)),
            cv: Condvar::new(),
        }
    }
    fn acquire(&self) {
        let mut s = self.state.lock().unwrap();
        while s.0 == 0 {
            s.1 += 1;
            s = self.cv.wait(s).unwrap();
            s.1 -= 1;
        }
        s.0 -= 1;
    }
    fn release(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        let notify = s.1 > 0;
        drop(s);
        if notify {
            self.cv.notify_one();
        }
    }
}

/// Multiply-adds of work inside and outside the permit in `sem_blocking_contended`.
const WORK: u32 = 32;

/// A little CPU work that does not use the `pause` instruction (which can trap to the
/// hypervisor on virtual machines and then costs ~100 ns).
fn work(n: u32) {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(
            x.wrapping_mul(6364136223846793005)
                .wrapping_add(u64::from(i)),
        );
    }
    black_box(x);
}

/// Runs the family.
pub fn run(ctx: &mut Ctx) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime");

    for &t in &ctx.threads() {
        let (g, k) = (
            Arc::new(Semaphore::new(t)),
            Arc::new(tokio::sync::Semaphore::new(t)),
        );
        ctx.compare_with_os_threads(
            FAMILY,
            "sem_async_uncontended",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let s = g.clone();
                        async move {
                            for _ in 0..n {
                                drop(black_box(s.acquire_async(1).await));
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("tokio", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let s = k.clone();
                        async move {
                            for _ in 0..n {
                                drop(black_box(s.acquire().await.unwrap()));
                            }
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    for &t in &ctx.threads() {
        let (g, k) = (
            Arc::new(Semaphore::new(1)),
            Arc::new(tokio::sync::Semaphore::new(1)),
        );
        ctx.compare_with_os_threads(
            FAMILY,
            "sem_async_contended",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let s = g.clone();
                        async move {
                            for _ in 0..n {
                                let p = s.acquire_async(1).await;
                                tokio::task::yield_now().await;
                                drop(p);
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("tokio", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let s = k.clone();
                        async move {
                            for _ in 0..n {
                                let p = s.acquire().await.unwrap();
                                tokio::task::yield_now().await;
                                drop(p);
                            }
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    for &t in &ctx.threads() {
        let (g, c) = (Semaphore::new(t), CondvarSemaphore::new(t));
        ctx.compare(
            FAMILY,
            "sem_blocking_uncontended",
            t,
            vec![
                Impl::new("gosync", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            drop(black_box(g.acquire(1)));
                        }
                    })
                    .into()
                }),
                Impl::new("mutex+condvar", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            c.acquire();
                            c.release();
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    for &t in &ctx.threads() {
        let (g, c) = (Semaphore::new(1), CondvarSemaphore::new(1));
        ctx.compare(
            FAMILY,
            "sem_blocking_contended",
            t,
            vec![
                Impl::new("gosync", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            let p = g.acquire(1);
                            work(WORK);
                            drop(p);
                            work(WORK);
                        }
                    })
                    .into()
                }),
                Impl::new("mutex+condvar", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            c.acquire();
                            work(WORK);
                            c.release();
                            work(WORK);
                        }
                    })
                    .into()
                }),
            ],
        );
    }

    for &t in ctx.threads().iter().filter(|&&t| t >= 2) {
        let (g, c) = (Semaphore::new(1), CondvarSemaphore::new(1));
        let (ts, handle) = (tokio::sync::Semaphore::new(1), rt.handle().clone());
        ctx.compare(
            FAMILY,
            "sem_blocking_wait",
            t,
            vec![
                Impl::new("gosync", |iters| contended_wait(t, iters, || g.acquire(1))),
                Impl::new("mutex+condvar", |iters| {
                    contended_wait(t, iters, || {
                        c.acquire();
                        Release(&c)
                    })
                }),
                Impl::new("tokio (block_on)", |iters| {
                    contended_wait(t, iters, || {
                        handle.block_on(ts.acquire()).expect("semaphore closed")
                    })
                }),
            ],
        );
    }

    for &t in ctx.threads().iter().filter(|&&t| t >= 2) {
        let (g, c) = (Semaphore::new(1), CondvarSemaphore::new(1));
        let (ts, handle) = (tokio::sync::Semaphore::new(1), rt.handle().clone());
        ctx.compare(
            FAMILY,
            "sem_blocking_fairness",
            t,
            vec![
                Impl::new("gosync", |iters| hog(t, iters, || g.acquire(1))),
                Impl::new("mutex+condvar", |iters| {
                    hog(t, iters, || {
                        c.acquire();
                        Release(&c)
                    })
                }),
                Impl::new("tokio (block_on)", |iters| {
                    hog(t, iters, || {
                        handle.block_on(ts.acquire()).expect("semaphore closed")
                    })
                }),
            ],
        );
    }

    stampede(ctx, &rt);
}

/// How long each permit is held in `sem_blocking_fairness`.
const HOLD: Duration = Duration::from_micros(10);

/// Every thread holds the permit for [`HOLD`] (busy) and asks again at once, recording how long
/// every acquire waited (ns). The releaser is always running when it asks again, so a
/// semaphore without a bound lets it win over and over.
fn hog<P>(threads: usize, iters: u64, acquire: impl Fn() -> P + Sync) -> Sample {
    let hists = Mutex::new(latency_histogram());
    let elapsed = run_parallel(threads, iters, |_, it| {
        let mut hist = latency_histogram();
        while it.next() {
            let t0 = Instant::now();
            let p = acquire();
            hist.record((t0.elapsed().as_nanos() as u64).max(1)).ok();
            let until = Instant::now() + HOLD;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            drop(p);
        }
        hists.lock().unwrap().add(&hist).ok();
    });
    Sample::with_latency(elapsed, hists.into_inner().unwrap())
}

/// Gives a `CondvarSemaphore` permit back on drop.
struct Release<'a>(&'a CondvarSemaphore);
impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The `sem_blocking_contended` loop, recording how long every acquire waited (ns).
fn contended_wait<P>(threads: usize, iters: u64, acquire: impl Fn() -> P + Sync) -> Sample {
    let hists = Mutex::new(latency_histogram());
    let elapsed = run_parallel(threads, iters, |_, it| {
        let mut hist = latency_histogram();
        while it.next() {
            let t0 = Instant::now();
            let p = acquire();
            hist.record((t0.elapsed().as_nanos() as u64).max(1)).ok();
            work(WORK);
            drop(p);
            work(WORK);
        }
        hists.lock().unwrap().add(&hist).ok();
    });
    Sample::with_latency(elapsed, hists.into_inner().unwrap())
}

const CALLERS: usize = 1000;

/// One stampede: `CALLERS` tasks ask for the same key at once. Returns (elapsed,
/// computations, per-caller latency histogram).
fn one_stampede(
    rt: &tokio::runtime::Runtime,
    group: Option<&Arc<SingleFlight<u64, u64>>>,
    key: u64,
) -> (Duration, usize, Histogram<u64>) {
    let computed = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(latency_histogram()));
    let t0 = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (group, computed, lat) = (group.cloned(), computed.clone(), lat.clone());
                tokio::spawn(async move {
                    let start = Instant::now();
                    let compute = || async {
                        computed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        key * 2
                    };
                    let v = match &group {
                        Some(g) => g.run_async(key, compute).await.0,
                        None => compute().await,
                    };
                    black_box(v);
                    let ns = start.elapsed().as_nanos() as u64;
                    lat.lock().unwrap().record(ns.max(1)).ok();
                })
            })
            .collect();
        for h in handles {
            h.await.expect("stampede task panicked");
        }
    });
    let elapsed = t0.elapsed();
    let hist = std::mem::replace(&mut *lat.lock().unwrap(), latency_histogram());
    (elapsed, computed.load(Ordering::Relaxed), hist)
}

fn stampede(ctx: &mut Ctx, rt: &tokio::runtime::Runtime) {
    let group = Arc::new(SingleFlight::<u64, u64>::new());
    let mut key = 0u64;
    let mut run = |iters: u64, group: Option<&Arc<SingleFlight<u64, u64>>>| {
        let mut total = Duration::ZERO;
        let mut hist = latency_histogram();
        let mut computations = 0usize;
        for _ in 0..iters {
            key += 1;
            let (el, c, h) = one_stampede(rt, group, key);
            total += el;
            computations += c;
            hist.add(&h).expect("compatible histograms");
        }
        Sample::with_latency(total, hist)
            .extra("computations", computations as f64 / iters.max(1) as f64)
    };
    let run = std::cell::RefCell::new(&mut run);
    ctx.compare_with_os_threads(
        FAMILY,
        "singleflight_stampede",
        CALLERS,
        RUNTIME_WORKERS,
        vec![
            Impl::new("gosync", |iters| (run.borrow_mut())(iters, Some(&group))),
            Impl::new("no dedup", |iters| (run.borrow_mut())(iters, None)),
        ],
    );
}
