// gen.go writes the Go-made fixture profiles under tests/testdata.  They are
// committed, so tests never need Go to run; regenerate with
//   cd tests/testdata && GOCACHE=/tmp/gocache go run gen/gen.go
// Outputs: go-cpu-labels.pb.gz (CPU, labels from pprof.Do), go-heap.pb.gz
// (four sample types), go-goroutine.pb.gz (goroutine profile) and
// go-goroutines.txt (a debug=2 dump with parked goroutines).
package main

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

var sink uint64

//go:noinline
func spin(n int) uint64 {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func work(n int) { sink += spin(n) }

//go:noinline
func alloc(n int) []byte { return make([]byte, n) }

var keep [][]byte

func park(depth int, ch chan struct{}, wg *sync.WaitGroup) {
	if depth > 0 {
		park(depth-1, ch, wg)
		return
	}
	wg.Done()
	<-ch
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	runtime.MemProfileRate = 1
	f, err := os.Create("go-cpu-labels.pb.gz")
	must(err)
	must(pprof.StartCPUProfile(f))
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		pprof.Do(context.Background(), pprof.Labels("role", "big"), func(context.Context) { work(3000000) })
		pprof.Do(context.Background(), pprof.Labels("role", "small"), func(context.Context) { work(1000000) })
	}
	pprof.StopCPUProfile()
	f.Close()

	for i := 0; i < 200; i++ {
		keep = append(keep, alloc(1024*(i%7+1)))
	}
	runtime.GC()
	h, err := os.Create("go-heap.pb.gz")
	must(err)
	must(pprof.Lookup("heap").WriteTo(h, 0))
	h.Close()

	ch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(6)
	for i := 0; i < 6; i++ {
		go park(i%2+2, ch, &wg)
	}
	wg.Wait()
	g, err := os.Create("go-goroutine.pb.gz")
	must(err)
	must(pprof.Lookup("goroutine").WriteTo(g, 0))
	g.Close()
	d, err := os.Create("go-goroutines.txt")
	must(err)
	must(pprof.Lookup("goroutine").WriteTo(d, 2))
	d.Close()
	close(ch)
}
