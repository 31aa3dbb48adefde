package store

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkWriteChunk measures verified chunk writes into a partial object (SHA-256 of the
// chunk plus a positioned write and a record write), by chunk size.
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
				if i%chunks == 0 {
					if p != nil {
						b.StopTimer()
						p.Abort()
						b.StartTimer()
					}
					var err error
					if p, err = s.Begin(m); err != nil {
						b.Fatal(err)
					}
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
