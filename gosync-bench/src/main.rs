//! gosync-bench: gosync side by side with std, parking_lot, crossbeam, dashmap, papaya, scc,
//! r2d2, bb8, threadpool, ... and Go, in one run.
//!
//! ```text
//! cargo run --release -p gosync-bench -- --quick            # every family, ~3 minutes
//! cargo run --release -p gosync-bench -- mutex map --go     # some families, with Go's figures
//! cargo run --release -p gosync-bench -- --list
//! ```
//!
//! Every workload measures all implementations interleaved in the same process (see
//! [`harness`]), prints a table per workload, and ends with a summary: gosync's figure, the best
//! peer's, their ratio and Go's, then the Go mirror check (each family's benchmark loop run
//! without its lock in Rust and in Go: see [`gowork`]) and the counts per family. With `--go`,
//! Go's benchmarks of the mutex, rwmutex and waitgroup families run interleaved with the Rust
//! implementations (see [`go`]). Results are written as JSON and a self-contained HTML page to
//! `target/gosync-bench/`. Before measuring, it warns if other processes keep the CPUs busy
//! (see [`quiet`]).

mod docs;
mod families;
mod go;
mod gowork;
mod harness;
mod memory;
mod quiet;
mod report;

/// Counts heap bytes only while `memory::measure` runs (one relaxed load per allocation
/// otherwise); see `memory`.
#[global_allocator]
static ALLOC: memory::Counting = memory::Counting;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use harness::{fmt_ns, Ctx};
use indicatif::{ProgressBar, ProgressStyle};
use report::{Meta, Report};

/// Side-by-side benchmarks of gosync against its Rust peers and Go.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Families to run (default: all). See --list.
    families: Vec<String>,
    /// Short run: fewer rounds and shorter calibration targets (~3 minutes for everything).
    #[arg(long)]
    quick: bool,
    /// Also run Go's own benchmarks (needs `go` on PATH: apt-get install -y golang-go).
    #[arg(long)]
    go: bool,
    /// Thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    threads: Vec<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print the ratio of this run's figures to an earlier run's JSON file.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// List the families and exit.
    #[arg(long)]
    list: bool,
    /// Do not measure: rebuild the report from these results files (several: merged, a later
    /// run of a family replacing an earlier one), then print, write or compare as asked.
    #[arg(long, value_name = "JSON", num_args = 1..)]
    report_only: Vec<PathBuf>,
    /// Write ROOT/docs/benchmarks.md and the generated block of ROOT/README.md from the results
    /// (what scripts/bench-readme.sh runs, with ROOT = the repository).
    #[arg(long, value_name = "ROOT")]
    write_docs: Option<PathBuf>,
    /// Directory for results.json and report.html (default: target/gosync-bench).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Measure only the workloads whose name contains this text, and the work-only rows
    /// (they decide whether Go's figures may be compared).
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Print the summary as a Markdown table (what the README's results section holds).
    #[arg(long)]
    markdown: bool,
}

