// Package events is an agent's event bus: what the agent sees happen (members joining and
// leaving, pushes starting, receivers' progress and results, repairs, channel versions), as
// a stream of JSON objects that the live web page, `curl -N` and other watchers read over
// Server-Sent Events.
//
// # The bus
//
// [Bus.Publish] gives an event the next id (1, 2, 3, ...), encodes it once as one JSON
// object with "id", "type" and "time" fields beside its payload's, keeps it in a ring of the
// most recent events (Options.Ring) and hands it to every subscriber. Publish never blocks
// and never waits for a subscriber: its cost is one JSON encoding, O(1) for the ring and
// O(subscribers) non-blocking queue appends, under one mutex. It is safe to call from any
// goroutine, including gossip callbacks and the forwarding engine's hot path (which throttle
// what they publish; see package node).
//
// # Subscribers
//
// [Bus.Subscribe] returns, atomically, the events of the ring after a given id (the replay
// of a reconnecting client's Last-Event-ID) and a [Sub] that receives every later event in
// order. Each subscriber has a bounded queue (Options.Queue events). A subscriber that falls
// that far behind is dropped: its queue is released at once and [Sub.Next] returns
// [ErrSlow]. The data path never waits for a slow reader. A dropped
// client reconnects with the id of the last event it read and gets the rest from the ring;
// when the ring no longer holds them, the replay starts with a "gap" event whose "missed"
// field counts the events lost (the client should then rebuild its state from a fresh
// "hello").
//
// # Server-Sent Events
//
// [Bus.Handler] serves the bus as text/event-stream: first a "hello" event built by the
// caller (the agent's current members and recent pushes, with no id, so it never disturbs a
// client's Last-Event-ID), then the replay, then every new event, each as an "id:" line and
// one "data:" line of JSON. A comment line keeps idle connections alive every 15 s. Every
// write has a deadline (10 s): a client that stops reading is cut off rather than holding a
// goroutine. The number of concurrent streams is bounded (Options.MaxStreams); past it the
// handler answers 503.
package events
