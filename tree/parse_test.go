package tree

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestZooFiles(t *testing.T) {
	want := map[string][2]int{
		"abilene": {11, 14}, "ans": {18, 25}, "attmpls": {25, 56},
		"internet2": {20, 26}, "geant2012": {40, 61}, "cogentco": {197, 243},
	}
	if names := ZooNames(); len(names) != len(want) {
		t.Fatalf("ZooNames() = %v", names)
	}
	for name, counts := range want {
		g, err := ParseSpec("zoo:" + name)
		if err != nil {
			t.Fatal(err)
		}
		if g.NumNodes() != counts[0] || g.NumLinks() != counts[1] {
			t.Errorf("%s: %d nodes %d links, want %d and %d", name, g.NumNodes(), g.NumLinks(), counts[0], counts[1])
		}
		if len(g.Endpoints()) != g.NumNodes() {
			t.Errorf("%s: every site should be an endpoint", name)
		}
	}
	// Coordinates give latencies: Abilene's links span the USA, so some arcs take milliseconds.
	g, _ := Zoo("Abilene")
	maxLat := 0.0
	for a := range ArcID(g.NumArcs()) {
		maxLat = max(maxLat, g.Arc(a).Latency.Seconds())
	}
	if maxLat < 0.002 || maxLat > 0.05 {
		t.Errorf("Abilene's longest link takes %v s, want milliseconds", maxLat)
	}
	if v, ok := g.Lookup("0"); !ok || g.Node(v).Labels["label"] == "" {
		t.Errorf("GraphML node 0 lacks its label: %+v", g.Node(v))
	}
}

func TestGraphMLMalformed(t *testing.T) {
	head := `<?xml version="1.0"?>
<graphml><key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="d1"/>
<graph edgedefault="undirected">
`
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown node", `<node id="a"/><edge source="a" target="b"/>`, `edge target "b" is not a node`},
		{"no id", `<node/>`, "without an id"},
		{"duplicate", `<node id="a"/><node id="a"/>`, "duplicate node id"},
		{"bad speed", `<node id="a"/><node id="b"/><edge source="a" target="b"><data key="d1">fast</data></edge>`, "LinkSpeedRaw"},
		{"bad xml", `<node id="a"><data key="d1">x</node>`, "line"},
		{"no endpoints", `<edge source="a"/>`, "without source or target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGraphML(strings.NewReader(head+tc.body+"</graph></graphml>"), "bad.graphml")
			if !errors.Is(err, ErrMalformedTopology) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.graphml:") {
				t.Errorf("error %v, want ErrMalformedTopology naming the file, a line and %q", err, tc.want)
			}
		})
	}
	if _, err := ParseGraphML(strings.NewReader("<graphml/>"), "x"); !errors.Is(err, ErrMalformedTopology) {
		t.Errorf("no graph element: %v", err)
	}
	// Parallel edges merge (capacities add); self-loops are skipped.
	g, err := ParseGraphML(strings.NewReader(head+`<node id="a"/><node id="b"/>
<edge source="a" target="b"><data key="d1">1e9</data></edge>
<edge source="b" target="a"><data key="d1">2e9</data></edge>
<edge source="a" target="a"/></graph></graphml>`), "p")
	if err != nil {
		t.Fatal(err)
	}
	if g.NumLinks() != 1 || g.Arc(0).Capacity != 3e9 {
		t.Errorf("parallel edges: %d links, capacity %v", g.NumLinks(), g.Arc(0).Capacity)
	}
}

