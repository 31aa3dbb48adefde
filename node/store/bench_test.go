package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWriteChunk measures verified chunk writes into a partial object, in order: SHA-256
// of the chunk, a positioned write, a record write, and the running whole-object SHA-256
// (so two hashes per byte), by chunk size.
func BenchmarkWriteChunk(b *testing.B) {
	for _, chunk := range []int{64 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("chunk=%dKiB", chunk>>10), func(b *testing.B) {
			const chunks = 16
			data, m := object(b, 1, chunks*chunk, chunk)
			s := openStore(b)
			b.SetBytes(int64(chunk))
			b.ReportAllocs()
			b.ResetTimer()
			var p *Partial
			for i := 0; i < b.N; i++ {
				if i%chunks == 0 { // a fresh partial object, untimed (Begin fsyncs its manifest)
					b.StopTimer()
					if p != nil {
						p.Abort()
					}
					var err error
					if p, err = s.Begin(m); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if err := p.WriteChunk(i%chunks, chunkOf(data, m, i%chunks)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			p.Abort()
		})
	}
}

// BenchmarkPut measures Put of a 32 MiB object: read, hash per chunk and whole, write, fsync,
// rename. Each iteration stores a distinct object (the first byte differs).
func BenchmarkPut(b *testing.B) {
	for _, chunk := range []int{1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("chunk=%dKiB", chunk>>10), func(b *testing.B) {
			data, _ := object(b, 2, 32<<20, chunk)
			s := openStore(b)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data[0] = byte(i)
				data[1] = byte(i >> 8)
				m, err := s.Put(bytes.NewReader(data), chunk)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Remove(m.Digest)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkNewManifest measures hashing alone (no disk), the bound on Put.
func BenchmarkNewManifest(b *testing.B) {
	data, _ := object(b, 3, 32<<20, 1<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewManifest(bytes.NewReader(data), 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceive measures a whole receive of a 32 MiB object in 1 MiB chunks: Begin, every
// chunk verified and written (in order, as a pipelined tree delivers them, or shuffled, as
// a forest may), Commit (fsync, whole-digest check, rename).
func BenchmarkReceive(b *testing.B) {
	data, m := object(b, 4, 32<<20, 1<<20)
	for _, order := range []string{"inorder", "shuffled"} {
		b.Run(order, func(b *testing.B) {
			s := openStore(b)
			idx := make([]int, m.NumChunks())
			for i := range idx {
				idx[i] = i
			}
			if order == "shuffled" {
				rand.New(rand.NewPCG(1, 1)).Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.Begin(m)
				if err != nil {
					b.Fatal(err)
				}
				for _, i := range idx {
					if err := p.WriteChunk(i, chunkOf(data, m, i)); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Commit(); err != nil {
					b.Fatal(err)
				}
				p.Close()
				b.StopTimer()
				s.Remove(m.Digest)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPutFile measures Put of an object read from a file on the store's disk, as an agent
// imports the file a push names: read, hash (sealed: BLAKE3 chunks and the whole object's
// SHA-256; plain: SHA-256 chunks and chain), write, fsync, rename. The file is written once,
// outside the timer; TREECAST_PUT_MIB sets its size (default 64 MiB). cpu-s/GiB is the
// process's CPU time (user and system) per GiB stored.
func BenchmarkPutFile(b *testing.B) {
	size := 64 << 20
	if v, err := strconv.Atoi(os.Getenv("TREECAST_PUT_MIB")); err == nil && v > 0 {
		size = v << 20
	}
	src := filepath.Join(b.TempDir(), "object")
	data, _ := object(b, 4, size, 4<<20)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	data = nil
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			var opts []Option
			if sealed {
				opts = append(opts, WithSealer(hmacSealer{"bench"}))
			}
			s := openStore(b, opts...)
			b.SetBytes(int64(size))
			cpu0 := processCPU()
			for b.Loop() {
				f, err := os.Open(src)
				if err != nil {
					b.Fatal(err)
				}
				m, err := s.Put(f, 4<<20)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Remove(m.Digest)
				b.StartTimer()
			}
			b.ReportMetric((processCPU()-cpu0).Seconds()/float64(b.N)/(float64(size)/(1<<30)), "cpu-s/GiB")
		})
	}
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
