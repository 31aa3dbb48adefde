package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestQuotaAndExpiry(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithQuota(10_000))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	small := bytes.Repeat([]byte("a"), 6000)
	m, err := NewManifest(bytes.NewReader(small), 1000)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewManifest(bytes.NewReader(bytes.Repeat([]byte("b"), 6000)), 1000)
	if _, err := s.Begin(other); !errors.Is(err, ErrQuota) {
		t.Fatalf("second object over the quota: %v, want ErrQuota", err)
	}
	if used, err := s.Usage(); err != nil || used != 6000 {
		t.Fatalf("usage %d, %v; want 6000", used, err)
	}
	// An open partial is never expired; a closed, stale one is.
	if n, _ := s.ExpireStaging(0); n != 0 {
		t.Fatalf("expired %d open partials", n)
	}
	if err := p.WriteChunk(0, small[:1000]); err != nil {
		t.Fatal(err)
	}
	p.Close()
	old := time.Now().Add(-2 * time.Hour)
	files, _ := filepath.Glob(filepath.Join(dir, stagingDir, "*"))
	for _, f := range files {
		_ = os.Chtimes(f, old, old)
	}
	if n, err := s.ExpireStaging(time.Hour); err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, stagingDir, "*")); len(left) != 0 {
		t.Fatalf("staging files left: %v", left)
	}
	if _, err := s.Begin(other); err != nil {
		t.Fatalf("after expiry the second object fits: %v", err)
	}
}
