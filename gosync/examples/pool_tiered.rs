//! Tiered buffer pools: the seed's answer to "memory waste" — a small request handed a big
//! buffer. net/http keeps separate 2 KiB and 4 KiB writer pools; vitess' `bucketpool` generalises
//! that to power-of-two tiers between a minimum and a maximum; [`BucketPool`] is the same with
//! buffers filed by their capacity rounded *down*, so every buffer in a tier fits every request
//! routed to it.
//!
//! One stream of mixed-size requests goes through a single pool of `Vec<u8>` and through a
//! `BucketPool(512, 64 KiB)`; the example prints how much capacity each hands out per requested
//! byte and what stays retained. Run: `cargo run --release --example pool_tiered`
use gosync::pool::{BucketPool, Pool};

fn main() {
    let single: Pool<Vec<u8>> = Pool::builder(Vec::new).weigher(|v| v.capacity()).build();
    let tiers = BucketPool::new(512, 64 << 10);

    // A request stream: mostly small, some medium, a few large; 8 requests in flight.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next_size = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        match seed % 100 {
            0..=79 => 100 + (seed >> 8) as usize % 900, // < 1 KiB
            80..=96 => 2_000 + (seed >> 8) as usize % 6_000, // 2-8 KiB
            _ => 20_000 + (seed >> 8) as usize % 40_000, // 20-60 KiB
        }
    };

    let (mut requested, mut single_cap, mut tier_cap) = (0usize, 0usize, 0usize);
    for _ in 0..5_000 {
        let sizes: Vec<usize> = (0..8).map(|_| next_size()).collect();
        let mut held_single = Vec::new();
        let mut held_tier = Vec::new();
        for &n in &sizes {
            requested += n;
            let mut a = single.get();
            a.resize(n, 0);
            single_cap += a.capacity();
            held_single.push(a);

            let mut b = tiers.get(n);
            b.resize(n, 0);
            tier_cap += b.capacity();
            held_tier.push(b);
        }
        for mut a in held_single {
            a.clear();
            single.put(a);
        }
        for b in held_tier {
            tiers.put(b);
        }
    }

    println!(
        "requested {:.1} MiB in 40 000 requests",
        requested as f64 / (1 << 20) as f64
    );
    println!(
        "single pool : {:5.2} bytes of capacity per requested byte, retains {:7} bytes",
        single_cap as f64 / requested as f64,
        single.stats().retained
    );
    println!(
        "BucketPool  : {:5.2} bytes of capacity per requested byte, retains {:7} bytes",
        tier_cap as f64 / requested as f64,
        tiers.stats().retained
    );
    println!("\ntier      idle  hits  misses  retained");
    let stats = tiers.stats();
    for (size, s) in &stats.tiers {
        println!(
            "{size:>6}  {:>6}  {:>5}  {:>6}  {:>8}",
            s.idle + s.idle_victim,
            s.hits + s.steals + s.victim_hits,
            s.misses,
            s.retained
        );
    }
}
