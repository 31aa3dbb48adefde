package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Timings of the Server-Sent Events stream.
const (
	keepAlive    = 15 * time.Second // a comment line on an idle stream
	writeTimeout = 10 * time.Second // a client that takes nothing for that long is cut off
	retryMillis  = 1000             // the reconnection delay the client is told
)

// Handler serves the bus as Server-Sent Events (see the package doc). hello, when not nil,
// builds the payload of the "hello" event sent first (no id); it is called once per stream.
// A request's Last-Event-ID header (or its "last" query parameter, for clients that cannot
// set headers) selects the replay. The stream ends when the client goes, when it falls
// behind (it then reconnects and resumes from the ring), or when the bus closes.
func (b *Bus) Handler(hello func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "events: GET only", http.StatusMethodNotAllowed)
			return
		}
		after, err := lastEventID(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case b.streams <- struct{}{}:
			defer func() { <-b.streams }()
		default:
			http.Error(w, "events: too many streams", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		replay, missed, sub := b.Subscribe(after)
		defer sub.Close()
		_ = b.serve(r.Context(), w, hello, replay, missed, sub)
	})
}

// lastEventID reads the id the client last saw (0: none).
func lastEventID(r *http.Request) (uint64, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		v = r.URL.Query().Get("last")
	}
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("events: Last-Event-ID %q is not an event id", v)
	}
	return id, nil
}

// serve writes the stream until the client goes or the subscription ends.
func (b *Bus) serve(ctx context.Context, w http.ResponseWriter, hello func() any, replay []Event, missed uint64, sub *Sub) error {
	rc := http.NewResponseController(w)
	write := func(s string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write(fmt.Sprintf("retry: %d\n\n", retryMillis)); err != nil {
		return err
	}
	if hello != nil {
		if err := writeAnon(write, "hello", hello()); err != nil {
			return err
		}
	}
	if missed > 0 {
		if err := writeAnon(write, "gap", map[string]uint64{"missed": missed}); err != nil {
			return err
		}
	}
	for _, ev := range replay {
		if err := write(frame(ev)); err != nil {
			return err
		}
	}
	for {
		nctx, cancel := context.WithTimeout(ctx, keepAlive)
		ev, err := sub.Next(nctx)
		cancel()
		switch {
		case err == nil:
			if err := write(frame(ev)); err != nil {
				return err
			}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if err := write(": keep-alive\n\n"); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// frame is one event on the wire. Encoded JSON holds no newline.
func frame(ev Event) string {
	return fmt.Sprintf("id: %d\ndata: %s\n\n", ev.ID, ev.JSON)
}

// writeAnon writes an event without an id (hello, gap): type plus payload's fields.
func writeAnon(write func(string) error, typ string, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil || len(body) < 2 || body[0] != '{' {
		body = []byte("{}")
	}
	tq, _ := json.Marshal(typ)
	s := `{"type":` + string(tq)
	if len(body) > 2 {
		s += "," + string(body[1:])
	} else {
		s += "}"
	}
	return write("data: " + s + "\n\n")
}
