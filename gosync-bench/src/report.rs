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
    /// Wall time of the run.
    pub duration_s: f64,
}

/// One summary row: a workload at a thread count.
pub struct SummaryRow {
    /// Family.
    pub family: String,
    /// Workload.
    pub workload: String,
    /// Threads.
    pub threads: usize,
    /// gosync's implementation name and ns/op.
    pub gosync: (String, f64),
    /// The fastest peer's name and ns/op.
    pub best_peer: (String, f64),
    /// Go's ns/op, when measured.
    pub go: Option<f64>,
}

impl SummaryRow {
    /// Best peer ns/op ÷ gosync ns/op: above 1 gosync is faster.
    pub fn ratio(&self) -> f64 {
        self.best_peer.1 / self.gosync.1
    }
}

impl Report {
    /// Rows for the summary, in measurement order. Workloads without a gosync row or without a
    /// peer are left out.
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
            let gosync = rs.iter().find(|r| r.implementation.starts_with("gosync"));
            let best = rs
                .iter()
                .filter(|r| !r.implementation.starts_with("gosync"))
                .min_by(|a, b| a.ns_per_op.total_cmp(&b.ns_per_op));
            let (Some(g), Some(b)) = (gosync, best) else {
                continue;
            };
            let go = self
                .go
                .iter()
                .find(|x| x.family == k.0 && x.workload == k.1 && x.threads == k.2)
                .map(|x| x.ns_per_op);
            rows.push(SummaryRow {
                family: k.0,
                workload: k.1,
                threads: k.2,
                gosync: (g.implementation.clone(), g.ns_per_op),
                best_peer: (b.implementation.clone(), b.ns_per_op),
                go,
            });
        }
        rows
    }

    /// The summary as a Markdown table (for the README).
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
        let _ = writeln!(out, "ratio = best peer's ns/op ÷ gosync's (above 1.00 gosync is faster); medians of interleaved rounds.\n");
        let _ = writeln!(
            out,
            "| family | workload | threads | gosync | best peer | peer | ratio | Go 1.19 |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---|---:|---:|---:|");
        for r in self.summary() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} |",
                r.family,
                r.workload,
                r.threads,
                fmt_ns(r.gosync.1),
                r.best_peer.0,
                fmt_ns(r.best_peer.1),
                r.ratio(),
                r.go.map(fmt_ns).unwrap_or_else(|| "-".into())
            );
        }
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
            out.push_str("<h2>Summary</h2>\n<table class=\"summary\"><tr><th>family</th><th>workload</th><th>threads</th><th>gosync</th><th>best peer</th><th>peer</th><th>ratio</th><th>Go 1.19</th></tr>\n");
            for r in &rows {
                let cls = if r.ratio() >= 1.0 { "win" } else { "loss" };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{:.2}</td><td>{}</td></tr>",
                    esc(&r.family),
                    esc(&r.workload),
                    r.threads,
                    fmt_ns(r.gosync.1),
                    esc(&r.best_peer.0),
                    fmt_ns(r.best_peer.1),
                    r.ratio(),
                    r.go.map(fmt_ns).unwrap_or_else(|| "-".into())
                );
            }
            out.push_str("</table>\n");
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
