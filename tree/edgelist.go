package tree

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseEdgeList reads a topology as a plain edge list: one link per line,
//
//	u v [capacity] [latency]
//
// with fields separated by spaces or tabs, "#" starting a comment, and blank lines ignored.
// Nodes are Sites named as written, created on first mention. Capacity is in bits/s with an
// optional SI suffix and an optional "bps" ("10G", "100M", "1.5Gbps", "1e9"); latency is a Go
// duration ("5ms", "120us"). A repeated pair is merged into one link (capacities add, the
// smaller latency stays); a self-loop is an error. Errors wrap ErrMalformedTopology and name
// the file, line and field. Cost O(size of the input).
func ParseEdgeList(r io.Reader, name string) (*Graph, error) {
	b := NewBuilder(name)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	node := func(n string) NodeID {
		if v, ok := b.Lookup(n); ok {
			return v
		}
		v, _ := b.AddNode(n, Site, nil)
		return v
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: %s:%d: %s", ErrMalformedTopology, name, line, fmt.Sprintf(format, args...))
		}
		if len(f) < 2 || len(f) > 4 {
			return nil, bad("want \"u v [capacity] [latency]\", got %d fields", len(f))
		}
		if f[0] == f[1] {
			return nil, bad("self-loop at %q", f[0])
		}
		capacity, lat := 0.0, time.Duration(0)
		if len(f) > 2 {
			c, err := ParseRate(f[2])
			if err != nil {
				return nil, bad("capacity %q: %v", f[2], err)
			}
			capacity = c
		}
		if len(f) > 3 {
			d, err := time.ParseDuration(f[3])
			if err != nil || d < 0 {
				return nil, bad("latency %q: want a non-negative duration such as 5ms", f[3])
			}
			lat = d
		}
		if err := b.AddLink(node(f[0]), node(f[1]), capacity, lat); err != nil {
			return nil, bad("%v", err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s:%d: %v", ErrMalformedTopology, name, line+1, err)
	}
	if b.NumNodes() == 0 {
		return nil, fmt.Errorf("%w: %s: no links", ErrMalformedTopology, name)
	}
	return b.Build()
}

// ParseRate parses a rate in bits/s: a positive number with an optional SI suffix (k, K,
// M, G, T, decimal multiples) and an optional "bps" or "bit" unit: "10G", "1.5Gbps",
// "100M", "1e9".
func ParseRate(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(s, "bps"), "bit")
	mult := 1.0
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1e3
		case 'M':
			mult = 1e6
		case 'G':
			mult = 1e9
		case 'T':
			mult = 1e12
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v*mult, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("want a positive rate such as 10G, 100M or 1e9, got %q", s)
	}
	return v * mult, nil
}
