package tree

import (
	"math"
	"slices"
)

// localSearchMaxNodes bounds the graphs on which Steiner runs its multi-start local search:
// each start costs a TM run, O((V + E) log V), so larger graphs only refine small trees
// once (on fat-trees the constructive result is already minimal).
const localSearchMaxNodes = 1024

// localSearchBudget bounds the re-spanning evaluations of one local search, so its cost is
// O(budget · (S log S + arcs)) whatever the graph (and localSearchWork bounds them all).
const localSearchBudget = 300

// spanner re-spans node sets for the local search: Prim's rule from the root over the
// subgraph induced by a node set, then pruning of non-receiver leaves, weighed without
// building a Tree. Its arrays are allocated once per workspace (O(V)), readied by init for
// each local search (O(V)) and reset per evaluation only over the nodes involved, so an
// evaluation allocates nothing. (With
// directed weights Prim's rule is not optimal; a minimum arborescence here tripled the cost
// of Steiner for 0.2 points of mean quality, so only the improvement pass uses one.)
type spanner struct {
	g     *Graph
	w     Weight
	h     *nodeHeap
	keep  []bool    // receivers and the root: never pruned
	via   []ArcID   // arc by which Prim's rule reached v
	key   []float64 // weight of via[v]
	done  []bool    // v was reached (and not pruned)
	kids  []int32   // children of v in the spanned tree
	order []NodeID  // reached nodes in Prim order
	stack []NodeID
	work  int // nodes settled and arcs scanned so far
}

func newSpanner(g *Graph, w Weight, root NodeID, recv []NodeID) *spanner {
	n := g.NumNodes()
	sp := &spanner{g: g, h: newNodeHeap(n), keep: make([]bool, n), via: make([]ArcID, n),
		key: make([]float64, n), done: make([]bool, n), kids: make([]int32, n)}
	sp.init(w, root, recv)
	return sp
}

// init readies sp for a local search of a tree rooted at root spanning recv under w, with
// its work count at 0. Cost O(V).
func (sp *spanner) init(w Weight, root NodeID, recv []NodeID) {
	sp.w = w
	sp.work = 0
	clear(sp.keep)
	for _, r := range recv {
		sp.keep[r] = true
	}
	sp.keep[root] = true
}

// span grows Prim's rule from root over the nodes with in[v] set (all of them among members
// and extra), prunes non-receiver leaves, and returns the weight of the result, or +Inf if
// it does not reach nKeep nodes that must stay (the receivers and the root). Cost
// O(S log S + arcs at those nodes) for S nodes.
func (sp *spanner) span(root NodeID, in []bool, members []NodeID, extra NodeID, nKeep int) float64 {
	g, h := sp.g, sp.h
	reset := func(v NodeID) {
		sp.done[v] = false
		sp.via[v] = -1
		sp.kids[v] = 0
	}
	for _, v := range members {
		reset(v)
	}
	if extra != None {
		reset(extra)
	}
	sp.order = sp.order[:0]
	kept := 0
	h.push(root, 0)
	for h.Len() > 0 {
		v, k := h.pop()
		sp.done[v] = true
		sp.key[v] = k
		sp.order = append(sp.order, v)
		if sp.keep[v] {
			kept++
		}
		out := g.Out(v)
		sp.work += 1 + len(out)
		for _, a := range out {
			u := g.arcs[a].To
			if !in[u] || sp.done[u] {
				continue
			}
			c := sp.w(a)
			if math.IsInf(c, 1) {
				continue
			}
			if h.pos[u] < 0 || c < h.keys[u] {
				sp.via[u] = a
				h.push(u, c)
			}
		}
	}
	if kept < nKeep {
		return math.Inf(1)
	}
	cost := 0.0
	sp.stack = sp.stack[:0]
	for _, v := range sp.order[1:] {
		sp.kids[g.arcs[sp.via[v]].From]++
		cost += sp.key[v]
	}
	for _, v := range sp.order {
		if sp.kids[v] == 0 && !sp.keep[v] {
			sp.stack = append(sp.stack, v)
		}
	}
	for len(sp.stack) > 0 {
		v := sp.stack[len(sp.stack)-1]
		sp.stack = sp.stack[:len(sp.stack)-1]
		sp.done[v] = false
		cost -= sp.key[v]
		p := g.arcs[sp.via[v]].From
		if sp.kids[p]--; sp.kids[p] == 0 && !sp.keep[p] {
			sp.stack = append(sp.stack, p)
		}
	}
	return cost
}

// tree returns the tree of the last span, built in set (emptied first).
func (sp *spanner) tree(root NodeID, recv []NodeID, set *arcSet) *Tree {
	set.reset()
	for _, v := range sp.order[1:] {
		if sp.done[v] {
			set.addArc(sp.via[v])
		}
	}
	return set.tree(root, recv, sp.w)
}

