//! The measuring core every benchmark family uses.
//!
//! Trust on a noisy 2-core machine comes from comparing, not from absolute times: every
//! implementation of a workload is calibrated on its own, then all of them run **interleaved**
//! (A B C A B C ...) for several rounds in the same process, and the table reports the median
//! ns/op, the spread (min..max across rounds, as ± % of the median) and each peer's ratio to
//! gosync. A single slow round (another process took the core) moves one sample, not the median.
//! A stall during a calibration would size every round too small (rounds that measure little
//! but their own start); rounds far shorter than the target time reveal it, and the cell is
//! calibrated and measured again (see [`Ctx::compare_with_os_threads`]).
//!
//! Families call [`Ctx::compare`] with one [`Impl`] per implementation, gosync first. An
//! `Impl`'s closure is asked to run `iters` operations and return a [`Sample`] (its elapsed
//! wall time, optionally a latency histogram and extra metrics). [`run_parallel`] mirrors Go's
//! `b.RunParallel` so multi-threaded workloads match Go's benchmarks operation for operation.

#![allow(dead_code)] // The API families build on; not every family uses every part.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

/// What one run of an implementation produced.
#[derive(Debug)]
pub struct Sample {
    /// Wall time for all the iterations of the run.
    pub elapsed: Duration,
    /// Optional latency histogram (nanoseconds), e.g. lock acquisition waits.
    pub latency: Option<Histogram<u64>>,
    /// Extra metrics (memory, retained bytes, counts); the median over rounds is reported.
    pub extra: BTreeMap<String, f64>,
}

impl Sample {
    /// A sample with a latency histogram (values in nanoseconds).
    pub fn with_latency(elapsed: Duration, latency: Histogram<u64>) -> Self {
        Sample {
            elapsed,
            latency: Some(latency),
            extra: BTreeMap::new(),
        }
    }
    /// Adds an extra metric (builder style).
    pub fn extra(mut self, name: &str, value: f64) -> Self {
        self.extra.insert(name.to_string(), value);
        self
    }
}

impl From<Duration> for Sample {
    fn from(elapsed: Duration) -> Self {
        Sample {
            elapsed,
            latency: None,
            extra: BTreeMap::new(),
        }
    }
}

/// A new latency histogram for nanosecond values up to one minute, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// One implementation of a workload.
pub struct Impl<'a> {
    name: String,
    run: Box<dyn FnMut(u64) -> Sample + 'a>,
    min_iters: u64,
}

impl<'a> Impl<'a> {
    /// `run(iters)` performs `iters` operations of the workload and returns what it measured.
    pub fn new(name: impl Into<String>, run: impl FnMut(u64) -> Sample + 'a) -> Self {
        Impl {
            name: name.into(),
            run: Box::new(run),
            min_iters: 1,
        }
    }

    /// Never runs fewer than `n` operations at once, neither while calibrating nor in a
    /// round: for workloads whose first operations differ from the steady state (clients
    /// that all start at once), so that a short target time does not measure only the start.
    pub fn min_iters(mut self, n: u64) -> Self {
        self.min_iters = n.max(1);
        self
    }
}

/// Iteration claims for one thread of [`run_parallel`], like Go's `testing.PB`.
pub struct Iters<'a> {
    shared: &'a AtomicU64,
    total: u64,
    grain: u64,
    local: u64,
}

impl Iters<'_> {
    /// Whether the thread should run one more iteration.
    #[inline]
    pub fn next(&mut self) -> bool {
        if self.local > 0 {
            self.local -= 1;
            return true;
        }
        let start = self.shared.fetch_add(self.grain, Ordering::Relaxed);
        if start >= self.total {
            return false;
        }
        self.local = (self.total - start).min(self.grain) - 1;
        true
    }
}

/// The async counterpart of [`run_parallel`]: splits `iters` over `tasks` tasks spawned on `rt`,
/// each running `body(task index, its share)`; returns the wall time from the first spawn to
/// the last task's end. The futures are built before the clock starts.
pub fn run_tasks<F, Fut>(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    iters: u64,
    body: F,
) -> Duration
where
    F: Fn(usize, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let tasks = tasks.max(1);
    let (per, extra) = (iters / tasks as u64, iters % tasks as u64);
    let futs: Vec<Fut> = (0..tasks)
        .map(|i| body(i, per + u64::from((i as u64) < extra)))
        .collect();
    rt.block_on(async {
        let t0 = Instant::now();
        let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
        for h in handles {
            h.await.expect("benchmark task panicked");
        }
        t0.elapsed()
    })
}

