package tree

// workspace holds the O(V) scratch arrays of the Steiner heuristics. Steiner allocates one
// per call and shares it among its TM and KMB runs, improvement passes and local searches,
// so those allocate little beyond the trees they return. Arrays are allocated on first use;
// every user clears what it needs before use. A workspace is not safe for concurrent use.
type workspace struct {
	g *Graph
	// skip marks dead ends (see deadEnds) for the terminal set skipFor was computed for.
	skip    []bool
	skipFor []NodeID
	search  *search
	waiting *nodeHeap // receivers waiting to join in growTM
	heap    *nodeHeap // Prim's rule in improve
	isTerm  []bool
	inTree  []bool
	member  []bool
	done    []bool
	seen    []bool
	via     []ArcID
	deg     []int32
	fill    []int32
	adj     []ArcID
	// frontier is a queue of nodes for treeFromLinks.
	frontier []NodeID
	set      *arcSet // TM's tree
	impSet   *arcSet // improve's re-spanned tree
	linkSet  *arcSet // treeFromLinks' tree
	spSet    *arcSet // the local search's improved trees
	ab       *arborescence
	// The local search's arrays: its spanner, the node set re-spanned, and the pass (stamp)
	// in which a node was last tried for insertion.
	sp    *spanner
	in    []bool
	tried []int32
	stamp int32
	kpe   *kpeScratch
}

func newWorkspace(g *Graph) *workspace { return &workspace{g: g} }

func (ws *workspace) bools(p *[]bool, n int) []bool {
	if len(*p) < n {
		*p = make([]bool, n)
	}
	return (*p)[:n]
}

func (ws *workspace) ints(p *[]int32, n int) []int32 {
	if len(*p) < n {
		*p = make([]int32, n)
	}
	return (*p)[:n]
}

// arcSet returns the set *p, allocated on first use, emptied.
func (ws *workspace) arcSet(p **arcSet) *arcSet {
	if *p == nil {
		*p = newArcSet(ws.g)
	}
	(*p).reset()
	return *p
}

// heapOf returns the heap *p, allocated on first use, emptied.
func (ws *workspace) heapOf(p **nodeHeap) *nodeHeap {
	if *p == nil {
		*p = newNodeHeap(ws.g.NumNodes())
	}
	(*p).reset()
	return *p
}

// freshSearch returns the workspace's search under w, reset (every distance +Inf, forward,
// no dead ends skipped). Cost O(V).
func (ws *workspace) freshSearch(w Weight) *search {
	if ws.search == nil {
		ws.search = newSearch(ws.g, w)
	} else {
		ws.search.reset(w)
	}
	return ws.search
}

// deadEnds returns deadEnds(g, src, recv), computed once per terminal set ({src} and recv
// as a set, as Steiner's starts from receivers share it). Cost O(V) when computed.
func (ws *workspace) deadEnds(src NodeID, recv []NodeID) []bool {
	if ws.skip != nil && sameTerminals(ws.skipFor, src, recv) {
		return ws.skip
	}
	ws.skip = deadEnds(ws.g, src, recv)
	ws.skipFor = append(append(ws.skipFor[:0], src), recv...)
	return ws.skip
}

// sameTerminals reports whether {src} ∪ recv equals the set terms, which has no duplicates,
// as recv has none and does not hold src. Cost O(len(terms)^2), for small sets; larger
// ones are reported different.
func sameTerminals(terms []NodeID, src NodeID, recv []NodeID) bool {
	if len(terms) != len(recv)+1 || len(terms) > 64 {
		return false
	}
	has := func(v NodeID) bool {
		for _, t := range terms {
			if t == v {
				return true
			}
		}
		return false
	}
	if !has(src) {
		return false
	}
	for _, r := range recv {
		if !has(r) {
			return false
		}
	}
	return true
}