// localSearch improves t by three moves, applied until none helps: remove a non-receiver
// node, exchange a key path (keyPathExchange), or insert a node next to the tree, each kept
// when re-spanning the new node set (spanner.span) gives a cheaper tree. Each pass costs
// O(V · (S log S + arcs)) for S tree nodes; the passes end when no move improves (each
// improvement lowers the cost), after localSearchBudget re-spanning evaluations, or when
// fresh (if not nil; it records the trees it is given) reports that an improved tree was
// reached before (a start, or a tree an earlier search went on from). The workspace's
// arrays are reused, so a pass allocates only the trees it keeps.
func (ws *workspace) localSearch(t *Tree, recv []NodeID, w Weight, work *int, fresh func(*Tree) bool) *Tree {
	g := ws.g
	n := g.NumNodes()
	in := ws.bools(&ws.in, n)
	clear(in)
	if ws.sp == nil {
		ws.sp = newSpanner(g, w, t.Root, recv)
	} else {
		ws.sp.init(w, t.Root, recv)
	}
	sp := ws.sp
	nKeep := 0
	for _, k := range sp.keep {
		if k {
			nKeep++
		}
	}
	best := t
	budget := localSearchBudget
	if len(ws.tried) < n {
		ws.tried = make([]int32, n)
	}
	tried := ws.tried
	defer func() { *work -= sp.work }()
	for improved := true; improved && budget > 0 && *work > sp.work; {
		if improved = false; best != t && fresh != nil && !fresh(best) {
			break // an earlier search went on from this tree
		}
		members := best.Nodes(g)
		clear(in)
		for _, v := range members {
			in[v] = true
		}
		try := func(extra NodeID) bool {
			budget--
			if budget < 0 || sp.work >= *work {
				return false
			}
			if c := sp.span(t.Root, in, members, extra, nKeep); c < best.Cost-1e-12 {
				if nt := sp.tree(t.Root, recv, ws.arcSet(&ws.spSet)); nt.Cost < best.Cost-1e-12 {
					best, improved = nt, true
					return true
				}
			}
			return false
		}
		// Removal of a Steiner node (a node that is not a receiver).
		for _, v := range members {
			if sp.keep[v] {
				continue
			}
			in[v] = false
			ok := try(None)
			in[v] = true
			if ok {
				break
			}
		}
		if improved {
			continue
		}
		if c := ws.keyPathExchange(best, recv, w, work); c != nil {
			best, improved = c, true
			continue
		}
		// Insertion of a neighbour of the tree. A node with a single link into the tree would
		// be pruned again (re-spanning the tree's own node set), so only nodes with two or
		// more are tried, each once per pass.
		if try(None) {
			continue
		}
		ws.stamp++
		stamp := ws.stamp
		for _, u := range members {
			for _, a := range g.Out(u) {
				v := g.arcs[a].To
				if in[v] || tried[v] == stamp {
					continue
				}
				tried[v] = stamp
				links := 0
				for _, b := range g.Out(v) {
					if in[g.arcs[b].To] {
						links++
					}
				}
				if links < 2 {
					continue
				}
				in[v] = true
				ok := try(v)
				in[v] = false
				if ok {
					break
				}
			}
			if improved {
				break
			}
		}
	}
	return best
}

// kpeScratch holds the arrays of keyPathExchange, allocated once per workspace (O(V + E))
// and left reset between calls: every per-path reset touches only the tree's nodes and the
// nodes the search reached.
type kpeScratch struct {
	start, fill []int32 // undirected tree adjacency in CSR form
	adjArcs     []ArcID
	key         []bool
	side        []int8 // 0 outside the tree, 1 and 2 the two parts, -1 inner nodes
	seenPath    []bool // per link
	onPath      []bool // per link
	treeArc     []bool // per arc
	path        []ArcID
	stack       []NodeID
	seeds       []NodeID
	reached     []NodeID
}

