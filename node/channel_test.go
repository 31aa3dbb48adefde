package node_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// channelOf returns agent a's view of channel name.
func channelOf(a *node.Agent, name string) node.ChannelStatus {
	for _, ch := range a.Channels() {
		if ch.Name == name {
			return ch
		}
	}
	return node.ChannelStatus{}
}

// startExtra starts one more agent named name on dir, subscribed to channels, joining the
// cluster's first agent; t.Cleanup closes it.
func startExtra(t *testing.T, c *nodetest.Cluster, name, dir, gossipAddr string, channels ...string) *node.Agent {
	t.Helper()
	cfg := node.DefaultConfig(name, dir)
	cfg.ChunkSize = 16 << 10
	cfg.Channels = channels
	cfg.Join = []string{c.Agents[0].GossipAddr()}
	if gossipAddr != "" {
		cfg.GossipAddr = gossipAddr
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	if err := c.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func holds(a *node.Agent, digest string, want []byte) bool {
	var buf bytes.Buffer
	return a.CopyObject(context.Background(), digest, &buf) == nil && bytes.Equal(buf.Bytes(), want)
}

// TestChannelLateSubscriber: an agent that joins after a publish receives the channel's latest
// version by itself, from a holder; an agent not subscribed to the channel fetches nothing.
func TestChannelLateSubscriber(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: 16 << 10, Channels: func(i int) []string {
		return [][]string{nil, {"web"}, {"db"}}[i]
	}})
	data := randomBytes(150_000, 41)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Agents[0].Publish(ctx, "web", node.Object{Path: mustWrite(t, c, 0, "app.tar", data)}, node.PushOptions{})
	if err != nil || len(rep.Receivers) != 1 || rep.Failed() != 0 {
		t.Fatalf("publish: %v %+v", err, rep.Receivers)
	}
	pub := channelOf(c.Agents[0], "web").Latest
	if pub.Digest != rep.Digest || pub.Origin != "a00" || pub.Version == 0 {
		t.Fatalf("publisher's table has %+v, want %s from a00", pub, rep.Digest)
	}

	late := startExtra(t, c, "late", t.TempDir(), "", "web")
	if err := c.WaitFor(ctx, "the late subscriber to catch up", func() bool { return holds(late, rep.Digest, data) }); err != nil {
		t.Fatal(err)
	}
	st := channelOf(late, "web")
	if !st.Subscribed || !st.Latest.Same(pub) || !st.Held.Same(pub) || st.CatchupErr != "" {
		t.Errorf("late subscriber's channel status %+v, want latest and held %+v", st, pub)
	}
	if got := late.Metric("treecast_catchup_bytes_total"); got != float64(len(data)) {
		t.Errorf("late subscriber fetched %v bytes by catch-up, want the object's %d once", got, len(data))
	}

	// a02 (channel db) learns the version but never fetches it: wait until it knows it and has
	// scanned its table since.
	other := c.Agents[2]
	if err := c.WaitFor(ctx, "a02 to learn web's version", func() bool { return channelOf(other, "web").Latest.Same(pub) }); err != nil {
		t.Fatal(err)
	}
	scans := other.Metric("treecast_channel_scans_total")
	if err := c.WaitFor(ctx, "a02 to scan its channel table", func() bool { return other.Metric("treecast_channel_scans_total") >= scans+2 }); err != nil {
		t.Fatal(err)
	}
	if st := channelOf(other, "web"); st.Subscribed || st.Held.Digest != "" {
		t.Errorf("a02 (not subscribed to web): %+v", st)
	}
	if _, err := c.Read("a02", rep.Digest); err == nil || other.Metric("treecast_catchups_total") != 0 || other.Metric("treecast_bytes_in_total") != 0 {
		t.Errorf("a02, not subscribed to web, fetched its version (%v catch-ups, %v bytes in)",
			other.Metric("treecast_catchups_total"), other.Metric("treecast_bytes_in_total"))
	}
}

// TestChannelCatchupAfterDowntime: a subscriber killed before a publish catches up when it
// restarts on its data directory, and the older version it remembers never replaces the newer
// one, on it or on the others.
func TestChannelCatchupAfterDowntime(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{ChunkSize: 16 << 10, Channels: func(i int) []string {
		return [][]string{nil, {"web"}, {"web"}}[i]
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	v1 := randomBytes(100_000, 42)
	rep1, err := c.Agents[0].Publish(ctx, "web", node.Object{Path: mustWrite(t, c, 0, "v1.tar", v1)}, node.PushOptions{})
	if err != nil || rep1.Failed() != 0 || len(rep1.Receivers) != 2 {
		t.Fatalf("publish v1: %v %+v", err, rep1.Receivers)
	}
	if err := c.WaitFor(ctx, "a02 to record v1 as held", func() bool { return channelOf(c.Agents[2], "web").Held.Digest == rep1.Digest }); err != nil {
		t.Fatal(err)
	}
	ver1 := channelOf(c.Agents[0], "web").Latest
	gossipAddr := c.Agents[2].GossipAddr()
	if err := c.Agents[2].Kill(); err != nil {
		t.Logf("kill a02: %v", err)
	}

	v2 := randomBytes(120_000, 43)
	rep2, err := c.Agents[0].Publish(ctx, "web", node.Object{Path: mustWrite(t, c, 0, "v2.tar", v2)}, node.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep2.Receivers {
		if r.Receiver == "a01" && !r.OK {
			t.Fatalf("a01: %s", r.Err)
		}
	}
	latest := channelOf(c.Agents[0], "web").Latest
	if latest.Digest != rep2.Digest || latest.Version <= ver1.Version {
		t.Fatalf("publisher's latest %+v, want v2 %s above v1's version %d", latest, rep2.Digest, ver1.Version)
	}

	if err := c.WaitFor(ctx, "a00 to see a02 dead", func() bool {
		for _, m := range c.Agents[0].Members() {
			if m.Name == "a02" {
				return m.State == "dead"
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	a02 := startExtra(t, c, "a02", c.Dirs[2], gossipAddr, "web")
	if err := c.WaitFor(ctx, "the restarted a02 to catch up to v2", func() bool { return holds(a02, rep2.Digest, v2) }); err != nil {
		t.Fatal(err)
	}
	if got := a02.Metric("treecast_catchup_bytes_total"); got != float64(len(v2)) {
		t.Errorf("a02 fetched %v bytes by catch-up, want v2's %d once", got, len(v2))
	}
	if err := c.WaitFor(ctx, "a02 to record v2 as held", func() bool { return channelOf(a02, "web").Held.Same(latest) }); err != nil {
		t.Error(err, channelOf(a02, "web"))
	}
	for _, a := range []*node.Agent{c.Agents[0], c.Agents[1], a02} {
		if got := channelOf(a, "web").Latest; !got.Same(latest) {
			t.Errorf("%s: latest %+v, want v2 %+v (a02 remembered v1)", a.Name(), got, latest)
		}
	}
	if !holds(a02, rep1.Digest, v1) {
		t.Error("a02 lost v1, which it held before its downtime")
	}
}
