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
//! peer's, their ratio and Go's. Results are written as JSON to `target/gosync-bench/`.

mod families;
mod go;
mod harness;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use harness::{fmt_ns, Ctx, GoRecord, Metric, Record};

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
}

/// The JSON document a run writes.
#[derive(Serialize, Deserialize)]
struct Report {
    meta: Meta,
    records: Vec<Record>,
    go: Vec<GoRecord>,
    metrics: Vec<Metric>,
    notes: Vec<String>,
}

/// Where and how the figures were taken.
#[derive(Serialize, Deserialize, Clone)]
struct Meta {
    date_utc: String,
    command: String,
    cpu: String,
    cores: usize,
    load_before: String,
    quick: bool,
    go_version: Option<String>,
    rustc: String,
    duration_s: f64,
}

fn main() {
    let args = Args::parse();
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
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        quick: args.quick,
        go_version: if args.go { go::version() } else { None },
        rustc: rustc_version(),
        duration_s: 0.0,
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
    let started = Instant::now();
    for (name, entry, about) in selected {
        ctx.println(format!("\n## {name}: {about}\n"));
        entry(&mut ctx);
        pb.inc(1);
    }
    pb.finish_and_clear();
    meta.duration_s = started.elapsed().as_secs_f64();

    print_summary(&ctx);

    let report = Report {
        meta,
        records: ctx.records.clone(),
        go: ctx.go_records.clone(),
        metrics: ctx.metrics.clone(),
        notes: ctx.notes.clone(),
    };
    let json = serde_json::to_string_pretty(&report).expect("serializable report");
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/gosync-bench");
    let _ = std::fs::create_dir_all(&out_dir);
    let default_json = out_dir.join("results.json");
    match std::fs::write(&default_json, &json) {
        Ok(()) => println!("\nresults: {}", default_json.display()),
        Err(e) => eprintln!(
            "gosync-bench: could not write {}: {e}",
            default_json.display()
        ),
    }
    if let Some(p) = &args.json {
        if let Err(e) = std::fs::write(p, &json) {
            eprintln!("gosync-bench: could not write {}: {e}", p.display());
        }
    }
    if let Some(p) = &args.compare {
        compare_with(&report, p);
    }
    println!("total time: {:.0} s", report.meta.duration_s);
}

/// One summary line per (family, workload, threads): gosync, best peer, ratio, Go.
fn print_summary(ctx: &Ctx) {
    type Key = (String, String, usize);
    let mut order: Vec<Key> = Vec::new();
    let mut groups: BTreeMap<Key, Vec<&Record>> = BTreeMap::new();
    for r in &ctx.records {
        let k = (r.family.clone(), r.workload.clone(), r.threads);
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(r);
    }
    println!(
        "\n# Summary (ratio = best peer ns/op ÷ gosync ns/op: > 1.00 means gosync is faster)\n"
    );
    println!(
        "{:<10} {:<28} {:>3} {:>10} {:<20} {:>10} {:>7} {:>10}",
        "family", "workload", "thr", "gosync", "best peer", "peer", "ratio", "Go 1.19"
    );
    let (mut wins, mut total) = (0, 0);
    for k in order {
        let rs = &groups[&k];
        let gosync = rs.iter().find(|r| r.implementation.starts_with("gosync"));
        let best = rs
            .iter()
            .filter(|r| !r.implementation.starts_with("gosync"))
            .min_by(|a, b| a.ns_per_op.total_cmp(&b.ns_per_op));
        let go = ctx
            .go_records
            .iter()
            .find(|g| g.family == k.0 && g.workload == k.1 && g.threads == k.2)
            .map(|g| fmt_ns(g.ns_per_op))
            .unwrap_or_else(|| "-".into());
        let (Some(g), Some(b)) = (gosync, best) else {
            continue;
        };
        let ratio = b.ns_per_op / g.ns_per_op;
        total += 1;
        if ratio >= 1.0 {
            wins += 1;
        }
        println!(
            "{:<10} {:<28} {:>3} {:>10} {:<20} {:>10} {:>7.2} {:>10}",
            k.0,
            truncate(&k.1, 28),
            k.2,
            fmt_ns(g.ns_per_op),
            truncate(&b.implementation, 20),
            fmt_ns(b.ns_per_op),
            ratio,
            go
        );
    }
    println!("\ngosync at least as fast as the best peer in {wins} of {total} cells.");
    for n in &ctx.notes {
        println!("note: {n}");
    }
}

fn compare_with(report: &Report, path: &PathBuf) {
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
