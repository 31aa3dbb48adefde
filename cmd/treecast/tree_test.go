package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/treecast/treecast/tree"
)

func TestTreeJSON(t *testing.T) {
	for _, algo := range []string{"spt", "steiner", "tm", "exact"} {
		t.Run(algo, func(t *testing.T) {
			out, _, err := run(t, "tree", "--topo", "fattree:4", "--src", "h0", "--dst", "h1,h5,h9,h15", "--algo", algo, "--format", "json")
			if err != nil {
				t.Fatal(err)
			}
			var res treeOutput
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("bad JSON %q: %v", out, err)
			}
			if res.Algo != algo || res.Src != "h0" || len(res.Terminals) != 4 || len(res.Trees) != 1 {
				t.Fatalf("unexpected output %+v", res)
			}
			// Rebuild the tree from the printed edges and check it on the real topology.
			g, _ := tree.FatTree(4)
			tr := &tree.Tree{Root: 0}
			for _, e := range res.Trees[0].Edges {
				u, _ := g.Lookup(e[0])
				v, _ := g.Lookup(e[1])
				a, ok := g.FindArc(u, v)
				if !ok {
					t.Fatalf("edge %v is not a link of the topology", e)
				}
				tr.Arcs = append(tr.Arcs, a)
			}
			var dsts []tree.NodeID
			for _, n := range res.Terminals {
				v, _ := g.Lookup(n)
				dsts = append(dsts, v)
			}
			if err := tr.Validate(g, 0, dsts); err != nil {
				t.Fatal(err)
			}
			if int(res.Trees[0].Cost) != len(res.Trees[0].Edges) {
				t.Errorf("hop cost %v != %d edges", res.Trees[0].Cost, len(res.Trees[0].Edges))
			}
			// Receivers in 3 pods plus a rack neighbour: the minimum tree has 13 arcs.
			if algo != "spt" && len(res.Trees[0].Edges) != 13 {
				t.Errorf("%s tree has %d arcs, minimum is 13", algo, len(res.Trees[0].Edges))
			}
		})
	}
}

func TestTreeTextAndDot(t *testing.T) {
	out, _, err := run(t, "tree", "--topo", "gscale", "--dst", "s3,s11", "--algo", "exact")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"topology gscale: 12 nodes, 19 links", "s0 (site)", "s11 (site)"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, "tree", "--topo", "gscale", "--dst", "s3,s11", "--trees", "2", "--format", "dot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "digraph treecast {") || !strings.Contains(out, "color=red") {
		t.Errorf("dot output without a second tree:\n%s", out)
	}
}

func TestTreeErrors(t *testing.T) {
	split := filepath.Join(t.TempDir(), "split.txt")
	if err := os.WriteFile(split, []byte("a b\nc d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown node", []string{"--dst", "h1,nosuch"}, "nosuch"},
		{"unknown src", []string{"--src", "zz"}, "zz"},
		{"bad spec", []string{"--topo", "fattree:3"}, "fattree"},
		{"bad builder", []string{"--topo", "torus:4"}, "torus"},
		{"missing file", []string{"--topo", "no/such/file.graphml"}, "file.graphml"},
		{"bad algo", []string{"--algo", "magic"}, "magic"},
		{"bad weight", []string{"--weight", "mass"}, "mass"},
		{"bad format", []string{"--format", "xml"}, "xml"},
		{"unreachable", []string{"--topo", split, "--src", "a", "--dst", "d"}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, append([]string{"tree"}, tc.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			if exitCode(err) == 0 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (exit %d) does not name %q", err, exitCode(err), tc.want)
			}
		})
	}
}
