package tree

import (
	"fmt"
	"strconv"
)

// LeafSpine builds a two-tier leaf-spine fabric: s spine switches, l leaf switches each
// joined to every spine, and h hosts under each leaf. Names: hosts "h0".."h{l*h-1}" (host i
// under leaf i/h), leaves "l0".., spines "sp0"..; hosts come first, so their NodeIDs are
// 0..l*h-1, and carry the label rack (their leaf, "l3"). All links have DefaultCapacity.
func LeafSpine(s, l, h int) (*Graph, error) {
	if s < 1 || l < 1 || h < 1 || s*l+l*h > 1<<22 {
		return nil, fmt.Errorf("%w: leafspine:%d,%d,%d needs at least one spine, leaf and host per leaf", ErrBadSpec, s, l, h)
	}
	b := NewBuilder(fmt.Sprintf("leafspine:%d,%d,%d", s, l, h))
	for i := range l * h {
		must(b.AddNode("h"+strconv.Itoa(i), Host, map[string]string{"rack": "l" + strconv.Itoa(i/h)}))
	}
	leaf0 := NodeID(b.NumNodes())
	for j := range l {
		must(b.AddNode("l"+strconv.Itoa(j), Switch, nil))
	}
	spine0 := NodeID(b.NumNodes())
	for i := range s {
		must(b.AddNode("sp"+strconv.Itoa(i), Switch, nil))
	}
	for i := range l * h {
		mustOK(b.AddLink(NodeID(i), leaf0+NodeID(i/h), 0, 0))
	}
	for j := range l {
		for i := range s {
			mustOK(b.AddLink(leaf0+NodeID(j), spine0+NodeID(i), 0, 0))
		}
	}
	return b.Build()
}

// BCube builds the server-centric BCube_k of n-port switches (Guo et al., SIGCOMM 2009):
// n^(k+1) servers, each with k+1 ports, and k+1 levels of n^k switches. A server's address is
// its index written in base n with k+1 digits; the level-l switch it joins is the one
// indexed by its address without digit l. Names: servers "h0".. (hosts first), switches
// "b{l}-{j}". Servers carry the label rack (their level-0 switch). All links have
// DefaultCapacity. It needs n >= 2 and k >= 0.
func BCube(n, k int) (*Graph, error) {
	if n < 2 || k < 0 || k > 8 {
		return nil, fmt.Errorf("%w: bcube:%d,%d needs n >= 2 and 0 <= k <= 8", ErrBadSpec, n, k)
	}
	servers := 1
	for range k + 1 {
		servers *= n
		if servers > 1<<20 {
			return nil, fmt.Errorf("%w: bcube:%d,%d has more than 2^20 servers", ErrBadSpec, n, k)
		}
	}
	per := servers / n // switches per level
	b := NewBuilder(fmt.Sprintf("bcube:%d,%d", n, k))
	// switchIndex drops digit l of server address s.
	switchIndex := func(s, l int) int {
		p := 1
		for range l {
			p *= n
		}
		return (s/(p*n))*p + s%p
	}
	for s := range servers {
		must(b.AddNode("h"+strconv.Itoa(s), Host, map[string]string{"rack": "b0-" + strconv.Itoa(switchIndex(s, 0))}))
	}
	sw0 := NodeID(b.NumNodes())
	for l := range k + 1 {
		for j := range per {
			must(b.AddNode(fmt.Sprintf("b%d-%d", l, j), Switch, nil))
		}
	}
	for s := range servers {
		for l := range k + 1 {
			mustOK(b.AddLink(NodeID(s), sw0+NodeID(l*per+switchIndex(s, l)), 0, 0))
		}
	}
	return b.Build()
}

// TwoTier builds a two-tier rack network: r racks of h hosts, each rack's hosts under a
// rack switch and every rack switch under one core switch (the benchmark testbed's shape).
// Names: hosts "h0".."h{r*h-1}" (host i in rack i/h), rack switches "r0".., the core
// switch "core"; hosts come first, so their NodeIDs are 0..r*h-1, and carry the label rack
// (their rack, "r3"), as agents labelled rack=r3 would. All links have DefaultCapacity.
func TwoTier(r, h int) (*Graph, error) {
	if r < 1 || h < 1 || r*h+r > 1<<22 {
		return nil, fmt.Errorf("%w: twotier:%d,%d needs at least one rack and one host per rack (and at most 2^22 nodes)", ErrBadSpec, r, h)
	}
	b := NewBuilder(fmt.Sprintf("twotier:%d,%d", r, h))
	for i := range r * h {
		must(b.AddNode("h"+strconv.Itoa(i), Host, map[string]string{"rack": "r" + strconv.Itoa(i/h)}))
	}
	rack0 := NodeID(b.NumNodes())
	for j := range r {
		must(b.AddNode("r"+strconv.Itoa(j), Switch, nil))
	}
	core, err := b.AddNode("core", Switch, nil)
	if err != nil {
		return nil, err
	}
	for i := range r * h {
		mustOK(b.AddLink(NodeID(i), rack0+NodeID(i/h), 0, 0))
	}
	for j := range r {
		mustOK(b.AddLink(rack0+NodeID(j), core, 0, 0))
	}
	return b.Build()
}
