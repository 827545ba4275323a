// Package mirror holds the "work-only" halves of Go's sync benchmarks: each benchmark here is
// one of src/sync's benchmark loops with the lock calls taken out and everything else kept in
// the same shape (captured parameters, loop bounds, the unused or reused foo), so that Go
// compiles the same hot loop. gosync-bench runs the Rust mirror of the same loop and reports
// the two side by side; when they agree, the locked benchmarks compare locks, not loops.
//
// Check the compiled loops with:
//
//	go test -c -o mirror.test . && go tool objdump -s 'WorkOnly' mirror.test
package mirror

import "testing"

// benchmarkMutexWorkOnly is benchmarkMutex (mutex_test.go) without Lock/Unlock.
func benchmarkMutexWorkOnly(b *testing.B, slack, work bool) {
	if slack {
		b.SetParallelism(10)
	}
	b.RunParallel(func(pb *testing.PB) {
		foo := 0
		for pb.Next() {
			if work {
				for i := 0; i < 100; i++ {
					foo *= 2
					foo /= 2
				}
			}
		}
		_ = foo
	})
}

func BenchmarkMutexWorkOnly(b *testing.B) {
	benchmarkMutexWorkOnly(b, false, true)
}

// BenchmarkMutexSpinWorkOnly is BenchmarkMutexSpin (mutex_test.go) without the locked transfer.
func BenchmarkMutexSpinWorkOnly(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		var data [16 << 10]uint64
		for i := 0; pb.Next(); i++ {
			for i := 0; i < len(data); i += 4 {
				data[i]++
			}
		}
	})
}

// benchmarkRWMutexWorkOnly is benchmarkRWMutex (rwmutex_test.go) without RLock/RUnlock and with
// an empty write branch.
func benchmarkRWMutexWorkOnly(b *testing.B, localWork, writeRatio int) {
	b.RunParallel(func(pb *testing.PB) {
		foo := 0
		for pb.Next() {
			foo++
			if foo%writeRatio == 0 {
				continue
			}
			for i := 0; i != localWork; i += 1 {
				foo *= 2
				foo /= 2
			}
		}
		_ = foo
	})
}

func BenchmarkRWMutexWorkOnly(b *testing.B) {
	benchmarkRWMutexWorkOnly(b, 100, 100)
}

// benchmarkWaitGroupWorkOnly is benchmarkWaitGroupAddDone (waitgroup_test.go) without Add/Done.
func benchmarkWaitGroupWorkOnly(b *testing.B, localWork int) {
	b.RunParallel(func(pb *testing.PB) {
		foo := 0
		for pb.Next() {
			for i := 0; i < localWork; i++ {
				foo *= 2
				foo /= 2
			}
		}
		_ = foo
	})
}

func BenchmarkWaitGroupWorkOnly(b *testing.B) {
	benchmarkWaitGroupWorkOnly(b, 100)
}
