//! `workerpool`: gosync's `WorkerPool` / `PoolWithFunc` against threadpool, rusty_pool,
//! rayon's `ThreadPool::spawn`, one OS thread per task, and Go (goroutine per task and a
//! channel-fed pool, `go/workerpool`).
//!
//! Workloads (one operation = one task submitted from the benchmark thread and run to the
//! end; each run submits `iters` tasks, then waits for all of them with the pool's own
//! "wait for everything" call):
//! - `tiny`: the task does almost nothing (`black_box` of its index) — pure pool overhead;
//! - `sleep10us`: the task sleeps 10 µs (about 60 µs with Linux's default timer slack), so
//!   tasks pile up in the queue and the pool's wake-up/handoff path matters.
//!
//! The pool has `t` workers for each thread count `t`; its queue is unbounded (that is what
//! threadpool, rusty_pool and rayon have). Thread-per-task has no pool; it spawns and joins in
//! batches of 1000 threads.
//!
//! After the interleaved tables, one-shot runs with 4 workers: 1 M tiny tasks (200 k in quick
//! mode) and 100 k queued sleeping tasks (20 k in quick mode; thread-per-task a tenth of
//! that): wall time with counting off, then peak heap (counting allocator) and peak RSS
//! (VmHWM delta) in a second run — see `crate::memory` for the method.

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gosync::workerpool::{Options, PoolWithFunc, WorkerPool};

use crate::harness::{Ctx, Impl, Sample};
use crate::memory;

const FAMILY: &str = "workerpool";

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Tiny,
    Sleep,
}

impl Work {
    #[inline]
    fn run(self, i: u64) {
        match self {
            Work::Tiny => {
                black_box(i);
            }
            Work::Sleep => std::thread::sleep(Duration::from_micros(10)),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Work::Tiny => "tiny",
            Work::Sleep => "sleep10us",
        }
    }
}

/// Count-down latch for pools without a "wait for all" call (rayon's `spawn`).
struct Latch {
    left: AtomicUsize,
    m: Mutex<()>,
    c: Condvar,
}

impl Latch {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Latch {
            left: AtomicUsize::new(n),
            m: Mutex::new(()),
            c: Condvar::new(),
        })
    }
    fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _g = self.m.lock().unwrap();
            self.c.notify_all();
        }
    }
    fn wait(&self) {
        let mut g = self.m.lock().unwrap();
        while self.left.load(Ordering::Acquire) > 0 {
            g = self.c.wait(g).unwrap();
        }
    }
}

/// One contender: a pool (or none) that runs `n` tasks of a kind and waits for them.
enum Runner {
    Gosync(WorkerPool),
    GosyncFunc(PoolWithFunc<u64>),
    ThreadPool(threadpool::ThreadPool),
    Rusty(rusty_pool::ThreadPool),
    Rayon(rayon::ThreadPool),
    ThreadPerTask,
}

impl Runner {
    fn all(workers: usize, work: Work) -> Vec<(&'static str, Runner)> {
        let unbounded = Options::new()
            .queue_capacity(usize::MAX)
            .expiry_duration(Duration::from_secs(60));
        vec![
            (
                "gosync",
                Runner::Gosync(WorkerPool::with_options(workers, unbounded.clone())),
            ),
            (
                "gosync PoolWithFunc",
                Runner::GosyncFunc(PoolWithFunc::with_options(workers, unbounded, move |i| {
                    work.run(i)
                })),
            ),
            (
                "threadpool",
                Runner::ThreadPool(threadpool::ThreadPool::new(workers)),
            ),
            (
                "rusty_pool",
                Runner::Rusty(rusty_pool::ThreadPool::new(
                    workers,
                    workers,
                    Duration::from_secs(60),
                )),
            ),
            (
                "rayon spawn",
                Runner::Rayon(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(workers)
                        .build()
                        .expect("rayon pool"),
                ),
            ),
            ("thread per task", Runner::ThreadPerTask),
        ]
    }

    /// Submits `n` tasks and waits until all have run.
    fn run(&self, n: u64, work: Work) {
        match self {
            Runner::Gosync(p) => {
                for i in 0..n {
                    p.submit(move || work.run(i)).expect("open pool");
                }
                p.wait();
            }
            Runner::GosyncFunc(p) => {
                for i in 0..n {
                    p.invoke(i).expect("open pool");
                }
                p.wait();
            }
            Runner::ThreadPool(p) => {
                for i in 0..n {
                    p.execute(move || work.run(i));
                }
                p.join();
            }
            Runner::Rusty(p) => {
                for i in 0..n {
                    p.execute(move || work.run(i));
                }
                p.join();
            }
            Runner::Rayon(p) => {
                let latch = Latch::new(n as usize);
                for i in 0..n {
                    let l = Arc::clone(&latch);
                    p.spawn(move || {
                        work.run(i);
                        l.done();
                    });
                }
                latch.wait();
            }
            Runner::ThreadPerTask => {
                let mut i = 0;
                while i < n {
                    let batch = (n - i).min(1000);
                    let hs: Vec<_> = (i..i + batch)
                        .map(|j| std::thread::spawn(move || work.run(j)))
                        .collect();
                    for h in hs {
                        h.join().expect("task thread");
                    }
                    i += batch;
                }
            }
        }
    }
}

