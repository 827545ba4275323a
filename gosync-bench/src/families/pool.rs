//! `pool`: gosync's `Pool` (Go's `sync.Pool`) and buffer pools against lockfree-object-pool,
//! object-pool, opool, plain allocation and Go.
//!
//! Workloads:
//! - `Pool`, `PoolOverflow`, `PoolStarvation`: Go's `BenchmarkPool*` from `sync/pool_test.go`,
//!   mirrored operation for operation (`Put(1); Get()`; 100 puts then 100 gets; 67 puts then
//!   100 gets) on a pool of `u64`. One op is one loop iteration, as in Go. Peers that only hand
//!   out guards (get, then drop to return) run the same number of get/return pairs.
//! - `BufferMixed`: get a buffer, fill it to a size drawn from a mixed distribution (90%
//!   128 B–2 KiB, 9% 4–32 KiB, 1% 64–256 KiB), return it. Reports `retained_bytes`: the capacity
//!   held by idle buffers after the run.
//! - `burst-retention` (metrics, not timings): retained bytes at a steady baseline, after a
//!   burst of large and oversized buffers, and after each of two cleanup cycles.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gosync::pool::{BucketPool, BufferPool, ByteBufferPool, Pool};
use lockfree_object_pool::LinearObjectPool;

use crate::harness::{run_parallel, Ctx, Impl, Sample};

const FAMILY: &str = "pool";

struct U64Alloc;
impl opool::PoolAllocator<u64> for U64Alloc {
    fn allocate(&self) -> u64 {
        1
    }
}

/// Entry point.
pub fn run(ctx: &mut Ctx) {
    let threads = ctx.threads();
    let rows = crate::go::bench_std(
        ctx,
        "sync",
        "^(BenchmarkPool|BenchmarkPoolOverflow|BenchmarkPoolStarvation)$",
        &threads,
    );
    crate::go::add_rows(
        ctx,
        FAMILY,
        &rows,
        &[
            ("BenchmarkPool", "Pool"),
            ("BenchmarkPoolOverflow", "PoolOverflow"),
            ("BenchmarkPoolStarvation", "PoolStarvation"),
        ],
    );
    for &t in &threads {
        pool_pair(ctx, t);
    }
    for &t in &threads {
        pool_overflow(ctx, t);
    }
    for &t in &threads {
        pool_starvation(ctx, t);
    }
    for &t in &threads {
        buffer_mixed(ctx, t);
    }
    burst_retention(ctx);
}

/// Go's `BenchmarkPool`: `Put(1); Get()` per iteration.
fn pool_pair(ctx: &mut Ctx, t: usize) {
    let g: Pool<u64> = Pool::new(|| 0);
    let lf = LinearObjectPool::<u64>::new(|| 1, |_| {});
    let op = object_pool::Pool::<u64>::new(0, || 1);
    let oq = opool::Pool::new(64, U64Alloc);
    ctx.compare(
        FAMILY,
        "Pool",
        t,
        vec![
            Impl::new("gosync", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        g.put(black_box(1));
                        black_box(g.try_get());
                    }
                })
                .into()
            }),
            Impl::new("lockfree-object-pool", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        black_box(lf.pull());
                    }
                })
                .into()
            }),
            Impl::new("object-pool", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        black_box(op.pull(|| 1));
                    }
                })
                .into()
            }),
            Impl::new("opool", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        black_box(oq.get());
                    }
                })
                .into()
            }),
            Impl::new("alloc", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        black_box(Box::new(black_box(1u64)));
                    }
                })
                .into()
            }),
        ],
    );
}

/// Go's `BenchmarkPoolOverflow`: 100 puts then 100 gets per iteration.
fn pool_overflow(ctx: &mut Ctx, t: usize) {
    let g: Pool<u64> = Pool::new(|| 0);
    let lf = LinearObjectPool::<u64>::new(|| 1, |_| {});
    let op = object_pool::Pool::<u64>::new(0, || 1);
    let oq = opool::Pool::new(1024, U64Alloc);
    ctx.compare(
        FAMILY,
        "PoolOverflow",
        t,
        vec![
            Impl::new("gosync", |n| {
                run_parallel(t, n, |_, it| {
                    while it.next() {
                        for _ in 0..100 {
                            g.put(black_box(1));
                        }
                        for _ in 0..100 {
                            black_box(g.try_get());
                        }
                    }
                })
                .into()
            }),
            Impl::new("lockfree-object-pool", |n| {
                run_parallel(t, n, |_, it| {
                    let mut held = Vec::with_capacity(100);
                    while it.next() {
                        for _ in 0..100 {
                            held.push(lf.pull());
                        }
                        held.clear();
                    }
                })
                .into()
            }),
            Impl::new("object-pool", |n| {
                run_parallel(t, n, |_, it| {
                    let mut held = Vec::with_capacity(100);
                    while it.next() {
                        for _ in 0..100 {
                            held.push(op.pull(|| 1));
                        }
                        held.clear();
                    }
                })
                .into()
            }),
            Impl::new("opool", |n| {
                run_parallel(t, n, |_, it| {
                    let mut held = Vec::with_capacity(100);
                    while it.next() {
                        for _ in 0..100 {
                            held.push(oq.get());
                        }
                        held.clear();
                    }
                })
                .into()
            }),
            Impl::new("alloc", |n| {
                run_parallel(t, n, |_, it| {
                    let mut held = Vec::with_capacity(100);
                    while it.next() {
                        for _ in 0..100 {
                            held.push(Box::new(black_box(1u64)));
                        }
                        held.clear();
                    }
                })
                .into()
            }),
        ],
    );
}

