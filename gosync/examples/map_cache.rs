//! `SyncMap` as a read-mostly cache — the first use case Go's docs give for `sync.Map` ("the
//! entry for a given key is only ever written once but read many times, as in caches that only
//! grow").
//!
//! Many threads look up rendered pages; a miss renders the page once (`load_or_store_with` runs
//! the renderer only when the key is absent, outside any lock) and every later lookup is a
//! lock-free read. Values are `Arc<str>` so a hit clones a pointer, not the page.
//!
//! Run: `cargo run -p gosync --example map_cache`
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use gosync::map::SyncMap;

fn render(page: u32, renders: &AtomicUsize) -> Arc<str> {
    renders.fetch_add(1, Ordering::Relaxed);
    format!("<html><body>page {page}</body></html>").into()
}

fn main() {
    let cache: SyncMap<u32, Arc<str>> = SyncMap::new();
    let renders = AtomicUsize::new(0);
    let lookups = AtomicUsize::new(0);

    thread::scope(|s| {
        for t in 0..8u32 {
            let (cache, renders, lookups) = (&cache, &renders, &lookups);
            s.spawn(move || {
                let mut x = t.wrapping_mul(2_654_435_761) | 1;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let page = x % 100; // 100 hot pages
                    let html = match cache.load(&page) {
                        Some(html) => html, // the common case: no lock, no shared write
                        None => cache.load_or_store_with(page, || render(page, renders)).0,
                    };
                    assert!(html.contains(&format!("page {page}<")));
                    lookups.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });

    let (renders, lookups) = (
        renders.load(Ordering::Relaxed),
        lookups.load(Ordering::Relaxed),
    );
    println!(
        "{lookups} lookups, {} cached pages, {renders} renders",
        cache.len()
    );
    // A page can be rendered twice only when two threads miss it at the same moment (the loser's
    // copy is dropped); it is stored exactly once.
    assert_eq!(cache.len(), 100);
    assert!((100..=100 * 8).contains(&renders));
    println!("hit ratio: {:.4}", 1.0 - renders as f64 / lookups as f64);
}