fn main() {
    let args = Args::parse();
    let out_dir = args.out_dir.clone().unwrap_or_else(default_out_dir);
    if !args.report_only.is_empty() {
        let mut reports = Vec::new();
        for p in &args.report_only {
            match std::fs::read_to_string(p)
                .map_err(|e| e.to_string())
                .and_then(|s| serde_json::from_str::<Report>(&s).map_err(|e| e.to_string()))
            {
                Ok(r) => reports.push(r),
                Err(e) => {
                    eprintln!("gosync-bench: --report-only {}: {e}", p.display());
                    std::process::exit(2);
                }
            }
        }
        let merged = reports.len() > 1;
        let mut report = Report::merge(reports).expect("at least one report");
        fill_about(&mut report);
        if merged {
            // Keep the merged run: `--report-only` on it gives the same documents again.
            write_outputs(&report, &out_dir, true);
        } else {
            write_outputs(&report, &out_dir, false);
        }
        if args.markdown {
            print!("{}", report.summary_markdown());
        }
        if let Some(root) = &args.write_docs {
            if let Err(e) = docs::write(&report, root) {
                eprintln!("gosync-bench: --write-docs: {e}");
                std::process::exit(2);
            }
        }
        if let Some(p) = &args.compare {
            compare_with(&report, p);
        }
        return;
    }
    if args.list {
        for (name, _, about) in families::FAMILIES {
            println!("{name:<12} {about}");
        }
        return;
    }
    let selected: Vec<_> = if args.families.is_empty() {
        families::FAMILIES.iter().collect()
    } else {
        let mut v = Vec::new();
        for want in &args.families {
            match families::FAMILIES.iter().find(|(n, _, _)| n == want) {
                Some(f) => v.push(f),
                None => {
                    let names: Vec<_> = families::FAMILIES.iter().map(|f| f.0).collect();
                    eprintln!(
                        "gosync-bench: unknown family `{want}`; known: {}",
                        names.join(", ")
                    );
                    std::process::exit(2);
                }
            }
        }
        v
    };
    if cfg!(debug_assertions) {
        eprintln!("gosync-bench: built without --release; figures are meaningless. Use: cargo run --release -p gosync-bench");
    }

    let mut meta = Meta {
        date_utc: utc_now(),
        // The program's own path says nothing about the run (and names a directory of this
        // machine): record it as `gosync-bench`.
        command: std::iter::once("gosync-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        quick: args.quick,
        go_version: if args.go { go::version() } else { None },
        rustc: rustc_version(),
        commit: git_commit(),
        duration_s: 0.0,
        runs: Vec::new(),
    };
    println!("gosync-bench — {}", meta.date_utc);
    println!(
        "  machine: {} ({} cores), load avg {}",
        meta.cpu, meta.cores, meta.load_before
    );
    println!(
        "  {} · {}",
        meta.rustc,
        meta.go_version
            .as_deref()
            .unwrap_or("go: not run (add --go; needs `go` on PATH)")
    );
    println!(
        "  mode: {}, threads {:?}",
        if args.quick { "quick" } else { "full" },
        args.threads
    );
    println!("  ns/op: median over interleaved rounds; ±%: half the min..max range; ÷gosync: ns/op ÷ gosync's (> 1 means gosync is faster)");
    if let Some(warning) =
        quiet::others_busy(meta.cores).and_then(|b| quiet::warning(b, meta.cores))
    {
        println!("  {warning}");
    }
    if args.go && meta.go_version.is_none() {
        println!(
            "  --go given but `go` is not on PATH: install it with `apt-get install -y golang-go`"
        );
    }
    println!();

    let pb = ProgressBar::new(selected.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] family {pos}/{len} {wide_msg}")
            .expect("valid progress template"),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut ctx = Ctx::new(args.quick, args.go, args.threads.clone(), pb.clone());
    ctx.only = args.only.clone();
    let started = Instant::now();
    for (name, entry, about) in selected {
        ctx.println(format!("\n## {name}: {about}\n"));
        entry(&mut ctx);
        pb.inc(1);
    }
    pb.finish_and_clear();
    meta.duration_s = started.elapsed().as_secs_f64();

    let mut report = Report {
        meta,
        records: ctx.records.clone(),
        go: ctx.go_records.clone(),
        metrics: ctx.metrics.clone(),
        notes: ctx.notes.clone(),
        about: Default::default(),
    };
    fill_about(&mut report);
    print_summary(&report);
    write_outputs(&report, &out_dir, true);
    if let Some(p) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("serializable report");
        if let Err(e) = std::fs::write(p, json) {
            eprintln!("gosync-bench: could not write {}: {e}", p.display());
        }
    }
    if let Some(p) = &args.compare {
        compare_with(&report, p);
    }
    if args.markdown {
        println!();
        print!("{}", report.summary_markdown());
    }
    if let Some(root) = &args.write_docs {
        if let Err(e) = docs::write(&report, root) {
            eprintln!("gosync-bench: --write-docs: {e}");
            std::process::exit(2);
        }
    }
    println!("total time: {:.0} s", report.meta.duration_s);
}

/// Fills in the one-line description of each family the report has cells of.
fn fill_about(report: &mut Report) {
    for (name, _, about) in families::FAMILIES {
        let measured = report.records.iter().any(|r| r.family == *name)
            || report.metrics.iter().any(|m| m.family == *name);
        if measured {
            report
                .about
                .entry(name.to_string())
                .or_insert_with(|| about.to_string());
        }
    }
}

/// `target/gosync-bench` of the workspace this binary was built in (the workspace root is
/// this crate's parent directory, so the path has no `..` in it).
fn default_out_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("target")
        .join("gosync-bench")
}

