package tree

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// FatTree builds a k-ary fat-tree (Al-Fares et al., SIGCOMM 2008): k pods, each with k/2 edge
// and k/2 aggregation switches, (k/2)^2 core switches, and k^3/4 hosts, k/2 under each edge
// switch. All links have DefaultCapacity and no latency.
//
// Names: hosts "h0".."h{k^3/4-1}" in pod order (host i sits under edge switch i/(k/2)); edge
// switches "e0".. and aggregation switches "a0".. in pod order (switch j is in pod j/(k/2));
// core switches "c0"..; core c connects to aggregation switch c/(k/2) of every pod. Hosts are
// added first, so their NodeIDs are 0..k^3/4-1. Hosts carry labels pod ("p3") and rack
// (their edge switch, "e7"). k must be even and at least 2.
func FatTree(k int) (*Graph, error) {
	if k < 2 || k%2 != 0 || k > 256 {
		return nil, fmt.Errorf("%w: fattree:%d: k must be even, from 2 to 256", ErrBadSpec, k)
	}
	h := k / 2
	b := NewBuilder("fattree:" + strconv.Itoa(k))
	nHosts, nEdge, nCore := k*k*k/4, k*h, h*h
	for i := range nHosts {
		e := i / h
		must(b.AddNode("h"+strconv.Itoa(i), Host, map[string]string{
			"pod": "p" + strconv.Itoa(e/h), "rack": "e" + strconv.Itoa(e)}))
	}
	edge0 := NodeID(b.NumNodes())
	for j := range nEdge {
		must(b.AddNode("e"+strconv.Itoa(j), Switch, nil))
	}
	agg0 := NodeID(b.NumNodes())
	for j := range nEdge {
		must(b.AddNode("a"+strconv.Itoa(j), Switch, nil))
	}
	core0 := NodeID(b.NumNodes())
	for j := range nCore {
		must(b.AddNode("c"+strconv.Itoa(j), Switch, nil))
	}
	for i := range nHosts {
		mustOK(b.AddLink(NodeID(i), edge0+NodeID(i/h), 0, 0))
	}
	for p := range k {
		for e := range h {
			for a := range h {
				mustOK(b.AddLink(edge0+NodeID(p*h+e), agg0+NodeID(p*h+a), 0, 0))
			}
		}
		for a := range h {
			for c := range h {
				mustOK(b.AddLink(agg0+NodeID(p*h+a), core0+NodeID(a*h+c), 0, 0))
			}
		}
	}
	return b.Build()
}

// gscaleEdges is Google's inter-datacenter WAN (B4) as used by DCCast and QuickCast: 12 sites,
// 19 links.
var gscaleEdges = [][2]int{{0, 1}, {1, 2}, {0, 4}, {2, 3}, {2, 5}, {3, 4}, {4, 5}, {5, 7}, {3, 6},
	{3, 7}, {5, 6}, {6, 7}, {8, 10}, {8, 9}, {9, 10}, {7, 9}, {6, 10}, {9, 11}, {10, 11}}

// GScale builds the 12-site, 19-link GScale inter-datacenter WAN used by DCCast and
// QuickCast. Sites are named "s0".."s11" (the 0-indexed numbering of the papers' edge list);
// every link has DefaultCapacity and no latency.
func GScale() *Graph {
	b := NewBuilder("gscale")
	for i := range 12 {
		must(b.AddNode("s"+strconv.Itoa(i), Site, nil))
	}
	for _, e := range gscaleEdges {
		mustOK(b.AddLink(NodeID(e[0]), NodeID(e[1]), 0, 0))
	}
	g, err := b.Build()
	mustOK(err)
	return g
}

// RandomWAN builds a connected random graph of n sites ("n0".."n{n-1}") and e links: a
// uniformly random spanning tree (random attachment order) plus e-(n-1) further distinct
// links chosen uniformly. The same seed gives the same graph. It needs n-1 <= e <= n(n-1)/2.
func RandomWAN(n, e int, seed uint64) (*Graph, error) {
	if n < 2 || e < n-1 || e > n*(n-1)/2 {
		return nil, fmt.Errorf("%w: random:%d,%d needs n >= 2 and n-1 <= e <= n(n-1)/2", ErrBadSpec, n, e)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7472656563617374))
	b := NewBuilder(fmt.Sprintf("random:%d,%d,%d", n, e, seed))
	for i := range n {
		must(b.AddNode("n"+strconv.Itoa(i), Site, nil))
	}
	have := map[[2]int]bool{}
	add := func(u, v int) bool {
		key := [2]int{min(u, v), max(u, v)}
		if u == v || have[key] {
			return false
		}
		have[key] = true
		mustOK(b.AddLink(NodeID(u), NodeID(v), 0, 0))
		return true
	}
	order := rng.Perm(n)
	for i := 1; i < n; i++ {
		add(order[i], order[rng.IntN(i)])
	}
	for len(have) < e {
		add(rng.IntN(n), rng.IntN(n))
	}
	return b.Build()
}

// RingChords builds a random WAN of n sites ("n0".."n{n-1}") and e links the way the DCCast
// authors generate their random topologies: a ring n0-n1-...-n{n-1}-n0, then chords added by
// the sites in turn (n0, n1, ..., n{n-1}, n0, ...), each to a uniformly random site it has no
// link to yet, until there are e links. Every site has degree at least 2 (the ring), and
// e = 3n gives every site two chords of its own (50 sites, 150 links in DCCast). The same seed
// gives the same graph. It needs n >= 3 and n <= e <= n(n-1)/2. Cost O(e) expected, while
// the graph is far from complete.
func RingChords(n, e int, seed uint64) (*Graph, error) {
	if n < 3 || e < n || e > n*(n-1)/2 {
		return nil, fmt.Errorf("%w: ringchords:%d,%d needs n >= 3 and n <= e <= n(n-1)/2", ErrBadSpec, n, e)
	}
	rng := rand.New(rand.NewPCG(seed, 0x72696e6763686f72))
	b := NewBuilder(fmt.Sprintf("ringchords:%d,%d,%d", n, e, seed))
	for i := range n {
		must(b.AddNode("n"+strconv.Itoa(i), Site, nil))
	}
	have := map[[2]int]bool{}
	deg := make([]int, n)
	add := func(u, v int) {
		have[[2]int{min(u, v), max(u, v)}] = true
		deg[u]++
		deg[v]++
		mustOK(b.AddLink(NodeID(u), NodeID(v), 0, 0))
	}
	for i := range n {
		add(i, (i+1)%n)
	}
	for u := 0; len(have) < e; u = (u + 1) % n {
		if deg[u] == n-1 {
			continue // linked to every site already
		}
		for {
			v := rng.IntN(n)
			if v != u && !have[[2]int{min(u, v), max(u, v)}] {
				add(u, v)
				break
			}
		}
	}
	return b.Build()
}

func must(_ NodeID, err error) {
	if err != nil {
		panic(err)
	}
}

func mustOK(err error) {
	if err != nil {
		panic(err)
	}
}
