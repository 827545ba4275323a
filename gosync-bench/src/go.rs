//! Running Go's own benchmarks for the Go column.
//!
//! `go test -run '^$' -bench REGEX -cpu 1,2,4,8 sync` runs the benchmarks of Go's standard
//! `sync` package exactly as Go ships them; [`bench_dir`] runs benchmarks of a small Go module
//! kept in this crate (for workloads Go's sources do not have, and `go/mirror`: Go's benchmark
//! loops without their locks, for the `work-only` rows). Output lines look like
//! `BenchmarkMutex-4    1000000    95.3 ns/op`; with `-cpu 1` Go prints no `-N` suffix.
//!
//! Two ways to get Go's figure for a cell:
//! - **Interleaved** ([`mirror`]): the family registers which Go benchmark mirrors which
//!   workload before measuring; [`Ctx::compare`] then adds Go as one more implementation of the
//!   cell, measured in the same rounds as the Rust ones: each round runs the compiled test
//!   binary for about as long as a Rust round takes and records Go's own ns/op. On a shared machine whose speed drifts from minute to minute this is the
//!   only way the Rust and Go figures see the same conditions.
//! - **Afterwards** ([`bench_std`], [`bench_dir`]): `go test -bench` once the family's Rust
//!   rows are done, [`COUNT`] runs per benchmark, median kept. For workloads whose Go thread
//!   count is not the cell's (Cond runs at GOMAXPROCS = cores) or whose names Go builds at run
//!   time.

#![allow(dead_code)] // The API families build on; not every family uses every part.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::Ctx;

/// How many times Go runs each benchmark (`go test -count`).
pub const COUNT: usize = 3;

/// One parsed line of `go test -bench` output.
#[derive(Debug, Clone, PartialEq)]
pub struct GoRow {
    /// Benchmark name without the `-N` suffix (e.g. `BenchmarkMutex`, `BenchmarkMutexSlack`).
    pub name: String,
    /// GOMAXPROCS the line was measured with.
    pub cpu: usize,
    /// Nanoseconds per operation.
    pub ns_per_op: f64,
}

