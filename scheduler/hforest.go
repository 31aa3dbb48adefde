package scheduler

import (
	"cmp"
	"slices"

	"github.com/treecast/treecast/tree"
)

// The topology-aware forest (StrategyForest).
//
// The physical Steiner tree, rooted at the source, is a hierarchy of groups: every subtree
// that holds receivers is a group (a rack, a pod, a data center, or on a WAN the sites
// behind a link), and the arcs above a group carry exactly the overlay edges that enter it
// (down) and leave it (up). Chains of switches with one branch collapse into one group, so
// a group's members are its sub-groups and, when the group's root is itself a receiver
// (a WAN site, a BCube server), that receiver alone.
//
// Each receiver gets a class, its position in depth-first order modulo the number of trees
// T, so every group holds about |group|/T receivers of each class (every class when it has
// T receivers or more). A receiver forwards only in the tree of its class: it is interior in
// one tree, with at most budget children (default T + T/4, so its uplink carries at most
// 1.25 copies in all). Every group has the same budget for the edges leaving it.
//
// Each tree is built top-down. In tree t every group is entered by one edge; inside it, its
// members form a tree: the member that can export most in tree t (its avail: what its
// class-t receivers and sub-groups can feed beyond their own needs, within the budgets left
// by earlier trees) is the entry, and members are hung breadth-first below the members
// with free slots, the most capable first, so that capable members sit near the top and
// the group tree is shallow. The edges the group must export (its demand from the level
// above) come from the slots left, the shallowest first. A group whose members cannot form
// a tree in tree t (a rack with fewer receivers than trees, say) is not entered once:
// its members join the level above, and its down arc carries more than one copy. The
// source feeds the top group one edge per tree, and more only when nothing else can.
//
// So every arc of the physical tree carries about one copy down (one edge per tree) and at
// most budget/DataStripes copies up; depth grows with the logarithm of the group sizes at
// every level. Cost: O(T × receivers × log(largest group)) after the Steiner tree.

// hnode is a group of the hierarchy, or a receiver (a leaf).
type hnode struct {
	v       tree.NodeID // the receiver of a leaf, the physical root of a group
	leaf    bool
	members []int32 // sub-groups and leaves, in depth-first order
	cap     int     // edges it may still send out of itself (its up arc, or its uploads)
	class   int     // a leaf's tree
}

type hforest struct {
	pt    *physTree
	nodes []hnode // nodes[0] is the source's group
	post  []int32 // groups and leaves, every one after its members
	// per tree
	t     int
	avail []int
	feas  []bool
	eff   [][]int32 // a group's effective members (infeasible ones replaced by theirs), most capable first
	edges []Edge
}

type hslot struct {
	v tree.NodeID
	n int
}

// newHForest builds the hierarchy of the receivers over the physical tree.
func newHForest(pt *physTree, src tree.NodeID, recv []tree.NodeID, trees, budget int) *hforest {
	h := hierarchy(pt, src, recv, trees)
	h.reset(budget)
	return h
}

// reset gives every receiver and group the budget again, to build another forest on the
// same hierarchy.
func (h *hforest) reset(budget int) {
	for i := range h.nodes {
		h.nodes[i].cap = budget
	}
}

