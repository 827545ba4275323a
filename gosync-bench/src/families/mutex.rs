//! `mutex`: Go's Mutex benchmarks (`src/sync/mutex_test.go`) mirrored for gosync's `Mutex`,
//! `std::sync::Mutex`, `parking_lot::Mutex` and a bare `AtomicBool` spinlock (the physical
//! limit of an uncontended lock), plus a fairness workload reporting acquisition-wait
//! percentiles.
//!
//! Mirrors (Go name → workload; `t` = thread count = Go's `-cpu`):
//! - `BenchmarkMutexUncontended` → `MutexUncontended`: each thread its own padded lock.
//! - `BenchmarkMutex` → `Mutex`: one shared lock, empty critical section.
//! - `BenchmarkMutexSlack` → `MutexSlack`: same with 10·t threads (`SetParallelism(10)`).
//! - `BenchmarkMutexWork` → `MutexWork`: shared lock, then `work(100)` outside it.
//! - `BenchmarkMutexWorkSlack` → `MutexWorkSlack`: Work with 10·t threads.
//! - `BenchmarkMutexSpin` → `MutexSpin`: lock, move 100 between two accounts, unlock, then
//!   touch every 4th word of a private 128 KiB array (spinning should pay off).
//! - `BenchmarkMutexNoSpin` → `MutexNoSpin`: 4·t threads; one iteration in 4 does the account
//!   move under the lock, the others touch every 4th word of a private 32 KiB array and then
//!   yield (Go yields by a channel round-trip with a fresh goroutine; here `yield_now`).
//!
//! `work-only` and `work-only Spin` run the Work and Spin loops with no lock at all, in Rust and
//! (from `go/mirror`) in Go: where the two agree, the locked rows compare the locks. The loops
//! are [`crate::gowork`]'s copies of what Go compiles (see there).
//!
//! `Fairness` (not in Go): every thread re-locks at once after a ~10 µs critical section (the
//! shape of Go's `TestMutexFairness`/golang/go#13086 "lock skew"), recording how long each
//! acquisition waited. Go's starvation mode caps the wait near its 1 ms threshold plus a queue
//! turn; a lock without fairness lets the thread that just unlocked win again and again.
//!
//! The spinlock runs only where it cannot livelock on this 2-core machine: it is left out of
//! the oversubscribed workloads (`Slack`, `WorkSlack`, `NoSpin`, `Fairness` at 4+ threads),
//! where a preempted holder stalls every spinner for a whole time slice.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::gowork;
use crate::harness::{latency_histogram, run_parallel, Ctx, Impl, Sample};

/// A lock guarding an `Accounts` value, over the four implementations.
trait Lock: Sync + Default {
    fn with<R>(&self, f: impl FnOnce(&mut Accounts) -> R) -> R;
}

/// The two "accounts" of Go's Spin/NoSpin benchmarks.
#[derive(Default)]
struct Accounts {
    acc0: i64,
    acc1: i64,
}

impl Lock for gosync::Mutex<Accounts> {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Accounts) -> R) -> R {
        f(&mut self.lock())
    }
}

impl Lock for std::sync::Mutex<Accounts> {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Accounts) -> R) -> R {
        f(&mut self.lock().unwrap())
    }
}

impl Lock for parking_lot::Mutex<Accounts> {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Accounts) -> R) -> R {
        f(&mut self.lock())
    }
}

/// A bare test-and-test-and-set spinlock: the cost floor of lock + unlock.
#[derive(Default)]
struct SpinLock {
    locked: AtomicBool,
    data: std::cell::UnsafeCell<Accounts>,
}

// SAFETY: `data` is only touched by the thread that set `locked`.
unsafe impl Sync for SpinLock {}

impl Lock for SpinLock {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Accounts) -> R) -> R {
        while self.locked.swap(true, Ordering::Acquire) {
            while self.locked.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        // SAFETY: we own the lock until the store below.
        let r = f(unsafe { &mut *self.data.get() });
        self.locked.store(false, Ordering::Release);
        r
    }
}

type Gosync = gosync::Mutex<Accounts>;
type Std = std::sync::Mutex<Accounts>;
type Pl = parking_lot::Mutex<Accounts>;

