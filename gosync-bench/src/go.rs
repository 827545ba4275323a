//! Running Go's own benchmarks for the Go column.
//!
//! `go test -run '^$' -bench REGEX -cpu 1,2,4,8 sync` runs the benchmarks of Go's standard
//! `sync` package exactly as Go ships them; [`bench_dir`] runs benchmarks of a small Go module
//! kept in this crate (for workloads Go's sources do not have). Output lines look like
//! `BenchmarkMutex-4    1000000    95.3 ns/op`; with `-cpu 1` Go prints no `-N` suffix.

#![allow(dead_code)] // The API families build on; not every family uses every part.

use std::path::Path;
use std::process::Command;

use crate::harness::Ctx;

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
        "  go: go test -bench '{regex}' -cpu {cpu_list} -benchtime {benchtime} {target}"
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

/// Adds every row whose Go name maps to a gosync workload name through `names`
/// (`(go_name, workload)` pairs) to the Go column.
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
