package scheduler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/treecast/treecast/tree"
)

// Strategy names how an overlay plan arranges the agents.
type Strategy string

// The overlay strategies.
const (
	// StrategyChain chains the receivers in the depth-first order of a physical Steiner tree:
	// an Euler tour crosses each tree link once each way, so every arc carries at most one copy.
	// Depth is the number of receivers.
	StrategyChain Strategy = "chain"
	// StrategyTree groups receivers by the switch they hang from (their rack), chains the
	// groups' heads in depth-first order (one copy per switch-to-switch arc) and fans out
	// inside each group with bounded fan-out (a relay's uplink carries its fan-out).
	StrategyTree Strategy = "tree"
	// StrategyForest splits the object into stripes sent down different trees, each receiver
	// interior in one tree only (SplitStream), so every node uploads about one copy and depth
	// is logarithmic.
	StrategyForest Strategy = "forest"
	// StrategyUnicast has the source send to every receiver itself: the baseline.
	StrategyUnicast Strategy = "unicast"
	// StrategyAuto, the default, builds the candidate plans (forests of several stripe
	// counts and budgets, and a chain for a few receivers) and keeps the one predicted to
	// finish first (see [Build]); the plan then carries the strategy it chose.
	StrategyAuto Strategy = "auto"
)

// Strategies lists the overlay strategies, the default first.
var Strategies = []Strategy{StrategyAuto, StrategyChain, StrategyTree, StrategyForest, StrategyUnicast}

