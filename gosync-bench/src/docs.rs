//! The generated documents: `docs/benchmarks.md` (every measured table) and the README's
//! headline table (one row per family), both written from a [`Report`] by `--write-docs ROOT`
//! (which `scripts/bench-readme.sh` runs). Nothing in them is edited by hand: change the text
//! here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use crate::harness::{fmt_ns, Record};
use crate::report::{self, GoCheck, Report, Tally};

/// Where the README's generated block starts and ends.
pub const README_BEGIN: &str = "<!-- bench:begin -->";
/// See [`README_BEGIN`].
pub const README_END: &str = "<!-- bench:end -->";

/// Writes `ROOT/docs/benchmarks.md` and replaces the block between [`README_BEGIN`] and
/// [`README_END`] in `ROOT/README.md`. Fails without writing anything when the README has no
/// such block or the report has no measured cell.
pub fn write(report: &Report, root: &Path) -> Result<(), String> {
    if report.records.is_empty() {
        return Err("the report has no measured cells; nothing written".into());
    }
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .map_err(|e| format!("{}: {e}", readme_path.display()))?;
    let new_readme = replace_block(&readme, &headline_markdown(report)).ok_or_else(|| {
        format!(
            "{} has no {README_BEGIN} ... {README_END} block",
            readme_path.display()
        )
    })?;
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    let bench_path = docs.join("benchmarks.md");
    write_atomically(&bench_path, &benchmarks_markdown(report))?;
    write_atomically(&readme_path, &new_readme)?;
    println!("wrote {}", clean(&bench_path).display());
    println!("updated {}", clean(&readme_path).display());
    Ok(())
}