/// Runs `iters` iterations of `body` spread over `threads` threads, as Go's `b.RunParallel`
/// does: the threads start together (barrier) and claim iterations from one shared counter in
/// grains; the result is the wall time from the start to the last thread's end. `body` gets the
/// thread index and its [`Iters`].
pub fn run_parallel<F>(threads: usize, iters: u64, body: F) -> Duration
where
    F: Fn(usize, &mut Iters<'_>) + Sync,
{
    let threads = threads.max(1);
    let shared = AtomicU64::new(0);
    // Go sizes grains to ~100 µs of work; a fixed fraction of the per-thread share is close
    // enough and keeps the counter out of the measured path.
    let grain = (iters / threads as u64 / 100).clamp(1, 10_000);
    let barrier = Barrier::new(threads);
    // Each worker stamps its own start (after the barrier) and end, relative to `base`; the
    // run is first start .. last end. (Stamping in the coordinating thread undercounts when
    // that thread is descheduled after the barrier on a loaded machine.)
    let base = Instant::now();
    let first_start = AtomicU64::new(u64::MAX);
    let last_end = AtomicU64::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|tid| {
                let (shared, barrier, body) = (&shared, &barrier, &body);
                let (first_start, last_end) = (&first_start, &last_end);
                s.spawn(move || {
                    let mut it = Iters {
                        shared,
                        total: iters,
                        grain,
                        local: 0,
                    };
                    barrier.wait();
                    first_start.fetch_min(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    body(tid, &mut it);
                    last_end.fetch_max(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                })
            })
            .collect();
        for h in handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
    let (start, end) = (first_start.into_inner(), last_end.into_inner());
    Duration::from_nanos(end.saturating_sub(start).max(1))
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
    /// Number of values.
    pub count: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            count: h.len(),
        }
    }
}

/// One measured cell: an implementation of a workload at a thread count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Benchmark family (`mutex`, `map`, ...).
    pub family: String,
    /// Workload name (mirrors Go's benchmark name where there is one).
    pub workload: String,
    /// The cell's thread count as labelled: Go's `-cpu` for mirrored workloads, otherwise the
    /// threads (or tasks/clients) used.
    pub threads: usize,
    /// OS threads the cell ran on when that differs from `threads` (e.g. 10 per `-cpu` for
    /// Go's `SetParallelism(10)` workloads, 2 runtime workers for async tasks); 0 = `threads`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub os_threads: usize,
    /// Implementation (`gosync`, `std`, `parking_lot`, ...).
    pub implementation: String,
    /// Median ns per operation over the rounds.
    pub ns_per_op: f64,
    /// Fastest round, ns/op.
    pub ns_min: f64,
    /// Slowest round, ns/op.
    pub ns_max: f64,
    /// Rounds measured.
    pub rounds: usize,
    /// ns/op of each round, in round order (rounds interleave the implementations, so the
    /// k-th samples of two implementations were taken at nearly the same time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
    /// Iterations per round.
    pub iters: u64,
    /// Latency percentiles merged over all rounds, when the workload measures them.
    pub latency: Option<Percentiles>,
    /// Median of each extra metric over the rounds.
    pub extra: BTreeMap<String, f64>,
}

