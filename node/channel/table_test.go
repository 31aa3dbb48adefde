package channel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func testChannels(t *testing.T) *Table {
	return NewTable(Config{Self: "x", DataDir: t.TempDir(), Subscribed: []string{"web"}}, prometheus.NewRegistry())
}

func dg(b byte) string { return "sha256:" + strings.Repeat(fmt.Sprintf("%02x", b), 32) }

// TestChannelMergeOrder: whatever order versions arrive in, every table ends with the same
// winner (highest version, then highest digest), and merge reports only what was news.
func TestChannelMergeOrder(t *testing.T) {
	vs := []Version{
		{Channel: "web", Digest: dg(1), Version: 10},
		{Channel: "web", Digest: dg(2), Version: 30},
		{Channel: "web", Digest: dg(3), Version: 20},
		{Channel: "web", Digest: dg(4), Version: 30}, // same version as dg(2): the larger digest wins
		{Channel: "db", Digest: dg(5), Version: 1},
	}
	want := map[string]string{"web": dg(4), "db": dg(5)}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		c := testChannels(t)
		order := r.Perm(len(vs))
		for _, k := range order {
			changed := c.merge([]Version{vs[k]})
			again := c.merge([]Version{vs[k]})
			if len(again) != 0 {
				t.Fatalf("round %d: merging %+v twice reported it new twice", round, vs[k])
			}
			cur := c.latest[vs[k].Channel]
			if len(changed) == 1 && !cur.Same(vs[k]) || len(changed) == 0 && vs[k].newer(cur) {
				t.Fatalf("round %d: merge of %+v reported %v, table has %+v", round, vs[k], changed, cur)
			}
		}
		for ch, d := range want {
			if got := c.latest[ch].Digest; got != d {
				t.Fatalf("round %d (order %v): %s latest %s, want %s", round, order, ch, got, d)
			}
		}
	}
}

func TestChannelNextVersion(t *testing.T) {
	c := testChannels(t)
	now := time.Unix(0, 1000)
	c.merge([]Version{{Channel: "web", Digest: dg(1), Version: 5000}}) // a publisher with a faster clock
	v := c.next("web", dg(2), "x", 10, now)
	if v.Version != 5001 || !v.newer(c.latest["web"]) {
		t.Errorf("next version %d after 5000 with a clock at 1000, want 5001", v.Version)
	}
	if v := c.next("db", dg(2), "x", 10, now); v.Version != 1000 {
		t.Errorf("first version %d, want the clock's 1000", v.Version)
	}
}

func TestChannelDecodeRejects(t *testing.T) {
	good := Version{Channel: "web", Digest: dg(1), Version: 1, Size: 3, Origin: "a"}
	if v, err := decodeChannelMsg(encodeChannelMsg(good)); err != nil || !v.Same(good) {
		t.Fatalf("round trip: %+v, %v", v, err)
	}
	bad := map[string][]byte{
		"empty":        nil,
		"kind":         append([]byte{'x'}, encodeChannelMsg(good)[1:]...),
		"json":         []byte("c{"),
		"channel name": encodeChannelMsg(Version{Channel: "a b", Digest: dg(1)}),
		"digest":       encodeChannelMsg(Version{Channel: "web", Digest: "sha256:../../etc"}),
		"size":         encodeChannelMsg(Version{Channel: "web", Digest: dg(1), Size: -1}),
		"pinned":       encodeChannelMsg(Version{Channel: "web", Digest: dg(1), Version: 1<<64 - 1}),
		"far future":   encodeChannelMsg(Version{Channel: "web", Digest: dg(1), Version: uint64(time.Now().Add(time.Hour).UnixNano())}),
	}
	for name, b := range bad {
		if _, err := decodeChannelMsg(b); !errors.Is(err, ErrChannelState) {
			t.Errorf("%s: %v, want ErrChannelState", name, err)
		}
	}
	many := `{"l":[` + strings.Repeat(`{"c":"w","d":"`+dg(1)+`"},`, maxChannels) + `{"c":"w","d":"` + dg(1) + `"}]}`
	if _, err := decodeChannelState([]byte(many)); !errors.Is(err, ErrChannelState) {
		t.Errorf("%d channels: %v, want ErrChannelState", maxChannels+1, err)
	}
}

func TestLocalityTier(t *testing.T) {
	self := map[string]string{"dc": "e", "pod": "p1", "rack": "r1"}
	for _, tc := range []struct {
		other map[string]string
		want  int
	}{
		{map[string]string{"dc": "e", "pod": "p1", "rack": "r1"}, 0},
		{map[string]string{"dc": "e", "pod": "p1", "rack": "r2"}, 1},
		{map[string]string{"dc": "e", "pod": "p2", "rack": "r1"}, 2},
		{map[string]string{"dc": "w", "pod": "p1", "rack": "r1"}, 3},
		{nil, 3},
	} {
		if got := localityTier(self, tc.other); got != tc.want {
			t.Errorf("tier of %v from %v: %d, want %d", tc.other, self, got, tc.want)
		}
	}
	if got := localityTier(nil, nil); got != 3 {
		t.Errorf("agents without labels: tier %d, want 3", got)
	}
}

// FuzzDecodeChannelState: gossip state from the network never panics, and what decodes is
// valid.
func FuzzDecodeChannelState(f *testing.F) {
	f.Add([]byte(`{"l":[{"c":"web","d":"` + dg(1) + `","v":3,"s":10,"o":"a"}]}`))
	f.Add(encodeChannelMsg(Version{Channel: "web", Digest: dg(2)}))
	f.Add([]byte(`{"l":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeChannelState(b); err == nil {
			for _, v := range append(s.Latest, s.Held...) {
				if v.check() != nil {
					t.Fatalf("decoded an invalid version %+v", v)
				}
			}
		}
		if v, err := decodeChannelMsg(b); err == nil && v.check() != nil {
			t.Fatalf("decoded an invalid message %+v", v)
		}
	})
}
