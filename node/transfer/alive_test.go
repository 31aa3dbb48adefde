package transfer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/scheduler"
)

// A child gossip wrongly declares dead (its probes lost on saturated links) keeps its stream
// while the stream shows it alive, and ends verified; the data plane outvotes gossip.
func TestEngineStreamOutvotesGossip(t *testing.T) {
	agents, _ := newEngineCluster(t, 3, nil)
	src := agents[0]
	data := randomObject(1_200_000, 7)
	m, err := src.store.Put(bytes.NewReader(data), 20_000)
	if err != nil {
		t.Fatal(err)
	}
	members := src.e.members.(*membership.Static)
	dsts := []string{"a01", "a02"}
	opts := scheduler.Options{Strategy: strategy(t, "chain")}
	p, raw := testPlan(t, src.name, dsts, opts)
	out, err := src.e.Prepare(m, p)
	if err != nil {
		t.Fatal(err)
	}
	// 1.2 MB at 400 kB/s after a 256 KiB burst: about 2.4 s, past the grace of a child
	// declared gone.
	done := make(chan Report, 1)
	go func() {
		done <- src.e.Push(context.Background(), out, Push{ID: "outvote", PlanRaw: raw, Receivers: dsts, RateLimit: 400_000})
	}()
	deadline := time.Now().Add(10 * time.Second)
	held := func() int {
		for _, ts := range agents[2].e.Transfers() {
			return ts.Held
		}
		return 0
	}
	for held() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a02 received nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	members.SetState("a02", "dead") // and it stays so: only the stream speaks for a02
	rep := <-done
	var got []string
	for _, r := range rep.Receivers {
		got = append(got, fmt.Sprintf("%s:%v", r.Receiver, r.OK))
		if !r.OK {
			t.Errorf("%s: %s", r.Receiver, r.Err)
		}
	}
	if fmt.Sprint(got) != "[a01:true a02:true]" {
		t.Fatalf("results %v", got)
	}
	if !bytes.Equal(agents[2].store.object(m.Digest()), data) {
		t.Fatal("a02's copy differs")
	}
}
