package tree

import "math"

// localSearchMaxNodes bounds the graphs on which Steiner applies the node local search: its
// cost grows with V times the tree size per pass, so large graphs keep the constructive
// result (on fat-trees that result is already minimal).
const localSearchMaxNodes = 1024

// localSearchBudget bounds the re-spanning evaluations of one local search, so its cost is
// O(budget · (S log S + arcs)) whatever the graph.
const localSearchBudget = 300

// spanNodes returns the tree that Prim's rule grows from root over the subgraph induced by
// the nodes with in[v] set, pruned to the receivers, or nil if it does not reach every
// receiver. Cost O(S log S + arcs at those nodes) for S nodes.
func spanNodes(g *Graph, root NodeID, in []bool, members []NodeID, recv []NodeID, w Weight, h *nodeHeap, via []ArcID, done []bool) *Tree {
	for _, v := range members {
		done[v] = false
		via[v] = -1
	}
	set := newArcSet(g)
	h.push(root, 0)
	reached := 0
	for h.Len() > 0 {
		v, _ := h.pop()
		done[v] = true
		reached++
		if via[v] >= 0 {
			set.addArc(via[v])
		}
		for _, a := range g.Out(v) {
			u := g.arcs[a].To
			if !in[u] || done[u] {
				continue
			}
			c := w(a)
			if math.IsInf(c, 1) {
				continue
			}
			if h.pos[u] < 0 || c < h.keys[u] {
				via[u] = a
				h.push(u, c)
			}
		}
	}
	for _, r := range recv {
		if !done[r] {
			return nil
		}
	}
	return set.tree(root, recv, w)
}

// localSearch improves t by three moves, applied until none helps: remove a non-receiver
// node, exchange a key path (keyPathExchange), or insert a node next to the tree, each kept
// when re-spanning the new node set (spanNodes) gives a cheaper tree. Each pass costs O(V · (S log S + arcs)); passes
// are bounded by the number of improvements, each of which lowers the cost.
func localSearch(g *Graph, t *Tree, recv []NodeID, w Weight) *Tree {
	n := g.NumNodes()
	in := make([]bool, n)
	isRecv := make([]bool, n)
	for _, r := range recv {
		isRecv[r] = true
	}
	isRecv[t.Root] = true
	h := newNodeHeap(n)
	via := make([]ArcID, n)
	done := make([]bool, n)
	best := t
	budget := localSearchBudget
	for improved := true; improved && budget > 0; {
		improved = false
		members := best.Nodes(g)
		clear(in)
		for _, v := range members {
			in[v] = true
		}
		try := func(ms []NodeID) bool {
			budget--
			if budget < 0 {
				return false
			}
			if c := spanNodes(g, t.Root, in, ms, recv, w, h, via, done); c != nil && c.Cost < best.Cost-1e-12 {
				best, improved = c, true
				return true
			}
			return false
		}
		// Removal of a Steiner node (a node that is not a receiver).
		for i, v := range members {
			if isRecv[v] {
				continue
			}
			in[v] = false
			ok := try(append(append([]NodeID{}, members[:i]...), members[i+1:]...))
			in[v] = true
			if ok {
				break
			}
		}
		if improved {
			continue
		}
		if c := keyPathExchange(g, best, recv, w); c != nil {
			best, improved = c, true
			continue
		}
		// Insertion of a neighbour of the tree.
		for _, u := range members {
			for _, a := range g.Out(u) {
				v := g.arcs[a].To
				if in[v] {
					continue
				}
				in[v] = true
				ok := try(append(members, v))
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

// keyPathExchange tries to replace one key path of t (a path whose inner nodes are
// non-receivers of tree degree 2, between receivers, the root or branching nodes) by a
// cheaper path joining the two parts the tree falls into without it. It returns the first
// improved tree found, or nil. Cost O(K · (V + E) log V) for K key paths.
func keyPathExchange(g *Graph, t *Tree, recv []NodeID, w Weight) *Tree {
	n := g.NumNodes()
	adj := map[NodeID][]ArcID{} // undirected tree adjacency, arcs leaving each node
	for _, a := range t.Arcs {
		arc := g.arcs[a]
		adj[arc.From] = append(adj[arc.From], a)
		adj[arc.To] = append(adj[arc.To], a.Reverse())
	}
	key := map[NodeID]bool{t.Root: true}
	for _, r := range recv {
		key[r] = true
	}
	for v, as := range adj {
		if len(as) >= 3 {
			key[v] = true
		}
	}
	side := make([]int8, n) // 0 outside the tree, 1 and 2 the two parts, -1 inner nodes
	seenPath := map[int]bool{}
	for _, start := range t.Nodes(g) {
		if !key[start] {
			continue
		}
		for _, first := range adj[start] {
			// Walk the key path from start through first.
			path := []ArcID{first}
			v := g.arcs[first].To
			for !key[v] {
				for _, a := range adj[v] {
					if a.Reverse() != path[len(path)-1] {
						path = append(path, a)
						break
					}
				}
				v = g.arcs[path[len(path)-1]].To
			}
			if seenPath[first.Link()] {
				continue
			}
			seenPath[path[len(path)-1].Link()] = true
			seenPath[first.Link()] = true
			old := 0.0
			for _, a := range path {
				old += w(a)
			}
			// Label the two parts: flood the tree from start and from v, not crossing the path.
			clear(side)
			for _, a := range path[:len(path)-1] {
				side[g.arcs[a].To] = -1
			}
			onPath := map[int]bool{}
			for _, a := range path {
				onPath[a.Link()] = true
			}
			for label, root := range []NodeID{start, v} {
				stack := []NodeID{root}
				side[root] = int8(label + 1)
				for len(stack) > 0 {
					x := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					for _, a := range adj[x] {
						if y := g.arcs[a].To; !onPath[a.Link()] && side[y] == 0 {
							side[y] = int8(label + 1)
							stack = append(stack, y)
						}
					}
				}
			}
			// Shortest path from part 1 to part 2.
			s := newSearch(g, w)
			for x := range n {
				if side[x] == 1 {
					s.seed(NodeID(x), 0)
				}
			}
			var hit NodeID = None
			s.run(func(x NodeID) bool {
				if side[x] == 2 {
					hit = x
					return false
				}
				return s.dist[x] < old
			})
			if hit == None || s.dist[hit] >= old-1e-12 {
				continue
			}
			links := make([]ArcID, 0, len(t.Arcs))
			for _, a := range t.Arcs {
				if !onPath[a.Link()] {
					links = append(links, a)
				}
			}
			links = append(links, s.pathTo(hit)...)
			if c := treeFromLinks(g, t.Root, links, recv, w); c.Cost < t.Cost-1e-12 {
				return c
			}
		}
	}
	return nil
}
