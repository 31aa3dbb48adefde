package transfer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

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

// A leaf gossip declares dead while its stream is idle (its parent waits on the rate cap) is
// cut after the grace; when gossip lists it alive again within refuteWindow, its parent opens
// the stream again instead of failing it, and it ends verified.
func TestEngineLeafBackFromGossipDeath(t *testing.T) {
	agents, _ := newEngineCluster(t, 3, nil)
	src := agents[0]
	data := randomObject(420_000, 9)
	m, err := src.store.Put(bytes.NewReader(data), 60_000)
	if err != nil {
		t.Fatal(err)
	}
	members := src.e.members.(*membership.Static)
	dsts := []string{"a01", "a02"}
	p, raw := testPlan(t, src.name, dsts, scheduler.Options{Strategy: strategy(t, "chain")})
	out, err := src.e.Prepare(m, p)
	if err != nil {
		t.Fatal(err)
	}
	// After the 256 KiB burst, a 60 kB chunk every 3 s: the streams idle past the grace.
	done := make(chan Report, 1)
	go func() {
		done <- src.e.Push(context.Background(), out, Push{ID: "refute", PlanRaw: raw, Receivers: dsts, RateLimit: 20_000})
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20 s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	relay, leaf := agents[1], agents[2]
	if p.Children("a00", 0)[0] == "a02" {
		relay, leaf = agents[2], agents[1]
	}
	waitFor("chunk at the leaf", func() bool {
		for _, ts := range leaf.e.Transfers() {
			return ts.Held > 0
		}
		return false
	})
	members.SetState(leaf.name, "dead")
	childErrors := relay.m.errors.WithLabelValues("child")
	waitFor("cut of the leaf's stream", func() bool { return testutil.ToFloat64(childErrors) > 0 })
	members.SetState(leaf.name, "alive")
	rep := <-done
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Errorf("%s: %s", r.Receiver, r.Err)
		}
	}
	if !bytes.Equal(leaf.store.object(m.Digest()), data) {
		t.Fatal("the leaf's copy differs")
	}
}
