// Go side of gosync-bench's `workerpool` family, standard library only.
//
// Each benchmark operation is one task submitted from one goroutine and run to completion:
//   - Goroutines: one `go` statement per task (what the seed's worker pools replace);
//   - ChannelPool: GOMAXPROCS long-lived workers fed by one buffered channel (the classic
//     channel-fed worker pool, like grpool), the counterpart of a Rust pool with that many
//     worker threads.
// Workloads mirror the Rust side: "Tiny" does almost nothing, "Sleep" sleeps 10µs.
//
// BenchmarkQueued100k* report peak heap (runtime.MemStats.HeapInuse sampled by a ticker)
// for 100k queued 10µs tasks, as "peak-heap-B".
package workerpool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var sink uint64

func tiny(i int) { atomic.AddUint64(&sink, uint64(i)&1) }

func sleepy(int) { time.Sleep(10 * time.Microsecond) }

func goroutines(n int, task func(int)) {
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			task(i)
			wg.Done()
		}(i)
	}
	wg.Wait()
}

func channelPool(n, workers int, task func(int)) {
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := range jobs {
				task(i)
			}
			wg.Done()
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

func BenchmarkTinyGoroutines(b *testing.B) { goroutines(b.N, tiny) }
func BenchmarkTinyChannelPool(b *testing.B) {
	channelPool(b.N, runtime.GOMAXPROCS(0), tiny)
}
func BenchmarkSleepGoroutines(b *testing.B) { goroutines(b.N, sleepy) }
func BenchmarkSleepChannelPool(b *testing.B) {
	channelPool(b.N, runtime.GOMAXPROCS(0), sleepy)
}

// peakHeap runs f while sampling HeapInuse every 200µs and returns the peak growth.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		var s runtime.MemStats
		for {
			select {
			case <-stop:
				close(done)
				return
			case <-t.C:
				runtime.ReadMemStats(&s)
				if s.HeapInuse > base && s.HeapInuse-base > peak {
					peak = s.HeapInuse - base
				}
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak
}

func BenchmarkQueued100kGoroutines(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(float64(peakHeap(func() { goroutines(100_000, sleepy) })), "peak-heap-B")
	}
}

// The channel must hold every task for them to be "queued": unbounded in effect.
func BenchmarkQueued100kChannelPool(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(float64(peakHeap(func() {
			jobs := make(chan func(), 100_000)
			var wg sync.WaitGroup
			workers := runtime.GOMAXPROCS(0)
			wg.Add(workers)
			for w := 0; w < workers; w++ {
				go func() {
					for f := range jobs {
						f()
					}
					wg.Done()
				}()
			}
			for j := 0; j < 100_000; j++ {
				j := j
				jobs <- func() { sleepy(j) }
			}
			close(jobs)
			wg.Wait()
		})), "peak-heap-B")
	}
}
