//! Retention rules of the buffer pools: BufferPool, BucketPool, ByteBufferPool, BoundedPool.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gosync::pool::{
    BoundedGuard, BoundedPool, BucketPool, Buffer, BufferConfig, BufferPool, ByteBufferPool,
    Retention,
};

fn filled(cap: usize, len: usize) -> Buffer {
    let mut v = Vec::with_capacity(cap);
    v.resize(len, 1);
    Buffer::from_vec(v)
}

#[test]
fn buffer_pool_keeps_small_buffers_always() {
    let p = BufferPool::new();
    // 4 KiB capacity, nearly empty: small buffers are kept whatever their use.
    for _ in 0..20 {
        let mut b = p.get_with_capacity(4096);
        b.push(1);
        assert_eq!(p.put(b), Retention::Kept);
    }
    assert_eq!(p.stats().discarded_underused, 0);
    let b = p.get();
    assert!(b.is_empty(), "buffers come back cleared");
    assert!(b.capacity() >= 4096);
}

#[test]
fn buffer_pool_drops_oversized_at_once() {
    let p = BufferPool::new();
    assert_eq!(p.put(filled(64 << 10, 64 << 10)), Retention::Kept);
    assert_eq!(
        p.put(filled((64 << 10) + 1, 64 << 10)),
        Retention::Oversized
    );
    assert_eq!(p.put(filled(10 << 20, 10 << 20)), Retention::Oversized);
    let s = p.stats();
    assert_eq!(s.discarded_oversized, 2);
    assert_eq!(s.retained, 64 << 10);
}

#[test]
fn buffer_pool_strikes_out_underused_buffers() {
    let p = BufferPool::new();
    let mut b = filled(32 << 10, 100); // 32 KiB buffer holding 100 bytes: under a quarter
    for strike in 1..=4 {
        assert_eq!(p.put(b), Retention::Kept, "strike {strike} keeps it");
        b = p.get();
        assert_eq!(b.strikes(), strike);
        b.resize(100, 1);
    }
    assert_eq!(
        p.put(b),
        Retention::Underused,
        "the fifth under-use drops it"
    );
    assert_eq!(p.stats().discarded_underused, 1);
    assert_eq!(p.stats().retained, 0);

    // A well-used round resets the strikes.
    let mut b = filled(32 << 10, 100);
    for _ in 0..3 {
        p.put(b);
        b = p.get();
        b.resize(100, 1);
    }
    assert_eq!(b.strikes(), 3);
    b.resize(8 << 10, 1); // exactly a quarter
    assert_eq!(p.put(b), Retention::Kept);
    assert_eq!(p.get().strikes(), 0);
}

#[test]
fn buffer_pool_prefers_small_buffers() {
    let p = BufferPool::new();
    p.put(filled(1024, 10));
    p.put(filled(32 << 10, 32 << 10));
    assert_eq!(p.get().capacity(), 1024, "small first");
    assert_eq!(p.get().capacity(), 32 << 10, "then large");
    p.put(filled(1024, 10));
    p.put(filled(32 << 10, 32 << 10));
    assert_eq!(p.get_with_capacity(20_000).capacity(), 32 << 10);
}

/// After a burst of large and oversized buffers, with a steady small workload still running,
/// retained memory is back at its baseline within two cleanup cycles.
#[test]
fn buffer_pool_burst_returns_to_baseline_in_two_cycles() {
    let p = BufferPool::new();
    let steady = |p: &BufferPool| {
        let bufs: Vec<Buffer> = (0..8)
            .map(|i| {
                let mut b = p.get();
                b.resize(500 + 100 * i, 0);
                b
            })
            .collect();
        for b in bufs {
            p.put(b);
        }
    };
    steady(&p);
    let baseline = p.stats().retained;
    assert!(baseline > 0);

    // The burst: 16 well-used 48 KiB buffers and 16 oversized 1 MiB ones.
    let burst: Vec<Buffer> = (0..32)
        .map(|i| {
            let size = if i % 2 == 0 { 48 << 10 } else { 1 << 20 };
            let mut b = p.get_with_capacity(size);
            b.resize(size, 0);
            b
        })
        .collect();
    for b in burst {
        p.put(b);
    }
    let peak = p.stats().retained;
    assert!(peak >= 16 * (48 << 10), "large buffers are kept at first");
    assert_eq!(p.stats().discarded_oversized, 16);

    for _ in 0..2 {
        steady(&p);
        p.cleanup();
    }
    steady(&p);
    let after = p.stats().retained;
    assert!(
        after <= baseline,
        "retained {after} bytes after two cycles, baseline {baseline}"
    );
}

#[test]
fn buffer_pool_config_is_checked() {
    let r = std::panic::catch_unwind(|| {
        BufferPool::with_config(BufferConfig {
            small_capacity: 1 << 20,
            ..BufferConfig::default()
        })
    });
    assert!(r.is_err());
}