impl Record {
    /// OS threads the cell ran on.
    pub fn os_threads(&self) -> usize {
        if self.os_threads == 0 {
            self.threads
        } else {
            self.os_threads
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A figure from Go's own benchmarks, for the Go column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoRecord {
    /// Family the figure belongs to.
    pub family: String,
    /// Workload name as used by the gosync side.
    pub workload: String,
    /// GOMAXPROCS.
    pub threads: usize,
    /// Go's reported ns/op: the median of `runs` when Go ran the benchmark more than once.
    pub ns_per_op: f64,
    /// Every ns/op Go reported for this cell (`go test -count N`), in run order.
    #[serde(default)]
    pub runs: Vec<f64>,
    /// Measured in the same rounds as the Rust implementations (see `go::mirror`), rather
    /// than by a separate `go test` run after them.
    #[serde(default)]
    pub interleaved: bool,
}

impl GoRecord {
    /// Fastest and slowest of the runs (both `ns_per_op` when there is one run).
    pub fn range(&self) -> (f64, f64) {
        if self.runs.is_empty() {
            return (self.ns_per_op, self.ns_per_op);
        }
        let min = self.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

/// A free-form metric that is not a timing (memory per entry, computations run, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metric {
    /// Family.
    pub family: String,
    /// What was measured.
    pub name: String,
    /// Implementation.
    pub implementation: String,
    /// Value.
    pub value: f64,
    /// Unit (`bytes`, `count`, ...).
    pub unit: String,
}

/// The run's settings and collected results.
pub struct Ctx {
    quick: bool,
    go: bool,
    threads: Vec<usize>,
    cores: usize,
    rounds: usize,
    target: Duration,
    /// All measured cells, in order.
    pub records: Vec<Record>,
    /// Go's figures.
    pub go_records: Vec<GoRecord>,
    /// Free-form metrics.
    pub metrics: Vec<Metric>,
    /// Notes printed in the summary (settings, caveats).
    pub notes: Vec<String>,
    /// Measure only workloads whose name contains this text (`--only`).
    pub only: Option<String>,
    /// Go benchmarks to measure interleaved with the Rust implementations (`go::mirror`).
    pub go_mirrors: Vec<crate::go::Mirror>,
    /// Where compiled Go test binaries go (removed when the run ends).
    go_dir: std::path::PathBuf,
    /// Go benchmarks that failed once (not tried again), by binary and name.
    go_failed: Vec<String>,
    progress: ProgressBar,
}

impl Ctx {
    /// A context; `go` is honoured only when a `go` binary is on PATH.
    pub fn new(quick: bool, go: bool, threads: Vec<usize>, progress: ProgressBar) -> Self {
        Ctx {
            quick,
            go: go && crate::go::available(),
            threads,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rounds: if quick { 3 } else { 7 },
            target: Duration::from_millis(if quick { 25 } else { 100 }),
            records: Vec::new(),
            go_records: Vec::new(),
            metrics: Vec::new(),
            notes: Vec::new(),
            only: None,
            go_mirrors: Vec::new(),
            go_dir: std::env::temp_dir().join(format!("gosync-bench-go-{}", std::process::id())),
            go_failed: Vec::new(),
            progress,
        }
    }
    /// Whether `--quick` is on: families keep themselves short.
    pub fn quick(&self) -> bool {
        self.quick
    }
    /// Whether Go figures are wanted and `go` is available.
    pub fn go_enabled(&self) -> bool {
        self.go
    }
    /// The thread counts to measure (default 1, 2, 4, 8).
    pub fn threads(&self) -> Vec<usize> {
        self.threads.clone()
    }
    /// The cores this process may run on (cells with more OS threads are oversubscribed).
    pub fn cores(&self) -> usize {
        self.cores
    }
    /// Prints a line above the progress bar.
    pub fn println(&self, line: impl AsRef<str>) {
        self.progress.suspend(|| println!("{}", line.as_ref()));
    }
    /// Adds a note to the summary (and prints it now).
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.println(format!("  note: {text}"));
        self.notes.push(text);
    }
    /// Adds a Go figure for the Go column. Adding the same cell again (Go ran it several
    /// times) adds a run: the cell's figure becomes the median of its runs.
    pub fn add_go(&mut self, family: &str, workload: &str, threads: usize, ns_per_op: f64) {
        if let Some(g) = self
            .go_records
            .iter_mut()
            .find(|g| g.family == family && g.workload == workload && g.threads == threads)
        {
            g.runs.push(ns_per_op);
            let mut v = g.runs.clone();
            v.sort_by(f64::total_cmp);
            g.ns_per_op = median(&v);
            return;
        }
        self.go_records.push(GoRecord {
            family: family.into(),
            workload: workload.into(),
            threads,
            ns_per_op,
            runs: vec![ns_per_op],
            interleaved: false,
        });
    }
    /// Records a non-timing metric (and prints it).
    pub fn metric(
        &mut self,
        family: &str,
        name: &str,
        implementation: &str,
        value: f64,
        unit: &str,
    ) {
        self.println(format!(
            "  {family}/{name} [{implementation}]: {value:.1} {unit}"
        ));
        self.metrics.push(Metric {
            family: family.into(),
            name: name.into(),
            implementation: implementation.into(),
            value,
            unit: unit.into(),
        });
    }

    /// Calibrates, then measures the implementations interleaved, records and prints the block.
    /// The first implementation is the reference (gosync) for the ratio column.
    pub fn compare(&mut self, family: &str, workload: &str, threads: usize, impls: Vec<Impl<'_>>) {
        self.compare_with_os_threads(family, workload, threads, threads, impls);
    }

    /// [`Ctx::compare`] for a cell labelled `threads` that runs on `os_threads` OS threads (Go's
    /// `SetParallelism(p)` workloads: `p × threads`; async tasks: the runtime's workers). The
    /// report marks cells with more OS threads than cores as oversubscribed.
    pub fn compare_with_os_threads(
        &mut self,
        family: &str,
        workload: &str,
        threads: usize,
        os_threads: usize,
        mut impls: Vec<Impl<'_>>,
    ) {
        // `--only` keeps the work-only rows: they decide whether Go's figures may be compared.
        if self
            .only
            .as_ref()
            .is_some_and(|o| !workload.contains(o.as_str()))
            && !crate::report::is_work_only(workload)
        {
            return;
        }
        // Go's mirror of this workload, if the family registered one: one more implementation,
        // measured in the same rounds; its figures go to the Go column, not the peers.
        let go_failure = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
        let mut go_index = None;
        if let Some((bin, name)) = self.go_mirror_for(family, workload) {
            let failure = go_failure.clone();
            let target = self.target;
            let key = format!("{}:{name}", bin.display());
            go_index = Some((impls.len(), key));
            impls.push(Impl::new(GO_IMPL, move |n| {
                if failure.borrow().is_some() {
                    return Duration::from_secs(1).into();
                }
                // Go sizes its own run (see `go::run_once`); the result is scaled to `n`
                // iterations so that calibration and the per-op figure work as for Rust.
                match crate::go::run_once(&bin, &name, threads, target) {
                    Ok(ns) => Duration::from_nanos((ns * n as f64).round().max(1.0) as u64).into(),
                    Err(e) => {
                        *failure.borrow_mut() = Some(e);
                        Duration::from_secs(1).into()
                    }
                }
            }));
        }
        // A work-only row with Go beside it proves the Go mirror (see `report::MirrorCheck`):
        // more rounds, so that the median of the paired Rust/Go ratios rests on many pairs.
        // (Shorter rounds would give more pairs in the same time, but Go's figure drifts up
        // below ~25 ms: its ramp-up and goroutine start-up weigh more.)
        let rounds = if go_index.is_some() && crate::report::is_work_only(workload) {
            self.rounds.max(WORK_ONLY_ROUNDS)
        } else {
            self.rounds
        };
        self.progress
            .set_message(format!("{family}/{workload} ×{threads}"));
        let is_go = |i: usize| go_index.as_ref().is_some_and(|(g, _)| *g == i);
        // Calibrate each implementation on its own (Go sizes its own runs; any count works for
        // it, its figure being ns/op × count).
        let mut iters: Vec<u64> = impls
            .iter_mut()
            .enumerate()
            .map(|(i, imp)| {
                if is_go(i) {
                    1_000_000
                } else {
                    self.calibrate(imp)
                }
            })
            .collect();
        let k = impls.len();
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); k];
        let mut hists: Vec<Option<Histogram<u64>>> = (0..k).map(|_| None).collect();
        let mut extras: Vec<BTreeMap<String, Vec<f64>>> = vec![BTreeMap::new(); k];
        for attempt in 0..=RECALIBRATIONS {
            ns.iter_mut().for_each(Vec::clear);
            hists.iter_mut().for_each(|h| *h = None);
            extras.iter_mut().for_each(BTreeMap::clear);
            for _round in 0..rounds {
                for (i, imp) in impls.iter_mut().enumerate() {
                    let s = (imp.run)(iters[i]);
                    ns[i].push(s.elapsed.as_nanos() as f64 / iters[i] as f64);
                    if let Some(h) = s.latency {
                        match &mut hists[i] {
                            Some(acc) => acc.add(&h).expect("compatible histograms"),
                            slot => *slot = Some(h),
                        }
                    }
                    for (name, v) in s.extra {
                        extras[i].entry(name).or_default().push(v);
                    }
                    self.progress.tick();
                }
            }
            // A calibration that ran while the machine stalled (every one of its runs at the
            // final size) settles on far too few iterations, and then every round measures
            // little but the start of the run (threads being scheduled): rounds far shorter
            // than the target say so. Calibrate those implementations again and redo the
            // rounds, all of them, so that they stay interleaved.
            let short: Vec<usize> = (0..k)
                .filter(|&i| !is_go(i) && self.round_too_short(&ns[i], iters[i]))
                .collect();
            if short.is_empty() || attempt == RECALIBRATIONS {
                break;
            }
            for i in short {
                let old = iters[i];
                iters[i] = self.calibrate(&mut impls[i]);
                self.println(format!(
                    "  {family}/{workload} ×{threads}: {}'s rounds ran far under the target time; \
                     recalibrated ({old} → {} iterations) and measured the cell again",
                    impls[i].name, iters[i]
                ));
            }
        }
        let mut block = Vec::new();
        for (i, imp) in impls.iter().enumerate() {
            let mut v = ns[i].clone();
            v.sort_by(f64::total_cmp);
            block.push(Record {
                family: family.into(),
                workload: workload.into(),
                threads,
                os_threads: if os_threads == threads { 0 } else { os_threads },
                implementation: imp.name.clone(),
                ns_per_op: median(&v),
                ns_min: v[0],
                ns_max: v[v.len() - 1],
                rounds: v.len(),
                samples: ns[i].clone(),
                iters: iters[i],
                latency: hists[i].as_ref().map(Percentiles::of),
                extra: extras[i]
                    .iter()
                    .map(|(name, vals)| {
                        let mut vals = vals.clone();
                        vals.sort_by(f64::total_cmp);
                        (name.clone(), median(&vals))
                    })
                    .collect(),
            });
        }
        if let Some((i, key)) = go_index {
            let go = block.remove(i);
            let failure = go_failure.borrow().clone();
            match failure {
                Some(e) => {
                    self.println(format!("  go: {e}"));
                    self.go_failed.push(key);
                }
                None => {
                    self.go_records.push(GoRecord {
                        family: family.into(),
                        workload: workload.into(),
                        threads,
                        ns_per_op: go.ns_per_op,
                        runs: ns[i].clone(),
                        interleaved: true,
                    });
                    block.push(go);
                }
            }
        }
        self.println(format_block(&block));
        block.retain(|r| r.implementation != GO_IMPL);
        self.records.extend(block);
    }

