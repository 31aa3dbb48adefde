package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/treecast/treecast/scheduler"
)

// frameDown is a Downstream that replays given frames then ends with end.
type frameDown struct {
	frames []Frame
	end    error
	ups    []UpMsg
	held   []byte
}

func (d *frameDown) RecvFrame() (Frame, error) {
	if len(d.frames) == 0 {
		return Frame{}, d.end
	}
	f := d.frames[0]
	d.frames = d.frames[1:]
	return f, nil
}
func (d *frameDown) SendHeld(b []byte) error { d.held = b; return nil }
func (d *frameDown) SendUp(m UpMsg) error    { d.ups = append(d.ups, m); return nil }

// framesOf cuts chunk i into frames of size n.
func framesOf(i int, data []byte, n int) []Frame {
	var out []Frame
	for off := 0; off < len(data); off += n {
		end := min(off+n, len(data))
		out = append(out, Frame{Index: i, Offset: off, Data: data[off:end], More: end < len(data)})
	}
	return out
}

// TestEngineCutThrough: chunks of several frames travel down a chain; every relay passes
// chunks on frame by frame (counted), every copy is byte-exact, nothing is sent twice.
func TestEngineCutThrough(t *testing.T) {
	agents, _ := newEngineCluster(t, 5, nil)
	data := randomObject(5*FrameSize*4+1234, 7) // 5 chunks of 4 frames, and a short one
	m, err := agents[0].store.Put(bytes.NewReader(data), 4*FrameSize)
	if err != nil {
		t.Fatal(err)
	}
	dsts := []string{"a01", "a02", "a03", "a04"}
	// Paced at 4 MiB/s (about 0.3 s in all), so the chunks keep coming after the relays'
	// streams to their children are open, however slowly a loaded machine opens them;
	// unpaced, the whole object could arrive first and nothing be left to cut through.
	p, raw := testPlan(t, agents[0].name, dsts, scheduler.Options{Strategy: strategy(t, "chain")})
	out, err := agents[0].e.Prepare(m, p)
	if err != nil {
		t.Fatal(err)
	}
	rep := agents[0].e.Push(context.Background(), out, Push{ID: "cut", PlanRaw: raw, Receivers: dsts, RateLimit: 4 << 20})
	if rep.Failed() != 0 {
		t.Fatalf("failures: %+v", rep.Receivers)
	}
	cut := 0.0
	for _, a := range agents[1:] {
		if got := a.store.object(m.Digest()); !bytes.Equal(got, data) {
			t.Errorf("%s: copy differs", a.name)
		}
		cut += testutil.ToFloat64(a.m.chunksCut)
	}
	for _, r := range rep.Receivers {
		if r.Duplicates != 0 {
			t.Errorf("%s received %d chunks twice", r.Receiver, r.Duplicates)
		}
	}
	if cut == 0 {
		t.Error("no relay passed a chunk on before it was whole")
	}
	t.Logf("%v chunks cut through by 3 relays, of %d", cut, 3*m.NumChunks())
}

// TestEngineFrameErrors: frames that do not continue the chunk a stream carries, or run past
// the chunk's length, end the stream with ErrBadHeader and make nothing visible; a chunk its
// sender abandons mid-way and sends again whole is taken.
func TestEngineFrameErrors(t *testing.T) {
	agents, _ := newEngineCluster(t, 2, nil)
	data := randomObject(3*3000, 9)
	m, _ := agents[0].store.Put(bytes.NewReader(data), 3000)
	_, raw := testPlan(t, "a00", []string{"a01"}, scheduler.Options{Strategy: strategy(t, "chain")})
	chunk := func(i int) []byte { c, _ := agents[0].store.ReadChunk(m.Digest(), i); return c }
	c0 := framesOf(0, chunk(0), 1000)
	cases := []struct {
		name   string
		frames []Frame
		ok     bool
	}{
		{"gap", []Frame{c0[0], c0[2]}, false},
		{"other chunk mid-way", []Frame{c0[0], {Index: 1, Offset: 1000, Data: chunk(1)[1000:2000], More: true}}, false},
		{"past the end", []Frame{{Index: 0, Offset: 2500, Data: make([]byte, 1000)}}, false},
		{"continuation first", []Frame{c0[1]}, false},
		{"abandoned then whole", append(append([]Frame{c0[0], c0[1]}, framesOf(0, chunk(0), 3000)...),
			append(framesOf(1, chunk(1), 700), framesOf(2, chunk(2), 3000)...)...), true},
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := Header{Transfer: fmt.Sprintf("f%d", k), Manifest: m, Plan: raw, Child: "a01", Parent: "a00", Source: "a00"}
			err := agents[1].e.Receive(context.Background(), hdr, &frameDown{frames: c.frames, end: io.EOF})
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(agents[1].store.object(m.Digest()), data) {
					t.Fatal("copy differs")
				}
				return
			}
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v, want ErrBadHeader", err)
			}
			if _, serr := agents[1].store.Stat(m.Digest()); serr == nil {
				t.Fatal("object visible after a bad stream")
			}
		})
	}
}