/// Go's `acc0 -= 100; acc1 += 100` under the lock.
#[inline]
fn transfer(a: &mut Accounts) {
    a.acc0 -= 100;
    a.acc1 += 100;
}

/// `BenchmarkMutexUncontended`: a private, padded lock per thread.
fn uncontended<L: Lock>(threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |_, it| {
        let lock = CachePadded::new(L::default());
        while it.next() {
            lock.with(|_| {});
        }
    })
    .into()
}

/// `BenchmarkMutex` / `Slack` / `Work` / `WorkSlack`: a shared lock, empty section, then
/// Go's work loop outside (`work` = Work/WorkSlack; Go compiles the loop to 100 empty rounds).
fn shared<L: Lock>(threads: usize, iters: u64, work: bool) -> Sample {
    let lock = L::default();
    run_parallel(threads, iters, |_, it| {
        while it.next() {
            lock.with(|_| {});
            if work {
                gowork::empty_loop(100);
            }
        }
    })
    .into()
}

/// `work-only`: `BenchmarkMutexWork` without the lock.
fn work_only(threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |_, it| {
        while it.next() {
            gowork::empty_loop(100);
        }
    })
    .into()
}

/// `BenchmarkMutexSpin`: transfer under the lock, then dirty a private 128 KiB array.
fn spin<L: Lock>(threads: usize, iters: u64) -> Sample {
    let lock = L::default();
    run_parallel(threads, iters, |_, it| {
        let mut data = vec![0u64; 16 << 10];
        while it.next() {
            lock.with(transfer);
            gowork::stride_inc(&mut data);
        }
        black_box(&data);
    })
    .into()
}

/// `work-only Spin`: `BenchmarkMutexSpin` without the locked transfer.
fn spin_work_only(threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |_, it| {
        let mut data = vec![0u64; 16 << 10];
        while it.next() {
            gowork::stride_inc(&mut data);
        }
        black_box(&data);
    })
    .into()
}

/// `BenchmarkMutexNoSpin`: one iteration in 4 transfers under the lock; the others dirty a
/// private 32 KiB array and give up the CPU.
fn no_spin<L: Lock>(threads: usize, iters: u64) -> Sample {
    let lock = L::default();
    run_parallel(threads * 4, iters, |_, it| {
        let mut data = vec![0u64; 4 << 10];
        let mut local = 0u64;
        while it.next() {
            local += 1;
            if local.is_multiple_of(4) {
                lock.with(transfer);
            } else {
                gowork::stride_inc(&mut data);
                std::thread::yield_now();
            }
        }
        black_box(&data);
    })
    .into()
}

/// How long each critical section of the fairness workload lasts.
const HOLD: Duration = Duration::from_micros(10);

/// Fairness: threads re-lock at once after a ~10 µs busy critical section; records every
/// acquisition's wait (ns).
fn fairness<L: Lock>(threads: usize, iters: u64) -> Sample {
    let lock = L::default();
    let hists = std::sync::Mutex::new(latency_histogram());
    let elapsed = run_parallel(threads, iters, |_, it| {
        let mut hist = latency_histogram();
        while it.next() {
            let t = Instant::now();
            lock.with(|a| {
                hist.record((t.elapsed().as_nanos() as u64).max(1)).ok();
                let until = Instant::now() + HOLD;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                transfer(a);
            });
        }
        hists.lock().unwrap().add(&hist).ok();
    });
    Sample::with_latency(elapsed, hists.into_inner().unwrap())
}

/// The standard comparison set for a workload; `with_spin` adds the spinlock.
fn impls<'a>(
    with_spin: bool,
    g: impl FnMut(u64) -> Sample + 'a,
    s: impl FnMut(u64) -> Sample + 'a,
    p: impl FnMut(u64) -> Sample + 'a,
    sp: impl FnMut(u64) -> Sample + 'a,
) -> Vec<Impl<'a>> {
    let mut v = vec![
        Impl::new("gosync", g),
        Impl::new("std", s),
        Impl::new("parking_lot", p),
    ];
    if with_spin {
        v.push(Impl::new("spinlock", sp));
    }
    v
}

