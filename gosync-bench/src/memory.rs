//! Peak-memory measurement for benchmarks that report how much a workload holds at once.
//!
//! Two figures, because neither alone tells the whole story:
//! - **heap peak**: a counting global allocator (installed in `main.rs`) that, only while a
//!   measurement is running, adds every allocation's size to a running total and keeps its
//!   maximum. Outside a measurement it costs one relaxed load per allocation.
//! - **RSS peak**: Linux's `VmHWM` from `/proc/self/status`, reset by writing `5` to
//!   `/proc/self/clear_refs` before the run; the figure is `VmHWM - VmRSS(before)`. It sees
//!   what the heap counter cannot (thread stacks, allocator slack) but is page-granular and
//!   can be near zero when the allocator reuses memory freed by an earlier run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

static ON: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// The system allocator plus an opt-in byte counter.
pub struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the counters have no effect on the
// memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            let now = CURRENT.fetch_add(layout.size() as isize, Ordering::Relaxed)
                + layout.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Ordering::Relaxed) {
            CURRENT.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            let delta = new_size as isize - layout.size() as isize;
            let now = CURRENT.fetch_add(delta, Ordering::Relaxed) + delta;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What [`measure`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    /// Highest heap growth during the run, bytes.
    pub heap_bytes: f64,
    /// Resident-set high-water mark growth during the run, bytes (NaN if unavailable).
    pub rss_bytes: f64,
}

/// Runs `f` and reports its peak heap and RSS growth. Not reentrant; not for timed runs
/// (the counter is a shared atomic).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Peak) {
    let rss_before = status_kb("VmRSS:");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    CURRENT.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    let r = f();
    ON.store(false, Ordering::SeqCst);
    let hwm = status_kb("VmHWM:");
    let rss_bytes = match (reset, rss_before, hwm) {
        (true, Some(b), Some(h)) => h.saturating_sub(b) as f64 * 1024.0,
        _ => f64::NAN,
    };
    let heap_bytes = PEAK.load(Ordering::SeqCst).max(0) as f64;
    (
        r,
        Peak {
            heap_bytes,
            rss_bytes,
        },
    )
}
