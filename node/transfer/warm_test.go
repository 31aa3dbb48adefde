package transfer

import (
	"bytes"
	"context"
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

// The setup wave: a relay answers its parent's header only once its own child's stream is
// open, so a stripe's streams all open before its first chunk leaves the source (on idle
// links). Here the relay's dial to the leaf is held: the relay must answer after the leaf.
func TestEngineSetupWave(t *testing.T) {
	agents, net := newEngineCluster(t, 3, nil)
	src := agents[0]
	m, err := src.store.Put(bytes.NewReader(randomObject(20_000, 7)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	release, hit := net.gate("a02")
	defer release()
	dsts := []string{"a01", "a02"}
	opts := scheduler.Options{Strategy: strategy(t, "chain")}
	p, raw := testPlan(t, src.name, dsts, opts)
	if c := p.Children("a01", 0); len(c) != 1 || c[0] != "a02" {
		t.Fatalf("plan: a01's children %v, want a02", c)
	}
	out, err := src.e.Prepare(m, p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Report, 1)
	go func() { done <- src.e.Push(context.Background(), out, Push{ID: "wave", PlanRaw: raw, Receivers: dsts}) }()
	select {
	case <-hit:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay never dialled the leaf")
	}
	release()
	var rep Report
	select {
	case rep = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("push did not end")
	}
	if len(rep.Receivers) != 2 || rep.Failed() > 0 {
		t.Fatalf("report %+v", rep.Receivers)
	}
	if got := net.heldOrder(); fmt.Sprint(got) != "[a02 a01]" {
		t.Fatalf("header answers in the order %v, want the leaf's before the relay's [a02 a01]", got)
	}
}