#[test]
fn bucket_pool_tiers_and_rounding() {
    let p = BucketPool::new(512, 3000);
    assert_eq!(p.tier_sizes(), vec![512, 1024, 2048, 3000]);
    assert!(p.get(1).capacity() >= 512);
    assert!(p.get(513).capacity() >= 1024);
    assert!(p.get(2049).capacity() >= 3000);
    assert!(p.get(5000).capacity() >= 5000);
    assert_eq!(p.stats().unpooled_gets, 1);

    // A buffer goes to the tier its capacity rounds DOWN to.
    assert!(p.put(Vec::with_capacity(1500)));
    let s = p.stats();
    assert_eq!(s.tiers[1].1.idle, 1, "1500 rounds down to the 1024 tier");
    assert_eq!(s.retained, 1500);
    // So a 1024-byte request may get it, a 2048-byte one may not.
    let b = p.get(2048);
    assert!(b.capacity() >= 2048);
    assert_eq!(p.stats().tiers[1].1.idle, 1);
    let b2 = p.get(1024);
    assert_eq!(b2.capacity(), 1500);

    assert!(p.put(Vec::with_capacity(3000)));
    assert_eq!(
        p.stats().tiers[3].1.idle,
        1,
        "exactly max goes to the last tier"
    );
    assert!(!p.put(Vec::with_capacity(100)), "below min is dropped");
    assert!(!p.put(Vec::with_capacity(3001)), "above max is dropped");
    assert_eq!(p.stats().discarded, 2);

    p.cleanup();
    p.cleanup();
    assert_eq!(p.stats().retained, 0);
    drop((b, b2));
}

#[test]
fn bucket_pool_every_request_fits_its_buffer() {
    let p = BucketPool::new(64, 1 << 16);
    for size in (1..70_000).step_by(97) {
        let mut b = p.get(size);
        assert!(
            b.capacity() >= size,
            "size {size}: capacity {}",
            b.capacity()
        );
        b.resize(size, 0);
        p.put(b);
    }
}

#[test]
fn bytebuffer_pool_calibrates_on_capacity_not_length() {
    let p = ByteBufferPool::with_threshold(200);
    assert_eq!((p.default_size(), p.max_size()), (0, 0));
    // Returned buffers are all cleared (len 0): bytebufferpool's #15 would count them as
    // 64-byte buffers. The capacities say what the workload needed: mostly ~1.5 KB, 3% ~100 KB.
    for i in 0..200 {
        let cap = if i % 33 == 0 { 100_000 } else { 1500 };
        let v: Vec<u8> = Vec::with_capacity(cap);
        assert!(p.put(v), "nothing is dropped before the first calibration");
    }
    assert_eq!(p.stats().calibrations, 0);
    // The 201st put of the 2 KiB class triggers the calibration.
    for _ in 0..8 {
        p.put(Vec::with_capacity(1500));
    }
    assert_eq!(p.stats().calibrations, 1);
    assert_eq!(p.default_size(), 2048, "most frequent capacity class");
    assert_eq!(p.max_size(), 2048, "95% of puts fit in 2 KiB");
    // After calibration, 100 KB buffers are not kept, 1.5 KB ones are.
    assert!(!p.put(Vec::with_capacity(100_000)));
    assert!(p.put(Vec::with_capacity(1500)));
    assert_eq!(p.stats().discarded, 1);
    // New buffers get the calibrated capacity once the idle ones are gone.
    p.cleanup();
    p.cleanup();
    assert_eq!(p.stats().retained, 0);
    assert!(p.get().capacity() >= 2048);
}

#[test]
fn bounded_pool_keeps_at_most_n() {
    let made = Arc::new(AtomicUsize::new(0));
    let m = Arc::clone(&made);
    let p = BoundedPool::new(3, move || {
        m.fetch_add(1, Ordering::SeqCst);
        vec![0u8; 100]
    })
    .weigher(|v| v.capacity());
    let objs: Vec<_> = (0..5).map(|_| p.get()).collect();
    assert_eq!(made.load(Ordering::SeqCst), 5);
    let kept: Vec<bool> = objs.into_iter().map(|o| p.put(o)).collect();
    assert_eq!(kept, vec![true, true, true, false, false]);
    let s = p.stats();
    assert_eq!((s.idle, s.dropped, s.retained, s.capacity), (3, 2, 300, 3));
    {
        let _g = p.get_guard();
        assert_eq!(p.idle(), 2);
    }
    assert_eq!(p.idle(), 3);
    let g = p.get_guard();
    let v = BoundedGuard::take(g);
    assert_eq!(v.len(), 100);
    assert_eq!(p.stats().retained, 200);
    assert_eq!(
        made.load(Ordering::SeqCst),
        5,
        "no new object while idle ones exist"
    );
}

#[test]
fn bounded_pool_concurrent_never_exceeds_capacity() {
    let p = Arc::new(BoundedPool::new(4, Vec::<u8>::new));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let a = p.get();
                    let b = p.get();
                    p.put(a);
                    if i % 2 == 0 {
                        p.put(b);
                    }
                    p.put(Vec::new());
                    assert!(p.idle() <= 4);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert!(p.idle() <= 4);
}

#[test]
fn buffer_pool_new_buffers_get_the_initial_capacity() {
    let p = BufferPool::with_config(BufferConfig {
        initial_capacity: 1000,
        ..BufferConfig::default()
    });
    // Nothing idle: the pool makes a buffer, which must have the configured capacity.
    let b = p.get();
    assert!(
        b.capacity() >= 1000,
        "a new buffer has capacity {} (initial_capacity 1000)",
        b.capacity()
    );
    // The same when asking for a smaller capacity explicitly.
    let c = p.get_with_capacity(10);
    assert!(
        c.capacity() >= 1000,
        "get_with_capacity(10): {}",
        c.capacity()
    );
    // A larger request gets at least what it asked for.
    let d = p.get_with_capacity(8000);
    assert!(d.capacity() >= 8000);
    // Default config: 0, as documented (grows on demand).
    assert_eq!(BufferPool::new().get().capacity(), 0);
}