    /// Calibrates one implementation: grows `iters` until one run takes at least a fifth of
    /// the target, then scales to the target (never below the implementation's `min_iters`).
    fn calibrate(&self, imp: &mut Impl<'_>) -> u64 {
        let mut n: u64 = imp.min_iters;
        loop {
            let s = (imp.run)(n);
            let el = s.elapsed.max(Duration::from_nanos(1));
            if el >= self.target / 5 || n >= 1 << 40 {
                // One slow run (the thread lost its core) would leave `n` far too small
                // for every round: scale from the fastest of three runs at this size.
                let el = (0..2)
                    .map(|_| (imp.run)(n).elapsed)
                    .fold(el, Duration::min)
                    .max(Duration::from_nanos(1));
                let scaled = (n as f64 * self.target.as_secs_f64() / el.as_secs_f64()) as u64;
                return scaled.clamp(imp.min_iters, n.saturating_mul(100));
            }
            // Aim directly for the target with headroom, at most ×100 per step.
            let guess =
                (n as f64 * (self.target.as_secs_f64() / 5.0) / el.as_secs_f64() * 1.5) as u64;
            n = guess.clamp(n + 1, n.saturating_mul(100));
        }
    }

    /// Whether rounds of `iters` operations at these ns/op took less than a quarter of the
    /// target time (median round): the calibration overestimated an operation's cost at
    /// least four times. (A `min_iters` floor only lengthens rounds.)
    fn round_too_short(&self, ns_per_op: &[f64], iters: u64) -> bool {
        let mut v = ns_per_op.to_vec();
        v.sort_by(f64::total_cmp);
        let round_ns = median(&v) * iters as f64;
        round_ns < self.target.as_nanos() as f64 / 4.0
    }