/// Entry point.
pub fn run(ctx: &mut Ctx) {
    let threads = ctx.threads();
    for work in [Work::Tiny, Work::Sleep] {
        for &t in &threads {
            let runners = Runner::all(t, work);
            let impls = runners
                .iter()
                .map(|(name, r)| {
                    Impl::new(*name, move |iters| {
                        let start = Instant::now();
                        r.run(iters, work);
                        Sample::from(start.elapsed())
                    })
                })
                .collect();
            ctx.compare(FAMILY, work.name(), t, impls);
        }
    }
    one_shots(ctx);
    go_side(ctx, &threads);
}

fn one_shots(ctx: &mut Ctx) {
    const WORKERS: usize = 4;
    let quick = ctx.quick();
    for (work, n) in [
        (Work::Tiny, if quick { 200_000 } else { 1_000_000 }),
        (Work::Sleep, if quick { 20_000 } else { 100_000 }),
    ] {
        let label = match work {
            Work::Tiny => format!("{n} tiny tasks"),
            Work::Sleep => format!("{n} queued sleep10us tasks"),
        };
        ctx.note(format!(
            "one-shot, {WORKERS} workers: {label} (thread per task: {} tasks); \
             heap = counting allocator peak, RSS = VmHWM growth",
            n / 10
        ));
        for (name, r) in Runner::all(WORKERS, work) {
            let count = if matches!(r, Runner::ThreadPerTask) {
                n / 10
            } else {
                n
            };
            let start = Instant::now();
            r.run(count, work);
            let secs = start.elapsed().as_secs_f64();
            let ((), peak) = memory::measure(|| r.run(count, work));
            let metric = format!("{}_oneshot", work.name());
            ctx.metric(
                FAMILY,
                &format!("{metric}_tasks_per_s"),
                name,
                count as f64 / secs,
                "tasks/s",
            );
            ctx.metric(
                FAMILY,
                &format!("{metric}_peak_heap"),
                name,
                peak.heap_bytes / 1024.0,
                "KiB",
            );
            ctx.metric(
                FAMILY,
                &format!("{metric}_peak_rss"),
                name,
                peak.rss_bytes / 1024.0,
                "KiB",
            );
        }
    }
}

fn go_side(ctx: &mut Ctx, threads: &[usize]) {
    if !ctx.go_enabled() {
        return;
    }
    // Go column: the channel-fed pool with GOMAXPROCS workers (the pool's counterpart).
    let rows = crate::go::bench_dir(ctx, "go/workerpool", "Tiny|Sleep", threads);
    crate::go::add_rows(
        ctx,
        FAMILY,
        &rows,
        &[
            ("BenchmarkTinyChannelPool", "tiny"),
            ("BenchmarkSleepChannelPool", "sleep10us"),
        ],
    );
    for row in rows.iter().filter(|r| r.name.contains("Goroutines")) {
        ctx.metric(
            FAMILY,
            &format!("go_{}", row.name.trim_start_matches("Benchmark")),
            &format!("go ×{}", row.cpu),
            row.ns_per_op,
            "ns/task",
        );
    }
    if ctx.quick() {
        ctx.note("go: peak heap for 100k queued tasks is measured only without --quick");
        return;
    }
    // Peak heap of 100k queued 10 µs tasks in Go (runtime.MemStats.HeapInuse sampling).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("go/workerpool");
    let out = Command::new("go")
        .args([
            "test",
            "-run",
            "^$",
            "-bench",
            "Queued100k",
            "-cpu",
            "4",
            "-benchtime",
            "1x",
            ".",
        ])
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .current_dir(dir)
        .output();
    let Ok(out) = out else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let (Some(name), Some(pos)) = (f.first(), f.iter().position(|x| *x == "peak-heap-B")) {
            if let Ok(v) = f[pos - 1].parse::<f64>() {
                ctx.metric(
                    FAMILY,
                    "sleep10us_100k_go_peak_heap",
                    name,
                    v / 1024.0,
                    "KiB",
                );
            }
        }
    }
}
