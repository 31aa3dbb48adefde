package store

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseRef(t *testing.T) {
	good := []string{"app:1", "app:1.4.2", "web/front:2024-05-01", "a_b.c:v1+build.7"}
	for _, s := range good {
		if _, tag, err := ParseRef(s); err != nil || tag != s {
			t.Errorf("ParseRef(%q) = %q, %v", s, tag, err)
		}
	}
	for _, s := range []string{"app", "app:", ":1", "sha256:abc", "sha256:" + string(bytes.Repeat([]byte("g"), 64)),
		"a b:1", "app:1:2", "-app:1", "app:.1", "app:1/2", string(bytes.Repeat([]byte("a"), 129)) + ":1"} {
		d, tag, err := ParseRef(s)
		if err == nil {
			t.Errorf("ParseRef(%q) = %v %q, want an error", s, d, tag)
		}
		if !errors.Is(err, ErrBadTag) && !errors.Is(err, ErrBadDigest) {
			t.Errorf("ParseRef(%q): %v, want ErrBadTag or ErrBadDigest", s, err)
		}
	}
	d := DigestOf([]byte("x"))
	if got, tag, err := ParseRef(d.String()); err != nil || got != d || tag != "" {
		t.Errorf("ParseRef(digest) = %v %q %v", got, tag, err)
	}
}

func TestTagsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := DigestOf([]byte("a")), DigestOf([]byte("b"))
	for _, x := range []struct {
		tag string
		d   Digest
	}{{"app:1", a}, {"app:2", b}, {"web:1", a}} {
		if err := s.SetTag(x.tag, x.d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetTag("bad tag", a); !errors.Is(err, ErrBadTag) {
		t.Errorf("SetTag(bad tag): %v", err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if x, ok := s2.LookupTag("app:2"); !ok || x.Digest != b {
		t.Fatalf("app:2 after reopen: %v %v", x, ok)
	}
	gone, err := s2.Untag(a)
	if err != nil || len(gone) != 2 || gone[0] != "app:1" || gone[1] != "web:1" {
		t.Fatalf("Untag(a) = %v, %v", gone, err)
	}
	if s2.Tagged(a) || !s2.Tagged(b) || len(s2.Tags()) != 1 {
		t.Errorf("after untag: %v", s2.Tags())
	}
}

// TestQuotaEvictsLRU: a quota makes room by evicting the least recently used object that is
// neither tagged nor pinned.
func TestQuotaEvictsLRU(t *testing.T) {
	s, err := Open(t.TempDir(), WithQuota(10_000))
	if err != nil {
		t.Fatal(err)
	}
	obj := func(c byte) Manifest {
		m, err := s.Put(bytes.NewReader(bytes.Repeat([]byte{c}, 3000)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b, c := obj('a'), obj('b'), obj('c') // 9,000 bytes in use
	old := time.Now().Add(-time.Hour)
	for i, m := range []Manifest{a, b, c} { // a is the oldest, then b, then c
		at := old.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(s.objectPath(m.Digest)+manifestExt, at, at); err != nil {
			t.Fatal(err)
		}
	}
	var evicted []Digest
	s.SetEvictPolicy(func(d Digest) bool { return d == b.Digest }, func(d Digest, _ int64) { evicted = append(evicted, d) })
	if err := s.SetTag("keep:1", a.Digest); err != nil {
		t.Fatal(err)
	}
	// 3,000 more bytes: one object must go; a is tagged, b pinned, so c goes.
	next, _ := NewManifest(bytes.NewReader(bytes.Repeat([]byte{'d'}, 3000)), 1000)
	p, err := s.Begin(next)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if len(evicted) != 1 || evicted[0] != c.Digest || s.Has(c.Digest) || !s.Has(a.Digest) || !s.Has(b.Digest) {
		t.Fatalf("evicted %v; want only c", evicted)
	}
	// Nothing more may go: a 7,000-byte object does not fit.
	big, _ := NewManifest(bytes.NewReader(bytes.Repeat([]byte{'e'}, 7000)), 1000)
	if _, err := s.Begin(big); !errors.Is(err, ErrQuota) {
		t.Fatalf("Begin(big) = %v, want ErrQuota", err)
	}
	// Untagged, a is the least recently used and goes first.
	if _, err := s.Untag(a.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveStaged(next.Digest); err != nil {
		t.Fatal(err)
	}
	p, err = s.Begin(big)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if s.Has(a.Digest) || !s.Has(b.Digest) {
		t.Errorf("after the big object: a held %v, b held %v; want a evicted, b pinned", s.Has(a.Digest), s.Has(b.Digest))
	}
}

// TestDemoteResumesAllButBad: a demoted object is no longer complete, and Begin resumes it
// with every chunk but the bad one.
func TestDemoteResumesAllButBad(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 500)
	m, err := s.Put(bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Demote(m.Digest, []int{2}); err != nil {
		t.Fatal(err)
	}
	if s.Has(m.Digest) {
		t.Fatal("a demoted object is still complete")
	}
	p, err := s.Begin(m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := p.Held().Indexes(); len(got) != 4 || p.Has(2) {
		t.Fatalf("held %v after demote, want every chunk but 2", got)
	}
	if err := p.WriteChunk(2, data[2000:3000]); err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(); err != nil || !s.Has(m.Digest) {
		t.Fatalf("commit after repair: %v", err)
	}
}
