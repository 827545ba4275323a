//! `--write-docs`: docs/benchmarks.md and the README's generated block, from a fixture.

use std::path::Path;
use std::process::Command;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sample-results.json"
);

fn write_docs(root: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gosync-bench"))
        .args(["--report-only", FIXTURE, "--write-docs"])
        .arg(root)
        .arg("--out-dir")
        .arg(out)
        .output()
        .expect("run gosync-bench")
}

#[test]
fn writes_the_tables_and_replaces_only_the_readme_block() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let readme =
        "# title\n\nbefore\n<!-- bench:begin -->\nstale table\n<!-- bench:end -->\nafter\n";
    std::fs::write(root.path().join("README.md"), readme).unwrap();
    let o = write_docs(root.path(), out.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let new = std::fs::read_to_string(root.path().join("README.md")).unwrap();
    assert!(
        new.starts_with("# title\n\nbefore\n<!-- bench:begin -->\n"),
        "{new}"
    );
    assert!(new.ends_with("<!-- bench:end -->\nafter\n"), "{new}");
    assert!(!new.contains("stale table"));
    // Provenance, then one row per family and the total.
    assert!(
        new.contains("Measured 2026-01-01 00:00 UTC on fixture CPU (2 cores"),
        "{new}"
    );
    assert!(new.contains("`gosync-bench --quick (fixture)`"), "{new}");
    assert!(
        new.contains("| [mutex](docs/benchmarks.md#mutex) |"),
        "{new}"
    );
    assert!(new.contains("| [map](docs/benchmarks.md#map) |"), "{new}");
    assert!(new.contains("| **all** |"), "{new}");

    let doc = std::fs::read_to_string(root.path().join("docs/benchmarks.md")).unwrap();
    assert!(doc.contains("do not edit by"));
    assert!(doc.contains("## How these figures are made"));
    assert!(doc.contains("\n## mutex\n"));
    assert!(doc.contains("\n## map\n"));
    assert!(doc.contains("### mutex / Mutex"));
    // The Mutex table: one row per thread count, the Go column, oversubscription marked.
    assert!(
        doc.contains(
            "| threads | gosync | std | parking_lot | Go | best peer ÷ gosync | Go ÷ gosync |"
        ),
        "{doc}"
    );
    assert!(doc.contains("\n| 4* |"), "{doc}");
    assert!(doc.contains("Wait latency"), "fairness percentiles missing");
}

#[test]
fn refuses_a_readme_without_the_block_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("README.md"), "# no markers\n").unwrap();
    let o = write_docs(root.path(), out.path());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bench:begin"));
    assert!(!root.path().join("docs/benchmarks.md").exists());
    assert_eq!(
        std::fs::read_to_string(root.path().join("README.md")).unwrap(),
        "# no markers\n"
    );
}

#[test]
fn a_merged_report_lists_every_run() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("README.md"),
        "<!-- bench:begin -->\n<!-- bench:end -->\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gosync-bench"))
        .args(["--report-only", FIXTURE, FIXTURE, "--write-docs"])
        .arg(root.path())
        .arg("--out-dir")
        .arg(out.path())
        .output()
        .expect("run gosync-bench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let readme = std::fs::read_to_string(root.path().join("README.md")).unwrap();
    assert!(readme.contains("in 2 quick runs"), "{readme}");
    let doc = std::fs::read_to_string(root.path().join("docs/benchmarks.md")).unwrap();
    assert_eq!(
        doc.matches("- `gosync-bench --quick (fixture)`").count(),
        2,
        "{doc}"
    );
    // The merged run is kept, so the documents can be rebuilt from it.
    assert!(out.path().join("results.json").exists());
}
