package node_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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
