package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// ErrPlan is wrapped by errors about a plan that cannot be built or decoded.
var ErrPlan = errors.New("node: bad plan")

// listPlan is a plan as explicit child lists: Kids[stripe][node] = children. It is the wire
// form the agents exchange (JSON, a few bytes per edge).
type listPlan struct {
	Root string                `json:"root"`
	Kids []map[string][]string `json:"kids"`
}

func (p *listPlan) Stripes() int { return len(p.Kids) }

func (p *listPlan) Children(node string, stripe int) []string {
	if stripe < 0 || stripe >= len(p.Kids) {
		return nil
	}
	return p.Kids[stripe][node]
}

// maxPlanBytes bounds a plan read from the network.
const maxPlanBytes = 16 << 20

// decodePlan parses and checks a plan from the wire: every stripe must be a tree rooted at
// Root (each node has at most one parent, every node is reachable, no cycle).
func decodePlan(b []byte) (plan, error) {
	if len(b) > maxPlanBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrPlan, len(b), maxPlanBytes)
	}
	var p listPlan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *listPlan) check() error {
	if p.Root == "" {
		return fmt.Errorf("%w: no root", ErrPlan)
	}
	if len(p.Kids) == 0 || len(p.Kids) > 1024 {
		return fmt.Errorf("%w: %d stripes, want 1 to 1024", ErrPlan, len(p.Kids))
	}
	for s, kids := range p.Kids {
		parent := map[string]string{}
		for u, cs := range kids {
			for _, c := range cs {
				if c == p.Root {
					return fmt.Errorf("%w: stripe %d: root %s has parent %s", ErrPlan, s, c, u)
				}
				if q, ok := parent[c]; ok {
					return fmt.Errorf("%w: stripe %d: %s has two parents, %s and %s", ErrPlan, s, c, q, u)
				}
				parent[c] = u
			}
		}
		for u := range kids {
			if u != p.Root {
				if _, ok := parent[u]; !ok {
					return fmt.Errorf("%w: stripe %d: %s is not reachable from %s", ErrPlan, s, u, p.Root)
				}
			}
		}
		if n := len(subtreeOf(p, p.Root, s)); n != len(parent)+1 {
			return fmt.Errorf("%w: stripe %d: a cycle leaves %d nodes unreachable", ErrPlan, s, len(parent)+1-n)
		}
	}
	return nil
}

func (p *listPlan) marshal() []byte {
	b, _ := json.Marshal(p)
	return b
}

// simplePlan builds a plan over dsts without topology: chain (one path), tree (a complete
// fanout-ary tree in name order), unicast (the source sends to everyone) or forest (stripes
// trees, each receiver interior in at most one, SplitStream style).
func simplePlan(src string, dsts []string, opts PushOptions) (*listPlan, error) {
	d := append([]string(nil), dsts...)
	sort.Strings(d)
	fan := opts.Fanout
	if fan <= 0 {
		fan = 2
	}
	p := &listPlan{Root: src}
	add := func(s int, u, c string) { p.Kids[s][u] = append(p.Kids[s][u], c) }
	switch opts.Strategy {
	case "chain":
		p.Kids = []map[string][]string{{}}
		prev := src
		for _, x := range d {
			add(0, prev, x)
			prev = x
		}
	case "", "tree":
		p.Kids = []map[string][]string{{}}
		order := append([]string{src}, d...)
		for i := 1; i < len(order); i++ {
			add(0, order[(i-1)/fan], order[i])
		}
	case "unicast":
		p.Kids = []map[string][]string{{}}
		for _, x := range d {
			add(0, src, x)
		}
	case "forest":
		S := opts.Stripes
		if S <= 0 {
			S = 2
		}
		if S > len(d) && len(d) > 0 {
			S = len(d)
		}
		if len(d) == 0 {
			S = 1
		}
		p.Kids = make([]map[string][]string, S)
		for s := 0; s < S; s++ {
			p.Kids[s] = map[string][]string{}
			// Rotate: the receivers interior in stripe s come first in its order.
			order := append([]string{src}, append(append([]string(nil), d[s*len(d)/S:]...), d[:s*len(d)/S]...)...)
			for i := 1; i < len(order); i++ {
				add(s, order[(i-1)/fan], order[i])
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown strategy %q (want chain, tree, forest or unicast)", ErrPlan, opts.Strategy)
	}
	return p, p.check()
}

// buildPlan plans a push from src to dsts.
func buildPlan(members []Member, src string, dsts []string, opts PushOptions) (plan, []byte, error) {
	p, err := simplePlan(src, dsts, opts)
	if err != nil {
		return nil, nil, err
	}
	return p, p.marshal(), nil
}
