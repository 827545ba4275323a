//! The contention profiler (`gosync::profile`): the recorded sites, counts and delays against
//! what the test measures itself, the pprof file read back by Go's `go tool pprof`, rate 0,
//! and rate changes while threads contend.
//!
//! The pprof round trip needs Go (`go` on the PATH). Without it the check is skipped with a
//! message; with `GOSYNC_REQUIRE_GO=1` (CI) it fails instead.
#![cfg(not(loom))]

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gosync::profile::{self, Kind};
use gosync::Mutex;

/// The profiler's state is process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    profile::set_mutex_rate(0);
    profile::set_block_rate(0);
    profile::reset();
    g
}

/// Holds the hot lock for `hold` (the critical section that makes others wait). Returns how
/// long this call waited to get the lock.
#[inline(never)]
fn hot_section(hot: &Mutex<u64>, hold: Duration) -> Duration {
    let t = Instant::now();
    let mut g = hot.lock();
    let waited = t.elapsed();
    *g += 1;
    thread::sleep(hold);
    drop(g);
    waited
}

/// Takes the cold lock briefly.
#[inline(never)]
fn cold_section(cold: &Mutex<u64>) -> Duration {
    let t = Instant::now();
    let mut g = cold.lock();
    let waited = t.elapsed();
    *g += 1;
    drop(g);
    waited
}

fn site<'a>(sites: &'a [profile::Site], function: &str) -> Option<&'a profile::Site> {
    sites.iter().find(|s| s.function.ends_with(function))
}

fn go() -> Option<String> {
    let found = Command::new("go").arg("version").output().is_ok();
    if found {
        return Some("go".into());
    }
    let msg = "`go` not found: the pprof round trip is not checked";
    assert!(
        std::env::var_os("GOSYNC_REQUIRE_GO").is_none(),
        "{msg} (GOSYNC_REQUIRE_GO is set)"
    );
    eprintln!("SKIPPED: {msg}");
    None
}