fn clean(p: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `text` with the block between the markers replaced by `block` (markers kept).
pub fn replace_block(text: &str, block: &str) -> Option<String> {
    let (head, rest) = text.split_once(README_BEGIN)?;
    let (_, tail) = rest.split_once(README_END)?;
    Some(format!(
        "{head}{README_BEGIN}\n{}\n{README_END}{tail}",
        block.trim_end()
    ))
}

/// The first three fields of a `/proc/loadavg` line.
fn load(l: &str) -> String {
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// One paragraph saying where, when and how the figures were measured; `long` lists every
/// run of a merged report (the README gets the short form).
fn provenance(report: &Report, long: bool) -> String {
    let m = &report.meta;
    let mode = if m.quick { "quick" } else { "full" };
    let commit = m
        .commit
        .as_deref()
        .map_or(String::new(), |c| format!(" on commit `{c}`"));
    let mut out = format!(
        "Measured {}{commit} on {} ({} cores), {}, {}",
        m.date_utc,
        m.cpu,
        m.cores,
        m.rustc,
        m.go_version.as_deref().unwrap_or("Go not run"),
    );
    if m.runs.len() <= 1 {
        let _ = write!(
            out,
            ", with `{}` ({mode} mode, {:.0} s; load average before: {}).",
            m.command,
            m.duration_s,
            load(&m.load_before)
        );
    } else if !long {
        let _ = write!(
            out,
            ", in {} {mode} runs of {:.0} s in all, one per family (each command in \
             [docs/benchmarks.md](docs/benchmarks.md)).",
            m.runs.len(),
            m.duration_s
        );
    } else {
        let _ = writeln!(
            out,
            ", in {} {mode} runs of {:.0} s in all (merged with `gosync-bench --report-only`):\n",
            m.runs.len(),
            m.duration_s
        );
        for (cmd, l) in &m.runs {
            let _ = writeln!(out, "- `{cmd}` (load average before: {})", load(l));
        }
    }
    out
}

/// Median of the best-peer ratios of a family's cells (NaN without any).
fn median_ratio(report: &Report, family: Option<&str>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = report
        .summary()
        .iter()
        .filter(|r| family.is_none_or(|f| r.family == f))
        .map(|r| r.ratio())
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (crate::harness::median(&v), v[0], v[v.len() - 1])
}

fn of(n: usize, m: usize) -> String {
    if m == 0 {
        "-".into()
    } else {
        format!("{n} of {m}")
    }
}

/// The tallies as a table, one row per family and one for all (at most ~15 rows).
fn tally_table(report: &Report, link_prefix: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| family | gosync ≥ best peer | contended cells at ≥ 0.9× best peer | faster than Go (mirrored cells) | ratio: median (min–max) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for t in report.tallies() {
        let fam = if t.family == "all" {
            "**all**".to_string()
        } else {
            format!("[{0}]({link_prefix}#{0})", t.family)
        };
        let (med, lo, hi) = median_ratio(report, (t.family != "all").then_some(t.family.as_str()));
        let ratio = if med.is_finite() {
            format!("{med:.2} ({lo:.2}–{hi:.2})")
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "| {fam} | {} | {} | {}{} | {ratio} |",
            of(t.wins, t.cells),
            contended_cell(&t),
            of(t.go_wins, t.go_cells),
            left_out(&t)
        );
    }
    out
}

/// "K of N", and "(a of b*)" for the oversubscribed cells among them.
fn contended_cell(t: &Tally) -> String {
    let mut s = of(t.contended_held, t.contended);
    if t.contended_over > 0 {
        s += &format!(" ({} of {}*)", t.contended_over_held, t.contended_over);
    }
    s
}

fn left_out(t: &Tally) -> String {
    if t.go_left_out > 0 {
        format!(" (+{} left out†)", t.go_left_out)
    } else {
        String::new()
    }
}

/// The README's generated block: provenance, the per-family table, a pointer to the rest.
pub fn headline_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", provenance(report, false));
    out.push_str(&tally_table(report, "docs/benchmarks.md"));
    let _ = writeln!(
        out,
        "\nratio = best peer's ns/op ÷ gosync's in the same run (above 1.00 gosync is faster); \
         \"contended\" = 2+ threads on the mutex, rwmutex, cond, semaphore and async lock workloads, \
         (a of b*) = those of them with more OS threads than cores (oversubscribed); \
         † = Go figures left out because the Go mirror check failed. Every table, the method \
         and its caveats: [docs/benchmarks.md](docs/benchmarks.md)."
    );
    out
}

/// `docs/benchmarks.md`.
pub fn benchmarks_markdown(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("# gosync-bench: measured figures\n\n");
    out.push_str(
        "<!-- Generated by scripts/bench-readme.sh (gosync-bench --write-docs); do not edit by \
         hand: the text comes from gosync-bench/src/docs.rs, the figures from a run. -->\n\n",
    );
    let _ = writeln!(out, "{}\n", provenance(report, true));
    out.push_str(CAVEATS);
    out.push('\n');
    for l in report.legend() {
        let _ = writeln!(out, "- {l}");
    }
    out.push_str("\n## Summary\n\n");
    out.push_str(&tally_table(report, ""));
    let mirror = report.mirror_markdown();
    if !mirror.is_empty() {
        out.push_str("\n### Go mirror check\n\n");
        out.push_str(&mirror);
    }

    let mut families: Vec<&str> = Vec::new();
    for r in &report.records {
        if !families.contains(&r.family.as_str()) {
            families.push(&r.family);
        }
    }
    for m in &report.metrics {
        if !families.contains(&m.family.as_str()) {
            families.push(&m.family);
        }
    }
    for fam in families {
        let _ = writeln!(out, "\n## {fam}\n");
        if let Some(about) = report.about.get(fam) {
            let _ = writeln!(out, "{about}.\n");
        }
        family_tables(report, fam, &mut out);
        let notes: Vec<&String> = report
            .notes
            .iter()
            .filter(|n| note_family(n) == Some(fam))
            .collect();
        for n in notes {
            let _ = writeln!(out, "Note: {n}\n");
        }
    }
    let other: Vec<&String> = report
        .notes
        .iter()
        .filter(|n| note_family(n).is_none_or(|f| !report.records.iter().any(|r| r.family == f)))
        .collect();
    if !other.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in other {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// The caveats, once, at the top of `docs/benchmarks.md`.
const CAVEATS: &str = "\
## How these figures are made, and what they cannot tell

- **Same run, interleaved.** Each implementation of a workload is calibrated on its own, then
  all of them run in turns (A B C A B C …) for several rounds in one process; a table cell is
  the median ns/op over the rounds, ± half the spread between the fastest and slowest round.
  If an implementation's rounds come out far shorter than the calibration aimed for (the
  machine stalled while it was calibrated), it is calibrated again and the cell measured again.
  Compare implementations within one table; absolute times move with the machine.
- **A shared, small machine.** The runs come from a 2-core virtual machine that other work
  shares. Its speed drifts by tens of percent from one moment to the next, more for loops that
  lean on the instruction front end than for dependency chains; a difference of 10 % between
  two implementations in one quick run is within that noise. Thread counts above the core count
  are oversubscribed (marked *): they show behaviour under overload, not parallel speed-up.
- **Go beside Rust.** Go's column is Go 1.19's own benchmark from `src/sync` (or the
  `gosync-bench/go` module), at GOMAXPROCS = the thread count. For the mutex, rwmutex and
  waitgroup families it runs interleaved with the Rust rounds (one `go test` binary run per
  round); for the others it runs after the family's Rust rows. A Go figure is compared only
  where the family's *work-only* row — Go's benchmark loop with the lock taken out, run in
  both languages — agrees within ±5 % (median of the per-round Rust ÷ Go ratios), because the
  Rust mirror of each loop is written to compile to the instructions Go's compiler emits
  (`gosync-bench/src/gowork.rs`). Goroutines are not threads: where Go's benchmark runs
  10 goroutines per P (`Slack`) the Rust side runs 10 OS threads per `-cpu`.
- **Quick runs are short.** `--quick` takes 3 rounds of ~25 ms per implementation; a full run
  takes 7 rounds of ~100 ms. The command line above says which this is.

";

/// The family a note belongs to, by its leading `family/` or `family:`.
fn note_family(note: &str) -> Option<&str> {
    let end = note.find(['/', ':'])?;
    let head = &note[..end];
    (!head.is_empty() && head.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(head)
}

/// One table per workload of `family`: thread counts down, implementations across.
fn family_tables(report: &Report, family: &str, out: &mut String) {
    let recs: Vec<&Record> = report
        .records
        .iter()
        .filter(|r| r.family == family)
        .collect();
    let mut workloads: Vec<&str> = Vec::new();
    for r in &recs {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    for w in workloads {
        let cells: Vec<&Record> = recs.iter().copied().filter(|r| r.workload == w).collect();
        let mut impls: Vec<&str> = Vec::new();
        for r in &cells {
            if !impls.contains(&r.implementation.as_str()) {
                impls.push(&r.implementation);
            }
        }
        let mut threads: Vec<usize> = cells.iter().map(|r| r.threads).collect();
        threads.sort_unstable();
        threads.dedup();
        let go_of = |t: usize| {
            report
                .go
                .iter()
                .find(|g| g.family == family && g.workload == w && g.threads == t)
        };
        let has_go = threads.iter().any(|&t| go_of(t).is_some());
        let has_gosync = impls.iter().any(|i| i.starts_with("gosync"));
        let _ = writeln!(out, "### {family} / {w}\n");
        let mut head = String::from("| threads |");
        let mut rule = String::from("|---:|");
        for i in &impls {
            let _ = write!(head, " {i} |");
            rule.push_str("---:|");
        }
        if has_go {
            head.push_str(" Go |");
            rule.push_str("---:|");
        }
        if has_gosync && impls.len() > 1 {
            head.push_str(" best peer ÷ gosync |");
            rule.push_str("---:|");
        }
        if has_gosync && has_go {
            head.push_str(" Go ÷ gosync |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for t in threads {
            let row: Vec<&Record> = cells.iter().copied().filter(|r| r.threads == t).collect();
            let os = row.iter().map(|r| r.os_threads()).max().unwrap_or(t);
            let mut line = format!("| {t}");
            if os != t {
                let _ = write!(line, " ({os})");
            }
            if os > report.meta.cores {
                line.push('*');
            }
            line.push_str(" |");
            for i in &impls {
                match row.iter().find(|r| r.implementation == *i) {
                    Some(r) => {
                        let _ = write!(line, " {} |", cell(r.ns_per_op, r.ns_min, r.ns_max));
                    }
                    None => line.push_str(" - |"),
                }
            }
            let g = go_of(t);
            if has_go {
                match g {
                    Some(g) => {
                        let (lo, hi) = g.range();
                        let mark = match report.go_check(family, w, t) {
                            GoCheck::Failed if !report::is_work_only(w) => "†",
                            _ => "",
                        };
                        let _ = write!(line, " {}{mark} |", cell(g.ns_per_op, lo, hi));
                    }
                    None => line.push_str(" - |"),
                }
            }
            let gosync = row.iter().find(|r| r.implementation.starts_with("gosync"));
            if has_gosync && impls.len() > 1 {
                let best = row
                    .iter()
                    .filter(|r| !r.implementation.starts_with("gosync"))
                    .map(|r| r.ns_per_op)
                    .fold(f64::INFINITY, f64::min);
                match gosync {
                    Some(gs) if best.is_finite() => {
                        let _ = write!(line, " {:.2} |", best / gs.ns_per_op);
                    }
                    _ => line.push_str(" - |"),
                }
            }
            if has_gosync && has_go {
                match (gosync, g) {
                    (Some(gs), Some(g)) => {
                        let _ = write!(line, " {:.2} |", g.ns_per_op / gs.ns_per_op);
                    }
                    _ => line.push_str(" - |"),
                }
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
        latency_table(&cells, out);
    }
    metric_table(report, family, out);
}

/// `12.3 ns ±4%`.
fn cell(median: f64, min: f64, max: f64) -> String {
    let spread = if median > 0.0 {
        (max - min) / 2.0 / median * 100.0
    } else {
        0.0
    };
    format!("{} ±{spread:.0}%", fmt_ns(median))
}

/// Wait-latency percentiles, when the workload records them.
fn latency_table(cells: &[&Record], out: &mut String) {
    let rows: Vec<&Record> = cells
        .iter()
        .copied()
        .filter(|r| r.latency.is_some())
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("Wait latency (all rounds merged):\n\n");
    out.push_str(
        "| threads | implementation | p50 | p99 | p99.9 | max |\n|---:|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let p = r.latency.as_ref().expect("filtered on latency");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.threads,
            r.implementation,
            fmt_ns(p.p50 as f64),
            fmt_ns(p.p99 as f64),
            fmt_ns(p.p999 as f64),
            fmt_ns(p.max as f64)
        );
    }
    out.push('\n');
}

/// Non-timing metrics (memory, counts) of a family.
fn metric_table(report: &Report, family: &str, out: &mut String) {
    let ms: Vec<_> = report
        .metrics
        .iter()
        .filter(|m| m.family == family)
        .collect();
    if ms.is_empty() {
        return;
    }
    let mut by_name: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for m in &ms {
        if !order.contains(&m.name.as_str()) {
            order.push(&m.name);
        }
        by_name.entry(&m.name).or_default().push(*m);
    }
    let _ = writeln!(out, "### {family}: other measurements\n");
    out.push_str("| measurement | implementation | value |\n|---|---|---:|\n");
    for name in order {
        for m in &by_name[name] {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} {} |",
                name, m.implementation, m.value, m.unit
            );
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_marked_block() {
        let text = "a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nb\n";
        assert_eq!(
            replace_block(text, "new\n").unwrap(),
            "a\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\nb\n"
        );
        assert!(replace_block("no markers", "x").is_none());
    }

    #[test]
    fn notes_belong_to_the_family_they_name() {
        assert_eq!(note_family("rwmutex/WriterWait: ..."), Some("rwmutex"));
        assert_eq!(note_family("cond: one op"), Some("cond"));
        assert_eq!(note_family("a sentence: with a colon"), None);
    }
}
