//! `rwmutex`: Go's RWMutex benchmarks (`src/sync/rwmutex_test.go`) mirrored for gosync's
//! `RwMutex`, `std::sync::RwLock`, `parking_lot::RwLock` and crossbeam's `ShardedLock`, plus a
//! writer-starvation workload: how long a writer waits under a continuous flood of readers.
//!
//! `work-only` runs `benchmarkRWMutex(100, 100)`'s loop with no lock, in Rust and (from
//! `go/mirror`) in Go: where the two agree, the locked rows compare the locks. The loop is
//! [`crate::gowork::mul_div_loop`], a copy of what Go compiles.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::gowork;
use crate::harness::{latency_histogram, run_parallel, Ctx, Impl, Sample};

/// The lock operations every workload needs, over the four implementations.
trait RwLike: Sync + Default {
    fn read_section(&self, f: impl FnOnce());
    fn write_section(&self, f: impl FnOnce());
}

impl RwLike for gosync::RwMutex<()> {
    #[inline]
    fn read_section(&self, f: impl FnOnce()) {
        let _g = self.read();
        f();
    }
    #[inline]
    fn write_section(&self, f: impl FnOnce()) {
        let _g = self.write();
        f();
    }
}

impl RwLike for std::sync::RwLock<()> {
    #[inline]
    fn read_section(&self, f: impl FnOnce()) {
        let _g = self.read().unwrap();
        f();
    }
    #[inline]
    fn write_section(&self, f: impl FnOnce()) {
        let _g = self.write().unwrap();
        f();
    }
}

impl RwLike for parking_lot::RwLock<()> {
    #[inline]
    fn read_section(&self, f: impl FnOnce()) {
        let _g = self.read();
        f();
    }
    #[inline]
    fn write_section(&self, f: impl FnOnce()) {
        let _g = self.write();
        f();
    }
}

impl RwLike for crossbeam_utils::sync::ShardedLock<()> {
    #[inline]
    fn read_section(&self, f: impl FnOnce()) {
        let _g = self.read().unwrap();
        f();
    }
    #[inline]
    fn write_section(&self, f: impl FnOnce()) {
        let _g = self.write().unwrap();
        f();
    }
}

/// Go's `benchmarkRWMutex(localWork, writeRatio)`: every `writeRatio`-th operation is an empty
/// write section, the others are read sections doing Go's work loop inside. As in Go, one
/// value (Go's `foo`) is both the operation counter and the loop's operand.
fn mixed<L: RwLike>(threads: usize, iters: u64, local_work: i64, write_ratio: i64) -> Sample {
    let lock = L::default();
    run_parallel(threads, iters, |_, it| {
        let mut op: i64 = 0;
        while it.next() {
            op += 1;
            if op % write_ratio == 0 {
                lock.write_section(|| {});
            } else {
                lock.read_section(|| op = gowork::mul_div_loop(op, local_work));
            }
        }
        black_box(op);
    })
    .into()
}

/// `work-only`: `benchmarkRWMutex(100, 100)` without the lock.
fn work_only(threads: usize, iters: u64, local_work: i64, write_ratio: i64) -> Sample {
    run_parallel(threads, iters, |_, it| {
        let mut op: i64 = 0;
        while it.next() {
            op += 1;
            if op % write_ratio == 0 {
                continue;
            }
            op = gowork::mul_div_loop(op, local_work);
        }
        black_box(op);
    })
    .into()
}

/// Go's `BenchmarkRWMutexUncontended`: each thread its own lock; RLock RLock RUnlock RUnlock
/// Lock Unlock.
fn uncontended<L: RwLike>(threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |_, it| {
        // Padded so neighbouring threads' locks do not share a cache line.
        let lock = crossbeam_utils::CachePadded::new(L::default());
        while it.next() {
            lock.read_section(|| lock.read_section(|| {}));
            lock.write_section(|| {});
        }
    })
    .into()
}

/// Writer starvation: `readers` threads keep the lock read-locked around the clock (their
/// read sections overlap), while one writer takes the write lock `iters` times with a short
/// pause between; the sample carries the writer's wait for each acquisition.
fn writer_wait<L: RwLike>(readers: usize, iters: u64) -> Sample {
    let lock = L::default();
    let stop = AtomicBool::new(false);
    let mut hist = latency_histogram();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| {
                let mut local = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    lock.read_section(|| local = gowork::mul_div_loop(local, 200));
                }
                black_box(local);
            });
        }
        for _ in 0..iters {
            let t = Instant::now();
            lock.write_section(|| {
                let waited = t.elapsed().as_nanos() as u64;
                hist.record(waited.max(1)).ok();
            });
            // Let the flood resume between writes.
            let pause = Instant::now();
            while pause.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    Sample::with_latency(start.elapsed(), hist)
}

