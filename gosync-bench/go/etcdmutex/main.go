// Command etcdmutex measures Go's own clientv3/concurrency.Mutex for gosync-bench's `dist`
// family: each of -clients goroutines has its own session and runs Lock+Unlock on one mutex
// name until -iters operations are done in total. It prints the wall time of the timed part
// (sessions are opened before it) as "elapsed_ns N" and the latency of every operation as
// "latency_ns N N ...".
//
// -mode=raw sends, instead of Lock+Unlock, the two requests they send when uncontended (the
// put-if-absent transaction that also reads the owner, and the delete), without the
// concurrency package: the floor of an uncontended lock+unlock for this client library.
//
// Built in GOPATH mode against Debian's golang-etcd-server-dev sources (no network):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o etcdmutex .
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

func fail(what string, err error) {
	fmt.Fprintln(os.Stderr, what+":", err)
	os.Exit(1)
}

// rawPair sends what an uncontended Lock and Unlock send (concurrency/mutex.go, etcd 3.4).
func rawPair(ctx context.Context, cli *clientv3.Client, pfx string, lease clientv3.LeaseID) {
	key := fmt.Sprintf("%s%x", pfx, lease)
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	put := clientv3.OpPut(key, "", clientv3.WithLease(lease))
	get := clientv3.OpGet(key)
	getOwner := clientv3.OpGet(pfx, clientv3.WithFirstCreate()...)
	if _, err := cli.Txn(ctx).If(cmp).Then(put, getOwner).Else(get, getOwner).Commit(); err != nil {
		fail("txn", err)
	}
	if _, err := cli.Delete(ctx, key); err != nil {
		fail("delete", err)
	}
}

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:2379", "etcd endpoint")
	clients := flag.Int("clients", 1, "concurrent clients, one session each")
	iters := flag.Int64("iters", 100, "lock+unlock operations in total")
	name := flag.String("name", "bench/go", "mutex name")
	mode := flag.String("mode", "mutex", "mutex (concurrency.Mutex) or raw (its two requests only)")
	flag.Parse()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 10 * time.Second})
	if err != nil {
		fail("connect", err)
	}
	defer cli.Close()
	ctx := context.Background()
	sessions := make([]*concurrency.Session, *clients)
	for i := range sessions {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
		if err != nil {
			fail("session", err)
		}
		defer s.Close()
		sessions[i] = s
	}
	pfx := *name + "/"
	var next int64
	var wg sync.WaitGroup
	lat := make([][]int64, *clients)
	start := time.Now()
	for i, s := range sessions {
		wg.Add(1)
		go func(i int, s *concurrency.Session) {
			defer wg.Done()
			m := concurrency.NewMutex(s, *name)
			for atomic.AddInt64(&next, 1) <= *iters {
				t := time.Now()
				if *mode == "raw" {
					rawPair(ctx, cli, pfx, s.Lease())
				} else {
					if err := m.Lock(ctx); err != nil {
						fail("lock", err)
					}
					if err := m.Unlock(ctx); err != nil {
						fail("unlock", err)
					}
				}
				lat[i] = append(lat[i], time.Since(t).Nanoseconds())
			}
		}(i, s)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var b strings.Builder
	b.WriteString("latency_ns")
	for _, l := range lat {
		for _, v := range l {
			fmt.Fprintf(&b, " %d", v)
		}
	}
	fmt.Printf("elapsed_ns %d\n%s\n", elapsed.Nanoseconds(), b.String())
}
