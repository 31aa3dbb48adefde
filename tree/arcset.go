package tree

// arcSet accumulates the arcs of a tree under construction: every node has at most one
// entering arc. Memory O(V) per set.
type arcSet struct {
	g      *Graph
	parent []ArcID  // entering arc of each node, -1 if none
	nodes  []NodeID // nodes whose parent is set, in insertion order
}

func newArcSet(g *Graph) *arcSet {
	p := make([]ArcID, g.NumNodes())
	for i := range p {
		p[i] = -1
	}
	return &arcSet{g: g, parent: p}
}

// hasNode reports whether v has an entering arc.
func (s *arcSet) hasNode(v NodeID) bool { return s.parent[v] >= 0 }

// addArc records a as the entering arc of its head.
func (s *arcSet) addArc(a ArcID) {
	v := s.g.arcs[a].To
	if s.parent[v] < 0 {
		s.nodes = append(s.nodes, v)
	}
	s.parent[v] = a
}

// tree prunes every leaf that is not a terminal (repeatedly), orders the remaining arcs
// away from root breadth-first, and weighs them with w. Cost O(V + arcs).
func (s *arcSet) tree(root NodeID, terminals []NodeID, w Weight) *Tree {
	g := s.g
	n := g.NumNodes()
	keep := make([]bool, n)
	for _, t := range terminals {
		keep[t] = true
	}
	keep[root] = true
	kids := make([]int32, n)
	for _, v := range s.nodes {
		if s.parent[v] >= 0 {
			kids[g.arcs[s.parent[v]].From]++
		}
	}
	var queue []NodeID
	for _, v := range s.nodes {
		if kids[v] == 0 && !keep[v] {
			queue = append(queue, v)
		}
	}
	for len(queue) > 0 {
		v := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		p := g.arcs[s.parent[v]].From
		s.parent[v] = -1
		kids[p]--
		if kids[p] == 0 && !keep[p] && s.parent[p] >= 0 {
			queue = append(queue, p)
		}
	}
	// Children lists in CSR form, then breadth-first from the root.
	start := make([]int32, n+1)
	for _, v := range s.nodes {
		if s.parent[v] >= 0 {
			start[g.arcs[s.parent[v]].From+1]++
		}
	}
	for i := range n {
		start[i+1] += start[i]
	}
	fill := make([]int32, n)
	copy(fill, start[:n])
	child := make([]ArcID, start[n])
	for _, v := range s.nodes {
		if a := s.parent[v]; a >= 0 {
			u := g.arcs[a].From
			child[fill[u]] = a
			fill[u]++
		}
	}
	t := &Tree{Root: root, Arcs: make([]ArcID, 0, start[n])}
	frontier := []NodeID{root}
	for len(frontier) > 0 {
		v := frontier[0]
		frontier = frontier[1:]
		for _, a := range child[start[v]:start[v+1]] {
			t.Arcs = append(t.Arcs, a)
			t.Cost += w(a)
			frontier = append(frontier, g.arcs[a].To)
		}
	}
	return t
}

// treeFromLinks orients a connected set of links (each given by either of its arcs) away
// from root, drops links that would close a cycle, and returns the pruned tree.
func treeFromLinks(g *Graph, root NodeID, links []ArcID, terminals []NodeID, w Weight) *Tree {
	n := g.NumNodes()
	deg := make([]int32, n+1)
	for _, a := range links {
		deg[g.arcs[a].From+1]++
		deg[g.arcs[a].To+1]++
	}
	for i := range n {
		deg[i+1] += deg[i]
	}
	fill := make([]int32, n)
	copy(fill, deg[:n])
	adj := make([]ArcID, deg[n])
	for _, a := range links {
		arc := g.arcs[a]
		adj[fill[arc.From]] = a
		fill[arc.From]++
		adj[fill[arc.To]] = a.Reverse()
		fill[arc.To]++
	}
	s := newArcSet(g)
	seen := make([]bool, n)
	seen[root] = true
	frontier := []NodeID{root}
	for len(frontier) > 0 {
		v := frontier[0]
		frontier = frontier[1:]
		for _, a := range adj[deg[v]:deg[v+1]] {
			if u := g.arcs[a].To; !seen[u] {
				seen[u] = true
				s.addArc(a)
				frontier = append(frontier, u)
			}
		}
	}
	return s.tree(root, terminals, w)
}
