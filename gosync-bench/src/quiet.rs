//! Whether the machine is quiet enough to measure locks: how much CPU time other processes use
//! while gosync-bench waits, just before it starts.
//!
//! Contended figures need the whole machine. A test suite, a build or a second benchmark running
//! at the same time takes CPUs away from the threads being measured; a lock's figure then
//! depends on when its holder happens to be descheduled, and the comparison between
//! implementations stops meaning anything. The load average says little here (it lags by a
//! minute and counts a build that has just finished), so the check samples `/proc/stat` over a
//! short window instead: while gosync-bench sleeps, every busy tick on any CPU is someone else's.

use std::time::Duration;

/// How long the check samples (the kernel counts in ticks of 10 ms on most systems).
pub const WINDOW: Duration = Duration::from_millis(250);

/// At or above this many CPUs' worth of other work the run is called not quiet.
pub const BUSY_WARN: f64 = 0.25;

/// The busy and total time of all CPUs together, in ticks, from the `cpu` line that opens
/// `/proc/stat`. Busy is user, nice, system, irq, softirq and steal (time the hypervisor gave
/// to other machines is not ours either); idle and iowait make up the rest. `None` if the text
/// has no such line.
pub fn cpu_times(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
    // counted in user and nice.
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    if fields.len() < 4 {
        return None;
    }
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let idle = at(3) + at(4);
    Some((busy, busy + idle))
}

/// How many CPUs' worth of work was done between two [`cpu_times`] samples, on a machine with
/// `cores` CPUs: 0.0 on an idle machine, `cores` when every CPU was busy throughout.
pub fn busy_cpus(before: (u64, u64), after: (u64, u64), cores: usize) -> f64 {
    let busy = after.0.saturating_sub(before.0);
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    busy as f64 / total as f64 * cores as f64
}

/// Samples the machine for [`WINDOW`] while this process sleeps and returns how many CPUs'
/// worth of other work ran meanwhile; `None` where `/proc/stat` cannot be read (not Linux).
pub fn others_busy(cores: usize) -> Option<f64> {
    let sample = || cpu_times(&std::fs::read_to_string("/proc/stat").ok()?);
    let before = sample()?;
    std::thread::sleep(WINDOW);
    let after = sample()?;
    Some(busy_cpus(before, after, cores))
}

/// The warning to print before a run, if the machine is busy: what was seen, what it does to
/// the figures, and what to do about it.
pub fn warning(busy: f64, cores: usize) -> Option<String> {
    (busy >= BUSY_WARN).then(|| {
        format!(
            "warning: other processes kept {busy:.1} of the {cores} CPUs busy just before this run; \
             contended figures will be skewed (a lock's holder loses its CPU at random). \
             Stop builds, tests and other benchmarks, then run again."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 1000 20 3 2 10 7 0\n\
                        cpu0 50 2 25 500 10 1 1 5 3 0\n\
                        cpu1 50 3 25 500 10 2 1 5 4 0\n\
                        intr 12345\n";

    #[test]
    fn cpu_times_reads_the_summary_line() {
        // busy = user 100 + nice 5 + system 50 + irq 3 + softirq 2 + steal 10; guest (7) is
        // inside user already; idle = 1000 + iowait 20.
        assert_eq!(cpu_times(STAT), Some((170, 1190)));
        // A per-CPU line alone is not the summary.
        assert_eq!(cpu_times("cpu0 1 2 3 4\n"), None);
        assert_eq!(cpu_times("cpu  1 2\n"), None);
        assert_eq!(cpu_times("cpu  1 2 x 4\n"), None);
        // Old kernels print fewer columns.
        assert_eq!(cpu_times("cpu  1 2 3 4\n"), Some((6, 10)));
    }

    #[test]
    fn busy_cpus_scales_the_busy_share_to_the_cores() {
        // 2 CPUs, 100 ticks passed in all, 50 of them busy: one CPU's worth.
        assert_eq!(busy_cpus((0, 0), (50, 100), 2), 1.0);
        assert_eq!(busy_cpus((10, 100), (10, 200), 2), 0.0);
        assert_eq!(busy_cpus((10, 100), (110, 200), 4), 4.0);
        // No time passed (or counters went back): nothing to say.
        assert_eq!(busy_cpus((10, 100), (10, 100), 2), 0.0);
        assert_eq!(busy_cpus((10, 100), (5, 90), 2), 0.0);
    }

    #[test]
    fn only_a_busy_machine_gets_a_warning() {
        assert_eq!(warning(0.1, 2), None);
        let w = warning(1.3, 2).expect("1.3 CPUs busy is not quiet");
        assert!(w.contains("1.3 of the 2 CPUs"), "{w}");
        assert!(w.contains("run again"), "{w}");
    }

    #[test]
    fn others_busy_measures_a_share_of_this_machine() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(busy) = others_busy(cores) {
            assert!((0.0..=cores as f64).contains(&busy), "{busy}");
        } else {
            assert!(
                std::fs::read_to_string("/proc/stat").is_err(),
                "/proc/stat is readable, so the sample must succeed"
            );
        }
    }
}