// keyPathExchange tries to replace one key path of t (a path whose inner nodes are
// non-receivers of tree degree 2, between receivers, the root or branching nodes) by a
// cheaper path joining the two parts the tree falls into without it. It returns the first
// improved tree found, or nil. Cost O(V + K · (T + A) log V) for K key paths, T tree nodes
// and A the arcs the bounded search scans (at most E); the workspace's arrays are reused.
func (ws *workspace) keyPathExchange(t *Tree, recv []NodeID, w Weight, work *int) *Tree {
	g := ws.g
	n := g.NumNodes()
	if ws.kpe == nil {
		ws.kpe = &kpeScratch{start: make([]int32, n+1), fill: make([]int32, n),
			key: make([]bool, n), side: make([]int8, n), seenPath: make([]bool, g.NumLinks()),
			onPath: make([]bool, g.NumLinks()), treeArc: make([]bool, g.NumArcs())}
	}
	k := ws.kpe
	nodes := t.Nodes(g)
	// Undirected tree adjacency in CSR form: the arcs leaving each tree node along the tree.
	start := k.start
	clear(start)
	for _, a := range t.Arcs {
		arc := g.arcs[a]
		start[arc.From+1]++
		start[arc.To+1]++
	}
	for v := range n {
		start[v+1] += start[v]
	}
	fill := k.fill
	copy(fill, start[:n])
	if cap(k.adjArcs) < int(start[n]) {
		k.adjArcs = make([]ArcID, start[n])
	}
	adjArcs := k.adjArcs[:start[n]]
	for _, a := range t.Arcs {
		arc := g.arcs[a]
		adjArcs[fill[arc.From]] = a
		fill[arc.From]++
		adjArcs[fill[arc.To]] = a.Reverse()
		fill[arc.To]++
	}
	adj := func(v NodeID) []ArcID { return adjArcs[start[v]:start[v+1]] }
	key, side, seenPath, onPath, treeArc := k.key, k.side, k.seenPath, k.onPath, k.treeArc
	key[t.Root] = true
	for _, r := range recv {
		key[r] = true
	}
	for _, v := range nodes {
		if start[v+1]-start[v] >= 3 {
			key[v] = true
		}
	}
	for _, a := range t.Arcs {
		treeArc[a] = true
	}
	defer func() { // leave the arrays reset
		for _, v := range nodes {
			key[v] = false
		}
		for _, r := range recv {
			key[r] = false
		}
		for _, a := range t.Arcs {
			treeArc[a] = false
			seenPath[a.Link()] = false
		}
	}()
	s := ws.freshSearch(w)
	var size [3]int
	for _, first := range nodes {
		if !key[first] {
			continue
		}
		for _, firstArc := range adj(first) {
			// Walk the key path from first through firstArc.
			path := append(k.path[:0], firstArc)
			v := g.arcs[firstArc].To
			for !key[v] {
				for _, a := range adj(v) {
					if a.Reverse() != path[len(path)-1] {
						path = append(path, a)
						break
					}
				}
				v = g.arcs[path[len(path)-1]].To
			}
			k.path = path
			if seenPath[firstArc.Link()] {
				continue
			}
			if *work <= 0 {
				return nil
			}
			*work -= 3 * n // the resets and the search, at most about that
			seenPath[path[len(path)-1].Link()] = true
			seenPath[firstArc.Link()] = true
			old := 0.0 // the path's weight in the tree's own orientation
			for _, a := range path {
				if !treeArc[a] {
					a = a.Reverse()
				}
				old += w(a)
			}
			// Label the two parts: flood the tree from first and from v, not crossing the path.
			for _, a := range path[:len(path)-1] {
				side[g.arcs[a].To] = -1
			}
			for _, a := range path {
				onPath[a.Link()] = true
			}
			size = [3]int{}
			for label, root := range []NodeID{first, v} {
				stack := append(k.stack[:0], root)
				side[root] = int8(label + 1)
				size[label+1]++
				for len(stack) > 0 {
					x := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					for _, a := range adj(x) {
						if y := g.arcs[a].To; !onPath[a.Link()] && side[y] == 0 {
							side[y] = int8(label + 1)
							size[label+1]++
							stack = append(stack, y)
						}
					}
				}
				k.stack = stack
			}
			// Least-weight path from the root's part to the other part: searched forward
			// from the root's part, or backward from the other part, whichever is smaller.
			rootSide := side[t.Root]
			from, to := rootSide, 3-rootSide
			s.reverse = size[from] > size[to]
			if s.reverse {
				from, to = to, from
			}
			seeds := k.seeds[:0]
			for _, x := range nodes {
				if side[x] == from {
					seeds = append(seeds, x)
				}
			}
			slices.Sort(seeds) // in id order, for the ties
			k.seeds = seeds
			s.settleSources(seeds)
			var hit NodeID = None
			reached := k.reached[:0]
			s.run(func(x NodeID) bool {
				reached = append(reached, x)
				if side[x] == to {
					hit = x
					return false
				}
				return s.dist[x] < old
			})
			improves := hit != None && s.dist[hit] < old-1e-12
			var links []ArcID
			if improves {
				links = make([]ArcID, 0, len(t.Arcs))
				for _, a := range t.Arcs {
					if !onPath[a.Link()] {
						links = append(links, a)
					}
				}
				if s.reverse {
					links = append(links, s.pathFrom(hit)...)
				} else {
					links = append(links, s.pathTo(hit)...)
				}
			}
			// Reset the search (the nodes it reached: seeds, settled, still queued), the
			// labels and the path.
			for _, it := range s.heap.items {
				reached = append(reached, it.v)
			}
			s.heap.reset()
			for _, x := range reached {
				s.dist[x] = math.Inf(1)
				s.pred[x] = -1
			}
			for _, x := range seeds {
				s.dist[x] = math.Inf(1)
				s.pred[x] = -1
			}
			k.reached = reached
			for _, x := range nodes {
				side[x] = 0
			}
			for _, a := range path {
				onPath[a.Link()] = false
			}
			if !improves {
				continue
			}
			if c := ws.treeFromLinks(t.Root, links, recv, w); c.Cost < t.Cost-1e-12 {
				return c
			}
		}
	}
	return nil
}