// ParseStrategy returns the strategy named s.
func ParseStrategy(s string) (Strategy, error) {
	for _, st := range Strategies {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w: unknown strategy %q (want auto, chain, tree, forest or unicast)", ErrBadOptions, s)
}

// Errors of overlay planning.
var (
	ErrBadOptions   = errors.New("scheduler: bad plan options")
	ErrBadPlan      = errors.New("scheduler: bad plan")
	ErrNoReceivers  = errors.New("scheduler: no receivers")
	ErrSourceFailed = errors.New("scheduler: the source failed")
)

// Options tune an overlay plan.
type Options struct {
	// Strategy arranges the agents (default StrategyAuto).
	Strategy Strategy
	// Fanout bounds the children of a node in one tree: for tree, all its children (default
	// 4); for forest, the children a receiver feeds in the one tree it is interior in, which
	// is also what a group of the hierarchy may send out of itself (default T + max(1, T/4)
	// for T = Stripes + Parity trees: at most 1.25 copies per arc for T >= 4). auto tries
	// budgets T, T+1 and T + T/4 unless Fanout is set.
	Fanout int
	// Stripes is the number of data stripes of a forest (default 4; auto tries 2, 4, 8 and
	// 16 unless it is set); other strategies use 1.
	Stripes int
	// Parity adds that many parity trees to a forest: chunks are coded in groups of Stripes
	// data chunks and Parity parity chunks, chunk p of group g travelling on tree
	// (p+g) mod (Stripes+Parity), so every tree carries exactly one chunk of each group and a
	// receiver that loses up to Parity trees can still decode. auto then plans forests only.
	Parity int
	// ObjectSize is the size of the object in bytes, 0 when unknown (then DefaultObjectSize
	// is assumed). It sets the chunk size and auto's choice.
	ObjectSize int64
	// ChunkSize is the chunk size in bytes; 0 lets the plan choose (see [ChunkSizeFor]).
	ChunkSize int
}

// maxStripes bounds stripes plus parity trees.
const maxStripes = 64

func (o Options) normalized() (Options, error) {
	if o.Strategy == "" {
		o.Strategy = StrategyAuto
	}
	if _, err := ParseStrategy(string(o.Strategy)); err != nil {
		return o, err
	}
	if o.Fanout < 0 || o.Stripes < 0 || o.Parity < 0 || o.ObjectSize < 0 || o.ChunkSize < 0 {
		return o, fmt.Errorf("%w: negative fanout %d, stripes %d, parity %d, object size %d or chunk size %d",
			ErrBadOptions, o.Fanout, o.Stripes, o.Parity, o.ObjectSize, o.ChunkSize)
	}
	if o.ChunkSize > MaxChunkSize {
		return o, fmt.Errorf("%w: chunk size %d above %d", ErrBadOptions, o.ChunkSize, MaxChunkSize)
	}
	if o.Strategy == StrategyAuto {
		if o.Stripes+o.Parity > maxStripes {
			return o, fmt.Errorf("%w: %d stripes + %d parity trees, at most %d", ErrBadOptions, o.Stripes, o.Parity, maxStripes)
		}
		if o.Fanout == 1 {
			return o, fmt.Errorf("%w: fanout 1 is a chain: use --strategy chain", ErrBadOptions)
		}
		return o, nil
	}
	if o.Strategy != StrategyForest {
		if o.Stripes > 1 || o.Parity > 0 {
			return o, fmt.Errorf("%w: stripes (%d) and parity (%d) need the forest or auto strategy", ErrBadOptions, o.Stripes, o.Parity)
		}
		o.Stripes = 1
	}
	if o.Stripes == 0 {
		o.Stripes = 4
	}
	if o.Stripes+o.Parity > maxStripes {
		return o, fmt.Errorf("%w: %d stripes + %d parity trees, at most %d", ErrBadOptions, o.Stripes, o.Parity, maxStripes)
	}
	if o.Fanout == 0 {
		switch o.Strategy {
		case StrategyTree:
			o.Fanout = 4
		case StrategyForest:
			t := o.Stripes + o.Parity
			o.Fanout = t + max(1, t/4)
		}
	}
	if o.Fanout == 1 && o.Strategy != StrategyChain && o.Strategy != StrategyUnicast {
		return o, fmt.Errorf("%w: fanout 1 is a chain: use --strategy chain", ErrBadOptions)
	}
	return o, nil
}

// Edge is one overlay edge: agent From forwards to agent To along Path (the arcs of the
// topology the edge is routed on, in order).
type Edge struct {
	From, To tree.NodeID
	Path     []tree.ArcID
}

// Stripe is one tree of a plan: its edges, each after the edge that reaches its From.
type Stripe struct {
	Edges []Edge
}

// Plan is an overlay forest over agents: the source and the receivers of one push, one tree
// per stripe. Chunks are dealt to the data stripes round-robin (chunk i on stripe i mod
// DataStripes) unless the plan has parity trees (see Options.Parity).
type Plan struct {
	Graph     *tree.Graph
	Source    tree.NodeID
	Receivers []tree.NodeID
	// Strategy is the strategy the plan runs (never StrategyAuto); Auto says auto chose it.
	Strategy Strategy
	Auto     bool
	// DataStripes is the number of data stripes K; Parity the parity trees M. len(Stripes)
	// is K+M.
	DataStripes, Parity int
	Stripes             []Stripe
	// ChunkSize is the chunk size the push should use, in bytes: Options.ChunkSize, or
	// chosen by ChunkSizeFor for the plan's depth and stripes.
	ChunkSize int
}

// Build plans a push from src to dsts on g. It computes a physical Steiner tree (hop
// weights) spanning the source and receivers, then arranges the agents by the strategy; each
// overlay edge is routed on the physical tree. dsts may contain src and duplicates
// (ignored). With StrategyAuto (the default) it builds the candidate plans on the same
// physical tree and keeps the one with the lowest [Prediction]: forests of 2, 4, 8 and 16
// stripes (those that fit the receivers) with budgets T, T+1 and T + T/4, and a chain when
// there are few receivers; candidates deeper than [DepthCap] are kept only when no
// candidate is within it. Errors wrap ErrNoReceivers, ErrBadOptions or the tree package's
// errors (unknown node, unreachable receiver). Cost: one Steiner tree plus O(trees ×
// receivers × path length) per candidate; auto builds at most three forests beyond 1,024
// receivers (about 30 ms for 8,191 receivers of a k=32 fat-tree).
func Build(g *tree.Graph, src tree.NodeID, dsts []tree.NodeID, opts Options) (*Plan, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	recv := dedup(src, dsts)
	if len(recv) == 0 {
		return nil, ErrNoReceivers
	}
	phys, err := tree.Compute(g, tree.AlgoTM, src, recv, tree.Hops)
	if err != nil {
		return nil, err
	}
	pt := newPhysTree(g, phys)
	if opts.Strategy == StrategyAuto {
		return buildAuto(pt, src, recv, opts), nil
	}
	return build(pt, src, recv, opts), nil
}

// build arranges the receivers by opts, which are normalized and not auto.
func build(pt *physTree, src tree.NodeID, recv []tree.NodeID, opts Options) *Plan {
	order := pt.dfsReceivers(recv)
	p := &Plan{Graph: pt.g, Source: src, Receivers: recv, Strategy: opts.Strategy, DataStripes: opts.Stripes, Parity: opts.Parity}
	switch opts.Strategy {
	case StrategyUnicast:
		p.Stripes = []Stripe{{}}
		for _, r := range order {
			p.Stripes[0].Edges = append(p.Stripes[0].Edges, pt.edge(src, r))
		}
	case StrategyChain:
		p.Stripes = []Stripe{{}}
		prev := src
		for _, r := range order {
			p.Stripes[0].Edges = append(p.Stripes[0].Edges, pt.edge(prev, r))
			prev = r
		}
	case StrategyTree:
		p.Stripes = []Stripe{pt.hierarchical(src, order, opts.Fanout)}
	case StrategyForest:
		return buildForest(newHForest(pt, src, recv, opts.Stripes+opts.Parity, opts.Fanout), recv, opts)
	}
	p.setChunkSize(opts)
	return p
}

// buildForest builds a forest on the hierarchy h, whose budgets are set.
func buildForest(h *hforest, recv []tree.NodeID, opts Options) *Plan {
	p := &Plan{Graph: h.pt.g, Source: h.pt.root, Receivers: recv, Strategy: StrategyForest, DataStripes: opts.Stripes, Parity: opts.Parity}
	p.Stripes = make([]Stripe, opts.Stripes+opts.Parity)
	for s := range p.Stripes {
		p.Stripes[s] = Stripe{Edges: h.tree(s)}
	}
	p.setChunkSize(opts)
	return p
}

func (p *Plan) setChunkSize(opts Options) {
	p.ChunkSize = opts.ChunkSize
	if p.ChunkSize == 0 {
		p.ChunkSize = ChunkSizeFor(opts.ObjectSize, p.Depth(), p.DataStripes+p.Parity)
	}
}

func dedup(src tree.NodeID, dsts []tree.NodeID) []tree.NodeID {
	seen := map[tree.NodeID]bool{src: true}
	var out []tree.NodeID
	for _, d := range dsts {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// physTree is a physical tree with parent pointers and depths, for routing overlay edges.
// Its slices are indexed by NodeID; nodes outside the tree have depth -1.
type physTree struct {
	g        *tree.Graph
	root     tree.NodeID
	parent   []tree.ArcID // the arc entering a node of the tree (-1 at the root)
	depth    []int32
	children [][]tree.NodeID
	arena    []tree.ArcID // routes are cut from it, to allocate them in bulk
}

func newPhysTree(g *tree.Graph, t *tree.Tree) *physTree {
	n := g.NumNodes()
	pt := &physTree{g: g, root: t.Root, parent: make([]tree.ArcID, n), depth: make([]int32, n), children: make([][]tree.NodeID, n)}
	for v := range n {
		pt.parent[v], pt.depth[v] = -1, -1
	}
	pt.depth[t.Root] = 0
	for _, a := range t.Arcs {
		arc := g.Arc(a)
		pt.parent[arc.To] = a
		pt.depth[arc.To] = pt.depth[arc.From] + 1
		pt.children[arc.From] = append(pt.children[arc.From], arc.To)
	}
	for _, kids := range pt.children {
		slices.Sort(kids) // deterministic depth-first order
	}
	return pt
}

// dfsReceivers returns the receivers in depth-first preorder of the physical tree.
func (pt *physTree) dfsReceivers(recv []tree.NodeID) []tree.NodeID {
	want := make([]bool, pt.g.NumNodes())
	for _, r := range recv {
		want[r] = true
	}
	out := make([]tree.NodeID, 0, len(recv))
	stack := []tree.NodeID{pt.root}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if want[v] {
			out = append(out, v)
		}
		kids := pt.children[v]
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
	return out
}

// route returns the arcs from u to v along the physical tree: up from u to their lowest
// common ancestor, then down to v. Both must be in the tree.
func (pt *physTree) route(u, v tree.NodeID) []tree.ArcID {
	// First the length (up to the lowest common ancestor and down), then one slice from
	// the arena, filled from both ends.
	nu, nd := 0, 0
	for x, y := u, v; x != y; {
		if pt.depth[x] >= pt.depth[y] {
			x = pt.g.Arc(pt.parent[x]).From
			nu++
		} else {
			y = pt.g.Arc(pt.parent[y]).From
			nd++
		}
	}
	if len(pt.arena) < nu+nd {
		pt.arena = make([]tree.ArcID, max(1<<14, nu+nd))
	}
	path := pt.arena[: nu+nd : nu+nd]
	pt.arena = pt.arena[nu+nd:]
	i, j := 0, nu+nd-1
	for u != v {
		if pt.depth[u] >= pt.depth[v] {
			a := pt.parent[u]
			path[i] = a.Reverse()
			i++
			u = pt.g.Arc(a).From
		} else {
			a := pt.parent[v]
			path[j] = a
			j--
			v = pt.g.Arc(a).From
		}
	}
	return path
}

func (pt *physTree) edge(u, v tree.NodeID) Edge { return Edge{From: u, To: v, Path: pt.route(u, v)} }

// group returns the node a receiver (or the source) hangs from for grouping: the switch
// next to a host in the physical tree (its rack), else the node itself.
func (pt *physTree) group(r tree.NodeID) tree.NodeID {
	if pt.g.Node(r).Kind != tree.Host {
		return r
	}
	a := pt.parent[r]
	if a < 0 { // the root: a host source's rack is the switch it hangs from
		if kids := pt.children[r]; len(kids) == 1 && pt.g.Node(kids[0]).Kind == tree.Switch {
			return kids[0]
		}
		return r
	}
	if p := pt.g.Arc(a).From; pt.g.Node(p).Kind == tree.Switch {
		return p
	}
	return r
}

// hierarchical builds the tree strategy. Receivers are grouped by the switch they hang from
// (a host source's rack-mates join the source's group, group 0); the source fans out to its
// group; every other group's first member (its head, in depth-first order) is reached by a
// chain from the previous head and fans out to the rest of its group. The heads' chain
// follows the depth-first order, so each arc of the physical tree carries at most one copy
// of it each way; the fan-out edges stay below one switch (host arcs only).
func (pt *physTree) hierarchical(src tree.NodeID, order []tree.NodeID, fanout int) Stripe {
	groups := [][]tree.NodeID{nil}
	index := map[tree.NodeID]int{pt.group(src): 0}
	for _, r := range order {
		key := pt.group(r)
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	var s Stripe
	s.Edges = append(s.Edges, pt.fanTree(src, groups[0], fanout, 1)...)
	prev := src
	for _, members := range groups[1:] {
		head := members[0]
		s.Edges = append(s.Edges, pt.edge(prev, head))
		// The head also forwards to the next head, so it keeps one slot for the chain.
		s.Edges = append(s.Edges, pt.fanTree(head, members[1:], fanout, 1)...)
		prev = head
	}
	return s
}

// fanTree hangs nodes below root breadth-first, root taking fanout-reserve children and
// every other node fanout.
func (pt *physTree) fanTree(root tree.NodeID, nodes []tree.NodeID, fanout, reserve int) []Edge {
	edges := make([]Edge, 0, len(nodes))
	parents := []tree.NodeID{root}
	slots := []int{max(1, fanout-reserve)}
	next := 0
	for _, v := range nodes {
		for slots[next] == 0 {
			next++
		}
		edges = append(edges, pt.edge(parents[next], v))
		slots[next]--
		parents = append(parents, v)
		slots = append(slots, fanout)
	}
	return edges
}