/// Go's `BenchmarkPoolStarvation`: 67 puts then 100 gets per iteration, so a third of the gets
/// must steal or miss. Guard-based peers cannot express an unbalanced put/get, so this is
/// gosync against Go only.
fn pool_starvation(ctx: &mut Ctx, t: usize) {
    let g: Pool<u64> = Pool::new(|| 0);
    let starved = 100 - (100.0f32 * 0.33) as usize;
    ctx.compare(
        FAMILY,
        "PoolStarvation",
        t,
        vec![Impl::new("gosync", |n| {
            run_parallel(t, n, |_, it| {
                while it.next() {
                    for _ in 0..starved {
                        g.put(black_box(1));
                    }
                    for _ in 0..100 {
                        black_box(g.try_get());
                    }
                }
            })
            .into()
        })],
    );
}

/// A deterministic size stream: 90% 128 B–2 KiB, 9% 4–32 KiB, 1% 64–256 KiB.
struct Sizes(u64);
impl Sizes {
    fn next(&mut self) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let pick = (r >> 32) % 100;
        let x = (r & 0xffff_ffff) as usize;
        match pick {
            0..=89 => 128 + x % (2048 - 128),
            90..=98 => 4096 + x % (32 * 1024 - 4096),
            _ => 64 * 1024 + x % (192 * 1024),
        }
    }
}

fn sizes(tid: usize) -> Sizes {
    Sizes(0x9E37_79B9_7F4A_7C15 ^ (tid as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// Sum of capacities of the idle buffers of an object-pool pool (taken out and put back).
fn object_pool_retained(p: &object_pool::Pool<Vec<u8>>) -> usize {
    let mut all = Vec::new();
    while let Some(r) = p.try_pull() {
        all.push(r.detach().1);
    }
    let bytes = all.iter().map(|v| v.capacity()).sum();
    for v in all {
        p.attach(v);
    }
    bytes
}

/// Sum of capacities of the idle buffers of a lockfree-object-pool pool: pulls as many
/// objects as were ever made (all idle after a run), holding them, then returns them.
fn linear_retained(p: &LinearObjectPool<Vec<u8>>, made: &AtomicUsize) -> usize {
    let n = made.load(Ordering::Relaxed);
    let held: Vec<_> = (0..n).map(|_| p.pull()).collect();
    held.iter().map(|v| v.capacity()).sum()
}

fn buffer_mixed(ctx: &mut Ctx, t: usize) {
    let bp = BufferPool::new();
    let bucket = BucketPool::new(512, 256 << 10);
    let bbp = ByteBufferPool::new();
    let naive: Pool<Vec<u8>> = Pool::builder(Vec::new).weigher(|v| v.capacity()).build();
    let op = object_pool::Pool::<Vec<u8>>::new(0, Vec::new);
    let made = Arc::new(AtomicUsize::new(0));
    let m = Arc::clone(&made);
    let lf = LinearObjectPool::<Vec<u8>>::new(
        move || {
            m.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        },
        |v| v.clear(),
    );
    let timed = |f: &dyn Fn() -> std::time::Duration, retained: &dyn Fn() -> usize| {
        let el = f();
        Sample::from(el).extra("retained_bytes", retained() as f64)
    };
    ctx.compare(
        FAMILY,
        "BufferMixed",
        t,
        vec![
            Impl::new("gosync BufferPool", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let mut b = bp.get();
                                b.resize(s.next(), 1);
                                black_box(&b);
                                bp.put(b);
                            }
                        })
                    },
                    &|| bp.stats().retained,
                )
            }),
            Impl::new("gosync BucketPool", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let size = s.next();
                                let mut b = bucket.get(size);
                                b.resize(size, 1);
                                black_box(&b);
                                bucket.put(b);
                            }
                        })
                    },
                    &|| bucket.stats().retained,
                )
            }),
            Impl::new("gosync ByteBufferPool", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let mut b = bbp.get();
                                b.resize(s.next(), 1);
                                black_box(&b);
                                bbp.put(b);
                            }
                        })
                    },
                    &|| bbp.stats().retained,
                )
            }),
            Impl::new("gosync Pool (no size rule)", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let mut b = naive.get();
                                b.resize(s.next(), 1);
                                black_box(&b);
                                b.clear();
                                naive.put(b);
                            }
                        })
                    },
                    &|| naive.stats().retained,
                )
            }),
            Impl::new("object-pool", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let mut b = op.pull(Vec::new);
                                b.resize(s.next(), 1);
                                black_box(&*b);
                                b.clear();
                            }
                        })
                    },
                    &|| object_pool_retained(&op),
                )
            }),
            Impl::new("lockfree-object-pool", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let mut b = lf.pull();
                                b.resize(s.next(), 1);
                                black_box(&*b);
                            }
                        })
                    },
                    &|| linear_retained(&lf, &made),
                )
            }),
            Impl::new("alloc", |n| {
                timed(
                    &|| {
                        run_parallel(t, n, |tid, it| {
                            let mut s = sizes(tid);
                            while it.next() {
                                let mut b: Vec<u8> = Vec::new();
                                b.resize(s.next(), 1);
                                black_box(&b);
                            }
                        })
                    },
                    &|| 0,
                )
            }),
        ],
    );
}

