//! The HTML report: built from a fixture, then loaded in a real headless Chromium, which must lay
//! out every chart (the page's own check script counts charts with a non-empty drawing).
//!
//! Chromium is optional on a developer machine (the browser part is skipped with a message);
//! with `GOSYNC_REQUIRE_BROWSER=1` (set by CI after installing Debian's `chromium`) it must run.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sample-results.json"
);
/// Charts the fixture must produce: throughput for Mutex, Fairness, LoadMostlyHits; latency for
/// Fairness; one metric chart for the pool.
const EXPECTED_CHARTS: usize = 5;

fn build_report(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_gosync-bench"))
        .args(["--report-only", FIXTURE, "--markdown", "--out-dir"])
        .arg(dir)
        .output()
        .expect("run gosync-bench");
    assert!(
        out.status.success(),
        "gosync-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("| mutex | Mutex | 4* |"),
        "markdown summary missing rows:\n{md}"
    );
    dir.join("report.html")
}

#[test]
fn report_has_one_chart_per_workload_latency_and_metric() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(build_report(dir.path())).unwrap();
    assert_eq!(
        html.matches("<svg class=\"chart\"").count(),
        EXPECTED_CHARTS
    );
    assert!(html.contains("Go 1.19"), "Go series missing");
    assert!(html.contains("wait latency"), "latency chart missing");
    // Summary row for Mutex at 1 thread: gosync 14 ns, best peer std 15 ns → ratio 1.07, a win.
    assert!(
        html.contains("<td class=\"win\">1.07</td>"),
        "summary ratio missing"
    );
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("http://www.w3.org/2000/svg").count(),
        "report must not load anything from the network"
    );
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

#[test]
fn report_renders_in_headless_chromium() {
    let required = std::env::var("GOSYNC_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let Some(browser) = chromium() else {
        assert!(
            !required,
            "GOSYNC_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)"
        );
        eprintln!("SKIPPED report_renders_in_headless_chromium: no chromium on PATH (apt-get install -y chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = build_report(dir.path());
    let profile = dir.path().join("profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let expected = format!("data-charts-rendered=\"{EXPECTED_CHARTS}\"");
    assert!(
        dom.contains(&format!("data-charts-total=\"{EXPECTED_CHARTS}\"")),
        "check script did not run or saw the wrong number of charts"
    );
    assert!(
        dom.contains(&expected),
        "not every chart was laid out with a non-empty drawing"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Error") || l.contains("Uncaught")))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
}
