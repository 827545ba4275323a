//! `profile`: what the contention profiler costs. The same contended `Mutex` workloads with
//! the profiler off (the reference), at mutex rate 100 (Go's common setting: one contention in
//! 100 sampled) and at rate 1 (every contention sampled, with its stack), in one run.
//!
//! Workloads (as in the `mutex` family): `Mutex` (t threads, one shared lock, empty critical
//! section), `MutexSlack` (10·t threads on the same lock: most acquisitions park, so most take
//! the profiled slow path), `Uncontended` (one thread: the fast path, which never calls the
//! profiler; a control for noise).
//!
//! The rates are process-wide: each implementation sets its rate at the start of its round
//! and turns it off again at the end (the harness interleaves the rounds), and the recorded
//! samples are cleared after each round.

use std::hint::black_box;
use std::time::Instant;

use gosync::profile;

use crate::harness::{run_parallel, Ctx, Impl, Sample};

/// The mutex profile rates measured, with their row names; the first is the reference.
const RATES: &[(&str, u64)] = &[
    ("profiler off", 0),
    ("mutex rate 100", 100),
    ("mutex rate 1", 1),
];

/// Runs `f` with the mutex profile at `rate`, then turns it off and drops the samples.
fn at_rate(rate: u64, f: impl FnOnce() -> Sample) -> Sample {
    profile::set_mutex_rate(rate);
    let s = f();
    profile::set_mutex_rate(0);
    profile::reset();
    s
}

fn shared(threads: usize, n: u64) -> Sample {
    let m = gosync::Mutex::new(0u64);
    run_parallel(threads, n, |_, it| {
        while it.next() {
            *m.lock() += 1;
        }
    })
    .into()
}

/// The family entry point.
pub fn run(ctx: &mut Ctx) {
    ctx.compare(
        "profile",
        "Uncontended",
        1,
        RATES
            .iter()
            .map(|&(name, rate)| {
                Impl::new(name, move |n| {
                    at_rate(rate, || {
                        let m = gosync::Mutex::new(0u64);
                        let start = Instant::now();
                        for _ in 0..n {
                            *black_box(&m).lock() += 1;
                        }
                        start.elapsed().into()
                    })
                })
            })
            .collect(),
    );
    for (name, slack) in [("Mutex", 1), ("MutexSlack", 10)] {
        for &t in &ctx.threads() {
            let n_threads = t * slack;
            ctx.compare_with_os_threads(
                "profile",
                name,
                t,
                n_threads,
                RATES
                    .iter()
                    .map(|&(row, rate)| {
                        Impl::new(row, move |n| at_rate(rate, || shared(n_threads, n)))
                    })
                    .collect(),
            );
        }
    }
}