/// `go tool pprof -top FILE`: the rows under the header, as (flat nanoseconds-ish text, name).
fn pprof_top(go: &str, file: &std::path::Path) -> Vec<String> {
    let out = Command::new(go)
        .args(["tool", "pprof", "-top"])
        .arg(file)
        .output()
        .expect("run go tool pprof");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .skip_while(|l| !l.contains("flat%"))
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// The hot/cold program: four threads alternate a long hold of a hot lock with a short use of
/// a cold one. The mutex profile charges the delay to `hot_section` (whose unlock the others
/// waited for), within 2x of the waiting the test measured, and Go's pprof lists it first.
#[test]
fn hot_lock_is_first_in_pprof_and_its_delay_matches() {
    let _serial = serial();
    profile::set_mutex_rate(1);
    profile::set_block_rate(1);
    let hot = Arc::new(Mutex::new(0u64));
    let cold = Arc::new(Mutex::new(0u64));
    let waited_hot = Arc::new(AtomicU64::new(0));
    let threads = 4;
    let rounds = 25;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (hot, cold, waited_hot, start) =
                (hot.clone(), cold.clone(), waited_hot.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for _ in 0..rounds {
                    let w = hot_section(&hot, Duration::from_millis(2));
                    waited_hot.fetch_add(w.as_nanos() as u64, Ordering::Relaxed);
                    cold_section(&cold);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    profile::set_mutex_rate(0);
    profile::set_block_rate(0);
    assert_eq!(*hot.lock(), (threads * rounds) as u64);

    let measured = Duration::from_nanos(waited_hot.load(Ordering::Relaxed));
    let sites = profile::sites(Kind::Mutex);
    let hot_site = site(&sites, "hot_section").unwrap_or_else(|| panic!("{sites:#?}"));
    assert_eq!(
        sites[0].function,
        hot_site.function,
        "hot first:\n{}",
        profile::top(5)
    );
    assert!(
        hot_site.delay >= measured / 2 && hot_site.delay <= measured * 2,
        "mutex profile delay {:?} vs measured {measured:?}\n{}",
        hot_site.delay,
        profile::top(5)
    );
    // The block profile charges the waiters, also at hot_section (where they called lock).
    let blocked = profile::sites(Kind::Block);
    let hot_wait = site(&blocked, "hot_section").expect("hot_section in the block profile");
    assert!(
        hot_wait.delay >= measured / 2 && hot_wait.delay <= measured * 2,
        "block profile delay {:?} vs measured {measured:?}",
        hot_wait.delay
    );

    let Some(go) = go() else { return };
    let dir = std::env::temp_dir().join(format!("gosync-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mutex.pb.gz");
    profile::write_pprof(std::fs::File::create(&file).unwrap(), Kind::Mutex).unwrap();
    let rows = pprof_top(&go, &file);
    std::fs::remove_dir_all(&dir).ok();
    let first = rows.first().expect("pprof -top printed rows");
    assert!(
        first.contains("hot_section"),
        "first row of go tool pprof -top: {first}\n{}",
        rows.join("\n")
    );
    // The first column is the flat delay in pprof's units (ms or s): compare with ours.
    let flat = first.split_whitespace().next().unwrap();
    let flat = parse_go_duration(flat).unwrap_or_else(|| panic!("flat column {flat}"));
    let ours = hot_site.delay.as_secs_f64();
    assert!(
        (flat - ours).abs() <= ours * 0.02 + 0.001,
        "pprof says {flat} s, sites() says {ours} s"
    );
}

/// `1.23s`, `456.70ms`, `12us` → seconds.
fn parse_go_duration(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?;
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "mins" => 60.0,
        "hrs" => 3600.0,
        _ => return None,
    };
    Some(num * scale)
}

/// Holds `m` until the waiter (released through `go` once the lock is held) has queued, and
/// a little longer: every unlock here is contended.
#[inline(never)]
fn holder_section(m: &Mutex<u64>, go: &Barrier) {
    let mut g = m.lock();
    *g += 1;
    go.wait();
    while m.waiters() == 0 {
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(1));
    drop(g);
}

/// Blocks on `m` (held by `holder_section`); returns how long it waited.
#[inline(never)]
fn waiter_section(m: &Mutex<u64>) -> Duration {
    let t = Instant::now();
    let g = m.lock();
    let waited = t.elapsed();
    drop(g);
    waited
}

/// A holder that always has exactly one waiter: at rate 1 both profiles count exactly
/// `rounds` events, each at its own function, and the text report says the same.
#[test]
fn counts_in_report_and_sites_match_the_test() {
    let _serial = serial();
    profile::set_mutex_rate(1);
    profile::set_block_rate(1);
    let m = Arc::new(Mutex::new(0u64));
    let rounds = 40u64;
    let go = Arc::new(Barrier::new(2));
    let end = Arc::new(Barrier::new(2));
    let holder = {
        let (m, go, end) = (m.clone(), go.clone(), end.clone());
        thread::spawn(move || {
            for _ in 0..rounds {
                holder_section(&m, &go);
                end.wait();
            }
        })
    };
    let mut measured = Duration::ZERO;
    for _ in 0..rounds {
        go.wait();
        measured += waiter_section(&m);
        end.wait();
    }
    holder.join().unwrap();
    profile::set_mutex_rate(0);
    profile::set_block_rate(0);
    assert_eq!(*m.lock(), rounds);

    let mutex = profile::sites(Kind::Mutex);
    let block = profile::sites(Kind::Block);
    let report = profile::top(10);
    let held = site(&mutex, "holder_section").unwrap_or_else(|| panic!("{report}"));
    let waited = site(&block, "waiter_section").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(held.contentions, rounds, "{report}");
    assert_eq!(waited.contentions, rounds, "{report}");
    assert_eq!(
        mutex.len(),
        1,
        "only the holder made anyone wait:\n{report}"
    );
    assert_eq!(block.len(), 1, "only the waiter waited:\n{report}");
    assert!(
        waited.delay <= measured,
        "{:?} > {measured:?}",
        waited.delay
    );
    assert!(
        waited.delay >= measured / 2,
        "{:?} vs {measured:?}",
        waited.delay
    );
    assert!(held.delay <= measured, "{:?} > {measured:?}", held.delay);
    assert!(
        held.delay >= measured / 2,
        "{:?} vs {measured:?}",
        held.delay
    );
    assert!(waited.max_delay <= waited.delay);
    assert!(waited.max_delay >= waited.delay / rounds as u32);

    // The text report carries the same figures.
    for (name, s) in [("holder_section", held), ("waiter_section", waited)] {
        let row = report
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in\n{report}"));
        let count: u64 = row.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(count, rounds, "{report}");
        assert!(row.contains(&format!("{:.3?}", s.delay)), "{report}");
        assert!(row.contains(&format!("{:.3?}", s.max_delay)), "{report}");
    }
}

/// With both rates at 0 a contended workload records nothing.
#[test]
fn rate_zero_records_nothing() {
    let _serial = serial();
    let m = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..20 {
                    hot_section(&m, Duration::from_micros(300));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(profile::sites(Kind::Mutex).is_empty());
    assert!(profile::sites(Kind::Block).is_empty());
    let report = profile::top(10);
    assert!(report.contains("rate 0: 0 sites"), "{report}");
    assert!(report.contains("rate 0 ns: 0 sites"), "{report}");
    // The file is still a valid (empty) profile.
    let mut buf = Vec::new();
    profile::write_pprof(&mut buf, Kind::Mutex).unwrap();
    assert_eq!(&buf[..2], &[0x1f, 0x8b], "gzip magic");
}

/// Sampling one in `n`: counts and delays are scaled by `n`, so the estimate stays near the
/// true count (binomial: 200 events at 1/4 is 50 +- 6 samples; the bounds are 4 sigma).
#[test]
fn sampled_counts_are_scaled_estimates() {
    let _serial = serial();
    profile::set_mutex_rate(4);
    let m = Arc::new(Mutex::new(0u64));
    let rounds = 200u64;
    let go = Arc::new(Barrier::new(2));
    let end = Arc::new(Barrier::new(2));
    let holder = {
        let (m, go, end) = (m.clone(), go.clone(), end.clone());
        thread::spawn(move || {
            for _ in 0..rounds {
                holder_section_short(&m, &go);
                end.wait();
            }
        })
    };
    for _ in 0..rounds {
        go.wait();
        waiter_section(&m);
        end.wait();
    }
    holder.join().unwrap();
    profile::set_mutex_rate(0);
    let sites = profile::sites(Kind::Mutex);
    let held = site(&sites, "holder_section_short").unwrap_or_else(|| panic!("{sites:#?}"));
    assert_eq!(held.contentions % 4, 0, "each sample counts 4");
    assert!(
        (100..=400).contains(&held.contentions),
        "estimate {} of {rounds}",
        held.contentions
    );
}

/// `holder_section` without the extra hold.
#[inline(never)]
fn holder_section_short(m: &Mutex<u64>, go: &Barrier) {
    let g = m.lock();
    go.wait();
    while m.waiters() == 0 {
        thread::yield_now();
    }
    drop(g);
}

/// Changing the rates while threads contend is safe: nothing is lost or double-counted in
/// the protected data, and the profiler's bookkeeping stays usable.
#[test]
fn rate_changes_under_contention_are_safe() {
    let _serial = serial();
    let m = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (m, stop) = (m.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    hot_section(&m, Duration::from_micros(50));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let rates = [0, 1, 3, 100, 0, 1, 1_000_000, 0];
    let deadline = Instant::now() + Duration::from_millis(600);
    let mut i = 0;
    while Instant::now() < deadline {
        profile::set_mutex_rate(rates[i % rates.len()]);
        profile::set_block_rate(rates[(i + 3) % rates.len()]);
        if i % 16 == 0 {
            let _ = profile::top(3);
        }
        i += 1;
        thread::sleep(Duration::from_micros(200));
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    profile::set_mutex_rate(0);
    profile::set_block_rate(0);
    assert_eq!(*m.lock(), total);
    // Something was recorded while the rates were on, and every entry is well-formed.
    let sites = profile::sites(Kind::Mutex);
    assert!(!sites.is_empty());
    for s in sites.iter().chain(profile::sites(Kind::Block).iter()) {
        assert!(s.contentions > 0 && s.max_delay <= s.delay, "{s:?}");
    }
    // After the rates are off again, new contention records nothing more.
    let before: u64 = profile::sites(Kind::Mutex)
        .iter()
        .map(|s| s.contentions)
        .sum();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..20 {
                    hot_section(&m, Duration::from_micros(200));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let after: u64 = profile::sites(Kind::Mutex)
        .iter()
        .map(|s| s.contentions)
        .sum();
    assert_eq!(before, after);
}

/// Runs `hold` on one thread and, once it signals through the barrier that it holds its
/// resource, `wait` on another; returns when both finished.
fn pair(hold: impl FnOnce(&Barrier) + Send + 'static, wait: impl FnOnce() + Send + 'static) {
    let go = Arc::new(Barrier::new(2));
    let g2 = go.clone();
    let holder = thread::spawn(move || hold(&g2));
    go.wait();
    wait();
    holder.join().unwrap();
}

const HOLD: Duration = Duration::from_millis(20);

#[inline(never)]
fn rw_write_holder(rw: &gosync::RwMutex<u64>, go: &Barrier) {
    let mut g = rw.write();
    go.wait();
    thread::sleep(HOLD);
    *g += 1;
    drop(g);
}

#[inline(never)]
fn rw_reader_waits(rw: &gosync::RwMutex<u64>) {
    let g = rw.read();
    assert_eq!(*g, 1);
    drop(g);
}

#[inline(never)]
fn rw_read_holder(rw: &gosync::RwMutex<u64>, go: &Barrier) {
    let g = rw.read();
    go.wait();
    thread::sleep(HOLD);
    drop(g);
}

#[inline(never)]
fn rw_writer_waits(rw: &gosync::RwMutex<u64>) {
    *rw.write() += 1;
}

#[inline(never)]
fn reentrant_waits(m: &gosync::ReentrantMutex<u64>) {
    let g = m.lock();
    drop(g);
}

#[inline(never)]
fn cond_waits(m: &Mutex<bool>, c: &gosync::Cond) {
    let mut g = m.lock();
    while !*g {
        c.wait(&mut g);
    }
}

#[inline(never)]
fn waitgroup_waits(wg: &gosync::WaitGroup) {
    wg.wait();
    // Not a tail call: an optimised build would otherwise drop this frame from the stack.
    std::hint::black_box(wg);
}

#[inline(never)]
fn semaphore_waits(s: &gosync::x::Semaphore) {
    drop(s.acquire(1));
}

#[inline(never)]
fn singleflight_waits(sf: &gosync::x::SingleFlight<u32, u32>) {
    let (v, shared) = sf.run(1, || 2);
    assert_eq!((v, shared), (1, true));
}

#[inline(never)]
fn workerpool_submit_waits(pool: &gosync::workerpool::WorkerPool) {
    pool.submit(|| {}).unwrap();
}

/// Each covered primitive's waits reach the block profile at the waiting function, with
/// about the time the holder held; the locks' holders reach the mutex profile.
#[test]
fn covered_primitives_report_their_waits() {
    let _serial = serial();
    profile::set_mutex_rate(1);
    profile::set_block_rate(1);

    let rw = Arc::new(gosync::RwMutex::new(0u64));
    let (a, b) = (rw.clone(), rw.clone());
    pair(
        move |go| rw_write_holder(&a, go),
        move || rw_reader_waits(&b),
    );
    let (a, b) = (rw.clone(), rw.clone());
    pair(
        move |go| rw_read_holder(&a, go),
        move || rw_writer_waits(&b),
    );

    let re = Arc::new(gosync::ReentrantMutex::new(0u64));
    let a = re.clone();
    pair(
        move |go| {
            let g = a.lock();
            go.wait();
            thread::sleep(HOLD);
            drop(g);
        },
        move || reentrant_waits(&re),
    );

    let m = Arc::new((Mutex::new(false), gosync::Cond::new()));
    let a = m.clone();
    pair(
        move |go| {
            go.wait();
            thread::sleep(HOLD);
            *a.0.lock() = true;
            a.1.signal();
        },
        move || cond_waits(&m.0, &m.1),
    );

    let wg = Arc::new(gosync::WaitGroup::new());
    wg.add(1);
    let a = wg.clone();
    pair(
        move |go| {
            go.wait();
            thread::sleep(HOLD);
            a.done();
        },
        move || waitgroup_waits(&wg),
    );

    let sem = Arc::new(gosync::x::Semaphore::new(1));
    let a = sem.clone();
    pair(
        move |go| {
            let p = a.acquire(1);
            go.wait();
            thread::sleep(HOLD);
            drop(p);
        },
        move || semaphore_waits(&sem),
    );

    let sf = Arc::new(gosync::x::SingleFlight::<u32, u32>::new());
    let a = sf.clone();
    pair(
        move |go| {
            let (v, _) = a.run(1, || {
                go.wait();
                thread::sleep(HOLD);
                1
            });
            assert_eq!(v, 1);
        },
        move || {
            // The leader is inside `f` (it passed the barrier); give `run` time to join it.
            singleflight_waits(&sf)
        },
    );

    let pool = Arc::new(gosync::workerpool::WorkerPool::with_options(
        1,
        gosync::workerpool::Options::new().queue_capacity(0),
    ));
    let a = pool.clone();
    pair(
        move |go| {
            let (tx, rx) = std::sync::mpsc::channel();
            a.submit(move || {
                tx.send(()).unwrap();
                thread::sleep(HOLD);
            })
            .unwrap();
            rx.recv().unwrap();
            go.wait();
        },
        move || workerpool_submit_waits(&pool),
    );

    profile::set_mutex_rate(0);
    profile::set_block_rate(0);
    let report = profile::top(30);
    let block = profile::sites(Kind::Block);
    for waiter in [
        "rw_reader_waits",
        "rw_writer_waits",
        "reentrant_waits",
        "cond_waits",
        "waitgroup_waits",
        "semaphore_waits",
        "singleflight_waits",
        "workerpool_submit_waits",
    ] {
        let s = site(&block, waiter).unwrap_or_else(|| panic!("{waiter} missing:\n{report}"));
        assert!(
            s.delay >= HOLD / 4 && s.delay <= HOLD * 4,
            "{waiter}: {:?}\n{report}",
            s.delay
        );
    }
    let mutex = profile::sites(Kind::Mutex);
    for holder in ["rw_write_holder", "rw_read_holder"] {
        let s = site(&mutex, holder).unwrap_or_else(|| panic!("{holder} missing:\n{report}"));
        assert!(
            s.delay >= HOLD / 4 && s.delay <= HOLD * 4,
            "{holder}: {:?}\n{report}",
            s.delay
        );
    }
}
