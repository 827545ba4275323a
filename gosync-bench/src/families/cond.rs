//! `cond`: Go's `BenchmarkCond{1,2,4,8,16,32}` (`src/sync/cond_test.go`) mirrored for gosync's
//! `Cond`, `std::sync::Condvar` and `parking_lot::Condvar`: `waiters + 1` threads meet at a
//! barrier built from a mutex-protected counter; the last to arrive broadcasts, the others wait.
//! One operation is one barrier round.

use crate::harness::{Ctx, Impl, Sample};
use std::time::Instant;

/// One barrier step of Go's `benchmarkCond`, over the three implementations. Returns `false`
/// once the counter says "exit" (`-1`).
trait Barrier: Sync + Default {
    fn step(&self, parties: i64) -> bool;
    fn exit(&self);
}

#[derive(Default)]
struct Gosync(gosync::Mutex<i64>, gosync::Cond);
#[derive(Default)]
struct Std(std::sync::Mutex<i64>, std::sync::Condvar);
#[derive(Default)]
struct Pl(parking_lot::Mutex<i64>, parking_lot::Condvar);

impl Barrier for Gosync {
    fn step(&self, parties: i64) -> bool {
        let mut id = self.0.lock();
        if *id == -1 {
            return false;
        }
        *id += 1;
        if *id == parties {
            *id = 0;
            self.1.broadcast();
        } else {
            self.1.wait(&mut id);
        }
        true
    }
    fn exit(&self) {
        *self.0.lock() = -1;
        self.1.broadcast();
    }
}

impl Barrier for Std {
    fn step(&self, parties: i64) -> bool {
        let mut id = self.0.lock().unwrap();
        if *id == -1 {
            return false;
        }
        *id += 1;
        if *id == parties {
            *id = 0;
            self.1.notify_all();
        } else {
            // Go's benchmark waits once, without a loop; so does this mirror.
            drop(self.1.wait(id).unwrap());
        }
        true
    }
    fn exit(&self) {
        *self.0.lock().unwrap() = -1;
        self.1.notify_all();
    }
}

impl Barrier for Pl {
    fn step(&self, parties: i64) -> bool {
        let mut id = self.0.lock();
        if *id == -1 {
            return false;
        }
        *id += 1;
        if *id == parties {
            *id = 0;
            self.1.notify_all();
        } else {
            self.1.wait(&mut id);
        }
        true
    }
    fn exit(&self) {
        *self.0.lock() = -1;
        self.1.notify_all();
    }
}

/// Go's `benchmarkCond(waiters)`: every one of the `waiters + 1` threads runs `rounds` steps.
fn cond_rounds<B: Barrier>(waiters: usize, rounds: u64) -> Sample {
    let b = B::default();
    let parties = waiters as i64 + 1;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..=waiters {
            s.spawn(|| {
                for _ in 0..rounds {
                    if !b.step(parties) {
                        break;
                    }
                }
                b.exit();
            });
        }
    });
    start.elapsed().into()
}

const WAITERS: &[usize] = &[1, 2, 4, 8, 16, 32];

/// The family's entry point. The thread column is `waiters + 1` (all threads of a round).
pub fn run(ctx: &mut Ctx) {
    for &w in WAITERS {
        ctx.compare(
            "cond",
            &format!("Cond{w}"),
            w + 1,
            vec![
                Impl::new("gosync", |n| cond_rounds::<Gosync>(w, n)),
                Impl::new("std", |n| cond_rounds::<Std>(w, n)),
                Impl::new("parking_lot", |n| cond_rounds::<Pl>(w, n)),
            ],
        );
    }
    // Go runs these at GOMAXPROCS = the machine's cores; its goroutine count is waiters + 1.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = crate::go::bench_std(ctx, "sync", "BenchmarkCond(1|2|4|8|16|32)$", &[cores]);
    for row in rows {
        if let Some(w) = row
            .name
            .strip_prefix("BenchmarkCond")
            .and_then(|n| n.parse::<usize>().ok())
        {
            ctx.add_go("cond", &format!("Cond{w}"), w + 1, row.ns_per_op);
        }
    }
    ctx.note(format!(
        "cond: one op = one barrier round of waiters + 1 threads (Go's benchmarkCond); the Go \
         column ran with GOMAXPROCS={cores}."
    ));
}
