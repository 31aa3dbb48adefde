package tree

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Kind says what a node of a topology is.
type Kind uint8

const (
	// Host is an end host: agents run on hosts, and only hosts replicate in overlay plans.
	Host Kind = iota
	// Switch is a network switch: it forwards, and replicates only under SDN multicast.
	Switch
	// Site is a WAN site (a data center seen as one node, or a router of a WAN topology).
	Site
)

// String returns "host", "switch" or "site".
func (k Kind) String() string {
	switch k {
	case Host:
		return "host"
	case Switch:
		return "switch"
	case Site:
		return "site"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// NodeID is the dense index of a node in its Graph, from 0 to NumNodes()-1.
type NodeID int32

// ArcID is the dense index of an arc in its Graph, from 0 to NumArcs()-1. The two arcs of a
// link are 2i (the direction it was added in) and 2i+1, so [ArcID.Reverse] is a bit flip and
// [ArcID.Link] a shift.
type ArcID int32

// None is the NodeID of no node.
const None NodeID = -1

// Reverse returns the arc of the same link in the other direction.
func (a ArcID) Reverse() ArcID { return a ^ 1 }

// Link returns the index of the full-duplex link the arc belongs to.
func (a ArcID) Link() int { return int(a) >> 1 }

// DefaultCapacity is the capacity, in bits/s, of links whose capacity a topology leaves out.
const DefaultCapacity = 10e9

// Node is a node of a topology.
type Node struct {
	Name string
	Kind Kind
	// Labels are optional attributes: builders set "pod" and "rack" on fat-tree and leaf-spine
	// hosts, parsers keep GraphML attributes such as "label", "Latitude" and "Longitude".
	Labels map[string]string
}

// Arc is one direction of a full-duplex link.
type Arc struct {
	From, To NodeID
	Capacity float64       // bits/s, > 0
	Latency  time.Duration // one-way propagation delay, >= 0
}

// Graph is an immutable topology: nodes joined by full-duplex links, each link two arcs.
// All methods are safe for concurrent use. Slices returned by its methods belong to the
// graph and must not be modified.
type Graph struct {
	name     string
	nodes    []Node
	arcs     []Arc
	outStart []int32 // arcs leaving node v are outArcs[outStart[v]:outStart[v+1]]
	outArcs  []ArcID
	byName   map[string]NodeID
	hosts    []NodeID
}

// Name returns the graph's name (a builder spec or a file name).
func (g *Graph) Name() string { return g.name }

// NumNodes returns the number of nodes.
func (g *Graph) NumNodes() int { return len(g.nodes) }

// NumArcs returns the number of arcs, twice the number of links.
func (g *Graph) NumArcs() int { return len(g.arcs) }

// NumLinks returns the number of full-duplex links.
func (g *Graph) NumLinks() int { return len(g.arcs) / 2 }

// Node returns node v. It panics if v is out of range.
func (g *Graph) Node(v NodeID) *Node { return &g.nodes[v] }

// NodeName returns the name of node v, or "<none>" for None.
func (g *Graph) NodeName(v NodeID) string {
	if v < 0 || int(v) >= len(g.nodes) {
		return "<none>"
	}
	return g.nodes[v].Name
}

// Lookup returns the node named name.
func (g *Graph) Lookup(name string) (NodeID, bool) {
	v, ok := g.byName[name]
	return v, ok
}

// NodeByName is Lookup with an error that names the graph and the unknown node, wrapping
// ErrUnknownNode.
func (g *Graph) NodeByName(name string) (NodeID, error) {
	v, ok := g.byName[name]
	if !ok {
		return None, fmt.Errorf("%w: %q in topology %s", ErrUnknownNode, name, g.name)
	}
	return v, nil
}

// Arc returns arc a. It panics if a is out of range.
func (g *Graph) Arc(a ArcID) Arc { return g.arcs[a] }

// Out returns the arcs leaving v. Cost O(1).
func (g *Graph) Out(v NodeID) []ArcID { return g.outArcs[g.outStart[v]:g.outStart[v+1]] }

// Degree returns the number of links at v.
func (g *Graph) Degree(v NodeID) int { return int(g.outStart[v+1] - g.outStart[v]) }

// FindArc returns the arc from u to v. Cost O(degree of u).
func (g *Graph) FindArc(u, v NodeID) (ArcID, bool) {
	for _, a := range g.Out(u) {
		if g.arcs[a].To == v {
			return a, true
		}
	}
	return -1, false
}

// Hosts returns the host nodes in the order they were added.
func (g *Graph) Hosts() []NodeID { return g.hosts }

// Endpoints returns the nodes that may send or receive: the hosts, or every node of a graph
// without hosts (a WAN of sites).
func (g *Graph) Endpoints() []NodeID {
	if len(g.hosts) > 0 {
		return g.hosts
	}
	all := make([]NodeID, len(g.nodes))
	for i := range all {
		all[i] = NodeID(i)
	}
	return all
}

// Errors of the tree package. Functions wrap them with details; compare with errors.Is.
var (
	ErrUnknownNode       = errors.New("tree: unknown node")
	ErrUnreachable       = errors.New("tree: receiver unreachable from source")
	ErrDuplicateNode     = errors.New("tree: duplicate node name")
	ErrSelfLoop          = errors.New("tree: self-loop")
	ErrBadLink           = errors.New("tree: bad link")
	ErrEmptyGraph        = errors.New("tree: empty graph")
	ErrTooManyTerminals  = errors.New("tree: too many terminals for the exact solver")
	ErrBadSpec           = errors.New("tree: bad topology spec")
	ErrMalformedTopology = errors.New("tree: malformed topology file")
)

// Builder assembles a Graph. Parallel links between the same pair of nodes are merged into
// one link whose capacity is the sum of theirs and whose latency is the smallest of theirs;
// self-loops are rejected. The zero Builder is not usable: call NewBuilder.
type Builder struct {
	name   string
	nodes  []Node
	byName map[string]NodeID
	arcs   []Arc
	links  map[[2]NodeID]int // unordered pair (lo, hi) -> link index
}

// NewBuilder returns an empty builder for a graph called name.
func NewBuilder(name string) *Builder {
	return &Builder{name: name, byName: map[string]NodeID{}, links: map[[2]NodeID]int{}}
}

// AddNode adds a node. Names must be unique and non-empty.
func (b *Builder) AddNode(name string, kind Kind, labels map[string]string) (NodeID, error) {
	if name == "" {
		return None, fmt.Errorf("%w: empty name", ErrBadLink)
	}
	if _, dup := b.byName[name]; dup {
		return None, fmt.Errorf("%w: %q", ErrDuplicateNode, name)
	}
	id := NodeID(len(b.nodes))
	b.nodes = append(b.nodes, Node{Name: name, Kind: kind, Labels: labels})
	b.byName[name] = id
	return id, nil
}

// Lookup returns the node named name added so far.
func (b *Builder) Lookup(name string) (NodeID, bool) {
	v, ok := b.byName[name]
	return v, ok
}

// NumNodes returns the number of nodes added so far.
func (b *Builder) NumNodes() int { return len(b.nodes) }

// AddLink joins u and v by a full-duplex link: arcs u->v and v->u, each with the given
// capacity (bits/s, > 0; 0 means DefaultCapacity) and latency (>= 0). A second link between
// the same pair is merged into the first (capacities add, the smaller latency stays).
func (b *Builder) AddLink(u, v NodeID, capacity float64, latency time.Duration) error {
	n := NodeID(len(b.nodes))
	switch {
	case u < 0 || u >= n || v < 0 || v >= n:
		return fmt.Errorf("%w: node out of range (%d, %d)", ErrBadLink, u, v)
	case u == v:
		return fmt.Errorf("%w: %q", ErrSelfLoop, b.nodes[u].Name)
	case capacity < 0 || math.IsNaN(capacity) || math.IsInf(capacity, 0):
		return fmt.Errorf("%w: capacity %v between %q and %q", ErrBadLink, capacity, b.nodes[u].Name, b.nodes[v].Name)
	case latency < 0:
		return fmt.Errorf("%w: negative latency %v between %q and %q", ErrBadLink, latency, b.nodes[u].Name, b.nodes[v].Name)
	}
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	key := [2]NodeID{min(u, v), max(u, v)}
	if l, ok := b.links[key]; ok {
		for _, a := range []int{2 * l, 2*l + 1} {
			b.arcs[a].Capacity += capacity
			b.arcs[a].Latency = min(b.arcs[a].Latency, latency)
		}
		return nil
	}
	b.links[key] = len(b.arcs) / 2
	b.arcs = append(b.arcs,
		Arc{From: u, To: v, Capacity: capacity, Latency: latency},
		Arc{From: v, To: u, Capacity: capacity, Latency: latency})
	return nil
}

// Build returns the graph. The builder must not be used afterwards. Cost O(V + E).
func (b *Builder) Build() (*Graph, error) {
	if len(b.nodes) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrEmptyGraph, b.name)
	}
	g := &Graph{name: b.name, nodes: b.nodes, arcs: b.arcs, byName: b.byName}
	g.outStart = make([]int32, len(b.nodes)+1)
	for _, a := range b.arcs {
		g.outStart[a.From+1]++
	}
	for v := range b.nodes {
		g.outStart[v+1] += g.outStart[v]
	}
	g.outArcs = make([]ArcID, len(b.arcs))
	fill := slices.Clone(g.outStart[:len(b.nodes)])
	for i, a := range b.arcs {
		g.outArcs[fill[a.From]] = ArcID(i)
		fill[a.From]++
	}
	for i, nd := range b.nodes {
		if nd.Kind == Host {
			g.hosts = append(g.hosts, NodeID(i))
		}
	}
	*b = Builder{}
	return g, nil
}

// Weight gives the cost of using an arc. It must be >= 0; +Inf marks an arc that must not be
// used. Weights may differ between the two directions of a link.
type Weight func(a ArcID) float64

// Hops weighs every arc 1.
func Hops(ArcID) float64 { return 1 }

// LatencyWeight weighs an arc by its latency in seconds (plus a tiny epsilon so that
// zero-latency arcs still count, and fewer hops win among equal latencies).
func (g *Graph) LatencyWeight() Weight {
	return func(a ArcID) float64 { return g.arcs[a].Latency.Seconds() + 1e-9 }
}

// InvCapWeight weighs an arc by 1e9 / capacity, so a 1 Gbit/s arc weighs 1.
func (g *Graph) InvCapWeight() Weight {
	return func(a ArcID) float64 { return 1e9 / g.arcs[a].Capacity }
}
