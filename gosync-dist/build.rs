//! gosync-dist has no code to generate. This build script exists so that its build dependency
//! `protoc-bin-vendored` is part of the build graph: cargo then unpacks that crate (and the
//! protoc binary it ships) before any build script runs, and `scripts/protoc` (set as `PROTOC`
//! by the workspace's `.cargo/config.toml`) hands it to etcd-client's build script. A machine
//! with only a Rust toolchain therefore builds the workspace without a system protoc.
fn main() {
    // Referencing the crate keeps it a real dependency of this script.
    let _ = protoc_bin_vendored::protoc_bin_path;
    println!("cargo:rerun-if-changed=build.rs");
}
