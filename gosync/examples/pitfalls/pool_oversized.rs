//! Trap: a buffer pool that keeps every buffer however large it grew (Go issue 23199): one
//! huge response pins its memory for as long as the buffer sits in the pool.
//!
//! Run: `cargo run -p gosync --example pitfall_pool_oversized`
#[path = "common.rs"]
mod common;

use gosync::pool::{BufferPool, Pool, Retention};

fn main() {
    common::trap(
        "pooling a buffer that grew huge",
        "sync.Pool keeps it: a few 16 MiB requests pin 16 MiB per pooled buffer",
    );
    // The naive pool: Pool<Vec<u8>> keeps whatever it is given.
    let naive: Pool<Vec<u8>> = Pool::new(Vec::new);
    let mut big = naive.get();
    big.resize(16 << 20, 0);
    big.clear();
    naive.put(big);
    let kept = naive.get();
    println!(
        "naive pool: got back a buffer with capacity {} MiB",
        kept.capacity() >> 20
    );
    assert!(kept.capacity() >= 16 << 20);

    // BufferPool: small buffers are always kept, oversized ones never.
    let pool = BufferPool::new();
    let mut b = pool.get();
    b.resize(16 << 20, 0);
    let verdict = pool.put(b);
    println!(
        "BufferPool: put a 16 MiB buffer -> {verdict:?}; retained {} bytes",
        pool.stats().retained
    );
    assert_eq!(verdict, Retention::Oversized);
    let mut small = pool.get();
    small.extend_from_slice(b"hello");
    assert_eq!(pool.put(small), Retention::Kept);
    common::gosync("BufferPool drops oversized buffers and ones used at under a quarter of their capacity too often");
}
