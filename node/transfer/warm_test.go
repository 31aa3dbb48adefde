package transfer

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/treecast/treecast/scheduler"
)

// A receiver's first stream makes the engine warm the connections to its children in every
// stripe (a forest's later headers then find them open); the source's children, which the
// source dials at once, and leaves are not warmed by receivers.
func TestEngineWarmsChildren(t *testing.T) {
	agents, net := newEngineCluster(t, 9, nil)
	src := agents[0]
	data := randomObject(20_000, 5)
	m, err := src.store.Put(bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	dsts := []string{"a01", "a02", "a03", "a04", "a05", "a06", "a07", "a08"}
	opts := scheduler.Options{Strategy: strategy(t, "forest"), Stripes: 3, Fanout: 2}
	p, _ := testPlan(t, src.name, dsts, opts)
	want := map[string]bool{}
	for _, r := range dsts {
		for s := range p.Stripes() {
			for _, c := range p.Children(r, s) {
				want[c] = true
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the plan has no relay")
	}
	rep := push(t, src, m, dsts, opts, nil)
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Fatalf("%s: %s", r.Receiver, r.Err)
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		net.mu.Lock()
		got := fmt.Sprint(keys(net.warmed))
		net.mu.Unlock()
		if got == fmt.Sprint(keys(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("warmed %s, want the relays' children %v", got, keys(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
