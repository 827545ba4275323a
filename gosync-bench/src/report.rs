//! The run's results as data (JSON) and as a self-contained HTML page with SVG charts.
//!
//! The page needs no network and no script to show its charts: every chart is inline SVG drawn
//! here. A small inline script only checks, once the page is laid out, that each chart has a
//! non-empty drawing, and records the count on `<body data-charts-rendered>`; the browser test
//! (`tests/report_browser.rs`) reads it back from headless Chromium.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::harness::{fmt_ns, GoRecord, Metric, Record};

/// Half the min..max range as a percentage of the median.
fn spread(min: f64, max: f64, median: f64) -> f64 {
    (max - min) / 2.0 / median * 100.0
}

/// The JSON document a run writes.
#[derive(Serialize, Deserialize, Clone)]
pub struct Report {
    /// Where and how.
    pub meta: Meta,
    /// Every measured cell.
    pub records: Vec<Record>,
    /// Go's figures.
    pub go: Vec<GoRecord>,
    /// Non-timing metrics.
    pub metrics: Vec<Metric>,
    /// Notes.
    pub notes: Vec<String>,
    /// One line about each family measured (from the family list).
    #[serde(default)]
    pub about: BTreeMap<String, String>,
}

impl Report {
    /// Several runs as one report (e.g. one run per family, when the machine is never quiet
    /// long enough for all of them): the cells of every run, in order; where two runs measured
    /// the same family, the later one's cells of that family win. The metadata says that the
    /// report is merged: dates from the earliest run to the latest, every command, the summed
    /// duration.
    pub fn merge(reports: Vec<Report>) -> Option<Report> {
        let mut it = reports.into_iter();
        let mut acc = it.next()?;
        let mut runs = vec![(acc.meta.command.clone(), acc.meta.load_before.clone())];
        // `YYYY-MM-DD HH:MM UTC` sorts as text; a rerun family may come before older runs.
        let mut first_date = acc.meta.date_utc.clone();
        let mut last_date = first_date.clone();
        for r in it {
            let fams: Vec<String> = r
                .records
                .iter()
                .map(|x| x.family.clone())
                .chain(r.metrics.iter().map(|m| m.family.clone()))
                .collect();
            acc.records.retain(|x| !fams.contains(&x.family));
            acc.go.retain(|x| !fams.contains(&x.family));
            acc.metrics.retain(|x| !fams.contains(&x.family));
            acc.records.extend(r.records);
            acc.go.extend(r.go);
            acc.metrics.extend(r.metrics);
            for n in r.notes {
                if !acc.notes.contains(&n) {
                    acc.notes.push(n);
                }
            }
            acc.about.extend(r.about);
            runs.push((r.meta.command.clone(), r.meta.load_before.clone()));
            first_date = first_date.min(r.meta.date_utc.clone());
            last_date = last_date.max(r.meta.date_utc.clone());
            acc.meta.date_utc = format!("{first_date} to {last_date}");
            acc.meta.duration_s += r.meta.duration_s;
            acc.meta.quick &= r.meta.quick;
            if acc.meta.go_version.is_none() {
                acc.meta.go_version = r.meta.go_version.clone();
            }
            if acc.meta.commit != r.meta.commit {
                let other = r.meta.commit.as_deref().unwrap_or("unknown");
                let mine = acc.meta.commit.take().unwrap_or_else(|| "unknown".into());
                if !mine.split(" / ").any(|c| c == other) {
                    acc.meta.commit = Some(format!("{mine} / {other}"));
                } else {
                    acc.meta.commit = Some(mine);
                }
            }
            if acc.meta.cpu != r.meta.cpu || acc.meta.cores != r.meta.cores {
                acc.meta.cpu = format!("{} / {}", acc.meta.cpu, r.meta.cpu);
            }
        }
        if runs.len() > 1 {
            acc.meta.command = runs
                .iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            acc.meta.load_before = runs
                .iter()
                .map(|r| r.1.as_str())
                .collect::<Vec<_>>()
                .join(" / ");
            acc.meta.runs = runs;
        }
        Some(acc)
    }
}

/// Where and how the figures were taken.
#[derive(Serialize, Deserialize, Clone)]
pub struct Meta {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date_utc: String,
    /// The command line.
    pub command: String,
    /// CPU model.
    pub cpu: String,
    /// Available cores.
    pub cores: usize,
    /// `/proc/loadavg` before the run.
    pub load_before: String,
    /// `--quick`.
    pub quick: bool,
    /// `go version`, when Go ran.
    pub go_version: Option<String>,
    /// `rustc --version`.
    pub rustc: String,
    /// The commit measured (`git describe --always --dirty`), when the run started in a git
    /// checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Wall time of the run.
    pub duration_s: f64,
    /// For a merged report: each run's command line and load average, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<(String, String)>,
}

/// Workloads whose cells count as *contended* in the summary line "contended cells at ≥ 0.9×
/// the best peer": `(family, workload prefix)`, where an empty prefix takes every workload of
/// the family. A listed workload's cell is contended when it runs on 2 or more threads; workloads
/// whose name contains "uncontended" (any case) and the `work-only` rows never are. Add a line
/// here when a family gains contended workloads.
pub const CONTENDED: &[(&str, &str)] = &[
    ("mutex", ""),
    ("rwmutex", ""),
    ("cond", ""),
    ("x", "sem_"),
    ("async", ""),
];

/// Whether a cell counts as contended (see [`CONTENDED`]).
pub fn is_contended(family: &str, workload: &str, threads: usize) -> bool {
    threads >= 2
        && !is_work_only(workload)
        && !workload.to_ascii_lowercase().contains("uncontended")
        && CONTENDED
            .iter()
            .any(|(f, prefix)| *f == family && workload.starts_with(prefix))
}

