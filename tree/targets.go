package tree

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ParseTargets resolves a receiver list against g:
//
//	a,b,c      node names separated by commas
//	hosts      every endpoint (hosts, or every node of a WAN) but src
//	random:N   N distinct endpoints other than src, drawn with seed (the same seed, the same set)
//
// src is never a receiver and duplicates are removed. An unknown name gives ErrUnknownNode
// naming it; asking for more random receivers than there are gives an error naming both
// numbers.
func ParseTargets(g *Graph, src NodeID, list string, seed uint64) ([]NodeID, error) {
	var pool []NodeID
	for _, v := range g.Endpoints() {
		if v != src {
			pool = append(pool, v)
		}
	}
	switch {
	case list == "hosts":
		return pool, nil
	case strings.HasPrefix(list, "random:"):
		n, err := strconv.Atoi(strings.TrimPrefix(list, "random:"))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("tree: receivers %q: want random:N with N >= 1", list)
		}
		if n > len(pool) {
			return nil, fmt.Errorf("tree: receivers %q: only %d endpoints besides the source in %s", list, len(pool), g.Name())
		}
		rng := rand.New(rand.NewPCG(seed, 0x64737473))
		perm := rng.Perm(len(pool))
		out := make([]NodeID, n)
		for i := range out {
			out[i] = pool[perm[i]]
		}
		return out, nil
	}
	seen := map[NodeID]bool{}
	var out []NodeID
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		v, err := g.NodeByName(name)
		if err != nil {
			return nil, err
		}
		if v != src && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tree: receivers %q: no receiver other than the source", list)
	}
	return out, nil
}
