package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrSlow is returned by [Sub.Next] to a subscriber dropped because its queue was full.
var ErrSlow = errors.New("events: subscriber too slow, dropped")

// ErrClosed is returned by [Sub.Next] after [Sub.Close] or [Bus.Close].
var ErrClosed = errors.New("events: closed")

// Event is one published event: its id, its type and its JSON encoding (one object with
// "id", "type" and "time" fields and the payload's).
type Event struct {
	ID   uint64
	Type string
	JSON []byte
}

// Options bound a bus.
type Options struct {
	Ring       int // recent events kept for replay (default 4096)
	Queue      int // events queued per subscriber before it is dropped (default 1024)
	MaxStreams int // concurrent Server-Sent Events streams of Handler (default 32)
	// Now is the clock of the events' "time" field (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Ring <= 0 {
		o.Ring = 4096
	}
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Bus is a bounded ring of recent events and a set of subscribers. All methods are safe for
// concurrent use; none blocks on a subscriber.
type Bus struct {
	opts    Options
	streams chan struct{} // a token per running SSE stream

	mu     sync.Mutex
	ring   []Event // ring[(id-1) % len] holds event id while it is recent
	last   uint64  // id of the last event published (0: none)
	subs   map[*Sub]struct{}
	closed bool
}

// New returns an empty bus.
func New(opts Options) *Bus {
	opts = opts.withDefaults()
	return &Bus{opts: opts, ring: make([]Event, opts.Ring), subs: map[*Sub]struct{}{}, streams: make(chan struct{}, opts.MaxStreams)}
}

// Publish encodes payload (a struct or map that encodes as a JSON object; nil for none) with
// the event's id, type and time, keeps it in the ring and queues it for every subscriber. It
// returns the event, or an error when payload does not encode as a JSON object (nothing is
// published then). Cost: one JSON encoding and O(subscribers).
func (b *Bus) Publish(typ string, payload any) (Event, error) {
	body := []byte("{}")
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return Event{}, fmt.Errorf("events: %s payload: %w", typ, err)
		}
		if len(body) < 2 || body[0] != '{' {
			return Event{}, fmt.Errorf("events: %s payload is not a JSON object", typ)
		}
	}
	tq, _ := json.Marshal(typ)
	now, _ := json.Marshal(b.opts.Now().UTC().Format(time.RFC3339Nano))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Event{}, ErrClosed
	}
	b.last++
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"id":%d,"type":%s,"time":%s`, b.last, tq, now)
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 1 { // not an empty object
		buf.WriteByte(',')
		buf.Write(rest)
	} else {
		buf.WriteByte('}')
	}
	ev := Event{ID: b.last, Type: typ, JSON: buf.Bytes()}
	b.ring[(ev.ID-1)%uint64(len(b.ring))] = ev
	for s := range b.subs {
		s.push(ev, b.opts.Queue)
	}
	return ev, nil
}

// Last is the id of the last event published (0: none yet).
func (b *Bus) Last() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Subscribe returns the events of the ring after id after, oldest first, and a subscription
// to every event published from now on, with nothing lost or repeated between the two.
// missed counts the events after after that the ring no longer holds (0 when the replay is
// complete). An id the bus has not reached (a client of an earlier run of the agent) is
// treated as 0: the whole ring is replayed. The caller must Close the subscription. Cost:
// O(replayed events).
func (b *Bus) Subscribe(after uint64) (replay []Event, missed uint64, s *Sub) {
	s = &Sub{wake: make(chan struct{}, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.err = ErrClosed
		return nil, 0, s
	}
	if after > b.last {
		after = 0
	}
	oldest := uint64(1)
	if n := uint64(len(b.ring)); b.last > n {
		oldest = b.last - n + 1
	}
	if after+1 < oldest {
		if after > 0 {
			missed = oldest - after - 1
		}
		after = oldest - 1
	}
	for id := after + 1; id <= b.last; id++ {
		replay = append(replay, b.ring[(id-1)%uint64(len(b.ring))])
	}
	s.bus = b
	b.subs[s] = struct{}{}
	return replay, missed, s
}

// Close ends every subscription ([ErrClosed] once their queues are read) and refuses later
// events. Idempotent.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.end(ErrClosed)
		delete(b.subs, s)
	}
}

// Sub is one subscriber's queue of events.
type Sub struct {
	bus  *Bus
	wake chan struct{} // signalled when the queue grows or the subscription ends

	mu  sync.Mutex
	q   []Event
	err error // ErrSlow, ErrClosed: no more events after the queue
}

// push queues ev, or drops the subscriber when its queue holds limit events already. The
// bus's lock is held.
func (s *Sub) push(ev Event, limit int) {
	s.mu.Lock()
	if s.err == nil && len(s.q) >= limit {
		s.q, s.err = nil, ErrSlow
		delete(s.bus.subs, s)
	} else if s.err == nil {
		s.q = append(s.q, ev)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// end stops the subscription with err after what is queued.
func (s *Sub) end(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for one until ctx ends. It returns [ErrSlow] when the
// subscriber was dropped for falling behind (the events queued before are lost with it: the
// client resumes from the ring), [ErrClosed] when the subscription or the bus was closed,
// or ctx's error.
func (s *Sub) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if s.err == ErrSlow {
			s.mu.Unlock()
			return Event{}, ErrSlow
		}
		if len(s.q) > 0 {
			ev := s.q[0]
			s.q[0] = Event{}
			s.q = s.q[1:]
			s.mu.Unlock()
			return ev, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-s.wake:
		}
	}
}

// Close ends the subscription. Idempotent.
func (s *Sub) Close() {
	if s.bus != nil {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	}
	s.end(ErrClosed)
}