/// A contended cell "holds" when gosync reaches at least this fraction of the best peer's
/// throughput (best peer ns/op ÷ gosync ns/op ≥ 0.9).
pub const CONTENDED_FLOOR: f64 = 0.9;

/// Name prefix of the workloads that run a family's Go work loop with no lock (see
/// `gowork`): one `rust` row, and Go's figure from `go/mirror`.
pub const WORK_ONLY: &str = "work-only";

/// Whether `workload` is a work-only row.
pub fn is_work_only(workload: &str) -> bool {
    workload.starts_with(WORK_ONLY)
}

/// The work-only rows (by name, of one family) that cover `workload`: a row named
/// `work-only X` covers the workloads whose name contains `X` (`work-only Spin` covers
/// `MutexSpin` and `MutexNoSpin`); the plain `work-only` row covers every other workload.
pub fn covering_work_only<'a>(work_only: &[&'a str], workload: &str) -> Vec<&'a str> {
    if is_work_only(workload) {
        return vec![];
    }
    let specific: Vec<&str> = work_only
        .iter()
        .copied()
        .filter(|w| {
            let suffix = w[WORK_ONLY.len()..].trim();
            !suffix.is_empty() && workload.contains(suffix)
        })
        .collect();
    if !specific.is_empty() {
        return specific;
    }
    work_only
        .iter()
        .copied()
        .filter(|w| w[WORK_ONLY.len()..].trim().is_empty())
        .collect()
}

/// How far (as a fraction) a work-only row's Rust figure may be from Go's before the family's
/// Go column at that thread count is left out of the Go comparison.
pub const MIRROR_TOLERANCE: f64 = 0.05;

/// A work-only row measured on both sides.
///
/// The check's figure is the median of the per-round ratios Rust ÷ Go when Go ran interleaved
/// (each pair was measured back to back, so a machine that speeds up or slows down between
/// rounds moves both halves of a pair), else the ratio of the two medians.
pub struct MirrorCheck {
    /// Family.
    pub family: String,
    /// The work-only workload.
    pub workload: String,
    /// Threads (Go's `-cpu`).
    pub threads: usize,
    /// Rust ns/op (median) and its spread (± % of the median).
    pub rust: (f64, f64),
    /// Go ns/op (median of its runs) and its spread.
    pub go: (f64, f64),
    /// Rust ÷ Go: the median of the paired per-round ratios (or the ratio of the medians),
    /// with the smallest and largest paired ratio.
    pub paired: (f64, f64, f64),
}

impl MirrorCheck {
    /// Rust ns/op ÷ Go ns/op: 1.00 means the loops cost the same.
    pub fn ratio(&self) -> f64 {
        self.paired.0
    }
    /// Whether the ratio is within [`MIRROR_TOLERANCE`] of 1.
    pub fn ok(&self) -> bool {
        (self.ratio() - 1.0).abs() <= MIRROR_TOLERANCE
    }
}

/// Whether Go's figure for a cell may be compared with gosync's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoCheck {
    /// The family's work-only rows at this thread count agree with Go.
    Checked,
    /// The family runs no Go work loop, so there is nothing to check.
    NoLoop,
    /// A work-only row of the family disagrees with Go (or has no Go figure): left out.
    Failed,
}

/// One summary row: a workload at a thread count.
pub struct SummaryRow {
    /// Family.
    pub family: String,
    /// Workload.
    pub workload: String,
    /// Threads.
    pub threads: usize,
    /// OS threads the cell ran on.
    pub os_threads: usize,
    /// More OS threads than cores.
    pub oversubscribed: bool,
    /// gosync's implementation name and ns/op.
    pub gosync: (String, f64),
    /// The fastest peer's name and ns/op, when the workload has a peer.
    pub best_peer: Option<(String, f64)>,
    /// Go's ns/op, when measured, and whether it may be compared.
    pub go: Option<(f64, GoCheck)>,
    /// Counts as contended (see [`CONTENDED`]).
    pub contended: bool,
}

impl SummaryRow {
    /// Best peer ns/op ÷ gosync ns/op: above 1 gosync is faster (NaN without a peer).
    pub fn ratio(&self) -> f64 {
        self.best_peer
            .as_ref()
            .map_or(f64::NAN, |p| p.1 / self.gosync.1)
    }
    /// Go ns/op ÷ gosync ns/op: above 1 gosync is faster (NaN without Go).
    pub fn go_ratio(&self) -> f64 {
        self.go.map_or(f64::NAN, |g| g.0 / self.gosync.1)
    }
}

/// Counts of one family (or of all).
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Family name, or "all".
    pub family: String,
    /// Cells with a peer, and those where gosync is at least as fast as the best peer.
    pub cells: usize,
    /// See `cells`.
    pub wins: usize,
    /// Contended cells with a peer, and those at ≥ [`CONTENDED_FLOOR`] of the best peer.
    pub contended: usize,
    /// See `contended`.
    pub contended_held: usize,
    /// Of the contended cells, those that are oversubscribed (more OS threads than cores),
    /// and those of them at ≥ [`CONTENDED_FLOOR`] of the best peer.
    pub contended_over: usize,
    /// See `contended_over`.
    pub contended_over_held: usize,
    /// Cells with a comparable Go figure, and those where gosync is faster than Go.
    pub go_cells: usize,
    /// See `go_cells`.
    pub go_wins: usize,
    /// Cells with a Go figure left out because the family's work-only check failed.
    pub go_left_out: usize,
    /// Cells running on more OS threads than cores.
    pub oversubscribed: usize,
}

