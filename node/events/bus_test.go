package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type decoded struct {
	ID     uint64 `json:"id"`
	Type   string `json:"type"`
	N      int    `json:"n"`
	Missed uint64 `json:"missed"`
	Agent  string `json:"agent"`
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("event %s: %v", b, err)
	}
	return d
}

func TestPublishEncodesOneObject(t *testing.T) {
	b := New(Options{})
	ev, err := b.Publish("progress", map[string]any{"n": 3, "receiver": "a"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(ev.JSON, &m); err != nil {
		t.Fatalf("%s: %v", ev.JSON, err)
	}
	if m["id"] != 1.0 || m["type"] != "progress" || m["n"] != 3.0 || m["receiver"] != "a" || m["time"] == nil {
		t.Fatalf("event %s", ev.JSON)
	}
	if ev, err = b.Publish("empty", nil); err != nil || decode(t, ev.JSON).ID != 2 {
		t.Fatalf("empty payload: %s %v", ev.JSON, err)
	}
	if _, err := b.Publish("bad", []int{1}); err == nil {
		t.Fatal("a payload that is not an object was published")
	}
	if b.Last() != 2 {
		t.Fatalf("last id %d after a refused payload, want 2", b.Last())
	}
}

func TestSubscriberSeesEveryEventInOrder(t *testing.T) {
	b := New(Options{Queue: 100000})
	_, _, s := b.Subscribe(0)
	defer s.Close()
	const n = 5000
	var wg sync.WaitGroup
	for w := range 4 { // concurrent publishers: ids still arrive in order, none lost
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 4 {
				if _, err := b.Publish("x", map[string]int{"n": w*n + i}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want := uint64(1); want <= n; want++ {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", want, err)
		}
		if ev.ID != want || decode(t, ev.JSON).ID != want {
			t.Fatalf("got id %d, want %d", ev.ID, want)
		}
	}
	wg.Wait()
}

func TestReplayFromRing(t *testing.T) {
	b := New(Options{Ring: 8})
	for i := range 20 {
		if _, err := b.Publish("x", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		after      uint64
		first, cnt uint64
		missed     uint64
	}{
		{after: 0, first: 13, cnt: 8},             // a new client: the whole ring, no gap
		{after: 15, first: 16, cnt: 5},            // a reconnect within the ring
		{after: 20, first: 0, cnt: 0},             // up to date
		{after: 10, first: 13, cnt: 8, missed: 2}, // 11 and 12 were overwritten
		{after: 99, first: 13, cnt: 8},            // an id of another run of the agent
	} {
		replay, missed, s := b.Subscribe(c.after)
		s.Close()
		if uint64(len(replay)) != c.cnt || missed != c.missed || c.cnt > 0 && replay[0].ID != c.first {
			t.Errorf("after %d: %d events from %v, missed %d; want %d from %d, missed %d", c.after, len(replay), replay, missed, c.cnt, c.first, c.missed)
		}
		for i := 1; i < len(replay); i++ {
			if replay[i].ID != replay[i-1].ID+1 {
				t.Errorf("after %d: replay out of order", c.after)
			}
		}
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	b := New(Options{Queue: 4})
	_, _, slow := b.Subscribe(0)
	_, _, fast := b.Subscribe(0)
	defer fast.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 { // would block forever if Publish waited for the slow one
			if _, err := b.Publish("x", map[string]int{"n": i}); err != nil {
				t.Error(err)
			}
			if _, err := fast.Next(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("publishing blocked on a slow subscriber")
	}
	if _, err := slow.Next(ctx); !errors.Is(err, ErrSlow) {
		t.Fatalf("slow subscriber: %v, want ErrSlow", err)
	}
	slow.Close()
	// The dropped client resumes from the ring with the last id it read (none here).
	replay, missed, s := b.Subscribe(0)
	s.Close()
	if len(replay) != 100 || missed != 0 {
		t.Fatalf("resume: %d events, %d missed", len(replay), missed)
	}
}

func TestCloseEndsSubscribers(t *testing.T) {
	b := New(Options{})
	_, _, s := b.Subscribe(0)
	b.Close()
	b.Close()
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := b.Publish("x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}

// sseClient reads a Server-Sent Events stream: its data lines, and the id line of each.
type sseClient struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openSSE(t *testing.T, url string, last string) *sseClient {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %s, content type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &sseClient{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's id line ("" when none) and data.
func (c *sseClient) next(t *testing.T) (id string, data []byte) {
	t.Helper()
	for c.sc.Scan() {
		line := c.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = []byte(strings.TrimPrefix(line, "data: "))
		case line == "" && data != nil:
			return id, data
		}
	}
	t.Fatalf("stream ended: %v", c.sc.Err())
	return "", nil
}

func TestSSEHelloReplayLiveAndLastEventID(t *testing.T) {
	b := New(Options{Ring: 4})
	srv := httptest.NewServer(b.Handler(func() any { return map[string]string{"agent": "a1"} }))
	t.Cleanup(srv.Close)
	for i := range 6 {
		if _, err := b.Publish("x", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	c := openSSE(t, srv.URL, "")
	if id, d := c.next(t); id != "" || decode(t, d).Type != "hello" || decode(t, d).Agent != "a1" {
		t.Fatalf("first event id %q %s, want hello without id", id, d)
	}
	for want := 3; want <= 6; want++ { // the ring: events 3..6
		id, d := c.next(t)
		if id != fmt.Sprint(want) || decode(t, d).ID != uint64(want) || decode(t, d).N != want-1 {
			t.Fatalf("replay: id %q %s, want %d", id, d, want)
		}
	}
	if _, err := b.Publish("live", map[string]int{"n": 42}); err != nil {
		t.Fatal(err)
	}
	if id, d := c.next(t); id != "7" || decode(t, d).Type != "live" {
		t.Fatalf("live: id %q %s", id, d)
	}

	// A reconnect with Last-Event-ID 5 gets 6 and 7; one with 1 gets a gap of 2 first.
	c2 := openSSE(t, srv.URL, "5")
	c2.next(t) // hello
	if id, _ := c2.next(t); id != "6" {
		t.Fatalf("resume after 5 starts at %q", id)
	}
	c3 := openSSE(t, srv.URL, "1")
	c3.next(t) // hello
	if id, d := c3.next(t); id != "" || decode(t, d).Type != "gap" || decode(t, d).Missed != 2 {
		t.Fatalf("resume after 1: id %q %s, want a gap of 2", id, d)
	}
	if id, _ := c3.next(t); id != "4" {
		t.Fatalf("after the gap: %q", id)
	}

	resp, err := http.Get(srv.URL + "?last=abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad Last-Event-ID: %s", resp.Status)
	}
}

func TestSSEBoundsStreams(t *testing.T) {
	b := New(Options{MaxStreams: 1})
	srv := httptest.NewServer(b.Handler(nil))
	t.Cleanup(srv.Close)
	openSSE(t, srv.URL, "")
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream: %s, want 503", resp.Status)
	}
}

// BenchmarkPublish measures a progress-sized event published to 4 subscribers that read.
func BenchmarkPublish(b *testing.B) {
	bus := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			replay, _, s := bus.Subscribe(last)
			for {
				if len(replay) > 0 {
					last, replay = replay[len(replay)-1].ID, nil
				}
				ev, err := s.Next(ctx)
				if errors.Is(err, ErrSlow) { // dropped: resume after the last event read, as a client would
					s.Close()
					replay, _, s = bus.Subscribe(last)
					continue
				}
				if err != nil {
					s.Close()
					return
				}
				last = ev.ID
			}
		}()
	}
	type progress struct {
		Transfer, Receiver string
		Held, Total        int
		ElapsedMS          float64
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := bus.Publish("progress", progress{Transfer: "6e20a64a82f6aabf", Receiver: "a04", Held: i, Total: 1 << 20, ElapsedMS: 301.7}); err != nil {
			b.Fatal(err)
		}
	}
	cancel()
	bus.Close()
	wg.Wait()
}
