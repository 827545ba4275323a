// Command etcdmutex measures Go's own clientv3/concurrency.Mutex for gosync-bench's `dist`
// family: each of -clients goroutines has its own session and runs Lock+Unlock on one mutex
// name until -iters operations are done in total. It prints the wall time of the timed part
// (sessions are opened before it) as "elapsed_ns N".
//
// Built in GOPATH mode against Debian's golang-etcd-server-dev sources (no network):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o etcdmutex .
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:2379", "etcd endpoint")
	clients := flag.Int("clients", 1, "concurrent clients, one session each")
	iters := flag.Int64("iters", 100, "lock+unlock operations in total")
	name := flag.String("name", "bench/go", "mutex name")
	flag.Parse()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer cli.Close()
	ctx := context.Background()
	mutexes := make([]*concurrency.Mutex, *clients)
	for i := range mutexes {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
		if err != nil {
			fmt.Fprintln(os.Stderr, "session:", err)
			os.Exit(1)
		}
		defer s.Close()
		mutexes[i] = concurrency.NewMutex(s, *name)
	}
	var next int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, m := range mutexes {
		wg.Add(1)
		go func(m *concurrency.Mutex) {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= *iters {
				if err := m.Lock(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "lock:", err)
					os.Exit(1)
				}
				if err := m.Unlock(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "unlock:", err)
					os.Exit(1)
				}
			}
		}(m)
	}
	wg.Wait()
	fmt.Printf("elapsed_ns %d\n", time.Since(start).Nanoseconds())
}