type GosyncRw = gosync::RwMutex<()>;
type StdRw = std::sync::RwLock<()>;
type PlRw = parking_lot::RwLock<()>;
type Sharded = crossbeam_utils::sync::ShardedLock<()>;

/// Go's names for the mirrored workloads, and `(local_work, write_ratio)`.
const MIXED: &[(&str, &str, i64, i64)] = &[
    ("BenchmarkRWMutexWrite100", "RWMutexWrite100", 0, 100),
    ("BenchmarkRWMutexWrite10", "RWMutexWrite10", 0, 10),
    (
        "BenchmarkRWMutexWorkWrite100",
        "RWMutexWorkWrite100",
        100,
        100,
    ),
    ("BenchmarkRWMutexWorkWrite10", "RWMutexWorkWrite10", 100, 10),
];

/// The family's entry point.
pub fn run(ctx: &mut Ctx) {
    let threads = ctx.threads();
    // With --go, Go's benchmarks run interleaved with the Rust implementations of each cell.
    let mut names: Vec<(&str, &str)> = MIXED.iter().map(|&(g, w, _, _)| (g, w)).collect();
    names.push(("BenchmarkRWMutexUncontended", "RWMutexUncontended"));
    crate::go::mirror(ctx, "rwmutex", crate::go::Target::Std("sync"), &names);
    crate::go::mirror(
        ctx,
        "rwmutex",
        crate::go::Target::Dir("go/mirror"),
        &[("BenchmarkRWMutexWorkOnly", "work-only")],
    );
    // Go's loop without the lock (Go's side: go/mirror). The parameters come through
    // `black_box` because Go's closure reads them from its context.
    for &t in &threads {
        let (work, ratio) = (black_box(100), black_box(100));
        ctx.compare(
            "rwmutex",
            "work-only",
            t,
            vec![Impl::new("rust", |n| work_only(t, n, work, ratio))],
        );
    }
    for &(_, name, local_work, ratio) in MIXED {
        for &t in &threads {
            ctx.compare(
                "rwmutex",
                name,
                t,
                vec![
                    Impl::new("gosync", |n| mixed::<GosyncRw>(t, n, local_work, ratio)),
                    Impl::new("std", |n| mixed::<StdRw>(t, n, local_work, ratio)),
                    Impl::new("parking_lot", |n| mixed::<PlRw>(t, n, local_work, ratio)),
                    Impl::new("crossbeam ShardedLock", |n| {
                        mixed::<Sharded>(t, n, local_work, ratio)
                    }),
                ],
            );
        }
    }
    for &t in &threads {
        ctx.compare(
            "rwmutex",
            "RWMutexUncontended",
            t,
            vec![
                Impl::new("gosync", |n| uncontended::<GosyncRw>(t, n)),
                Impl::new("std", |n| uncontended::<StdRw>(t, n)),
                Impl::new("parking_lot", |n| uncontended::<PlRw>(t, n)),
                Impl::new("crossbeam ShardedLock", |n| uncontended::<Sharded>(t, n)),
            ],
        );
    }
    // Writer starvation: the thread count is the number of flooding readers.
    for &t in threads.iter().filter(|&&t| t >= 2) {
        ctx.compare(
            "rwmutex",
            "WriterWaitUnderReadFlood",
            t,
            vec![
                Impl::new("gosync", |n| writer_wait::<GosyncRw>(t, n)),
                Impl::new("std", |n| writer_wait::<StdRw>(t, n)),
                Impl::new("parking_lot", |n| writer_wait::<PlRw>(t, n)),
                Impl::new("crossbeam ShardedLock", |n| writer_wait::<Sharded>(t, n)),
            ],
        );
    }
    ctx.note(
        "rwmutex/WriterWaitUnderReadFlood: N reader threads keep the lock read-locked \
         continuously (work(200) inside); one writer locks repeatedly; ns/op is per write, \
         the latency columns are the writer's wait (max = worst case).",
    );
}