    /// The compiled test binary and benchmark name of Go's mirror of a workload, if one is
    /// registered (and has not failed before). Compiles the binary on first use.
    fn go_mirror_for(
        &mut self,
        family: &str,
        workload: &str,
    ) -> Option<(std::path::PathBuf, String)> {
        let (target, name) = self.go_mirrors.iter().find_map(|m| {
            (m.family == family)
                .then(|| m.names.iter().find(|(_, w)| w == workload))
                .flatten()
                .map(|(g, _)| (m.target, g.clone()))
        })?;
        match crate::go::test_binary(&self.go_dir, target) {
            Ok(bin) => {
                let key = format!("{}:{name}", bin.display());
                (!self.go_failed.contains(&key)).then_some((bin, name))
            }
            Err(e) => {
                self.println(format!("  go: {e}"));
                // Forget the target so the error is printed once.
                self.go_mirrors.retain(|m| m.target != target);
                None
            }
        }
    }
}

/// Rounds of a work-only row (at least).
pub const WORK_ONLY_ROUNDS: usize = 21;

/// How many times a cell's rounds are redone after a recalibration when they came out far
/// shorter than the target (see `Ctx::compare_with_os_threads`).
const RECALIBRATIONS: usize = 2;

/// The implementation name of Go's interleaved figure in a printed block.
pub const GO_IMPL: &str = "Go (interleaved)";

