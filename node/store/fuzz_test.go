package store

import (
	"bytes"
	"errors"
	"testing"

	pb "github.com/treecast/treecast/proto/treecast/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshalManifest feeds arbitrary bytes (as a peer could send) to the manifest decoder:
// it must never panic, must accept only manifests that Validate, and what it accepts must
// round-trip.
func FuzzUnmarshalManifest(f *testing.F) {
	_, m := object(f, 1, 1000, 100)
	b, _ := m.MarshalBinary()
	f.Add(b)
	m.Parity = &Parity{DataShards: 3, ParityShards: 2, Hashes: make([]Hash, 8)}
	b, _ = m.MarshalBinary()
	f.Add(b)
	empty, _ := (Manifest{Digest: DigestOf(nil), ChunkSize: 1}).MarshalBinary()
	f.Add(empty)
	liar, _ := proto.Marshal(&pb.Manifest{Digest: m.Digest.String(), Size: 1 << 62, ChunkSize: 1})
	f.Add(liar)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalManifest(b)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error %v does not wrap ErrBadManifest", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted a manifest that does not validate: %v", err)
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalManifest(again)
		if err != nil || !back.SameLayout(m) || back.NumParity() != m.NumParity() {
			t.Fatalf("round trip: %v", err)
		}
		for i := -1; i <= m.NumChunks()+m.NumParity(); i++ {
			l := m.ChunkLen(i)
			if _, ok := m.ChunkHash(i); ok != (l >= 0) || l > m.ChunkSize {
				t.Fatalf("chunk %d: len %d, hash present %v", i, l, ok)
			}
		}
	})
}

// FuzzParseDigest: only the canonical form parses, and it prints back unchanged.
func FuzzParseDigest(f *testing.F) {
	f.Add(DigestOf(nil).String())
	f.Add("sha256:../../etc/passwd")
	f.Add("SHA256:" + DigestOf(nil).Hex())
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			if !errors.Is(err, ErrBadDigest) {
				t.Fatalf("error %v does not wrap ErrBadDigest", err)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDigest(%q) prints back as %q", s, d)
		}
	})
}

// FuzzBitsetFromBytes: a Holding bitmap from a peer decodes to bits below n only, and what
// decodes encodes back to the same bytes (up to trailing zero bytes).
func FuzzBitsetFromBytes(f *testing.F) {
	f.Add([]byte{0xff, 0x01}, 9)
	f.Add([]byte{0x80}, 7)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, p []byte, n int) {
		if n > 1<<16 {
			n %= 1 << 16
		}
		b, err := BitsetFromBytes(p, n)
		if err != nil {
			if !errors.Is(err, ErrBadBitmap) {
				t.Fatalf("error %v does not wrap ErrBadBitmap", err)
			}
			return
		}
		enc := b.Bytes()
		if !bytes.Equal(enc[:len(p)], p) || !bytes.Equal(enc[len(p):], make([]byte, len(enc)-len(p))) {
			t.Fatalf("bitmap %x decodes and encodes as %x", p, enc)
		}
		for _, i := range b.Indexes() {
			if i < 0 || i >= n {
				t.Fatalf("bit %d outside [0, %d)", i, n)
			}
		}
	})
}
