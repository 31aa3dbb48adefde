package sim

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/treecast/treecast/tree"
)

func TestReadTrace(t *testing.T) {
	g := tree.GScale()
	in := "arrival,source,receivers,volume\n# comment\n\n3,s1,s2;s3,5\n0, s4 , s5;s4;s5 ,2.5\n"
	got, err := ReadTrace(strings.NewReader(in), g)
	if err != nil {
		t.Fatal(err)
	}
	want := []Transfer{
		{ID: 0, Arrival: 0, Src: 4, Dsts: []tree.NodeID{5}, Volume: 2.5},
		{ID: 1, Arrival: 3, Src: 1, Dsts: []tree.NodeID{2, 3}, Volume: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestReadTraceErrors(t *testing.T) {
	g := tree.GScale()
	tests := []struct{ in, want string }{
		{"0,s1,s2\n", "line 1: 3 fields"},
		{"0,s1,s2,1\nx,s1,s2,1\n", `line 2: field arrival: "x"`},
		{"-1,s1,s2,1\n", "line 1: field arrival"},
		{"0,nowhere,s2,1\n", `line 1: field source: unknown node "nowhere"`},
		{"0,s1,s2;zz,1\n", `line 1: field receivers: unknown node "zz"`},
		{"0,s1,s1;,1\n", "line 1: field receivers"},
		{"0,s1,s2,0\n", `line 1: field volume: "0"`},
		{"0,s1,s2,inf\n", "line 1: field volume"},
		{"# only a comment\n", "no transfers"},
	}
	for _, tt := range tests {
		_, err := ReadTrace(strings.NewReader(tt.in), g)
		if !errors.Is(err, ErrBadTrace) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadTrace(%q) error %v, want ErrBadTrace mentioning %q", tt.in, err, tt.want)
		}
	}
}

// A generated workload survives a write/read round trip.
func TestTraceRoundTrip(t *testing.T) {
	g := tree.GScale()
	ts, err := Generate(g, DCCastWorkload(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTrace(&buf, g, ts); err != nil {
		t.Fatal(err)
	}
	back, err := ReadTrace(&buf, g)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ts, back) {
		t.Fatal("round trip changed the transfers")
	}
}

func FuzzReadTrace(f *testing.F) {
	g := tree.GScale()
	f.Add([]byte("arrival,source,receivers,volume\n0,s1,s2;s3,5\n"))
	f.Add([]byte("1,s0,s11,1e3\n0,s2,s2;s4,0.5\n"))
	f.Add([]byte("0,s1,,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ReadTrace(bytes.NewReader(data), g)
		if err != nil {
			if !errors.Is(err, ErrBadTrace) {
				t.Fatalf("error %v does not wrap ErrBadTrace", err)
			}
			return
		}
		for i, tr := range ts {
			if tr.ID != i || tr.Arrival < 0 || !(tr.Volume > 0) || len(tr.Dsts) == 0 {
				t.Fatalf("bad transfer %+v", tr)
			}
			for _, d := range tr.Dsts {
				if d == tr.Src || int(d) >= g.NumNodes() || d < 0 {
					t.Fatalf("bad receiver in %+v", tr)
				}
			}
		}
	})
}
