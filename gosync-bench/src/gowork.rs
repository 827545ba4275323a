//! The work loops of Go's `sync` benchmarks, written so that rustc emits the loop Go 1.19 runs.
//!
//! Go's benchmarks put `for i := 0; i < k; i++ { foo *= 2; foo /= 2 }` ("work(k)") next to
//! their lock calls, and a few dirty a private array. What the CPU executes depends on what Go's
//! compiler keeps, so each mirror here copies the *compiled* loop, not the source line (checked
//! with `go tool objdump` on `go test -c sync`, and `objdump -d` on gosync-bench):
//!
//! | Go benchmark | Go 1.19 amd64 hot loop | mirror |
//! |---|---|---|
//! | `benchmarkMutex` (Work, WorkSlack) | `INCQ AX; CMPQ $0x64, AX; JL` | [`empty_loop`] |
//! | `benchmarkWaitGroupAddDone`, `benchmarkWaitGroupWait` | `INCQ AX; CMPQ CX, AX; JL` | [`empty_loop`] |
//! | `benchmarkRWMutex` | `SHLQ $1; SHRQ $63; LEAQ (R8)(DX*2); SARQ $1` + counter | [`mul_div_loop`] |
//! | `BenchmarkMutexSpin`, `BenchmarkMutexNoSpin` | `INCQ (SP)(AX*8); ADDQ $4, AX; CMPQ; JL` | [`stride_inc`] |
//!
//! In `benchmarkMutex` and the WaitGroup benchmarks `foo` is never read (only `_ = foo`), so Go
//! drops the arithmetic as dead code and what remains is k empty iterations. In
//! `benchmarkRWMutex` `foo` doubles as the operation counter (`foo++; if foo%writeRatio == 0`),
//! so the multiply and the signed divide stay: a four-instruction dependency chain per round.
//!
//! Rust would delete an empty loop, fold `x * 2 / 2`, and unroll or vectorise the array loop.
//! [`opaque`] stops all three without adding an instruction: an empty `asm!` block that claims
//! to rewrite a register, so the optimiser can no longer see the value, while the value stays in
//! that register. (`std::hint::black_box` goes through memory: a store and a load per
//! iteration, which made the old mirror of `work(100)` about twice as slow as Go's loop.)
//!
//! Each family has a `work-only` workload that runs its loop with no lock at all, in Rust and in
//! Go (`go/mirror`); the report compares the two and only trusts the family's Go column where
//! they agree within 5 %.

/// Returns `x`, hiding it from the optimiser at zero cost (see the module docs).
#[inline(always)]
pub fn opaque<T: Opaque>(x: T) -> T {
    x.opaque()
}

/// Integer types [`opaque`] works on.
pub trait Opaque: Copy {
    /// See [`opaque`].
    fn opaque(self) -> Self;
}

macro_rules! opaque_int {
    ($($t:ty),*) => {$(
        impl Opaque for $t {
            #[inline(always)]
            fn opaque(self) -> Self {
                #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                {
                    let mut x = self;
                    // SAFETY: an empty instruction sequence; it touches no memory, no stack and
                    // no flags, and leaves the register unchanged.
                    unsafe {
                        std::arch::asm!("/* {0} */", inout(reg) x, options(nomem, nostack, preserves_flags));
                    }
                    x
                }
                #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
                {
                    std::hint::black_box(self)
                }
            }
        }
    )*};
}
opaque_int!(i64, u64, usize);

/// Go's `for i := 0; i < k; i++ { foo *= 2; foo /= 2 }` where `foo` is never read afterwards
/// (`benchmarkMutex`, `benchmarkWaitGroupAddDone`, `benchmarkWaitGroupWait`): Go compiles it to
/// `k` empty iterations, and so does this (`inc; cmp; jl`).
#[inline(always)]
pub fn empty_loop(k: i64) {
    let mut i: i64 = 0;
    while i < k {
        i = opaque(i + 1);
    }
}

/// Go's `for i := 0; i != k; i += 1 { foo *= 2; foo /= 2 }` where `foo` is read afterwards
/// (`benchmarkRWMutex`): a wrapping multiply and a signed divide by two per iteration, on an
/// `int` (`i64`), which returns `foo` unchanged for `0 <= foo < 2^62`.
#[inline(always)]
pub fn mul_div_loop(mut value: i64, k: i64) -> i64 {
    let mut i: i64 = 0;
    while i != k {
        value = opaque(value.wrapping_mul(2)) / 2;
        i = opaque(i + 1);
    }
    value
}

/// Go's `for i := 0; i < len(data); i += 4 { data[i]++ }` (`BenchmarkMutexSpin`,
/// `BenchmarkMutexNoSpin`): one read-modify-write of every fourth word, one at a time.
#[inline(always)]
pub fn stride_inc(data: &mut [u64]) {
    let mut i = 0usize;
    while i < data.len() {
        data[i] += 1;
        i = opaque(i + 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_compute_what_go_computes() {
        // foo *= 2; foo /= 2 leaves small non-negative values alone and wraps large ones as
        // Go's int does (the multiply overflows, the divide rounds toward zero).
        assert_eq!(mul_div_loop(12345, 100), 12345);
        assert_eq!(mul_div_loop(-7, 3), -7);
        assert_eq!(mul_div_loop(1 << 62, 1), (1i64 << 62).wrapping_mul(2) / 2);
        assert_eq!(mul_div_loop(5, 0), 5);
        let mut data = vec![0u64; 16];
        stride_inc(&mut data);
        stride_inc(&mut data);
        assert_eq!(data.iter().sum::<u64>(), 8);
        assert!(data.iter().step_by(4).all(|&x| x == 2));
        empty_loop(100);
        assert_eq!(opaque(7u64), 7);
    }
}
