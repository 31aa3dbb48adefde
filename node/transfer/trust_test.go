package transfer

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/treecast/treecast/node/membership"
	"github.com/treecast/treecast/scheduler"
)

// stuckUp is a child that answers the header, reports what it is told to, and never reads
// a chunk: SendFrame blocks until the stream is cancelled.
type stuckUp struct {
	ctx context.Context
	ups []UpMsg
	mu  sync.Mutex
}

func (u *stuckUp) SendHeader(Header) error   { return nil }
func (u *stuckUp) RecvHeld() ([]byte, error) { return nil, nil }
func (u *stuckUp) SendFrame(Frame) error {
	<-u.ctx.Done()
	return u.ctx.Err()
}
func (u *stuckUp) CloseSend() error { return nil }
func (u *stuckUp) RecvUp() (UpMsg, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.ups) > 0 {
		m := u.ups[0]
		u.ups = u.ups[1:]
		return m, nil
	}
	<-u.ctx.Done()
	return UpMsg{}, io.EOF
}

type oneChild struct {
	up func(ctx context.Context, child string) Upstream
}

func (o oneChild) OpenPush(ctx context.Context, child, _ string) (Upstream, error) {
	return o.up(ctx, child), nil
}
func (o oneChild) FetchChunk(context.Context, string, string, int) ([]byte, error) {
	return nil, errors.New("no fetch")
}

// TestLyingAndStuckChild: a child that vouches for a receiver outside its subtree is not
// believed (the lie is counted), and a child that stops reading is failed after the send
// timeout, so the push ends for the others instead of hanging.
func TestLyingAndStuckChild(t *testing.T) {
	a := &testAgent{name: "a00", store: newMemStore(), m: NewMetrics(nilRegistry())}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { a.cancel(); a.wg.Wait() })
	members := membership.NewStatic(membership.Member{Name: "a00", State: "alive"}, membership.Member{Name: "a01", State: "alive"},
		membership.Member{Name: "a02", State: "alive"})
	net := oneChild{up: func(ctx context.Context, child string) Upstream {
		if child == "a01" { // a01 claims a02, which is not below it in the plan, verified
			return &stuckUp{ctx: ctx, ups: []UpMsg{{Receiver: "a02", Final: true, OK: true}}}
		}
		return &stuckUp{ctx: ctx}
	}}
	a.e = New(Config{Name: "a00", QueueChunks: 2, StallTimeout: time.Minute, SendTimeout: 200 * time.Millisecond},
		Deps{Store: a.store, Members: members, Transport: net, Metrics: a.m, Context: a.ctx, Go: a.goFunc})
	data := randomObject(5000, 1)
	m, _ := a.store.Put(bytesReader(data), 1000)
	// a00 sends to a01 and to a02 directly (unicast): a01's subtree is a01 alone.
	p, raw := testPlan(t, "a00", []string{"a01", "a02"}, scheduler.Options{Strategy: strategy(t, "unicast")})
	out, err := a.e.Prepare(m, p)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep := a.e.Push(context.Background(), out, Push{ID: "lie", PlanRaw: raw, Receivers: []string{"a01", "a02"}})
	if time.Since(start) > 20*time.Second {
		t.Fatalf("the push took %v with a stuck child", time.Since(start))
	}
	for _, r := range rep.Receivers {
		if r.OK {
			t.Errorf("%s reported verified (via %q), but nobody received anything", r.Receiver, r.Via)
		}
	}
	if got := testutil.ToFloat64(a.m.reportsRejected); got < 1 {
		t.Errorf("the lie was not counted: %v", got)
	}
}
