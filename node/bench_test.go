package node_test

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

const benchObject = 64 << 20

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
	b.Run("agent", func(b *testing.B) {
		c := nodetest.StartCluster(b, 3, nodetest.Options{ChunkSize: 4 << 20})
		data := make([]byte, benchObject)
		for i := range data {
			data[i] = byte(i * 7)
		}
		b.SetBytes(benchObject)
		var cpu0 time.Duration // CPU time spent in pushes only
		k := 0
		for b.Loop() {
			b.StopTimer()                          // storing the object at the source is not part of the relay
			data[0], data[1] = byte(k), byte(k>>8) // a new object each time
			k++
			digest, err := c.Agents[0].Put(mustWrite(b, c, 0, "obj", data), 0)
			if err != nil {
				b.Fatal(err)
			}
			cpu0 -= cpuTime()
			b.StartTimer()
			rep, err := c.Agents[0].Push(context.Background(), node.Object{Digest: digest}, "a01,a02", node.PushOptions{Strategy: "chain"})
			cpu0 += cpuTime()
			if err != nil || rep.Failed() != 0 {
				b.Fatal(err, rep)
			}
		}
		gib := float64(k) * benchObject / (1 << 30)
		b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "cpu-s/GiB")
	})
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
