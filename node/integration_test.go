package node_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

func labels(i int) map[string]string {
	return map[string]string{"dc": "east", "pod": fmt.Sprintf("p%d", i%2), "rack": fmt.Sprintf("r%d", i%3)}
}

func channels(i int) []string {
	if i%2 == 1 {
		return []string{"web"}
	}
	return []string{"db"}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e37))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestClusterPush(t *testing.T) {
	c := nodetest.StartCluster(t, 6, nodetest.Options{Labels: labels, Channels: channels, ChunkSize: 16 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := 0
	for _, strat := range []string{"chain", "tree", "forest", "unicast"} {
		for _, target := range []string{"all", "rack=r1", "channel:web"} {
			k++
			data := randomBytes(200_000+k*1000, uint64(k))
			path := c.WriteFile(0, fmt.Sprintf("obj%d.bin", k), data)
			t.Run(strat+"/"+target, func(t *testing.T) {
				rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, target, node.PushOptions{Strategy: strat, Stripes: 3})
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Receivers) == 0 {
					t.Fatal("no receivers")
				}
				for _, r := range rep.Receivers {
					if !r.OK {
						t.Errorf("%s: %s", r.Receiver, r.Err)
					}
					got, err := c.Read(r.Receiver, rep.Digest)
					if err != nil {
						t.Errorf("%s: %v", r.Receiver, err)
					} else if !bytes.Equal(got, data) {
						t.Errorf("%s: copy differs", r.Receiver)
					}
				}
			})
		}
	}
}

func TestClusterCorruptChunkRefetched(t *testing.T) {
	var flips atomic.Int32
	c := nodetest.StartCluster(t, 5, nodetest.Options{ChunkSize: 8 << 10, Configure: func(i int, cfg *node.Config) {
		node.SetCorrupt(cfg, func(child string, index int, data []byte) []byte {
			if index%7 == 3 { // every relay flips a bit of some chunks it sends
				flips.Add(1)
				d := append([]byte(nil), data...)
				d[len(d)/2] ^= 0x10
				return d
			}
			return data
		})
	}})
	data := randomBytes(100_000, 7)
	path := c.WriteFile(0, "obj.bin", data)
	rep, err := c.Agents[0].Push(context.Background(), node.Object{Path: path}, "all", node.PushOptions{Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	if flips.Load() == 0 {
		t.Fatal("no chunk was corrupted")
	}
	for _, r := range rep.Receivers {
		if !r.OK {
			t.Errorf("%s: %s", r.Receiver, r.Err)
		}
		if got, err := c.Read(r.Receiver, rep.Digest); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs or missing: %v", r.Receiver, err)
		}
	}
	rejected := 0.0
	for _, a := range c.Agents[1:] {
		rejected += a.Metric("treecast_chunks_rejected_total")
	}
	if int(rejected) != int(flips.Load()) {
		t.Errorf("%v chunks rejected, %d corrupted", rejected, flips.Load())
	}
}

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }
