package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tags: human names for objects. A tag is NAME:VERSION (app:1.4.2, web/front:2024-05-01);
// each store keeps its own table tag -> digest in DIR/tags.json, written atomically on every
// change. A tag names one object at a time: tagging another digest with it moves it.

// ErrBadTag: a tag or an object reference is malformed (the message says which part).
var ErrBadTag = errors.New("store: bad tag")

// Bounds on tags.
const (
	maxTagPart = 128    // bytes of a tag's name or version
	maxTags    = 65_536 // tags in one store
	tagsFile   = "tags.json"
)

// Tag is one tag of the store.
type Tag struct {
	Name    string    `json:"t"` // NAME:VERSION
	Digest  Digest    `json:"d"`
	Created time.Time `json:"c"`
}

// ParseTag checks a tag NAME:VERSION: NAME is 1 to 128 letters, digits and ".-_/" starting
// with a letter or digit, and may not be "sha256" (that prefix names digests); VERSION is 1
// to 128 letters, digits and ".-_+" starting with a letter or digit. It returns the tag
// unchanged, or an error wrapping ErrBadTag that says what is wrong.
func ParseTag(s string) (string, error) {
	name, version, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("%w: %q: want NAME:VERSION, e.g. app:1.4.2", ErrBadTag, s)
	}
	if name == "sha256" {
		return "", fmt.Errorf("%w: %q: the name sha256 is reserved for digests", ErrBadTag, s)
	}
	if err := tagPart(name, "./-_"); err != nil {
		return "", fmt.Errorf("%w: %q: name %v", ErrBadTag, s, err)
	}
	if err := tagPart(version, ".-_+"); err != nil {
		return "", fmt.Errorf("%w: %q: version %v", ErrBadTag, s, err)
	}
	return s, nil
}

func tagPart(p, extra string) error {
	if p == "" || len(p) > maxTagPart {
		return fmt.Errorf("must have 1 to %d characters", maxTagPart)
	}
	for i, r := range p {
		alnum := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		if !alnum && (i == 0 || !strings.ContainsRune(extra, r)) {
			return fmt.Errorf("has %q at %d (letters, digits and %q allowed, a letter or digit first)", r, i, extra)
		}
	}
	return nil
}

// ParseRef parses an object reference: a digest "sha256:<64 hex>" (strictly: "sha256:abc"
// is a syntax error, not a tag) or a tag NAME:VERSION. Exactly one of the results is set.
func ParseRef(s string) (Digest, string, error) {
	if strings.HasPrefix(s, digestPrefix) {
		d, err := ParseDigest(s)
		return d, "", err
	}
	t, err := ParseTag(s)
	return Digest{}, t, err
}

// tagTable is the store's tags, loaded at Open.
type tagTable struct {
	path string
	mu   sync.Mutex
	tags map[string]Tag
}

func loadTags(dir string) (*tagTable, error) {
	t := &tagTable{path: filepath.Join(dir, tagsFile), tags: map[string]Tag{}}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: tags %s: %w", t.path, err)
	}
	var list []Tag
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("store: tags %s: %w", t.path, err)
	}
	for _, x := range list {
		if _, err := ParseTag(x.Name); err == nil {
			t.tags[x.Name] = x
		}
	}
	return t, nil
}

// saveLocked writes the table atomically.
func (t *tagTable) saveLocked() error {
	list := make([]Tag, 0, len(t.tags))
	for _, x := range t.tags {
		list = append(list, x)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return WriteFileAtomic(t.path, b)
}

// SetTag records tag (see ParseTag) as naming d, replacing what it named before. The object
// need not be held. Cost: one atomic write of the tag table (O(tags)).
func (s *Store) SetTag(tag string, d Digest) error {
	if _, err := ParseTag(tag); err != nil {
		return err
	}
	t := s.tags
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.tags[tag]; ok && old.Digest == d {
		return nil
	}
	if _, ok := t.tags[tag]; !ok && len(t.tags) >= maxTags {
		return fmt.Errorf("%w: %d tags, the limit", ErrBadTag, maxTags)
	}
	prev, had := t.tags[tag]
	t.tags[tag] = Tag{Name: tag, Digest: d, Created: time.Now()}
	if err := t.saveLocked(); err != nil {
		if had {
			t.tags[tag] = prev
		} else {
			delete(t.tags, tag)
		}
		return err
	}
	return nil
}

// LookupTag returns the tag's entry. Cost: O(1).
func (s *Store) LookupTag(tag string) (Tag, bool) {
	s.tags.mu.Lock()
	defer s.tags.mu.Unlock()
	x, ok := s.tags.tags[tag]
	return x, ok
}

// Tags returns every tag, sorted by name. Cost: O(tags log tags).
func (s *Store) Tags() []Tag {
	s.tags.mu.Lock()
	list := make([]Tag, 0, len(s.tags.tags))
	for _, x := range s.tags.tags {
		list = append(list, x)
	}
	s.tags.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// Tagged reports whether some tag names d. Cost: O(tags).
func (s *Store) Tagged(d Digest) bool {
	s.tags.mu.Lock()
	defer s.tags.mu.Unlock()
	for _, x := range s.tags.tags {
		if x.Digest == d {
			return true
		}
	}
	return false
}

// Untag removes every tag naming d and returns them. Cost: O(tags), one write if any.
func (s *Store) Untag(d Digest) ([]string, error) {
	t := s.tags
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []string
	for name, x := range t.tags {
		if x.Digest == d {
			gone = append(gone, name)
			delete(t.tags, name)
		}
	}
	sort.Strings(gone)
	if len(gone) == 0 {
		return nil, nil
	}
	return gone, t.saveLocked()
}
