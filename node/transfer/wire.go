package transfer

import (
	"time"

	"github.com/treecast/treecast/scheduler"
)

// The engine speaks in these types; the agent's gRPC edge converts them to and from the
// protobuf messages, so the forwarding logic does not depend on generated code.

// Header is the first message of a Push stream: one stream carries one stripe of one
// transfer from a parent to a child.
type Header struct {
	Transfer string   // transfer id, the same on every stream of a push
	Manifest Manifest // the object's manifest
	Plan     []byte   // the whole plan, encoded by the scheduler
	Child    string   // the receiver this stream is for
	Parent   string   // the sender
	Source   string   // the root of the push
	Stripe   int      // the stripe this stream carries (chunk i belongs to stripe i mod Stripes)
	Rate     int64    // cap on every sender of this push, bytes per second (0: none)
	Meta     Meta     // what receivers record when they commit the object
	// Addrs holds the plan's nodes' addresses as the source knew them, by name: where a relay
	// dials a child its own gossip has not brought yet (see Transport.OpenPush). Entries for
	// names that are not nodes of the plan are dropped when the header is accepted.
	Addrs map[string]string
}

// Meta is what a push asks every receiver to record when it commits the object (given to
// [Deps].Committed): a tag, and the channel version the push publishes.
type Meta struct {
	Tag            string // NAME:VERSION, or ""
	Channel        string // the channel the push publishes, or ""
	ChannelVersion uint64 // the version number the publish gives the channel
}

// Hook is the outcome of the command a receiver ran after it committed the object (a
// channel hook).
type Hook struct {
	Exit int    // exit status; -1 when it did not exit by itself
	Err  string // why it did not run or was stopped; "" when it exited by itself
}

// UpMsg is a message a receiver sends toward the source: progress of one receiver, or its
// final result.
type UpMsg struct {
	Receiver string
	Held     int  // chunks verified so far
	Total    int  // chunks of the object
	Final    bool // a result: OK or Err
	OK       bool
	Err      string
	Seconds  float64
	// Of a receiver's own final result:
	AlreadyHeld int   // chunks it held before the push reached it (not sent again)
	Duplicates  int   // chunks it received although it held them
	Decoded     int   // data chunks it rebuilt from Reed-Solomon parity
	BytesIn     int64 // chunk bytes it received
	Hook        *Hook // the hook it ran after committing (nil: none)
}

// Frame is a piece of a chunk on a Push stream: Data holds the chunk's bytes from Offset on,
// and More is set on every frame of a chunk but the last. A stream carries the frames of one
// chunk after the other, in order; a frame with Offset 0 starts a chunk (discarding an
// unfinished one: its sender gave it up). Chunks travel as frames so that a relay passes each
// frame on to its children as it arrives (cut-through) and verifies the chunk once it is
// whole: the pipeline fills at the cost of a frame per hop, not a chunk.
//
// Buf, when set, is the pooled buffer that holds Data. A frame returned by RecvFrame carries
// one reference for its caller, who frees it once done; SendFrame does not take the caller's
// reference, and an Upstream that keeps Data after it returns takes its own. Placed means
// that a [Placer] chose where Data went: Data lies at Offset in Buf, a buffer of the chunk's
// size that the receiver's reader fills frame after frame.
type Frame struct {
	Index  int
	Offset int
	Data   []byte
	More   bool
	Buf    *Buf
	Placed bool

	abort bool // internal: the chunk being cut through will not be completed
}

// FrameSize is the smallest size of the frames chunks are sent in, the size for chunks of up
// to 512 KiB: small enough that a hop adds little delay (32 KiB is 2.6 ms at 100 Mbit/s, 21
// ms for one of two stripes sharing a 25 Mbit/s link; a testbed of 64 hosts at 25 Mbit/s,
// twelve hops deep, finished about 0.7 s sooner than with 64 KiB frames).
// Larger chunks, which plans choose for faster networks and larger objects, travel in frames
// of a sixteenth of the chunk, at most MaxFrameSize: fewer, larger writes and reads per byte
// (a relay's system calls are much of its cost), for a pipeline fill per hop that stays a
// sixteenth of a chunk. The rule is the planner's (scheduler.FrameSizeFor), whose cost model
// counts a frame per hop.
const (
	FrameSize    = scheduler.MinFrameSize
	MaxFrameSize = scheduler.MaxFrameSize
)