// hierarchy builds the hierarchy and the receivers' classes for the given number of trees.
func hierarchy(pt *physTree, src tree.NodeID, recv []tree.NodeID, trees int) *hforest {
	const budget = 0 // set by reset
	isRecv := make([]bool, pt.g.NumNodes())
	for _, r := range recv {
		isRecv[r] = true
	}
	// hasRecv: physical nodes with a receiver in their subtree (post-order over the tree).
	hasRecv := make([]bool, pt.g.NumNodes())
	var mark func(v tree.NodeID) bool
	mark = func(v tree.NodeID) bool {
		has := isRecv[v]
		for _, c := range pt.children[v] {
			if mark(c) {
				has = true
			}
		}
		if has {
			hasRecv[v] = true
		}
		return has
	}
	mark(pt.root)
	h := &hforest{pt: pt}
	recvKids := func(v tree.NodeID) []tree.NodeID {
		var out []tree.NodeID
		for _, c := range pt.children[v] {
			if hasRecv[c] {
				out = append(out, c)
			}
		}
		return out
	}
	class := 0
	add := func(n hnode) int32 {
		h.nodes = append(h.nodes, n)
		return int32(len(h.nodes) - 1)
	}
	var compress func(c tree.NodeID) int32
	compress = func(c tree.NodeID) int32 {
		kids := recvKids(c)
		for !isRecv[c] && len(kids) == 1 {
			c = kids[0]
			kids = recvKids(c)
		}
		if isRecv[c] && len(kids) == 0 {
			i := add(hnode{v: c, leaf: true, cap: budget, class: class % trees})
			class++
			h.post = append(h.post, i)
			return i
		}
		i := add(hnode{v: c, cap: budget})
		var members []int32
		if isRecv[c] {
			j := add(hnode{v: c, leaf: true, cap: budget, class: class % trees})
			class++
			h.post = append(h.post, j)
			members = append(members, j)
		}
		for _, k := range kids {
			members = append(members, compress(k))
		}
		h.nodes[i].members = members
		h.post = append(h.post, i)
		return i
	}
	add(hnode{v: src})
	var top []int32
	for _, k := range recvKids(src) {
		top = append(top, compress(k))
	}
	h.nodes[0].members = top
	h.post = append(h.post, 0)
	h.avail = make([]int, len(h.nodes))
	h.feas = make([]bool, len(h.nodes))
	h.eff = make([][]int32, len(h.nodes))
	return h
}

// tree builds tree t: the edges, in an order where each edge comes after the edge that
// reaches its From.
func (h *hforest) tree(t int) []Edge {
	h.t = t
	h.edges = h.edges[:0]
	h.measure()
	h.process(0, 0)
	return h.sorted()
}

// measure computes, bottom-up, what every node can export in tree t with the budgets left,
// whether a group can be entered once (feas), and its effective members.
func (h *hforest) measure() {
	for _, i := range h.post {
		n := &h.nodes[i]
		if n.leaf {
			h.feas[i] = true
			h.avail[i] = 0
			if n.class == h.t {
				h.avail[i] = n.cap
			}
			continue
		}
		eff := h.eff[i][:0]
		for _, m := range n.members {
			if h.feas[m] {
				eff = append(eff, m)
			} else {
				eff = append(eff, h.eff[m]...)
			}
		}
		h.eff[i] = eff
		slots, ok := h.fit(eff)
		for !ok && i != 0 {
			// Too few receivers of class t (a small group): promote the leaf with the most
			// budget left to relay in tree t too, rather than enter the group more than once.
			best := int32(-1)
			for _, m := range eff {
				if l := &h.nodes[m]; l.leaf && h.avail[m] == 0 && l.cap > 0 && (best < 0 || l.cap > h.nodes[best].cap) {
					best = m
				}
			}
			if best < 0 {
				break
			}
			h.avail[best] = h.nodes[best].cap
			slots, ok = h.fit(eff)
		}
		h.feas[i] = ok || i == 0 // the source feeds what nothing else can
		h.avail[i] = min(n.cap, slots)
	}
}

// fit sorts eff, the most capable first, and places its members breadth-first: it reports
// the slots left, and false when no placed member has a free slot for the next one.
func (h *hforest) fit(eff []int32) (int, bool) {
	slices.SortStableFunc(eff, func(a, b int32) int { return cmp.Compare(h.avail[b], h.avail[a]) })
	slots := 0
	for j, m := range eff {
		if j > 0 {
			if slots == 0 {
				return 0, false
			}
			slots--
		}
		slots += h.avail[m]
	}
	return slots, true
}