/// Go's benchmark names and the workloads they map to.
const GO_NAMES: &[(&str, &str)] = &[
    ("BenchmarkMutexUncontended", "MutexUncontended"),
    ("BenchmarkMutex", "Mutex"),
    ("BenchmarkMutexSlack", "MutexSlack"),
    ("BenchmarkMutexWork", "MutexWork"),
    ("BenchmarkMutexWorkSlack", "MutexWorkSlack"),
    ("BenchmarkMutexSpin", "MutexSpin"),
    ("BenchmarkMutexNoSpin", "MutexNoSpin"),
];

/// The work-only rows' Go side, in `go/mirror`.
const GO_MIRROR_NAMES: &[(&str, &str)] = &[
    ("BenchmarkMutexWorkOnly", "work-only"),
    ("BenchmarkMutexSpinWorkOnly", "work-only Spin"),
];

/// The family's entry point.
pub fn run(ctx: &mut Ctx) {
    let threads = ctx.threads();
    // A spinlock is only safe from livelock when threads ≤ cores.
    let cores = ctx.cores();
    // With --go, Go's benchmarks run interleaved with the Rust implementations of each cell.
    crate::go::mirror(ctx, "mutex", crate::go::Target::Std("sync"), GO_NAMES);
    crate::go::mirror(
        ctx,
        "mutex",
        crate::go::Target::Dir("go/mirror"),
        GO_MIRROR_NAMES,
    );
    // Go's loops without the lock (Go's side: go/mirror).
    for &t in &threads {
        ctx.compare(
            "mutex",
            "work-only",
            t,
            vec![Impl::new("rust", |n| work_only(t, n))],
        );
    }
    for &t in &threads {
        ctx.compare(
            "mutex",
            "work-only Spin",
            t,
            vec![Impl::new("rust", |n| spin_work_only(t, n))],
        );
    }
    for &t in &threads {
        ctx.compare(
            "mutex",
            "MutexUncontended",
            t,
            impls(
                t <= cores,
                |n| uncontended::<Gosync>(t, n),
                |n| uncontended::<Std>(t, n),
                |n| uncontended::<Pl>(t, n),
                |n| uncontended::<SpinLock>(t, n),
            ),
        );
    }
    for (name, work, slack) in [
        ("Mutex", false, 1),
        ("MutexSlack", false, 10),
        ("MutexWork", true, 1),
        ("MutexWorkSlack", true, 10),
    ] {
        for &t in &threads {
            let n_threads = t * slack;
            ctx.compare_with_os_threads(
                "mutex",
                name,
                t,
                n_threads,
                impls(
                    n_threads <= cores,
                    |n| shared::<Gosync>(n_threads, n, work),
                    |n| shared::<Std>(n_threads, n, work),
                    |n| shared::<Pl>(n_threads, n, work),
                    |n| shared::<SpinLock>(n_threads, n, work),
                ),
            );
        }
    }
    for &t in &threads {
        ctx.compare(
            "mutex",
            "MutexSpin",
            t,
            impls(
                t <= cores,
                |n| spin::<Gosync>(t, n),
                |n| spin::<Std>(t, n),
                |n| spin::<Pl>(t, n),
                |n| spin::<SpinLock>(t, n),
            ),
        );
    }
    for &t in &threads {
        ctx.compare_with_os_threads(
            "mutex",
            "MutexNoSpin",
            t,
            4 * t,
            impls(
                false,
                |n| no_spin::<Gosync>(t, n),
                |n| no_spin::<Std>(t, n),
                |n| no_spin::<Pl>(t, n),
                |n| no_spin::<SpinLock>(t, n),
            ),
        );
    }
    for &t in threads.iter().filter(|&&t| t >= 2) {
        ctx.compare(
            "mutex",
            "Fairness",
            t,
            impls(
                t <= cores,
                |n| fairness::<Gosync>(t, n),
                |n| fairness::<Std>(t, n),
                |n| fairness::<Pl>(t, n),
                |n| fairness::<SpinLock>(t, n),
            ),
        );
    }
}