impl Tally {
    fn add(&mut self, r: &SummaryRow) {
        if r.best_peer.is_some() {
            self.cells += 1;
            self.wins += usize::from(r.ratio() >= 1.0);
            if r.contended {
                self.contended += 1;
                let held = usize::from(r.ratio() >= CONTENDED_FLOOR);
                self.contended_held += held;
                if r.oversubscribed {
                    self.contended_over += 1;
                    self.contended_over_held += held;
                }
            }
        }
        match r.go {
            Some((go, GoCheck::Checked | GoCheck::NoLoop)) => {
                self.go_cells += 1;
                self.go_wins += usize::from(r.gosync.1 < go);
            }
            Some((_, GoCheck::Failed)) => self.go_left_out += 1,
            None => {}
        }
        self.oversubscribed += usize::from(r.oversubscribed);
    }

    /// The three counts as one line of text.
    pub fn line(&self) -> String {
        let mut s = format!("gosync ≥ best peer: {} of {}", self.wins, self.cells);
        if self.contended > 0 {
            s += &format!(
                " · contended cells at ≥ {CONTENDED_FLOOR}× the best peer: {} of {}",
                self.contended_held, self.contended
            );
            if self.contended_over > 0 {
                s += &format!(
                    " (oversubscribed*: {} of {})",
                    self.contended_over_held, self.contended_over
                );
            }
        }
        if self.go_cells > 0 || self.go_left_out > 0 {
            s += &format!(
                " · faster than Go on {} of {} mirrored cells",
                self.go_wins, self.go_cells
            );
            if self.go_left_out > 0 {
                s += &format!(
                    " ({} more left out: work-only check failed)",
                    self.go_left_out
                );
            }
        }
        s
    }
}

/// Formats a thread count, starred when the cell is oversubscribed.
pub fn fmt_threads(r: &SummaryRow) -> String {
    let mut s = r.threads.to_string();
    if r.os_threads != r.threads {
        s += &format!(" ({})", r.os_threads);
    }
    if r.oversubscribed {
        s.push('*');
    }
    s
}

/// Formats Go's figure, daggered when it is left out of the comparison.
pub fn fmt_go(r: &SummaryRow) -> String {
    match r.go {
        None => "-".into(),
        Some((ns, GoCheck::Failed)) => format!("{}†", fmt_ns(ns)),
        Some((ns, _)) => fmt_ns(ns),
    }
}

/// Formats a ratio, or "-" when there is none.
pub fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

impl Report {
    /// Every work-only row that has both a Rust and a Go figure, in measurement order.
    pub fn mirror_checks(&self) -> Vec<MirrorCheck> {
        self.records
            .iter()
            .filter(|r| is_work_only(&r.workload))
            .filter_map(|r| {
                let g = self.go.iter().find(|g| {
                    g.family == r.family && g.workload == r.workload && g.threads == r.threads
                })?;
                let (gmin, gmax) = g.range();
                let paired =
                    if g.interleaved && r.samples.len() == g.runs.len() && !g.runs.is_empty() {
                        let mut v: Vec<f64> =
                            r.samples.iter().zip(&g.runs).map(|(a, b)| a / b).collect();
                        v.sort_by(f64::total_cmp);
                        (crate::harness::median(&v), v[0], v[v.len() - 1])
                    } else {
                        let q = r.ns_per_op / g.ns_per_op;
                        (q, q, q)
                    };
                Some(MirrorCheck {
                    paired,
                    family: r.family.clone(),
                    workload: r.workload.clone(),
                    threads: r.threads,
                    rust: (r.ns_per_op, spread(r.ns_min, r.ns_max, r.ns_per_op)),
                    go: (g.ns_per_op, spread(gmin, gmax, g.ns_per_op)),
                })
            })
            .collect()
    }

    /// Whether Go's figure for `workload` of `family` at `threads` may be compared with
    /// gosync's: the work-only rows that cover the workload (see [`covering_work_only`]) must
    /// have a Go figure at that thread count, within [`MIRROR_TOLERANCE`].
    pub fn go_check(&self, family: &str, workload: &str, threads: usize) -> GoCheck {
        let mut names: Vec<&str> = Vec::new();
        for r in self.records.iter().filter(|r| r.family == family) {
            if is_work_only(&r.workload) && !names.contains(&r.workload.as_str()) {
                names.push(&r.workload);
            }
        }
        let covering = covering_work_only(&names, workload);
        if covering.is_empty() {
            return GoCheck::NoLoop;
        }
        let checks = self.mirror_checks();
        let ok = covering.iter().all(|w| {
            checks
                .iter()
                .find(|c| c.family == family && c.workload == *w && c.threads == threads)
                .is_some_and(MirrorCheck::ok)
        });
        if ok {
            GoCheck::Checked
        } else {
            GoCheck::Failed
        }
    }

    /// Rows for the summary, in measurement order. Workloads without a gosync row, or with
    /// neither a peer nor a Go figure, are left out (so are the work-only rows).
    pub fn summary(&self) -> Vec<SummaryRow> {
        let mut order: Vec<(String, String, usize)> = Vec::new();
        let mut groups: BTreeMap<(String, String, usize), Vec<&Record>> = BTreeMap::new();
        for r in &self.records {
            let k = (r.family.clone(), r.workload.clone(), r.threads);
            if !groups.contains_key(&k) {
                order.push(k.clone());
            }
            groups.entry(k).or_default().push(r);
        }
        // Group the cells of one workload together (thread counts ascending), keeping the
        // order in which workloads were first measured.
        let first_seen = |k: &(String, String, usize)| {
            order
                .iter()
                .position(|o| o.0 == k.0 && o.1 == k.1)
                .unwrap_or(usize::MAX)
        };
        let mut order2 = order.clone();
        order2.sort_by_key(|k| (first_seen(k), k.2));
        let mut rows = Vec::new();
        for k in order2 {
            let rs = &groups[&k];
            let Some(g) = rs.iter().find(|r| r.implementation.starts_with("gosync")) else {
                continue;
            };
            let best = rs
                .iter()
                .filter(|r| !r.implementation.starts_with("gosync"))
                .min_by(|a, b| a.ns_per_op.total_cmp(&b.ns_per_op));
            let go = self
                .go
                .iter()
                .find(|x| x.family == k.0 && x.workload == k.1 && x.threads == k.2)
                .map(|x| (x.ns_per_op, self.go_check(&k.0, &k.1, k.2)));
            if best.is_none() && go.is_none() {
                continue;
            }
            let os_threads = rs.iter().map(|r| r.os_threads()).max().unwrap_or(k.2);
            rows.push(SummaryRow {
                contended: is_contended(&k.0, &k.1, k.2),
                family: k.0,
                workload: k.1,
                threads: k.2,
                os_threads,
                oversubscribed: os_threads > self.meta.cores,
                gosync: (g.implementation.clone(), g.ns_per_op),
                best_peer: best.map(|b| (b.implementation.clone(), b.ns_per_op)),
                go,
            });
        }
        rows
    }