// process builds tree t inside node i, which must send d edges out of itself: it returns
// the receiver the edge into i must reach and the receivers that send i's d edges out,
// shallowest first.
func (h *hforest) process(i int32, d int) (tree.NodeID, []hslot) {
	n := &h.nodes[i]
	if n.leaf {
		n.cap -= d
		if d == 0 {
			return n.v, nil
		}
		return n.v, []hslot{{n.v, d}}
	}
	n.cap -= d
	eff := h.eff[i]
	m := len(eff)
	root := i == 0 // the source is the root of the top group
	off := 0       // index of the first member in the placement arrays
	if root {
		off = 1
	}
	slots := make([]int, m+off)
	parent := make([]int, m+off)
	if root {
		slots[0] = 1
		parent[0] = -1
	}
	// The group's exports leave from the top of it when they can (fewer hops to the groups
	// they feed): reserve them on the first members, keeping a slot on each for the
	// placement; if the placement then fails, they come from the slots left after it.
	ext := make([]int, m+off)
	if d > 0 && !h.place(eff, d, slots, parent, ext, off, true) {
		clear(ext)
		h.place(eff, d, slots, parent, ext, off, false)
	} else if d == 0 {
		h.place(eff, 0, slots, parent, ext, off, false)
	}
	used := make([]int, m+off)
	for k := 1; k < m+off; k++ {
		used[parent[k]]++
	}
	entries := make([]tree.NodeID, m+off)
	exps := make([][]hslot, m+off)
	if root {
		entries[0] = n.v
		exps[0] = []hslot{{n.v, used[0]}}
	}
	for j := range m {
		k := j + off
		entries[k], exps[k] = h.process(eff[j], used[k]+ext[k])
	}
	for k := 1; k < m+off; k++ {
		p := parent[k]
		for exps[p][0].n == 0 {
			exps[p] = exps[p][1:]
		}
		from := exps[p][0].v
		exps[p][0].n--
		h.edges = append(h.edges, h.pt.edge(from, entries[k]))
	}
	var out []hslot
	for k := off; k < m+off; k++ {
		for _, s := range exps[k] {
			if s.n > 0 {
				out = append(out, s)
			}
		}
	}
	return entries[off], out
}

// place hangs the members eff below one another breadth-first (and below the source, at
// the top: slots[0] is its), filling parent, and takes the d exports into ext: reserved
// first on the first members when early is set, else from the slots left. It reports
// whether the placement succeeded.
func (h *hforest) place(eff []int32, d int, slots, parent, ext []int, off int, early bool) bool {
	m := len(eff)
	if off == 1 {
		slots[0], parent[0] = 1, -1
	}
	rem := d
	q := 0
	for j := range m {
		k := j + off
		if k > 0 {
			for q < k && slots[q] == 0 {
				q++
			}
			if q == k {
				if off == 0 {
					return false
				}
				q = 0 // only at the top: the source takes one more
				slots[0]++
			}
			parent[k] = q
			slots[q]--
		} else {
			parent[k] = -1
		}
		slots[k] = h.avail[eff[j]]
		if early && rem > 0 {
			e := min(slots[k]-1, rem)
			if k == m+off-1 || j == m-1 {
				e = min(slots[k], rem)
			}
			e = max(e, 0)
			ext[k] = e
			slots[k] -= e
			rem -= e
		}
	}
	for k := off; k < m+off && rem > 0; k++ {
		e := min(slots[k], rem)
		ext[k] += e
		slots[k] -= e
		rem -= e
	}
	return rem == 0
}

// sorted returns the edges breadth-first from the source.
func (h *hforest) sorted() []Edge {
	// Counting sort of the edges by From, then breadth-first from the source.
	n := h.pt.g.NumNodes()
	start := make([]int32, n+1)
	for _, e := range h.edges {
		start[e.From+1]++
	}
	for v := range n {
		start[v+1] += start[v]
	}
	byFrom := make([]int32, len(h.edges))
	fill := slices.Clone(start[:n])
	for i, e := range h.edges {
		byFrom[fill[e.From]] = int32(i)
		fill[e.From]++
	}
	out := make([]Edge, 0, len(h.edges))
	queue := make([]tree.NodeID, 1, len(h.edges)+1)
	queue[0] = h.pt.root
	for q := 0; q < len(queue); q++ {
		v := queue[q]
		for _, i := range byFrom[start[v]:start[v+1]] {
			out = append(out, h.edges[i])
			queue = append(queue, h.edges[i].To)
		}
	}
	return out
}