/// Retained bytes through a burst: steady small traffic, then 32 large (48 KiB) and 32
/// oversized (1 MiB) buffers at once, then two cleanup cycles with the steady traffic going on.
fn burst_retention(ctx: &mut Ctx) {
    struct Subject<'a> {
        name: &'a str,
        get: Box<dyn Fn(usize) -> Vec<u8> + 'a>,
        put: Box<dyn Fn(Vec<u8>) + 'a>,
        cycle: Box<dyn Fn() + 'a>,
        retained: Box<dyn Fn() -> usize + 'a>,
    }
    let bp = BufferPool::new();
    let bucket = BucketPool::new(512, 1 << 20);
    let bbp = ByteBufferPool::with_threshold(1000);
    let naive: Pool<Vec<u8>> = Pool::builder(Vec::new).weigher(|v| v.capacity()).build();
    let op = object_pool::Pool::<Vec<u8>>::new(0, Vec::new);
    let subjects = vec![
        Subject {
            name: "gosync BufferPool",
            get: Box::new(|n| bp.get_with_capacity(n).into_vec()),
            put: Box::new(|v| {
                bp.put_vec(v);
            }),
            cycle: Box::new(|| bp.cleanup()),
            retained: Box::new(|| bp.stats().retained),
        },
        Subject {
            name: "gosync BucketPool",
            get: Box::new(|n| bucket.get(n)),
            put: Box::new(|v| {
                bucket.put(v);
            }),
            cycle: Box::new(|| bucket.cleanup()),
            retained: Box::new(|| bucket.stats().retained),
        },
        Subject {
            name: "gosync ByteBufferPool",
            get: Box::new(|_| bbp.get()),
            put: Box::new(|v| {
                bbp.put(v);
            }),
            cycle: Box::new(|| bbp.cleanup()),
            retained: Box::new(|| bbp.stats().retained),
        },
        Subject {
            name: "gosync Pool (no size rule)",
            get: Box::new(|_| naive.get()),
            put: Box::new(|mut v| {
                v.clear();
                naive.put(v)
            }),
            cycle: Box::new(|| naive.cleanup()),
            retained: Box::new(|| naive.stats().retained),
        },
        Subject {
            name: "object-pool",
            get: Box::new(|_| op.try_pull().map(|r| r.detach().1).unwrap_or_default()),
            put: Box::new(|mut v| {
                v.clear();
                op.attach(v)
            }),
            cycle: Box::new(|| {}),
            retained: Box::new(|| object_pool_retained(&op)),
        },
    ];
    let start = Instant::now();
    for s in &subjects {
        let mut sz = sizes(7);
        let steady = |sz: &mut Sizes| {
            // 16 buffers in flight, small sizes only (the first branch of the mix).
            for _ in 0..50 {
                let bufs: Vec<Vec<u8>> = (0..16)
                    .map(|_| {
                        let n = 128 + sz.next() % 1920;
                        let mut b = (s.get)(n);
                        b.resize(n, 1);
                        b
                    })
                    .collect();
                for b in bufs {
                    (s.put)(b);
                }
            }
        };
        steady(&mut sz);
        let baseline = (s.retained)();
        let burst: Vec<Vec<u8>> = (0..64)
            .map(|i| {
                let n = if i % 2 == 0 { 48 << 10 } else { 1 << 20 };
                let mut b = (s.get)(n);
                b.resize(n, 1);
                b
            })
            .collect();
        for b in burst {
            (s.put)(b);
        }
        let peak = (s.retained)();
        let mut after = Vec::new();
        for _ in 0..2 {
            steady(&mut sz);
            (s.cycle)();
            after.push((s.retained)());
        }
        steady(&mut sz);
        let settled = (s.retained)();
        for (what, v) in [
            ("burst baseline", baseline),
            ("burst peak", peak),
            ("burst after 1 cycle", after[0]),
            ("burst after 2 cycles", after[1]),
            ("burst after 2 cycles + traffic", settled),
        ] {
            ctx.metric(FAMILY, what, s.name, v as f64, "bytes");
        }
    }
    ctx.println(format!(
        "  pool/burst-retention measured in {:.1?}",
        start.elapsed()
    ));
}