func TestEdgeList(t *testing.T) {
	src := `# a small WAN
a b 10G 5ms
b c 100Mbps   # slow link
c a
a b 1G 2ms    # parallel: merged
`
	g, err := ParseEdgeList(strings.NewReader(src), "wan.txt")
	if err != nil {
		t.Fatal(err)
	}
	if g.NumNodes() != 3 || g.NumLinks() != 3 {
		t.Fatalf("%d nodes %d links", g.NumNodes(), g.NumLinks())
	}
	a, _ := g.Lookup("a")
	b, _ := g.Lookup("b")
	ab, _ := g.FindArc(a, b)
	if arc := g.Arc(ab); arc.Capacity != 11e9 || arc.Latency.Milliseconds() != 2 {
		t.Errorf("a-b merged to %+v", arc)
	}
	// Round trip: write the graph back as an edge list and read it again.
	var buf bytes.Buffer
	for l := range g.NumLinks() {
		arc := g.Arc(ArcID(2 * l))
		fmt.Fprintf(&buf, "%s %s %g %s\n", g.NodeName(arc.From), g.NodeName(arc.To), arc.Capacity, arc.Latency)
	}
	h, err := ParseEdgeList(&buf, "again")
	if err != nil {
		t.Fatal(err)
	}
	for a := range ArcID(g.NumArcs()) {
		if g.Arc(a) != h.Arc(a) {
			t.Fatalf("round trip changed arc %d: %+v -> %+v", a, g.Arc(a), h.Arc(a))
		}
	}
	for _, tc := range []struct{ body, want string }{
		{"a\n", "wan.txt:1: want"},
		{"a b c d e\n", "wan.txt:1: want"},
		{"# ok\na a\n", "wan.txt:2: self-loop"},
		{"a b fast\n", `wan.txt:1: capacity "fast"`},
		{"a b 0\n", `capacity "0"`},
		{"a b 1G soon\n", `latency "soon"`},
		{"a b 1G -5ms\n", `latency "-5ms"`},
		{"# nothing\n", "no links"},
	} {
		if _, err := ParseEdgeList(strings.NewReader(tc.body), "wan.txt"); !errors.Is(err, ErrMalformedTopology) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestDataCenterBuilders(t *testing.T) {
	g, err := LeafSpine(4, 6, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Hosts()) != 48 || g.NumNodes() != 58 || g.NumLinks() != 48+24 {
		t.Errorf("leafspine:4,6,8: %d hosts %d nodes %d links", len(g.Hosts()), g.NumNodes(), g.NumLinks())
	}
	for _, nk := range [][2]int{{2, 1}, {4, 1}, {3, 2}, {4, 3}} {
		n, k := nk[0], nk[1]
		g, err := BCube(n, k)
		if err != nil {
			t.Fatal(err)
		}
		servers := 1
		for range k + 1 {
			servers *= n
		}
		if len(g.Hosts()) != servers || g.NumNodes() != servers+(k+1)*servers/n || g.NumLinks() != servers*(k+1) {
			t.Errorf("bcube:%d,%d: %d servers %d nodes %d links", n, k, len(g.Hosts()), g.NumNodes(), g.NumLinks())
		}
		for v := range NodeID(g.NumNodes()) {
			want := k + 1
			if g.Node(v).Kind == Switch {
				want = n
			}
			if g.Degree(v) != want {
				t.Fatalf("bcube:%d,%d: %s has degree %d, want %d", n, k, g.NodeName(v), g.Degree(v), want)
			}
		}
	}
}

func TestParseSpec(t *testing.T) {
	dir := t.TempDir()
	edges := filepath.Join(dir, "wan.txt")
	os.WriteFile(edges, []byte("x y\ny z 1G\n"), 0o644)
	gml := filepath.Join(dir, "tiny.graphml")
	os.WriteFile(gml, []byte(`<graphml><graph edgedefault="undirected"><node id="p"/><node id="q"/><edge source="p" target="q"/></graph></graphml>`), 0o644)
	for _, tc := range []struct {
		spec         string
		nodes, links int
	}{
		{"fattree:4", 36, 48}, {"leafspine:2,3,4", 17, 18}, {"bcube:4,1", 24, 32}, {"twotier:4,4", 21, 20},
		{"gscale", 12, 19}, {"random:30,60,5", 30, 60}, {"zoo:Geant2012", 40, 61},
		{edges, 3, 2}, {gml, 2, 1},
	} {
		g, err := ParseSpec(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if g.NumNodes() != tc.nodes || g.NumLinks() != tc.links {
			t.Errorf("%s: %d nodes %d links, want %d and %d", tc.spec, g.NumNodes(), g.NumLinks(), tc.nodes, tc.links)
		}
	}
	for _, spec := range []string{"fattree", "fattree:3", "fattree:x", "leafspine:1,2", "bcube:1,1", "twotier:0,4", "twotier:4",
		"gscale:2", "random:5,2,1", "random:5,6,-1", "zoo:nowhere", "torus:4", filepath.Join(dir, "none.graphml")} {
		if _, err := ParseSpec(spec); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%q: error %v, want ErrBadSpec", spec, err)
		}
	}
}

func TestParseTargets(t *testing.T) {
	g, _ := FatTree(4)
	all, err := ParseTargets(g, 0, "hosts", 1)
	if err != nil || len(all) != 15 {
		t.Fatalf("hosts: %d, %v", len(all), err)
	}
	r1, _ := ParseTargets(g, 0, "random:5", 9)
	r2, _ := ParseTargets(g, 0, "random:5", 9)
	if len(r1) != 5 || fmt.Sprint(r1) != fmt.Sprint(r2) {
		t.Errorf("random:5 not reproducible: %v %v", r1, r2)
	}
	seen := map[NodeID]bool{}
	for _, v := range r1 {
		if v == 0 || seen[v] || g.Node(v).Kind != Host {
			t.Errorf("random receivers %v: source, duplicate or switch", r1)
		}
		seen[v] = true
	}
	names, err := ParseTargets(g, 0, "h1, h2,h1,h0", 1)
	if err != nil || len(names) != 2 {
		t.Errorf("names: %v %v", names, err)
	}
	for _, bad := range []string{"h1,nosuch", "random:16", "random:0", "random:x", "h0", ""} {
		if _, err := ParseTargets(g, 0, bad, 1); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseTargets(g, 0, "nosuch", 1); !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown node error %v", err)
	}
	w, _ := ParseTargets(GScale(), 0, "hosts", 1)
	if len(w) != 11 {
		t.Errorf("WAN endpoints: %d", len(w))
	}
}

func FuzzParseGraphML(f *testing.F) {
	for _, n := range []string{"Abilene", "Internet2"} {
		b, _ := zooFS.ReadFile("zoo/" + n + ".graphml")
		f.Add(b)
	}
	f.Add([]byte(`<graphml><graph><node id="a"/><node id="b"/><edge source="a" target="b"/></graph></graphml>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGraphML(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrMalformedTopology) {
				t.Fatalf("error not wrapping ErrMalformedTopology: %v", err)
			}
			return
		}
		checkConsistent(t, g)
	})
}

func FuzzParseEdgeList(f *testing.F) {
	f.Add([]byte("a b 10G 5ms\nb c\n# c\n"))
	f.Add([]byte("0 1\n1 2 1e9\n2 0 100M 1us\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseEdgeList(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrMalformedTopology) {
				t.Fatalf("error not wrapping ErrMalformedTopology: %v", err)
			}
			return
		}
		checkConsistent(t, g)
	})
}

// checkConsistent checks the invariants every built graph keeps.
func checkConsistent(t *testing.T, g *Graph) {
	t.Helper()
	for v := range NodeID(g.NumNodes()) {
		if w, ok := g.Lookup(g.NodeName(v)); !ok || w != v {
			t.Fatalf("node %d not found by its name", v)
		}
		for _, a := range g.Out(v) {
			if g.Arc(a).From != v || g.Arc(a.Reverse()).To != v {
				t.Fatalf("arc %d misfiled", a)
			}
		}
	}
	for a := range ArcID(g.NumArcs()) {
		arc := g.Arc(a)
		if arc.From == arc.To || !(arc.Capacity > 0) || arc.Latency < 0 {
			t.Fatalf("bad arc %+v", arc)
		}
	}
}