impl Drop for Ctx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.go_dir);
    }
}

/// Median of a sorted slice.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Formats nanoseconds compactly (ns, µs, ms, s).
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns < 1_000.0 {
        format!("{ns:.1}ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

fn format_block(block: &[Record]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(first) = block.first() else {
        return out;
    };
    let reference = first.ns_per_op;
    let _ = writeln!(
        out,
        "{} / {} / {} threads{}",
        first.family,
        first.workload,
        first.threads,
        if first.os_threads() != first.threads {
            format!(" ({} OS threads)", first.os_threads())
        } else {
            String::new()
        }
    );
    let has_lat = block.iter().any(|r| r.latency.is_some());
    let extra_names: Vec<String> = {
        let mut names: Vec<String> = block.iter().flat_map(|r| r.extra.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    };
    let _ = write!(
        out,
        "  {:<22} {:>10} {:>8} {:>10} {:>9}",
        "impl", "ns/op", "±%", "Mops/s", "÷gosync"
    );
    if has_lat {
        let _ = write!(
            out,
            " {:>9} {:>9} {:>9} {:>9}",
            "p50", "p99", "p99.9", "max"
        );
    }
    for n in &extra_names {
        let _ = write!(out, " {n:>14}");
    }
    out.push('\n');
    for r in block {
        let spread = (r.ns_max - r.ns_min) / 2.0 / r.ns_per_op * 100.0;
        let _ = write!(
            out,
            "  {:<22} {:>10.1} {:>7.0}% {:>10.2} {:>9.2}",
            r.implementation,
            r.ns_per_op,
            spread,
            1e3 / r.ns_per_op,
            r.ns_per_op / reference
        );
        if has_lat {
            match &r.latency {
                Some(p) => {
                    let _ = write!(
                        out,
                        " {:>9} {:>9} {:>9} {:>9}",
                        fmt_ns(p.p50 as f64),
                        fmt_ns(p.p99 as f64),
                        fmt_ns(p.p999 as f64),
                        fmt_ns(p.max as f64)
                    );
                }
                None => {
                    let _ = write!(out, " {:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-");
                }
            }
        }
        for n in &extra_names {
            match r.extra.get(n) {
                Some(v) => {
                    let _ = write!(out, " {v:>14.1}");
                }
                None => {
                    let _ = write!(out, " {:>14}", "-");
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_parallel_runs_exactly_iters() {
        for threads in [1, 2, 3, 8] {
            for iters in [0u64, 1, 7, 1000, 12345] {
                let count = AtomicU64::new(0);
                run_parallel(threads, iters, |_, it| {
                    while it.next() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert_eq!(count.load(Ordering::Relaxed), iters, "threads={threads}");
            }
        }
    }

    /// The interleaved Go path, with a stand-in for a compiled Go test binary that prints one
    /// benchmark line for whatever `-test.cpu` it is given.
    #[test]
    fn interleaved_go_figures_go_to_the_go_column() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("std-sync.test");
        std::fs::write(
            &bin,
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -test.cpu ] && cpu=$2; shift; done\n\
             echo \"BenchmarkMutex-$cpu   1000   12.5 ns/op\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut ctx = Ctx::new(true, false, vec![2], ProgressBar::hidden());
        ctx.go = true; // as if `go` were on PATH
        ctx.go_dir = dir.path().to_path_buf();
        crate::go::mirror(
            &mut ctx,
            "mutex",
            crate::go::Target::Std("sync"),
            &[("BenchmarkMutex", "Mutex")],
        );
        ctx.compare(
            "mutex",
            "Mutex",
            2,
            vec![
                Impl::new("gosync", |n| Duration::from_nanos(10 * n).into()),
                Impl::new("std", |n| Duration::from_nanos(11 * n).into()),
            ],
        );
        // A workload without a mirror gets no Go figure.
        ctx.compare(
            "mutex",
            "Other",
            2,
            vec![Impl::new("gosync", |n| Duration::from_nanos(10 * n).into())],
        );
        assert_eq!(ctx.records.len(), 3, "Go is not a peer row");
        assert!(ctx.records.iter().all(|r| r.implementation != GO_IMPL));
        assert_eq!(ctx.go_records.len(), 1);
        let g = &ctx.go_records[0];
        assert_eq!((g.workload.as_str(), g.threads), ("Mutex", 2));
        assert!(g.interleaved);
        assert_eq!(g.runs.len(), ctx.rounds);
        assert!((g.ns_per_op - 12.5).abs() < 1e-9, "{}", g.ns_per_op);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn compare_records_one_row_per_impl_with_reference_first() {
        let mut ctx = Ctx::new(true, false, vec![1], ProgressBar::hidden());
        ctx.compare(
            "t",
            "w",
            1,
            vec![
                Impl::new("a", |n| Duration::from_nanos(10 * n).into()),
                Impl::new("b", |n| {
                    Sample::from(Duration::from_nanos(20 * n)).extra("bytes", 5.0)
                }),
            ],
        );
        assert_eq!(ctx.records.len(), 2);
        assert_eq!(ctx.records[0].implementation, "a");
        assert!((ctx.records[0].ns_per_op - 10.0).abs() < 1e-9);
        assert!((ctx.records[1].ns_per_op - 20.0).abs() < 1e-9);
        assert_eq!(ctx.records[1].extra.get("bytes"), Some(&5.0));
    }

    #[test]
    fn a_calibration_caught_in_a_stall_is_redone() {
        // Every run costs a fixed 100 µs (threads starting) plus 10 ns per operation; the first
        // three runs, all of the calibration at its first size, also wait 20 ms for a CPU.
        // Settling on that size would report the start-up cost as the cost of an operation.
        let mut ctx = Ctx::new(true, false, vec![1], ProgressBar::hidden());
        let calls = std::cell::Cell::new(0u32);
        let steady = std::cell::Cell::new(0u32);
        ctx.compare(
            "t",
            "w",
            1,
            vec![
                Impl::new("stalled", |n| {
                    calls.set(calls.get() + 1);
                    let stall = if calls.get() <= 3 { 20_000_000 } else { 0 };
                    Duration::from_nanos(stall + 100_000 + 10 * n).into()
                }),
                Impl::new("steady", |n| {
                    steady.set(steady.get() + 1);
                    Duration::from_nanos(100_000 + 10 * n).into()
                }),
            ],
        );
        let stalled = &ctx.records[0];
        assert!(
            (9.0..12.0).contains(&stalled.ns_per_op),
            "{} ns/op from {} iterations",
            stalled.ns_per_op,
            stalled.iters
        );
        assert!((9.0..12.0).contains(&ctx.records[1].ns_per_op));
        // The rounds were redone once for both (they interleave), the calibration only for
        // the stalled one: a steady implementation runs its calibration and two sets of rounds.
        assert_eq!(stalled.rounds, ctx.records[1].rounds);
        let steady_calibration = steady.get() as usize - 2 * stalled.rounds;
        assert!(steady_calibration >= 3, "{}", steady.get());
    }

    #[test]
    fn min_iters_bounds_every_run_from_below() {
        let mut ctx = Ctx::new(true, false, vec![1], ProgressBar::hidden());
        let seen = std::cell::RefCell::new(Vec::new());
        ctx.compare(
            "t",
            "w",
            1,
            // Far slower per operation than the target time allows: without the floor the
            // calibration would settle on a single operation.
            vec![Impl::new("slow", |n| {
                seen.borrow_mut().push(n);
                Duration::from_millis(50 * n).into()
            })
            .min_iters(7)],
        );
        let seen = seen.into_inner();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|&n| n >= 7), "{seen:?}");
        assert_eq!(ctx.records[0].iters, 7);
    }
}
