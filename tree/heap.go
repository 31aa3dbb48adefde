package tree

// nodeHeap is an indexed 4-ary min-heap of node ids keyed by float64, with decrease-key.
// Keys are stored next to the ids (no interface boxing, no indirection when comparing);
// ties are broken by node id so every algorithm is deterministic. It is allocated once per
// algorithm run (O(V) memory); push and pop cost O(log V).
type nodeHeap struct {
	items []heapItem
	keys  []float64 // keys[v], valid while v is in the heap (and after it is popped)
	pos   []int32   // position of v in items, -1 if absent
}

type heapItem struct {
	key float64
	v   NodeID
}

func newNodeHeap(n int) *nodeHeap {
	h := &nodeHeap{items: make([]heapItem, 0, n), keys: make([]float64, n), pos: make([]int32, n)}
	for i := range h.pos {
		h.pos[i] = -1
	}
	return h
}

func (h *nodeHeap) Len() int { return len(h.items) }

// reset empties the heap in O(size).
func (h *nodeHeap) reset() {
	for _, it := range h.items {
		h.pos[it.v] = -1
	}
	h.items = h.items[:0]
}

// push inserts v with key k, or lowers v's key to k if v is present with a larger key.
func (h *nodeHeap) push(v NodeID, k float64) {
	if p := h.pos[v]; p >= 0 {
		if k < h.items[p].key {
			h.keys[v] = k
			h.items[p].key = k
			h.up(int(p))
		}
		return
	}
	h.keys[v] = k
	h.items = append(h.items, heapItem{k, v})
	h.up(len(h.items) - 1)
}

// pop removes and returns the node with the smallest key.
func (h *nodeHeap) pop() (NodeID, float64) {
	top := h.items[0]
	h.pos[top.v] = -1
	last := len(h.items) - 1
	if last > 0 {
		h.items[0] = h.items[last]
		h.items = h.items[:last]
		h.down(0)
	} else {
		h.items = h.items[:0]
	}
	return top.v, top.key
}

func heapLess(a, b heapItem) bool {
	return a.key < b.key || (a.key == b.key && a.v < b.v)
}

func (h *nodeHeap) up(i int) {
	it := h.items[i]
	for i > 0 {
		p := (i - 1) / 4
		if !heapLess(it, h.items[p]) {
			break
		}
		h.items[i] = h.items[p]
		h.pos[h.items[i].v] = int32(i)
		i = p
	}
	h.items[i] = it
	h.pos[it.v] = int32(i)
}

func (h *nodeHeap) down(i int) {
	n := len(h.items)
	it := h.items[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if heapLess(h.items[j], h.items[m]) {
				m = j
			}
		}
		if !heapLess(h.items[m], it) {
			break
		}
		h.items[i] = h.items[m]
		h.pos[h.items[i].v] = int32(i)
		i = m
	}
	h.items[i] = it
	h.pos[it.v] = int32(i)
}