/// Whether a `go` toolchain is on PATH.
pub fn available() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The output of `go version`, for the report header.
pub fn version() -> Option<String> {
    let o = Command::new("go").arg("version").output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Parses `go test -bench` output.
pub fn parse(output: &str) -> Vec<GoRow> {
    let mut rows = Vec::new();
    for line in output.lines() {
        let mut fields = line.split_whitespace();
        let Some(full) = fields.next() else { continue };
        if !full.starts_with("Benchmark") {
            continue;
        }
        let rest: Vec<&str> = fields.collect();
        let Some(pos) = rest.iter().position(|f| *f == "ns/op") else {
            continue;
        };
        if pos == 0 {
            continue;
        }
        let Ok(ns) = rest[pos - 1].parse::<f64>() else {
            continue;
        };
        let (name, cpu) = match full.rsplit_once('-') {
            Some((n, c)) if c.chars().all(|ch| ch.is_ascii_digit()) && !c.is_empty() => {
                (n.to_string(), c.parse().unwrap_or(1))
            }
            _ => (full.to_string(), 1),
        };
        rows.push(GoRow {
            name,
            cpu,
            ns_per_op: ns,
        });
    }
    rows
}

fn run(ctx: &Ctx, dir: Option<&Path>, target: &str, regex: &str, cpus: &[usize]) -> Vec<GoRow> {
    let cpu_list = cpus
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let benchtime = if ctx.quick() { "100ms" } else { "1s" };
    let count = COUNT.to_string();
    let mut cmd = Command::new("go");
    cmd.args([
        "test",
        "-run",
        "^$",
        "-bench",
        regex,
        "-cpu",
        &cpu_list,
        "-benchtime",
        benchtime,
        "-count",
        &count,
    ]);
    cmd.arg(target);
    // Never reach for the network: only the standard library and local code are used.
    cmd.env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    ctx.println(format!(
        "  go: go test -bench '{regex}' -cpu {cpu_list} -benchtime {benchtime} -count {count} {target}"
    ));
    match cmd.output() {
        Ok(o) if o.status.success() => parse(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            ctx.println(format!(
                "  go: benchmark run failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            Vec::new()
        }
        Err(e) => {
            ctx.println(format!("  go: could not run `go`: {e}"));
            Vec::new()
        }
    }
}

/// Runs benchmarks of a Go standard-library package (e.g. `"sync"`). Empty unless `--go` is on.
pub fn bench_std(ctx: &mut Ctx, package: &str, regex: &str, cpus: &[usize]) -> Vec<GoRow> {
    if !ctx.go_enabled() {
        return Vec::new();
    }
    run(ctx, None, package, regex, cpus)
}

/// Runs benchmarks of the Go module in `dir` (relative paths are taken from this crate's
/// directory, e.g. `"go/workerpool"`). Empty unless `--go` is on.
pub fn bench_dir(ctx: &mut Ctx, dir: &str, regex: &str, cpus: &[usize]) -> Vec<GoRow> {
    if !ctx.go_enabled() {
        return Vec::new();
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    run(ctx, Some(&path), ".", regex, cpus)
}

/// Where a Go benchmark lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A standard-library package, e.g. `Std("sync")`.
    Std(&'static str),
    /// A Go module in this crate, relative to its directory, e.g. `Dir("go/mirror")`.
    Dir(&'static str),
}

impl Target {
    fn key(self) -> String {
        match self {
            Target::Std(p) => format!("std-{}", p.replace('/', "_")),
            Target::Dir(d) => format!("dir-{}", d.replace('/', "_")),
        }
    }
}

/// Go benchmarks registered to run interleaved with a family's Rust implementations.
#[derive(Clone, Debug)]
pub struct Mirror {
    /// Family.
    pub family: String,
    /// Where the benchmarks live.
    pub target: Target,
    /// `(Go benchmark name, workload)` pairs.
    pub names: Vec<(String, String)>,
}

/// Registers Go benchmarks that mirror `family`'s workloads (`(go_name, workload)` pairs): from
/// now on [`Ctx::compare`] measures Go's benchmark for those workloads in the same rounds as
/// the Rust implementations, at GOMAXPROCS = the cell's thread count. Does nothing unless
/// `--go` is on.
pub fn mirror(ctx: &mut Ctx, family: &str, target: Target, names: &[(&str, &str)]) {
    if !ctx.go_enabled() {
        return;
    }
    ctx.go_mirrors.push(Mirror {
        family: family.into(),
        target,
        names: names
            .iter()
            .map(|(g, w)| (g.to_string(), w.to_string()))
            .collect(),
    });
}

/// Compiles the test binary of `target` into `dir` (once per run; Go's build cache makes a
/// rebuild cheap) and returns its path.
pub fn test_binary(dir: &Path, target: Target) -> Result<PathBuf, String> {
    let bin = dir.join(format!("{}.test", target.key()));
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new("go");
    cmd.args(["test", "-c", "-o"]).arg(&bin);
    match target {
        Target::Std(p) => {
            cmd.arg(p);
        }
        Target::Dir(d) => {
            cmd.arg(".")
                .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(d));
        }
    }
    cmd.env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local");
    let o = cmd
        .output()
        .map_err(|e| format!("could not run `go`: {e}"))?;
    if !o.status.success() || !bin.exists() {
        return Err(format!(
            "go test -c failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(bin)
}

/// Runs benchmark `name` of the test binary `bin` at GOMAXPROCS = `cpu` for about
/// `benchtime`; returns Go's ns/op.
///
/// Go picks the iteration count itself, as in any `go test -bench` run: a fixed count
/// (`-test.benchtime Nx`) would skip Go's ramp-up, and `b.RunParallel` sizes its per-goroutine
/// grain from the previous round (a 1-iteration round gives grains of ~10 iterations and a
/// shared counter that the goroutines fight over), which is not the benchmark Go users run.
pub fn run_once(bin: &Path, name: &str, cpu: usize, benchtime: Duration) -> Result<f64, String> {
    let o = Command::new(bin)
        .args(["-test.run", "^$", "-test.bench"])
        .arg(format!("^{name}$"))
        .arg("-test.cpu")
        .arg(cpu.to_string())
        .arg("-test.benchtime")
        .arg(format!("{}ms", benchtime.as_millis().max(1)))
        .current_dir(bin.parent().unwrap_or(Path::new(".")))
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let out = String::from_utf8_lossy(&o.stdout);
    parse(&out)
        .into_iter()
        .find(|r| r.name == name && r.cpu == cpu)
        .map(|r| r.ns_per_op)
        .ok_or_else(|| {
            format!(
                "{name} -cpu {cpu}: no result ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .chain(out.lines())
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        })
}

/// Adds every row whose Go name maps to a gosync workload name through `names`
/// (`(go_name, workload)` pairs) to the Go column (repeated rows become runs of one cell).
pub fn add_rows(ctx: &mut Ctx, family: &str, rows: &[GoRow], names: &[(&str, &str)]) {
    for row in rows {
        if let Some((_, workload)) = names.iter().find(|(g, _)| *g == row.name) {
            ctx.add_go(family, workload, row.cpu, row.ns_per_op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_bench_lines() {
        let out = "goos: linux\nBenchmarkMutex      \t20000000\t        62.1 ns/op\n\
                   BenchmarkMutex-2    \t10000000\t       113 ns/op\t       0 B/op\n\
                   BenchmarkMutexSlack-8 \t 5000000\t       250.5 ns/op\nPASS\nok  \tsync\t3.2s\n";
        let rows = parse(out);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            GoRow {
                name: "BenchmarkMutex".into(),
                cpu: 1,
                ns_per_op: 62.1
            }
        );
        assert_eq!(
            rows[1],
            GoRow {
                name: "BenchmarkMutex".into(),
                cpu: 2,
                ns_per_op: 113.0
            }
        );
        assert_eq!(rows[2].name, "BenchmarkMutexSlack");
        assert_eq!(rows[2].cpu, 8);
    }
}
