package tree

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

//go:embed zoo/*.graphml
var zooFS embed.FS

// ZooNames lists the embedded Internet Topology Zoo networks, in lower case, for the spec
// "zoo:NAME".
func ZooNames() []string {
	entries, _ := zooFS.ReadDir("zoo")
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".graphml"); ok {
			out = append(out, strings.ToLower(n))
		}
	}
	slices.Sort(out)
	return out
}

// Zoo returns an embedded Internet Topology Zoo network by name (case-insensitive), parsed
// with ParseGraphML.
func Zoo(name string) (*Graph, error) {
	entries, _ := zooFS.ReadDir("zoo")
	for _, e := range entries {
		if strings.EqualFold(e.Name(), name+".graphml") {
			f, err := zooFS.Open("zoo/" + e.Name())
			if err != nil {
				return nil, err
			}
			defer f.Close()
			g, err := ParseGraphML(f, "zoo:"+strings.ToLower(name))
			return g, err
		}
	}
	return nil, fmt.Errorf("%w: no zoo topology %q (have %s)", ErrBadSpec, name, strings.Join(ZooNames(), ", "))
}

// ParseSpec returns the topology a spec names:
//
//	fattree:K          k-ary fat-tree (K even)
//	leafspine:S,L,H    S spines, L leaves, H hosts per leaf
//	twotier:R,H        R racks of H hosts under one core switch
//	bcube:N,K          BCube_K of N-port switches
//	gscale             the 12-site GScale WAN
//	random:N,E,SEED    a connected random WAN of N sites and E links
//	ringchords:N,E,SEED a ring of N sites plus random chords up to E links (DCCast's random
//	                   graphs: every site has degree >= 2)
//	zoo:NAME           an embedded Internet Topology Zoo network (see ZooNames)
//	PATH               a file: GraphML if it ends in .graphml, else an edge list
//
// Errors wrap ErrBadSpec (or ErrMalformedTopology for a bad file, or the os error of a file
// that cannot be opened) and name the spec.
func ParseSpec(spec string) (*Graph, error) {
	kind, args, hasArgs := strings.Cut(spec, ":")
	ints := func(want int) ([]int, error) {
		parts := strings.Split(args, ",")
		if !hasArgs || len(parts) != want {
			return nil, fmt.Errorf("%w: %q: %s takes %d numbers after the colon", ErrBadSpec, spec, kind, want)
		}
		out := make([]int, want)
		for i, p := range parts {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("%w: %q: %q is not a whole number", ErrBadSpec, spec, p)
			}
			out[i] = v
		}
		return out, nil
	}
	switch kind {
	case "fattree":
		a, err := ints(1)
		if err != nil {
			return nil, err
		}
		return FatTree(a[0])
	case "leafspine":
		a, err := ints(3)
		if err != nil {
			return nil, err
		}
		return LeafSpine(a[0], a[1], a[2])
	case "twotier":
		a, err := ints(2)
		if err != nil {
			return nil, err
		}
		return TwoTier(a[0], a[1])
	case "bcube":
		a, err := ints(2)
		if err != nil {
			return nil, err
		}
		return BCube(a[0], a[1])
	case "gscale":
		if hasArgs {
			return nil, fmt.Errorf("%w: %q: gscale takes no arguments", ErrBadSpec, spec)
		}
		return GScale(), nil
	case "random":
		a, err := ints(3)
		if err != nil {
			return nil, err
		}
		if a[2] < 0 {
			return nil, fmt.Errorf("%w: %q: negative seed", ErrBadSpec, spec)
		}
		return RandomWAN(a[0], a[1], uint64(a[2]))
	case "ringchords":
		a, err := ints(3)
		if err != nil {
			return nil, err
		}
		if a[2] < 0 {
			return nil, fmt.Errorf("%w: %q: negative seed", ErrBadSpec, spec)
		}
		return RingChords(a[0], a[1], uint64(a[2]))
	case "zoo":
		return Zoo(args)
	}
	if !strings.ContainsAny(spec, "/.\\") {
		return nil, fmt.Errorf("%w: %q: not a builder (fattree:K, leafspine:S,L,H, twotier:R,H, bcube:N,K, gscale, random:N,E,SEED, ringchords:N,E,SEED, zoo:NAME) nor a file path", ErrBadSpec, spec)
	}
	f, err := os.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSpec, err)
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(spec), ".graphml") {
		return ParseGraphML(f, spec)
	}
	return ParseEdgeList(f, spec)
}
