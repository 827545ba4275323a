//! The README's distributed-lock example is examples/lock.rs (which `cargo test` compiles):
//! check that the README shows exactly that code. (The README's block is marked `ignore` for
//! the README doctest in gosync, which cannot build gosync-dist; this test is its check.)

#[test]
fn readme_shows_the_compiled_lock_example() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let example = std::fs::read_to_string(format!("{root}/gosync-dist/examples/lock.rs"))
        .expect("examples/lock.rs");
    let code = &example[example.find("use gosync_dist").expect("the example's code")..];
    assert!(
        readme.contains(&format!("```rust,ignore\n{code}```")),
        "README.md must show gosync-dist/examples/lock.rs verbatim (from its `use` line)"
    );
    assert!(code.lines().count() <= 10, "the README example stays short");
}
