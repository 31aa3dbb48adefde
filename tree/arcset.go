package tree

// arcSet accumulates the arcs of a tree under construction: every node has at most one
// entering arc. Memory O(V) per set; a set can be emptied by reset and reused, and keeps the
// scratch arrays of tree for the next call.
type arcSet struct {
	g      *Graph
	parent []ArcID  // entering arc of each node, -1 if none
	nodes  []NodeID // nodes whose parent is set, in insertion order
	// Scratch arrays of tree, allocated on first use.
	keep        []bool
	kids        []int32
	start, fill []int32
	child       []ArcID
	queue       []NodeID
}

func newArcSet(g *Graph) *arcSet {
	p := make([]ArcID, g.NumNodes())
	for i := range p {
		p[i] = -1
	}
	return &arcSet{g: g, parent: p}
}

// reset empties the set in O(nodes added).
func (s *arcSet) reset() {
	for _, v := range s.nodes {
		s.parent[v] = -1
	}
	s.nodes = s.nodes[:0]
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
// away from root breadth-first, and weighs them with w. Cost O(V + arcs); only the returned
// tree is allocated once the scratch arrays exist.
func (s *arcSet) tree(root NodeID, terminals []NodeID, w Weight) *Tree {
	g := s.g
	n := g.NumNodes()
	if s.keep == nil {
		s.keep, s.kids = make([]bool, n), make([]int32, n)
		s.start, s.fill = make([]int32, n+1), make([]int32, n)
	}
	keep, kids := s.keep, s.kids
	clear(keep)
	clear(kids)
	for _, t := range terminals {
		keep[t] = true
	}
	keep[root] = true
	for _, v := range s.nodes {
		if s.parent[v] >= 0 {
			kids[g.arcs[s.parent[v]].From]++
		}
	}
	queue := s.queue[:0]
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
	start := s.start
	clear(start)
	for _, v := range s.nodes {
		if s.parent[v] >= 0 {
			start[g.arcs[s.parent[v]].From+1]++
		}
	}
	for i := range n {
		start[i+1] += start[i]
	}
	fill := s.fill
	copy(fill, start[:n])
	if cap(s.child) < int(start[n]) {
		s.child = make([]ArcID, start[n])
	}
	child := s.child[:start[n]]
	for _, v := range s.nodes {
		if a := s.parent[v]; a >= 0 {
			u := g.arcs[a].From
			child[fill[u]] = a
			fill[u]++
		}
	}
	t := &Tree{Root: root, Arcs: make([]ArcID, 0, start[n])}
	queue = append(queue[:0], root)
	for i := 0; i < len(queue); i++ {
		v := queue[i]
		for _, a := range child[start[v]:start[v+1]] {
			t.Arcs = append(t.Arcs, a)
			t.Cost += w(a)
			queue = append(queue, g.arcs[a].To)
		}
	}
	s.queue = queue[:0]
	return t
}

// treeFromLinks orients a connected set of links (each given by either of its arcs) away
// from root, drops links that would close a cycle, and returns the pruned tree, using the
// workspace's arrays. Cost O(V + links).
func (ws *workspace) treeFromLinks(root NodeID, links []ArcID, terminals []NodeID, w Weight) *Tree {
	g := ws.g
	n := g.NumNodes()
	deg, fill := ws.ints(&ws.deg, n+1), ws.ints(&ws.fill, n)
	clear(deg)
	for _, a := range links {
		deg[g.arcs[a].From+1]++
		deg[g.arcs[a].To+1]++
	}
	for i := range n {
		deg[i+1] += deg[i]
	}
	copy(fill, deg[:n])
	if cap(ws.adj) < int(deg[n]) {
		ws.adj = make([]ArcID, deg[n])
	}
	adj := ws.adj[:deg[n]]
	for _, a := range links {
		arc := g.arcs[a]
		adj[fill[arc.From]] = a
		fill[arc.From]++
		adj[fill[arc.To]] = a.Reverse()
		fill[arc.To]++
	}
	s := ws.arcSet(&ws.linkSet)
	seen := ws.bools(&ws.seen, n)
	clear(seen)
	seen[root] = true
	frontier := append(ws.frontier[:0], root)
	for i := 0; i < len(frontier); i++ {
		v := frontier[i]
		for _, a := range adj[deg[v]:deg[v+1]] {
			if u := g.arcs[a].To; !seen[u] {
				seen[u] = true
				s.addArc(a)
				frontier = append(frontier, u)
			}
		}
	}
	ws.frontier = frontier[:0]
	return s.tree(root, terminals, w)
}
