package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"os"
	"testing"

	pb "github.com/treecast/treecast/proto/treecast/v1"
	"github.com/zeebo/blake3"
)

// hmacSealer seals with HMAC-SHA256 under its key: a stand-in for a node's key (the agent's
// Sealer, with real certificates, is tested in package node).
type hmacSealer struct{ key string }

var errBadSeal = errors.New("seal does not verify")

func (h hmacSealer) Seal(payload []byte) (Seal, error) {
	mac := hmac.New(sha256.New, []byte(h.key))
	mac.Write(payload)
	return Seal{Cert: []byte(h.key), Sig: mac.Sum(nil)}, nil
}

func (h hmacSealer) VerifySeal(payload []byte, s Seal) error {
	want, _ := h.Seal(payload)
	if !bytes.Equal(s.Cert, want.Cert) || !hmac.Equal(s.Sig, want.Sig) {
		return errBadSeal
	}
	return nil
}

// sealedObject puts random bytes in a store with sl and returns them and their manifest.
func sealedObject(t *testing.T, sl Sealer, seed uint64, size, chunk int) ([]byte, Manifest) {
	t.Helper()
	data, _ := object(t, seed, size, chunk)
	m, err := openStore(t, WithSealer(sl)).Put(bytes.NewReader(data), chunk)
	if err != nil {
		t.Fatal(err)
	}
	return data, m
}

// TestSealedManifest: a store with a Sealer cuts BLAKE3 manifests, sealed and without a
// chain; the seal and hash survive the protocol form; a receiver whose Sealer trusts the seal
// commits the object, received in any order, without reading it back, byte-exact.
func TestSealedManifest(t *testing.T) {
	sl := hmacSealer{"node-a"}
	data, m := sealedObject(t, sl, 21, 64<<10+1, 4096)
	if m.Alg != BLAKE3 || m.Seal == nil || len(m.Chain) != 0 || m.Digest != DigestOf(data) {
		t.Fatalf("manifest: alg %s, seal %v, %d chaining values, digest ok %v", m.Alg, m.Seal != nil, len(m.Chain), m.Digest == DigestOf(data))
	}
	if m.Chunks[3] != blake3.Sum256(chunkOf(data, m, 3)) || m.Chunks[3] == sha256.Sum256(chunkOf(data, m, 3)) {
		t.Fatal("chunk hashes are not the chunks' BLAKE3 sums")
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Alg != BLAKE3 || got.Seal == nil || !bytes.Equal(got.Seal.Sig, m.Seal.Sig) || !got.SameLayout(m) || got.sealed {
		t.Fatalf("round trip: alg %s, seal %+v, same layout %v, sealed %v", got.Alg, got.Seal, got.SameLayout(m), got.sealed)
	}
	if got.Bound() {
		t.Fatal("a sealed manifest is Bound before a store checked its seal")
	}

	reads := 0
	s := openStore(t, WithSealVerifier(sl), WithOpenFile(func(name string, flag int, perm os.FileMode) (File, error) {
		f, err := osOpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return countingFile{File: f, reads: &reads}, nil
	}))
	p := receive(t, s, data, got, 3)
	defer p.Close()
	if !p.Manifest().sealed || !p.Manifest().Bound() {
		t.Fatal("the receiver did not accept the seal")
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if reads != 0 {
		t.Fatalf("Commit read %d times from the data", reads)
	}
	if !bytes.Equal(readAll(t, s, m.Digest), data) {
		t.Fatal("committed bytes differ")
	}
	stored, err := s.Manifest(m.Digest)
	if err != nil || stored.Seal == nil || stored.Alg != BLAKE3 {
		t.Fatalf("stored manifest: %v (alg %s, seal %v): a receiver must be able to push the object on", err, stored.Alg, stored.Seal != nil)
	}

	if m, err := openStore(t, WithSealVerifier(sl)).Put(bytes.NewReader(data), 4096); err != nil || m.Alg != SHA256 || m.Seal != nil || len(m.Chain) == 0 {
		t.Fatalf("a verify-only store cut %s (seal %v, chain %d): %v", m.Alg, m.Seal != nil, len(m.Chain), err)
	}
}

// TestSealRefused: whatever a relay does to a sealed manifest, nothing but the object the
// digest names becomes visible. A rewritten manifest (other bytes with their own BLAKE3
// hashes under the digest, the old seal) or a seal the receiver does not trust leaves the
// manifest unbound: every chunk still verifies against its hash, and Commit hashes the whole
// object, which fails for the wrong bytes (ErrDigestMismatch, nothing visible) and succeeds
// for the right ones.
func TestSealRefused(t *testing.T) {
	sl := hmacSealer{"node-a"}
	data, m := sealedObject(t, sl, 22, 32<<10, 4096)
	other, om := sealedObject(t, sl, 23, 32<<10, 4096)

	forged := om
	forged.Digest, forged.Seal = m.Digest, m.Seal // other's bytes under m's digest and seal
	untrusted := m
	untrusted.Seal = &Seal{Cert: []byte("node-b"), Sig: m.Seal.Sig}
	unsealed := m
	unsealed.Seal = nil

	for name, tc := range map[string]struct {
		m      Manifest
		data   []byte
		sealer Sealer
		commit error
	}{
		"rewritten manifest":     {forged, other, sl, ErrDigestMismatch},
		"untrusted signer, lies": {func() Manifest { f := forged; f.Seal = untrusted.Seal; return f }(), other, sl, ErrDigestMismatch},
		"untrusted signer":       {untrusted, data, sl, nil},
		"no seal":                {unsealed, data, sl, nil},
		"no sealer":              {m, data, nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if tc.sealer != nil {
				opts = append(opts, WithSealVerifier(tc.sealer))
			}
			s := openStore(t, opts...)
			p := receive(t, s, tc.data, tc.m, 5)
			defer p.Close()
			if p.Manifest().Bound() {
				t.Fatal("bound")
			}
			err := p.Commit()
			if !errors.Is(err, tc.commit) || (tc.commit == nil) != (err == nil) {
				t.Fatalf("Commit: %v, want %v", err, tc.commit)
			}
			if s.Has(m.Digest) != (tc.commit == nil) {
				t.Fatalf("visible %v after Commit: %v", s.Has(m.Digest), err)
			}
		})
	}

	flipped := append([]byte(nil), chunkOf(data, m, 1)...)
	flipped[7] ^= 1
	if err := m.VerifyChunk(1, flipped); !errors.Is(err, ErrChunkCorrupt) {
		t.Fatalf("a flipped bit: %v", err)
	}
	for name, bad := range map[string]Manifest{
		"seal on SHA-256":   func() Manifest { _, x := object(t, 24, 8192, 4096); x.Seal = m.Seal; return x }(),
		"chain on BLAKE3":   func() Manifest { x := m; x.Chain = make([]Hash, len(m.Chunks)-1); return x }(),
		"unknown algorithm": func() Manifest { x := m; x.Alg = 9; return x }(),
	} {
		if err := bad.Validate(); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: Validate: %v", name, err)
		}
	}
	pm := m.Proto()
	pm.ChunkHash = pb.ChunkHash(7)
	if _, err := ManifestFromProto(pm); !errors.Is(err, ErrBadManifest) {
		t.Errorf("unknown algorithm from the network: %v", err)
	}
	pm = m.Proto()
	pm.Seal.Cert = make([]byte, maxSealPart+1)
	if _, err := ManifestFromProto(pm); !errors.Is(err, ErrBadManifest) {
		t.Errorf("a huge seal: %v", err)
	}
}