// frameSizeFor is the frame size of chunks of chunkSize bytes.
func frameSizeFor(chunkSize int) int { return scheduler.FrameSizeFor(chunkSize) }

// Downstream is a receiver's view of an incoming Push stream.
type Downstream interface {
	// RecvFrame returns the next frame, or io.EOF when the parent closed its side.
	RecvFrame() (Frame, error)
	// SendHeld answers the header with the bitmap of the chunks the receiver holds.
	SendHeld(bitmap []byte) error
	// SendUp sends progress or a result toward the source.
	SendUp(m UpMsg) error
}

// Upstream is a parent's view of an outgoing Push stream to one child.
type Upstream interface {
	// SendHeader sends the stream's header; RecvHeld reads the child's answer.
	SendHeader(h Header) error
	RecvHeld() (bitmap []byte, err error)
	// SendFrame sends one frame of a chunk; CloseSend ends the stripe normally.
	SendFrame(f Frame) error
	CloseSend() error
	// recvUp returns the next message from the child's subtree, or io.EOF when the child
	// ended the stream.
	RecvUp() (UpMsg, error)
}

// Unacked is an optional interface of an [Upstream]: the bytes sent on the stream that the
// child's end has not acknowledged yet (queued in the sending socket or in flight), and
// whether the stream knows them. The source paces its stripes on what reached its children
// (see balance); without it, on what it wrote.
type Unacked interface {
	Unacked() (int, bool)
}

// Result is one receiver's outcome in a [Report].
type Result struct {
	Receiver string
	OK       bool          // the receiver holds a verified copy
	Err      string        // why not, when !OK
	Elapsed  time.Duration // from the start of the push to the receiver's result
	// AlreadyHeld counts the chunks the receiver held before the push reached it (a resumed
	// or repeated push does not send them); Duplicates the chunks it received although it held
	// them (wasted sends); BytesIn the chunk bytes it received.
	AlreadyHeld, Duplicates int
	// Decoded counts the data chunks it rebuilt from parity instead of receiving them.
	Decoded int
	BytesIn int64
	// Via is the source's child whose stream carried the result: the agent that vouched for
	// it (a child's reports count only for receivers in its own subtree of the plan).
	Via string
	// Hook is the outcome of the channel hook the receiver ran after committing (nil: none).
	Hook *Hook
}

// Report is the outcome of a push: one Result per receiver, sorted by name.
type Report struct {
	Transfer  string
	Digest    string
	Size      int64
	Chunks    int
	Receivers []Result
	Elapsed   time.Duration
}

// Failed counts the receivers that do not hold a verified copy.
func (r Report) Failed() int {
	n := 0
	for _, x := range r.Receivers {
		if !x.OK {
			n++
		}
	}
	return n
}

// Event is a progress event of a push, given to [PushOptions].Progress as it happens.
type Event struct {
	Receiver string
	Held     int // chunks the receiver has verified
	Total    int
	Final    bool // the receiver's result (OK or Err) is known
	OK       bool
	Err      string
	Elapsed  time.Duration
}

// bitmap helpers: bit i of b is chunk i.
func newBitmap(n int) []byte      { return make([]byte, (n+7)/8) }
func bitSet(b []byte, i int)      { b[i/8] |= 1 << (i % 8) }
func bitGet(b []byte, i int) bool { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }
func bitClone(b []byte) []byte    { return append([]byte(nil), b...) }

// SecondsDur converts seconds to a duration.
func SecondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// since returns seconds since t, for results.
func since(t time.Time) float64 { return time.Since(t).Seconds() }