/// Writes `results.json` (unless rebuilding from it) and `report.html` into `dir`.
fn write_outputs(report: &Report, dir: &Path, json: bool) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("gosync-bench: could not create {}: {e}", dir.display());
        return;
    }
    // Print the directory as the absolute path it resolves to (no `.` or `..` segments).
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.as_path();
    if json {
        let path = dir.join("results.json");
        let text = serde_json::to_string_pretty(report).expect("serializable report");
        match std::fs::write(&path, text) {
            Ok(()) => println!("\nresults: {}", path.display()),
            Err(e) => eprintln!("gosync-bench: could not write {}: {e}", path.display()),
        }
    }
    let path = dir.join("report.html");
    match std::fs::write(&path, report.html()) {
        Ok(()) => println!("report:  {}", path.display()),
        Err(e) => eprintln!("gosync-bench: could not write {}: {e}", path.display()),
    }
}

/// One summary line per (family, workload, threads): gosync, best peer, ratio, Go; then the Go
/// mirror check and the counts per family.
fn print_summary(report: &Report) {
    println!("\n# Summary\n");
    for l in report.legend() {
        println!("{l}");
    }
    println!();
    println!(
        "{:<10} {:<28} {:>7} {:>10} {:<20} {:>10} {:>6} {:>10} {:>6}",
        "family", "workload", "thr", "gosync", "best peer", "peer", "ratio", "Go", "÷Go"
    );
    for r in &report.summary() {
        let (peer, peer_ns) = match &r.best_peer {
            Some((n, ns)) => (n.clone(), fmt_ns(*ns)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<10} {:<28} {:>7} {:>10} {:<20} {:>10} {:>6} {:>10} {:>6}",
            r.family,
            truncate(&r.workload, 28),
            report::fmt_threads(r),
            fmt_ns(r.gosync.1),
            truncate(&peer, 20),
            peer_ns,
            report::fmt_ratio(r.ratio()),
            report::fmt_go(r),
            report::fmt_ratio(r.go_ratio())
        );
    }
    let checks = report.mirror_checks();
    if !checks.is_empty() {
        println!(
            "\n# Go mirror check: work-only rows, Rust ÷ Go ns/op, median of the paired rounds (must be 1.00 ± {:.2})\n",
            report::MIRROR_TOLERANCE
        );
        for c in &checks {
            println!(
                "{:<10} {:<16} {:>3}  rust {:>9} ±{:>3.0}%  go {:>9} ±{:>3.0}%  {:>5.3} (pairs {:.2}..{:.2})  {}",
                c.family,
                c.workload,
                c.threads,
                fmt_ns(c.rust.0),
                c.rust.1,
                fmt_ns(c.go.0),
                c.go.1,
                c.ratio(),
                c.paired.1,
                c.paired.2,
                if c.ok() { "ok" } else { "OFF" }
            );
        }
    }
    println!();
    for t in report.tallies() {
        println!("{:<10} {}", t.family, t.line());
    }
    for n in &report.notes {
        println!("note: {n}");
    }
}

fn compare_with(report: &Report, path: &Path) {
    let old: Report = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gosync-bench: --compare {}: {e}", path.display());
            return;
        }
    };
    println!(
        "\n# Compared with {} ({}): new ÷ old ns/op (< 1.00 is faster now)\n",
        path.display(),
        old.meta.date_utc
    );
    for r in &report.records {
        if let Some(o) = old.records.iter().find(|o| {
            o.family == r.family
                && o.workload == r.workload
                && o.threads == r.threads
                && o.implementation == r.implementation
        }) {
            println!(
                "{:<10} {:<28} {:>3} {:<20} {:>10} → {:>10}  {:>5.2}",
                r.family,
                truncate(&r.workload, 28),
                r.threads,
                truncate(&r.implementation, 20),
                fmt_ns(o.ns_per_op),
                fmt_ns(r.ns_per_op),
                r.ns_per_op / o.ns_per_op
            );
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc (unknown)".into())
}

/// The checkout's commit (`git describe --always --dirty`), when run inside one.
fn git_commit() -> Option<String> {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}

/// Current UTC time as `YYYY-MM-DD HH:MM UTC` (civil-from-days, no date crate needed).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}
