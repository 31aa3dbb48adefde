package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
	"github.com/treecast/treecast/node/transfer"
)

const (
	benchObject = 64 << 20
	benchChunk  = 1 << 20
)

// BenchmarkRelay compares one relay hop of a push (source -> relay -> leaf, real agents on
// loopback gRPC, every chunk verified and written to disk at the relay and the leaf) with raw
// TCP through a relay that only copies bytes (source -> relay -> sink on loopback). Both
// report MB/s of the object delivered; agent also reports CPU seconds per GiB relayed (all
// three agents' CPU, as they share the process).
func BenchmarkRelay(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		b.SetBytes(benchObject)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			if err := rawRelay(buf, benchObject); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The agents' stores on the test's temporary directory (a disk), then on tmpfs when the
	// machine has one: the difference is the cost of writing to the disk.
	b.Run("agent", func(b *testing.B) { benchAgentRelay(b, "") })
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		b.Run("agent-tmpfs", func(b *testing.B) {
			dir, err := os.MkdirTemp("/dev/shm", "treecast-bench-")
			if err != nil {
				b.Skip(err)
			}
			defer os.RemoveAll(dir)
			benchAgentRelay(b, dir)
		})
	}
}

func benchAgentRelay(b *testing.B, dir string) {
	c := nodetest.StartCluster(b, 3, nodetest.Options{ChunkSize: benchChunk, Dir: dir})
	data := make([]byte, benchObject)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.SetBytes(benchObject)
	var cpu time.Duration // CPU time spent in pushes only
	k := 0
	for b.Loop() {
		b.StopTimer()                          // storing the object at the source is not part of the relay
		data[0], data[1] = byte(k), byte(k>>8) // a new object each time
		k++
		digest, err := c.Agents[0].Put(mustWrite(b, c, 0, "obj", data), 0)
		if err != nil {
			b.Fatal(err)
		}
		cpu -= cpuTime()
		b.StartTimer()
		rep, err := c.Agents[0].Push(context.Background(), node.Object{Digest: digest}, "a01,a02", node.PushOptions{Strategy: "chain"})
		cpu += cpuTime()
		if err != nil || rep.Failed() != 0 {
			b.Fatal(err, rep)
		}
	}
	gib := float64(k) * benchObject / (1 << 30)
	b.ReportMetric(cpu.Seconds()/gib, "cpu-s/GiB")
	// How the relay sent its chunks: cut through as they arrived, or whole afterwards.
	out, cut := 0.0, 0.0
	for _, a := range c.Agents[1:] {
		out += a.Metric("treecast_chunks_out_total")
		cut += a.Metric("treecast_chunks_cut_through_total")
	}
	if out > 0 {
		b.ReportMetric(cut/out, "cut-through")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawRelay sends n bytes over loopback TCP through a copying relay and waits for the sink.
func rawRelay(buf []byte, n int64) error {
	sinkL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sinkL.Close()
	relayL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer relayL.Close()
	done := make(chan error, 2)
	go func() { // sink
		c, err := sinkL.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	go func() { // relay
		in, err := relayL.Accept()
		if err != nil {
			done <- err
			return
		}
		defer in.Close()
		out, err := net.Dial("tcp", sinkL.Addr().String())
		if err != nil {
			done <- err
			return
		}
		_, err = io.CopyBuffer(out, in, make([]byte, 1<<20))
		out.Close()
		done <- err
	}()
	src, err := net.Dial("tcp", relayL.Addr().String())
	if err != nil {
		return err
	}
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := src.Write(buf); err != nil {
			return err
		}
	}
	src.Close()
	for range 2 {
		if err := <-done; err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkRelayMemory pushes objects of growing size down a chain of three receivers and
// reports the peak live Go heap (as measured by each GC, with the data path's buffers
// mapped outside it: transfer.PoolMapped) during the push, all four agents
// sharing the process: it should not grow with the object (memory per transfer is bounded by
// the queues).
func BenchmarkRelayMemory(b *testing.B) {
	sizes := []int{64 << 20, 512 << 20}
	// TREECAST_RELAY_SIZES overrides the object sizes, in MiB: "1024,8192" compares a 1 GiB
	// and an 8 GiB object (minutes, and 4 times the size in disk).
	if env := os.Getenv("TREECAST_RELAY_SIZES"); env != "" {
		sizes = sizes[:0]
		for _, f := range strings.Split(env, ",") {
			mib, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || mib < 1 {
				b.Fatalf("TREECAST_RELAY_SIZES: %q is not a size in MiB", f)
			}
			sizes = append(sizes, mib<<20)
		}
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			c := nodetest.StartCluster(b, 4, nodetest.Options{ChunkSize: 1 << 20})
			f, err := os.Create(filepath.Join(c.Dirs[0], "obj"))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			for off := 0; off < size; off += len(buf) {
				buf[0] = byte(off >> 20)
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
			digest, err := c.Agents[0].Put(f.Name(), 0)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			var peak uint64
			for b.Loop() {
				runtime.GC()
				stop := make(chan struct{})
				sampled := make(chan uint64)
				go func() { // sample the live heap (as of the last GC) while the push runs
					sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
					var p uint64
					tick := time.NewTicker(5 * time.Millisecond)
					defer tick.Stop()
					for {
						metrics.Read(sample)
						p = max(p, sample[0].Value.Uint64()+uint64(transfer.PoolMapped()))
						select {
						case <-stop:
							sampled <- p
							return
						case <-tick.C:
						}
					}
				}()
				rep, err := c.Agents[0].Push(context.Background(), node.Object{Digest: digest}, "all", node.PushOptions{Strategy: "chain"})
				close(stop)
				peak = max(peak, <-sampled)
				if err != nil || rep.Failed() != 0 {
					b.Fatal(err, rep)
				}
				for _, a := range c.Agents[1:] { // receive it again next time
					if err := a.Remove(digest); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MiB")
		})
	}
}

// BenchmarkPushFailure measures a forest push (4 data stripes, 1 MiB chunks) of 64 MiB to 11
// receivers: undisturbed; with the plan's busiest relay killed when it holds half the object
// (a crash: its
// connections reset, its parents notice at once); and with it frozen then (a host that
// stops dead with its connections open: only gossip's failure detection notices, after
// seconds). Each without parity (the dead relay's children are re-attached by its parents:
// repair) and with one parity tree (they decode what it owed them). It reports the push's time
// (ns/op, until every receiver, the dead one included, has a verdict), the time until the last
// live receiver verified (live-s), the bytes the receivers received per byte of the object and
// receiver (1.00 is every receiver getting the object once; parity costs (K+M)/K), the chunks
// sent to a receiver that held them, and the chunks decoded from parity.
func BenchmarkPushFailure(b *testing.B) {
	for _, parity := range []int{0, 1} {
		for _, mode := range []string{"none", "kill", "freeze"} {
			b.Run(fmt.Sprintf("parity=%d/fail=%s", parity, mode), func(b *testing.B) { benchPushFailure(b, parity, mode) })
		}
	}
}

func benchPushFailure(b *testing.B, parity int, mode string) {
	const agents = 12
	data := make([]byte, benchObject)
	var received, dups, decoded, liveSecs float64
	k := 0
	for b.Loop() {
		b.StopTimer()
		c, err := nodetest.Start(context.Background(), agents, nodetest.Options{ChunkSize: benchChunk, Dir: b.TempDir(),
			Labels:    func(i int) map[string]string { return map[string]string{"rack": fmt.Sprint("r", i/4)} },
			Configure: func(i int, cfg *node.Config) { cfg.Logger = slog.New(slog.DiscardHandler) }})
		if err != nil {
			b.Fatal(err)
		}
		data[0], data[1] = byte(k), byte(k>>8)
		k++
		digest, err := c.Agents[0].Put(mustWrite(b, c, 0, "obj", data), 0)
		if err != nil {
			b.Fatal(err)
		}
		victim := make(chan string, 1)
		opts := node.PushOptions{Strategy: "forest", Stripes: 4, Parity: parity, Plan: func(p node.PlanInfo) {
			children := map[string]int{} // the relay with the most children (over all trees)
			best := ""
			for _, e := range p.Edges {
				if e.Parent == c.Agents[0].Name() {
					continue
				}
				children[e.Parent]++
				if n := children[e.Parent]; best == "" || n > children[best] || n == children[best] && e.Parent < best {
					best = e.Parent
				}
			}
			victim <- best
		}}
		done := make(chan node.Report, 1)
		b.StartTimer()
		go func() {
			rep, err := c.Agents[0].Push(context.Background(), node.Object{Digest: digest}, "all", opts)
			if err != nil {
				b.Error(err)
			}
			done <- rep
		}()
		v := <-victim
		kill := mode != "none"
		if kill {
			// Halfway through the victim's own share: it has forwarded half of its tree.
			half := float64(benchObject/benchChunk) / 2
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := c.WaitFor(ctx, "the victim half way", func() bool {
				return c.Agent(v).Metric("treecast_chunks_in_total") >= half
			}); err != nil {
				b.Fatal(err)
			}
			cancel()
			if mode == "freeze" {
				c.Agent(v).Freeze()
			} else {
				_ = c.Agent(v).Kill()
			}
		}
		rep := <-done
		b.StopTimer()
		live, in, last := 0, 0.0, time.Duration(0)
		for _, r := range rep.Receivers {
			if r.Receiver == v && kill {
				continue
			}
			if !r.OK {
				b.Fatalf("%s: %s", r.Receiver, r.Err)
			}
			live++
			last = max(last, r.Elapsed)
			if os.Getenv("TREECAST_BENCH_DEBUG") != "" {
				b.Logf("%s %v ok=%v in=%d", r.Receiver, r.Elapsed, r.OK, r.BytesIn)
			}
			in += float64(r.BytesIn) / benchObject
			dups += float64(r.Duplicates)
			decoded += float64(r.Decoded)
		}
		received += in / float64(live)
		liveSecs += last.Seconds()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(received/float64(k), "objects-received/receiver")
	b.ReportMetric(liveSecs/float64(k), "live-s")
	b.ReportMetric(dups/float64(k), "dup-chunks/op")
	b.ReportMetric(decoded/float64(k), "decoded-chunks/op")
}
