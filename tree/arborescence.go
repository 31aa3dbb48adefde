package tree

import "math"

// arborescenceMaxNodes bounds the trees that the improvement pass re-spans by a minimum
// arborescence (Chu-Liu/Edmonds, O(S · arcs)) under directed weights; larger ones use
// Prim's rule.
const arborescenceMaxNodes = 128

// symmetric reports whether w weighs both arcs of every link leaving the given nodes alike.
// Cost O(arcs at the nodes).
func symmetric(g *Graph, nodes []NodeID, w Weight) bool {
	for _, v := range nodes {
		for _, a := range g.Out(v) {
			if x, y := w(a), w(a.Reverse()); x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
				return false
			}
		}
	}
	return true
}

type arbEdge struct {
	u, v int32
	w    float64
}

// arborescence computes minimum spanning arborescences of small induced subgraphs. Its
// index array is allocated once (O(V)) and reset after each use.
type arborescence struct {
	g     *Graph
	w     Weight
	local []int32 // index of a node in the current subgraph, -1 outside
	nodes []NodeID
	edges []arbEdge
	arcs  []ArcID // arcs[i] is the arc of edges[i]
}

func newArborescence(g *Graph, w Weight) *arborescence {
	local := make([]int32, g.NumNodes())
	for i := range local {
		local[i] = -1
	}
	return &arborescence{g: g, w: w, local: local}
}

// span returns, for every node that root reaches over arcs of finite weight among the
// nodes with in[v] set, the arc entering it in a minimum-weight arborescence rooted at root
// spanning those nodes (nil for the root), with the nodes in breadth-first order from root.
// Cost O(S · A) for S nodes and A arcs among them (Chu-Liu/Edmonds by contraction).
func (ab *arborescence) span(root NodeID, in []bool) (nodes []NodeID, enter []ArcID) {
	g := ab.g
	ab.nodes = append(ab.nodes[:0], root)
	ab.local[root] = 0
	ab.edges, ab.arcs = ab.edges[:0], ab.arcs[:0]
	for i := 0; i < len(ab.nodes); i++ {
		for _, a := range g.Out(ab.nodes[i]) {
			u := g.arcs[a].To
			if in[u] && ab.local[u] < 0 && !math.IsInf(ab.w(a), 1) {
				ab.local[u] = int32(len(ab.nodes))
				ab.nodes = append(ab.nodes, u)
			}
		}
	}
	for i, x := range ab.nodes {
		for _, a := range g.Out(x) {
			j := ab.local[g.arcs[a].To]
			if j <= 0 { // outside, or the root
				continue
			}
			if c := ab.w(a); !math.IsInf(c, 1) {
				ab.edges = append(ab.edges, arbEdge{int32(i), j, c})
				ab.arcs = append(ab.arcs, a)
			}
		}
	}
	enter = make([]ArcID, len(ab.nodes))
	enter[0] = -1
	for _, e := range edmonds(len(ab.nodes), 0, ab.edges) {
		enter[ab.edges[e].v] = ab.arcs[e]
	}
	for _, x := range ab.nodes {
		ab.local[x] = -1
	}
	return ab.nodes, enter
}

// edmonds returns the indices of the edges of a minimum arborescence rooted at root that
// spans nodes 0..m-1, every one of which root must reach. Each node but the root takes its
// lightest entering edge; if these close cycles, each cycle is contracted (an edge entering
// it weighs less by the cycle edge it would replace), the contracted graph is solved
// recursively, and every cycle is opened where the chosen edge enters it. Cost O(m · E).
func edmonds(m int, root int32, edges []arbEdge) []int32 {
	in := make([]int32, m)
	for i := range in {
		in[i] = -1
	}
	for i, e := range edges {
		if e.u != e.v && e.v != root && (in[e.v] < 0 || e.w < edges[in[e.v]].w) {
			in[e.v] = int32(i)
		}
	}
	comp := make([]int32, m)
	mark := make([]int32, m)
	for i := range comp {
		comp[i], mark[i] = -1, -1
	}
	var cycles int32
	for s := range int32(m) {
		v := s
		for v != root && mark[v] < 0 {
			mark[v] = s
			v = edges[in[v]].u
		}
		if v != root && mark[v] == s && comp[v] < 0 {
			for x := v; comp[x] < 0; x = edges[in[x]].u {
				comp[x] = cycles
			}
			cycles++
		}
	}
	if cycles == 0 {
		out := make([]int32, 0, m-1)
		for v, e := range in {
			if int32(v) != root {
				out = append(out, e)
			}
		}
		return out
	}
	nc := cycles
	for v := range comp {
		if comp[v] < 0 {
			comp[v] = nc
			nc++
		}
	}
	var sub []arbEdge
	var orig []int32
	for i, e := range edges {
		cu, cv := comp[e.u], comp[e.v]
		if cu == cv || e.v == root {
			continue
		}
		sub = append(sub, arbEdge{cu, cv, e.w - edges[in[e.v]].w})
		orig = append(orig, int32(i))
	}
	entered := make([]bool, m)
	out := make([]int32, 0, m-1)
	for _, j := range edmonds(int(nc), comp[root], sub) {
		i := orig[j]
		out = append(out, i)
		entered[edges[i].v] = true
	}
	for v := range comp {
		if comp[v] < cycles && !entered[v] {
			out = append(out, in[v])
		}
	}
	return out
}
