package scheduler

import (
	"encoding/binary"
	"fmt"
)

// Wire is a plan as the agents exchange it: node names instead of topology ids, and no
// routes. It travels in the header of every Push stream.
type Wire struct {
	Strategy            Strategy
	Source              string
	DataStripes, Parity int
	// Trees[s] lists stripe s's edges as (from, to) names, each after the edge reaching from.
	Trees [][][2]string

	children []map[string][]string // built lazily by Children
}

// Wire returns the plan's wire form.
func (p *Plan) Wire() *Wire {
	w := &Wire{Strategy: p.Strategy, Source: p.Graph.NodeName(p.Source), DataStripes: p.DataStripes, Parity: p.Parity}
	for _, s := range p.Stripes {
		edges := make([][2]string, len(s.Edges))
		for i, e := range s.Edges {
			edges[i] = [2]string{p.Graph.NodeName(e.From), p.Graph.NodeName(e.To)}
		}
		w.Trees = append(w.Trees, edges)
	}
	return w
}

// Stripes returns the number of trees (data and parity).
func (w *Wire) Stripes() int { return len(w.Trees) }

// Coding returns the data and parity trees of a forest with Reed-Solomon parity (parity 0
// for every other plan).
func (w *Wire) Coding() (data, parity int) { return w.DataStripes, w.Parity }

// Children returns the nodes that node forwards stripe s to. Cost O(1) after a first call
// that indexes the plan in O(edges).
func (w *Wire) Children(node string, s int) []string {
	if w.children == nil {
		w.children = make([]map[string][]string, len(w.Trees))
		for i, t := range w.Trees {
			w.children[i] = map[string][]string{}
			for _, e := range t {
				w.children[i][e[0]] = append(w.children[i][e[0]], e[1])
			}
		}
	}
	if s < 0 || s >= len(w.children) {
		return nil
	}
	return w.children[s][node]
}

// Nodes returns every node of the plan: the source first, then the others in order of
// first appearance.
func (w *Wire) Nodes() []string {
	seen := map[string]bool{w.Source: true}
	out := []string{w.Source}
	for _, t := range w.Trees {
		for _, e := range t {
			if !seen[e[1]] {
				seen[e[1]] = true
				out = append(out, e[1])
			}
		}
	}
	return out
}

const (
	wireMagic   = 'P'
	wireVersion = 1
	// MaxWireNodes and MaxWireBytes bound a decoded plan.
	MaxWireNodes = 1 << 20
	MaxWireBytes = 64 << 20
)

var strategyCode = map[Strategy]byte{StrategyChain: 1, StrategyTree: 2, StrategyForest: 3, StrategyUnicast: 4}

// MarshalBinary encodes the plan compactly: a magic byte and a version, the strategy, the
// stripe counts, a table of node names (the source first), then per tree the edges as pairs
// of uvarint indexes into the table. A plan of n receivers and S trees takes about
// n × (name length + 2S + 1) bytes.
func (w *Wire) MarshalBinary() ([]byte, error) {
	names := w.Nodes()
	index := make(map[string]uint64, len(names))
	for i, n := range names {
		index[n] = uint64(i)
	}
	b := []byte{wireMagic, wireVersion, strategyCode[w.Strategy]}
	b = binary.AppendUvarint(b, uint64(w.DataStripes))
	b = binary.AppendUvarint(b, uint64(w.Parity))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	b = binary.AppendUvarint(b, uint64(len(w.Trees)))
	for _, t := range w.Trees {
		b = binary.AppendUvarint(b, uint64(len(t)))
		for _, e := range t {
			from, ok1 := index[e[0]]
			to, ok2 := index[e[1]]
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%w: edge %s->%s leaves from a node no tree reaches", ErrBadPlan, e[0], e[1])
			}
			b = binary.AppendUvarint(b, from)
			b = binary.AppendUvarint(b, to)
		}
	}
	return b, nil
}

// UnmarshalBinary decodes a plan and checks it: every tree rooted at the source, each node
// reached at most once and only from a node already reached, names unique and non-empty,
// sizes within MaxWireNodes and MaxWireBytes. Errors wrap ErrBadPlan.
func (w *Wire) UnmarshalBinary(data []byte) error {
	if len(data) > MaxWireBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadPlan, len(data), MaxWireBytes)
	}
	if len(data) < 3 || data[0] != wireMagic || data[1] != wireVersion {
		return fmt.Errorf("%w: not a version-%d plan", ErrBadPlan, wireVersion)
	}
	*w = Wire{}
	for s, c := range strategyCode {
		if c == data[2] {
			w.Strategy = s
		}
	}
	if w.Strategy == "" {
		return fmt.Errorf("%w: unknown strategy code %d", ErrBadPlan, data[2])
	}
	r := data[3:]
	next := func(limit uint64, what string) (uint64, error) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, fmt.Errorf("%w: truncated at %s", ErrBadPlan, what)
		}
		r = r[n:]
		if v > limit {
			return 0, fmt.Errorf("%w: %s %d above %d", ErrBadPlan, what, v, limit)
		}
		return v, nil
	}
	k, err := next(maxStripes, "data stripes")
	if err != nil {
		return err
	}
	m, err := next(maxStripes, "parity")
	if err != nil {
		return err
	}
	if k < 1 || k+m > maxStripes {
		return fmt.Errorf("%w: %d data stripes and %d parity", ErrBadPlan, k, m)
	}
	w.DataStripes, w.Parity = int(k), int(m)
	nn, err := next(MaxWireNodes, "node count")
	if err != nil {
		return err
	}
	if nn < 1 {
		return fmt.Errorf("%w: no source", ErrBadPlan)
	}
	names := make([]string, 0, min(nn, uint64(len(r))))
	seen := map[string]bool{}
	for range nn {
		l, err := next(MaxWireBytes, "name length")
		if err != nil {
			return err
		}
		if l > uint64(len(r)) { // checked after the length itself was consumed
			return fmt.Errorf("%w: node name of %d bytes, only %d left", ErrBadPlan, l, len(r))
		}
		name := string(r[:l])
		r = r[l:]
		if name == "" || seen[name] {
			return fmt.Errorf("%w: empty or repeated node name %q", ErrBadPlan, name)
		}
		seen[name] = true
		names = append(names, name)
	}
	w.Source = names[0]
	nt, err := next(maxStripes, "tree count")
	if err != nil {
		return err
	}
	if nt != k+m {
		return fmt.Errorf("%w: %d trees for %d data stripes and %d parity", ErrBadPlan, nt, k, m)
	}
	for t := range nt {
		ne, err := next(nn, "edge count")
		if err != nil {
			return err
		}
		reached := map[uint64]bool{0: true}
		edges := make([][2]string, 0, ne)
		for range ne {
			from, err := next(nn-1, "node index")
			if err != nil {
				return err
			}
			to, err := next(nn-1, "node index")
			if err != nil {
				return err
			}
			if !reached[from] || reached[to] {
				return fmt.Errorf("%w: tree %d: edge %s->%s is not a tree edge in order", ErrBadPlan, t, names[from], names[to])
			}
			reached[to] = true
			edges = append(edges, [2]string{names[from], names[to]})
		}
		w.Trees = append(w.Trees, edges)
	}
	if len(r) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadPlan, len(r))
	}
	return nil
}