    /// One tally per family (in measurement order), then the total (family "all").
    pub fn tallies(&self) -> Vec<Tally> {
        let rows = self.summary();
        let mut out: Vec<Tally> = Vec::new();
        let mut all = Tally {
            family: "all".into(),
            ..Tally::default()
        };
        for r in &rows {
            if !out.iter().any(|t| t.family == r.family) {
                out.push(Tally {
                    family: r.family.clone(),
                    ..Tally::default()
                });
            }
            let t = out
                .iter_mut()
                .find(|t| t.family == r.family)
                .expect("just added");
            t.add(r);
            all.add(r);
        }
        out.push(all);
        out
    }

    /// The legend lines for the marks the summary uses.
    pub fn legend(&self) -> Vec<String> {
        let m = &self.meta;
        vec![
            "ratio = best peer's ns/op ÷ gosync's; ÷Go = Go's ns/op ÷ gosync's (above 1.00 gosync is faster); medians of interleaved rounds.".into(),
            format!("threads = the cell's thread count (Go's -cpu); (n) = OS threads when they differ; * = oversubscribed: more OS threads than the machine's {} cores.", m.cores),
            format!("† = Go figure left out of the Go comparison: the work-only row for its loop at that thread count is not within ±{:.0}% of Go's.", MIRROR_TOLERANCE * 100.0),
        ]
    }

