package tree

// nodeHeap is an indexed binary min-heap of node ids keyed by float64, with decrease-key.
// It is allocated once per algorithm run (O(V) memory) and reset between uses in O(size).
type nodeHeap struct {
	items []NodeID
	keys  []float64 // keys[v], valid while v is in the heap
	pos   []int32   // position of v in items, -1 if absent
}

func newNodeHeap(n int) *nodeHeap {
	h := &nodeHeap{keys: make([]float64, n), pos: make([]int32, n)}
	for i := range h.pos {
		h.pos[i] = -1
	}
	return h
}

func (h *nodeHeap) Len() int { return len(h.items) }

// push inserts v with key k, or lowers v's key to k if v is present with a larger key.
func (h *nodeHeap) push(v NodeID, k float64) {
	if p := h.pos[v]; p >= 0 {
		if k < h.keys[v] {
			h.keys[v] = k
			h.up(int(p))
		}
		return
	}
	h.keys[v] = k
	h.pos[v] = int32(len(h.items))
	h.items = append(h.items, v)
	h.up(len(h.items) - 1)
}

// pop removes and returns the node with the smallest key.
func (h *nodeHeap) pop() (NodeID, float64) {
	v := h.items[0]
	last := len(h.items) - 1
	h.swap(0, last)
	h.items = h.items[:last]
	h.pos[v] = -1
	if last > 0 {
		h.down(0)
	}
	return v, h.keys[v]
}

func (h *nodeHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if h.keys[a] != h.keys[b] {
		return h.keys[a] < h.keys[b]
	}
	return a < b // deterministic ties
}

func (h *nodeHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i]] = int32(i)
	h.pos[h.items[j]] = int32(j)
}

func (h *nodeHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *nodeHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
