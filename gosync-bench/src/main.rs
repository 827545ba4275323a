//! gosync-bench: side-by-side benchmarks of gosync against its peers and Go.
fn main() {
    println!("gosync-bench: harness not built yet");
}