    /// The summary as Markdown: per-family counts, the Go mirror check, then one row per cell.
    pub fn summary_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.meta;
        let _ = writeln!(
            out,
            "Measured {} on {} ({} cores), load before the run {}; {}; {}.",
            m.date_utc,
            m.cpu,
            m.cores,
            m.load_before,
            m.rustc,
            m.go_version.as_deref().unwrap_or("Go not run")
        );
        let _ = writeln!(
            out,
            "Command: `{}` ({} mode, {:.0} s).\n",
            m.command,
            if m.quick { "quick" } else { "full" },
            m.duration_s
        );
        for l in self.legend() {
            let _ = writeln!(out, "{l}  ");
        }
        out.push('\n');
        out.push_str(&self.tallies_markdown());
        out.push('\n');
        out.push_str(&self.mirror_markdown());
        let _ = writeln!(
            out,
            "| family | workload | threads | gosync | best peer | peer | ratio | Go | ÷Go |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---|---:|---:|---:|---:|");
        for r in self.summary() {
            let (peer, peer_ns) = match &r.best_peer {
                Some((n, ns)) => (n.clone(), fmt_ns(*ns)),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.family,
                r.workload,
                fmt_threads(&r),
                fmt_ns(r.gosync.1),
                peer,
                peer_ns,
                fmt_ratio(r.ratio()),
                fmt_go(&r),
                fmt_ratio(r.go_ratio())
            );
        }
        out
    }

    /// The per-family counts as a Markdown list.
    pub fn tallies_markdown(&self) -> String {
        let mut out = String::new();
        for t in self.tallies() {
            let name = if t.family == "all" {
                "**all families**".to_string()
            } else {
                format!("**{}**", t.family)
            };
            let _ = writeln!(out, "- {name}: {}", t.line());
        }
        out
    }

    /// The work-only rows as a Markdown table (empty when Go did not run).
    pub fn mirror_markdown(&self) -> String {
        let checks = self.mirror_checks();
        if checks.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Go mirror check: each family's benchmark loop without its lock, Rust ÷ Go (must be 1.00 ± {:.2}).\n",
            MIRROR_TOLERANCE
        );
        let _ = writeln!(
            out,
            "| family | work-only row | threads | Rust | ± | Go | ± | Rust ÷ Go | pairs min..max | |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
        for c in &checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0}% | {} | {:.0}% | {:.3} | {:.2}..{:.2} | {} |",
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
                if c.ok() { "ok" } else { "**off**" }
            );
        }
        out.push('\n');
        out
    }

    /// The self-contained HTML report.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let m = &self.meta;
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gosync-bench report</title>\n<style>{CSS}</style></head>\n<body>\n<h1>gosync-bench</h1>\n<p class=\"meta\">{} · {} ({} cores) · load before {} · {} · {} · <code>{}</code> · {:.0} s</p>\n<p>Each chart shows throughput (million operations per second, higher is better) against the thread count; all implementations were measured interleaved in the same run. Hover a point for its figures.</p>\n",
            esc(&m.date_utc),
            esc(&m.cpu),
            m.cores,
            esc(&m.load_before),
            esc(&m.rustc),
            esc(m.go_version.as_deref().unwrap_or("Go not run")),
            esc(&m.command),
            m.duration_s
        );
        // Summary table.
        let rows = self.summary();
        if !rows.is_empty() {
            out.push_str("<h2>Summary</h2>\n<ul class=\"tally\">\n");
            for t in self.tallies() {
                let _ = writeln!(
                    out,
                    "<li><b>{}</b>: {}</li>",
                    esc(&t.family),
                    esc(&t.line())
                );
            }
            out.push_str("</ul>\n");
            let checks = self.mirror_checks();
            if !checks.is_empty() {
                let _ = writeln!(out, "<p>Go mirror check: each family's benchmark loop without its lock, Rust ÷ Go (must be 1.00 ± {MIRROR_TOLERANCE:.2}).</p>\n<table class=\"summary\"><tr><th>family</th><th>work-only row</th><th>threads</th><th>Rust</th><th>Go</th><th>Rust ÷ Go</th></tr>");
                for c in &checks {
                    let cls = if c.ok() { "win" } else { "loss" };
                    let _ = writeln!(
                        out,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ±{:.0}%</td><td>{} ±{:.0}%</td><td class=\"{cls}\">{:.3}</td></tr>",
                        esc(&c.family),
                        esc(&c.workload),
                        c.threads,
                        fmt_ns(c.rust.0),
                        c.rust.1,
                        fmt_ns(c.go.0),
                        c.go.1,
                        c.ratio()
                    );
                }
                out.push_str("</table>\n");
            }
            out.push_str("<table class=\"summary\"><tr><th>family</th><th>workload</th><th>threads</th><th>gosync</th><th>best peer</th><th>peer</th><th>ratio</th><th>Go</th><th>÷Go</th></tr>\n");
            for r in &rows {
                let cls = if !r.ratio().is_finite() {
                    ""
                } else if r.ratio() >= 1.0 {
                    "win"
                } else {
                    "loss"
                };
                let (peer, peer_ns) = match &r.best_peer {
                    Some((n, ns)) => (n.clone(), fmt_ns(*ns)),
                    None => ("-".into(), "-".into()),
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.family),
                    esc(&r.workload),
                    esc(&fmt_threads(r)),
                    fmt_ns(r.gosync.1),
                    esc(&peer),
                    peer_ns,
                    fmt_ratio(r.ratio()),
                    esc(&fmt_go(r)),
                    fmt_ratio(r.go_ratio())
                );
            }
            out.push_str("</table>\n<p class=\"meta\">");
            for l in self.legend() {
                let _ = write!(out, "{}<br>", esc(&l));
            }
            out.push_str("</p>\n");
        }
        // One section per family, one chart per workload.
        let mut families: Vec<String> = Vec::new();
        for r in &self.records {
            if !families.contains(&r.family) {
                families.push(r.family.clone());
            }
        }
        for m in &self.metrics {
            if !families.contains(&m.family) {
                families.push(m.family.clone());
            }
        }
        for fam in &families {
            let _ = writeln!(out, "<h2 id=\"{0}\">{0}</h2>", esc(fam));
            let mut workloads: Vec<String> = Vec::new();
            for r in self.records.iter().filter(|r| &r.family == fam) {
                if !workloads.contains(&r.workload) {
                    workloads.push(r.workload.clone());
                }
            }
            out.push_str("<div class=\"grid\">\n");
            for w in &workloads {
                let recs: Vec<&Record> = self
                    .records
                    .iter()
                    .filter(|r| &r.family == fam && &r.workload == w)
                    .collect();
                let go: Vec<&GoRecord> = self
                    .go
                    .iter()
                    .filter(|g| &g.family == fam && &g.workload == w)
                    .collect();
                out.push_str(&throughput_chart(w, &recs, &go));
                if recs.iter().any(|r| r.latency.is_some()) {
                    out.push_str(&latency_chart(w, &recs));
                }
            }
            let mut names: Vec<String> = Vec::new();
            for m in self.metrics.iter().filter(|m| &m.family == fam) {
                if !names.contains(&m.name) {
                    names.push(m.name.clone());
                }
            }
            for n in &names {
                let ms: Vec<&Metric> = self
                    .metrics
                    .iter()
                    .filter(|m| &m.family == fam && &m.name == n)
                    .collect();
                out.push_str(&metric_chart(n, &ms));
            }
            out.push_str("</div>\n");
        }
        if !self.notes.is_empty() {
            out.push_str("<h2>Notes</h2><ul>\n");
            for n in &self.notes {
                let _ = writeln!(out, "<li>{}</li>", esc(n));
            }
            out.push_str("</ul>\n");
        }
        out.push_str(CHECK_SCRIPT);
        out.push_str("</body></html>\n");
        out
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}\
h1{margin-bottom:0}.meta{color:#666;font-size:90%}code{font-size:90%}\
table.summary{border-collapse:collapse;font-size:90%}table.summary td,table.summary th{border:1px solid #ddd;padding:2px 8px;text-align:right}\
table.summary td:nth-child(-n+2),table.summary th:nth-child(-n+2){text-align:left}\
td.win{background:#e3f6e3}td.loss{background:#fbe4e4}\
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:6px}\
figcaption{font-size:85%;font-weight:600}svg text{font-size:11px;fill:#333}";

/// Counts the charts whose plot group has a non-empty layout box.
const CHECK_SCRIPT: &str = "<script>\nwindow.addEventListener('load',function(){var charts=document.querySelectorAll('svg.chart');var ok=0;charts.forEach(function(s){var g=s.querySelector('g.plot');if(!g){return;}var b=g.getBBox();if(b.width>0&&b.height>0&&g.childElementCount>0){ok++;}});document.body.setAttribute('data-charts-total',String(charts.length));document.body.setAttribute('data-charts-rendered',String(ok));});\n</script>\n";

const PALETTE: &[&str] = &[
    "#0b6e4f", "#d1495b", "#edae49", "#00798c", "#30638e", "#8e5572", "#6c757d", "#9c6644",
    "#3d405b", "#81b29a",
];
const GO_COLOR: &str = "#00add8";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound for an axis (1, 2, 2.5, 5 × 10^k).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

const W: f64 = 420.0;
const H: f64 = 260.0;
const L: f64 = 48.0;
const R: f64 = 130.0;
const T: f64 = 12.0;
const B: f64 = 34.0;

fn chart_open(out: &mut String, title: &str) {
    let _ = write!(out, "<figure><figcaption>{}</figcaption><svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">", esc(title), esc(title));
}

fn y_axis(out: &mut String, ymax: f64, label: &str) {
    let ph = H - T - B;
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let y = T + ph - ph * i as f64 / 4.0;
        let _ = write!(out, "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", W - R, L - 4.0, y + 4.0, fmt_num(v));
    }
    let _ = write!(out, "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>", T + ph / 2.0, T + ph / 2.0, esc(label));
}

/// Throughput (Mops/s) against threads, one line per implementation (and Go's).
fn throughput_chart(workload: &str, recs: &[&Record], go: &[&GoRecord]) -> String {
    let mut threads: Vec<usize> = recs
        .iter()
        .map(|r| r.threads)
        .chain(go.iter().map(|g| g.threads))
        .collect();
    threads.sort_unstable();
    threads.dedup();
    let mut impls: Vec<String> = Vec::new();
    for r in recs {
        if !impls.contains(&r.implementation) {
            impls.push(r.implementation.clone());
        }
    }
    // (name, color, [(threads, Mops/s, ns/op)])
    type Series<'a> = (String, &'a str, Vec<(usize, f64, f64)>);
    let mut series: Vec<Series> = Vec::new();
    for (i, name) in impls.iter().enumerate() {
        let pts = recs
            .iter()
            .filter(|r| &r.implementation == name)
            .map(|r| (r.threads, 1e3 / r.ns_per_op, r.ns_per_op))
            .collect();
        series.push((name.clone(), PALETTE[i % PALETTE.len()], pts));
    }
    if !go.is_empty() {
        series.push((
            "Go 1.19".into(),
            GO_COLOR,
            go.iter()
                .map(|g| (g.threads, 1e3 / g.ns_per_op, g.ns_per_op))
                .collect(),
        ));
    }
    let ymax = nice_max(
        series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let mut out = String::new();
    chart_open(&mut out, &format!("{workload} — throughput"));
    y_axis(&mut out, ymax, "Mops/s");
    let pw = W - L - R;
    let ph = H - T - B;
    let n = threads.len().max(1);
    let xpos = |t: usize| {
        let i = threads.iter().position(|x| *x == t).unwrap_or(0);
        if n == 1 {
            L + pw / 2.0
        } else {
            L + 10.0 + (pw - 20.0) * i as f64 / (n - 1) as f64
        }
    };
    for &t in &threads {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t}</text>",
            xpos(t),
            H - B + 14.0
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">threads</text>",
        L + pw / 2.0,
        H - 4.0
    );
    out.push_str("<g class=\"plot\">");
    for (name, color, pts) in &series {
        let mut pts = pts.clone();
        pts.sort_by_key(|p| p.0);
        let width = if name.starts_with("gosync") { 3.0 } else { 1.5 };
        let path: Vec<String> = pts
            .iter()
            .map(|(t, v, _)| format!("{:.1},{:.1}", xpos(*t), T + ph - ph * (v / ymax)))
            .collect();
        if pts.len() > 1 {
            let _ = write!(out, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" points=\"{}\"/>", path.join(" "));
        }
        for (t, v, ns) in &pts {
            let _ = write!(out, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{} @ {t} threads: {:.2} Mops/s, {}/op</title></circle>", xpos(*t), T + ph - ph * (v / ymax), esc(name), v, fmt_ns(*ns));
        }
    }
    out.push_str("</g>");
    legend(&mut out, series.iter().map(|s| (s.0.as_str(), s.1)));
    out.push_str("</svg></figure>\n");
    out
}

fn legend<'a>(out: &mut String, items: impl Iterator<Item = (&'a str, &'a str)>) {
    for (i, (name, color)) in items.enumerate() {
        let y = T + 8.0 + 15.0 * i as f64;
        let _ = write!(out, "<rect x=\"{}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{:.1}\">{}</text>", W - R + 8.0, y - 8.0, W - R + 22.0, y + 1.0, esc(&truncate(name, 18)));
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

/// Latency percentiles (log scale) per implementation at the highest thread count measured.
fn latency_chart(workload: &str, recs: &[&Record]) -> String {
    let tmax = recs
        .iter()
        .filter(|r| r.latency.is_some())
        .map(|r| r.threads)
        .max()
        .unwrap_or(1);
    let rows: Vec<&Record> = recs
        .iter()
        .copied()
        .filter(|r| r.threads == tmax && r.latency.is_some())
        .collect();
    let labels = ["p50", "p99", "p99.9", "max"];
    let vmax = rows
        .iter()
        .filter_map(|r| r.latency.as_ref())
        .map(|p| p.max.max(1) as f64)
        .fold(1.0, f64::max);
    let decades = vmax.log10().ceil().max(1.0);
    let mut out = String::new();
    chart_open(
        &mut out,
        &format!("{workload} — wait latency at {tmax} threads (log scale)"),
    );
    let pw = W - L - R;
    let ph = H - T - B;
    for d in 0..=(decades as i32) {
        let y = T + ph - ph * d as f64 / decades;
        let _ = write!(out, "<line x1=\"{L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", W - R, L - 4.0, y + 4.0, fmt_ns(10f64.powi(d)));
    }
    let group_w = pw / labels.len() as f64;
    let bar_w = (group_w - 8.0) / rows.len().max(1) as f64;
    out.push_str("<g class=\"plot\">");
    for (li, label) in labels.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            L + group_w * (li as f64 + 0.5),
            H - B + 14.0
        );
        for (ri, r) in rows.iter().enumerate() {
            let p = r.latency.as_ref().expect("filtered on latency");
            let v = [p.p50, p.p99, p.p999, p.max][li].max(1) as f64;
            let h = ph * (v.log10() / decades);
            let x = L + group_w * li as f64 + 4.0 + bar_w * ri as f64;
            let _ = write!(out, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {label}: {}</title></rect>", T + ph - h, (bar_w - 1.0).max(1.0), PALETTE[ri % PALETTE.len()], esc(&r.implementation), fmt_ns(v));
        }
    }
    out.push_str("</g>");
    legend(
        &mut out,
        rows.iter()
            .enumerate()
            .map(|(i, r)| (r.implementation.as_str(), PALETTE[i % PALETTE.len()])),
    );
    out.push_str("</svg></figure>\n");
    out
}

/// Bars for a non-timing metric (memory, counts) per implementation.
fn metric_chart(name: &str, ms: &[&Metric]) -> String {
    let unit = ms.first().map(|m| m.unit.as_str()).unwrap_or("");
    let vmax = nice_max(ms.iter().map(|m| m.value).fold(0.0, f64::max));
    let mut out = String::new();
    chart_open(&mut out, &format!("{name} ({unit})"));
    y_axis(&mut out, vmax, unit);
    let pw = W - L - R;
    let ph = H - T - B;
    let bw = pw / ms.len().max(1) as f64;
    out.push_str("<g class=\"plot\">");
    for (i, m) in ms.iter().enumerate() {
        let h = ph * (m.value / vmax);
        let _ = write!(out, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} {}</title></rect>", L + bw * i as f64 + 3.0, T + ph - h, (bw - 6.0).max(1.0), h.max(0.5), PALETTE[i % PALETTE.len()], esc(&m.implementation), fmt_num(m.value), esc(unit));
    }
    out.push_str("</g>");
    legend(
        &mut out,
        ms.iter()
            .enumerate()
            .map(|(i, m)| (m.implementation.as_str(), PALETTE[i % PALETTE.len()])),
    );
    out.push_str("</svg></figure>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(cores: usize) -> Meta {
        Meta {
            date_utc: "2026-01-01 00:00 UTC".into(),
            command: "test".into(),
            cpu: "test".into(),
            cores,
            load_before: String::new(),
            quick: true,
            go_version: None,
            rustc: "rustc".into(),
            commit: None,
            duration_s: 0.0,
            runs: Vec::new(),
        }
    }

    fn rec(family: &str, workload: &str, threads: usize, imp: &str, ns: f64) -> Record {
        Record {
            family: family.into(),
            workload: workload.into(),
            threads,
            os_threads: 0,
            implementation: imp.into(),
            ns_per_op: ns,
            ns_min: ns * 0.9,
            ns_max: ns * 1.1,
            rounds: 3,
            iters: 1,
            samples: Vec::new(),
            latency: None,
            extra: BTreeMap::new(),
        }
    }

    fn go(family: &str, workload: &str, threads: usize, ns: f64) -> GoRecord {
        GoRecord {
            family: family.into(),
            workload: workload.into(),
            threads,
            ns_per_op: ns,
            runs: vec![ns],
            interleaved: false,
        }
    }

    fn report(records: Vec<Record>, go: Vec<GoRecord>) -> Report {
        Report {
            meta: meta(2),
            records,
            go,
            metrics: Vec::new(),
            notes: Vec::new(),
            about: BTreeMap::new(),
        }
    }

    #[test]
    fn contended_set_is_the_listed_families_at_two_threads_or_more() {
        assert!(is_contended("mutex", "Mutex", 2));
        assert!(!is_contended("mutex", "Mutex", 1));
        assert!(!is_contended("mutex", "MutexUncontended", 8));
        assert!(!is_contended("rwmutex", "RWMutexUncontended", 4));
        assert!(!is_contended("mutex", "work-only", 4));
        assert!(is_contended("cond", "Cond1", 2));
        assert!(is_contended("x", "sem_blocking_contended", 4));
        assert!(!is_contended("x", "sem_async_uncontended", 4));
        assert!(!is_contended("x", "singleflight_stampede", 1000));
        assert!(!is_contended("map", "LoadMostlyHits", 8));
    }

    #[test]
    fn go_is_compared_only_where_the_work_only_row_agrees() {
        let r = report(
            vec![
                rec("mutex", "work-only", 1, "rust", 30.0),
                rec("mutex", "work-only", 2, "rust", 40.0),
                rec("mutex", "MutexWork", 1, "gosync", 35.0),
                rec("mutex", "MutexWork", 1, "std", 36.0),
                rec("mutex", "MutexWork", 2, "gosync", 50.0),
                rec("mutex", "MutexWork", 2, "std", 45.0),
                rec("cond", "Cond1", 2, "gosync", 900.0),
                rec("cond", "Cond1", 2, "std", 1000.0),
            ],
            vec![
                go("mutex", "work-only", 1, 31.0), // 0.97: ok
                go("mutex", "work-only", 2, 30.0), // 1.33: off
                go("mutex", "MutexWork", 1, 40.0),
                go("mutex", "MutexWork", 2, 60.0),
                go("cond", "Cond1", 2, 800.0),
            ],
        );
        let checks = r.mirror_checks();
        assert_eq!(checks.len(), 2);
        assert!(checks[0].ok() && !checks[1].ok());
        assert_eq!(r.go_check("mutex", "MutexWork", 1), GoCheck::Checked);
        assert_eq!(r.go_check("mutex", "MutexWork", 2), GoCheck::Failed);
        assert_eq!(r.go_check("mutex", "MutexWork", 4), GoCheck::Failed); // no row at 4
        assert_eq!(r.go_check("cond", "Cond1", 2), GoCheck::NoLoop);

        let rows = r.summary();
        assert_eq!(rows.len(), 3, "work-only rows are not summary rows");
        let t = r.tallies();
        let mutex = t.iter().find(|t| t.family == "mutex").unwrap();
        // MutexWork ×1: gosync 35 vs std 36 (win), vs Go 40 (faster); ×2: a loss, Go left out.
        assert_eq!((mutex.wins, mutex.cells), (1, 2));
        assert_eq!((mutex.contended_held, mutex.contended), (1, 1)); // 45/50 = 0.9
        assert_eq!(
            (mutex.go_wins, mutex.go_cells, mutex.go_left_out),
            (1, 1, 1)
        );
        let all = t.last().unwrap();
        assert_eq!(all.family, "all");
        // cond: 1000/900 win, contended, slower than Go's 800.
        assert_eq!((all.wins, all.cells), (2, 3));
        assert_eq!((all.contended_held, all.contended), (2, 2));
        assert_eq!((all.go_wins, all.go_cells, all.go_left_out), (1, 2, 1));
        assert!(all
            .line()
            .contains("faster than Go on 1 of 2 mirrored cells"));
        assert!(all
            .line()
            .contains("contended cells at ≥ 0.9× the best peer: 2 of 2"));
        let md = r.summary_markdown();
        assert!(
            md.contains(
                "| mutex | MutexWork | 2 | 50.0ns | std | 45.0ns | 0.90 | 60.0ns† | 1.20 |"
            ),
            "{md}"
        );
        assert!(md.contains("| mutex | work-only | 2 | 40.0ns |"), "{md}");
    }

    #[test]
    fn each_workload_is_covered_by_its_own_loop() {
        let rows = ["work-only", "work-only Spin"];
        assert_eq!(covering_work_only(&rows, "MutexWork"), ["work-only"]);
        assert_eq!(covering_work_only(&rows, "MutexSpin"), ["work-only Spin"]);
        assert_eq!(covering_work_only(&rows, "MutexNoSpin"), ["work-only Spin"]);
        assert!(covering_work_only(&rows, "work-only Spin").is_empty());
        assert!(covering_work_only(&[], "Cond1").is_empty());
        assert!(covering_work_only(&["work-only Spin"], "Mutex").is_empty());
    }

    #[test]
    fn oversubscribed_cells_are_marked() {
        let mut slack = rec("mutex", "MutexSlack", 1, "gosync", 10.0);
        slack.os_threads = 10;
        let mut peer = rec("mutex", "MutexSlack", 1, "std", 10.0);
        peer.os_threads = 10;
        let r = report(
            vec![
                slack,
                peer,
                rec("mutex", "Mutex", 2, "gosync", 10.0),
                rec("mutex", "Mutex", 2, "std", 10.0),
                rec("mutex", "Mutex", 4, "gosync", 10.0),
                rec("mutex", "Mutex", 4, "std", 10.0),
            ],
            Vec::new(),
        );
        let rows = r.summary();
        let marks: Vec<String> = rows.iter().map(fmt_threads).collect();
        assert_eq!(marks, ["1 (10)*", "2", "4*"]);
        let all = r.tallies().pop().unwrap();
        assert_eq!(all.oversubscribed, 2);
        // MutexSlack runs on 1 Go thread: not contended; Mutex ×4 is, and oversubscribed.
        assert_eq!((all.contended_held, all.contended), (2, 2));
        assert_eq!((all.contended_over_held, all.contended_over), (1, 1));
        assert!(
            all.line().contains(
                "contended cells at ≥ 0.9× the best peer: 2 of 2 (oversubscribed*: 1 of 1)"
            ),
            "{}",
            all.line()
        );
    }

    #[test]
    fn merged_runs_keep_every_family_once() {
        let mut a = report(
            vec![
                rec("mutex", "Mutex", 1, "gosync", 10.0),
                rec("cond", "Cond1", 2, "gosync", 5.0),
            ],
            vec![go("mutex", "Mutex", 1, 20.0)],
        );
        a.meta.command = "gosync-bench mutex cond".into();
        let mut b = report(vec![rec("cond", "Cond1", 2, "gosync", 7.0)], Vec::new());
        b.meta.command = "gosync-bench cond".into();
        b.meta.date_utc = "2026-01-02 00:00 UTC".into();
        b.meta.duration_s = 3.0;
        let m = Report::merge(vec![a, b]).unwrap();
        assert_eq!(m.records.len(), 2);
        let cond = m.records.iter().find(|r| r.family == "cond").unwrap();
        assert_eq!(cond.ns_per_op, 7.0, "the later run of a family wins");
        assert_eq!(m.go.len(), 1);
        assert!(m.meta.command.contains("gosync-bench mutex cond"));
        assert!(m.meta.command.contains("gosync-bench cond"));
        assert_eq!(m.meta.runs.len(), 2);
        assert!(m.meta.date_utc.contains(" to 2026-01-02"));
        assert_eq!(m.meta.duration_s, 3.0);
        assert!(Report::merge(Vec::new()).is_none());
    }

    #[test]
    fn merged_dates_run_from_the_earliest_to_the_latest_run() {
        // A family rerun later is passed in its place in the family order, so the runs need
        // not come in the order they were taken.
        let dated = |d: &str| {
            let mut r = report(vec![rec("mutex", "Mutex", 1, "gosync", 1.0)], Vec::new());
            r.meta.date_utc = d.into();
            r
        };
        let m = Report::merge(vec![
            dated("2026-01-01 10:05 UTC"),
            dated("2026-01-01 09:00 UTC"),
            dated("2026-01-01 09:30 UTC"),
        ])
        .unwrap();
        assert_eq!(
            m.meta.date_utc,
            "2026-01-01 09:00 UTC to 2026-01-01 10:05 UTC"
        );
        let one = Report::merge(vec![dated("2026-01-01 09:00 UTC")]).unwrap();
        assert_eq!(one.meta.date_utc, "2026-01-01 09:00 UTC");
    }

    #[test]
    fn go_runs_report_their_range() {
        let mut g = go("mutex", "Mutex", 1, 20.0);
        g.runs = vec![22.0, 20.0, 19.0];
        assert_eq!(g.range(), (19.0, 22.0));
        g.runs.clear();
        assert_eq!(g.range(), (20.0, 20.0));
    }
}
