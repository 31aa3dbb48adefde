package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/treecast/treecast/tree"
)

// ErrBadTopology is returned when agents' names or labels cannot form a topology.
var ErrBadTopology = errors.New("scheduler: bad inferred topology")

// AgentInfo is what topology inference needs to know of an agent: its unique name and its
// labels (dc, pod, rack).
type AgentInfo struct {
	Name   string
	Labels map[string]string
}

// InferTopology builds a host topology from agents' labels: a host per agent (named as the
// agent, carrying its labels), below a switch for its rack ("rack:DC/POD/RACK"), below one
// for its pod ("pod:DC/POD"), below one for its data center ("dc:DC"); when there are
// several data centers their switches hang from a "wan" switch. A missing label skips that
// level (an agent with no labels hangs from its data center's switch, or from the default
// data center "dc:"). Links have DefaultCapacity. Agent names wan, dc:*, pod:* and rack:* and
// dc/pod/rack labels containing '/' are rejected with ErrBadTopology, since they would merge
// with the inferred switches. Agents are ordered by name, so every agent
// that sees the same membership infers the same graph. Cost O(agents log agents).
func InferTopology(agents []AgentInfo) (*tree.Graph, error) {
	if len(agents) == 0 {
		return nil, fmt.Errorf("%w: no agents", ErrNoReceivers)
	}
	sorted := slices.Clone(agents)
	slices.SortFunc(sorted, func(a, b AgentInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for _, a := range sorted {
		if a.Name == "wan" || strings.HasPrefix(a.Name, "dc:") || strings.HasPrefix(a.Name, "pod:") || strings.HasPrefix(a.Name, "rack:") {
			return nil, fmt.Errorf("%w: agent name %q is reserved for inferred switches (wan, dc:*, pod:*, rack:*)", ErrBadTopology, a.Name)
		}
		for _, k := range []string{"dc", "pod", "rack"} {
			if strings.Contains(a.Labels[k], "/") {
				return nil, fmt.Errorf("%w: agent %q: label %s=%q must not contain '/'", ErrBadTopology, a.Name, k, a.Labels[k])
			}
		}
	}
	b := tree.NewBuilder("inferred")
	for _, a := range sorted {
		if _, err := b.AddNode(a.Name, tree.Host, a.Labels); err != nil {
			return nil, fmt.Errorf("scheduler: agent %q: %w", a.Name, err)
		}
	}
	sw := func(name string) tree.NodeID {
		if v, ok := b.Lookup(name); ok {
			return v
		}
		v, _ := b.AddNode(name, tree.Switch, nil)
		return v
	}
	linked := map[[2]tree.NodeID]struct{}{}
	link := func(u, v tree.NodeID) error {
		if _, ok := linked[[2]tree.NodeID{u, v}]; ok {
			return nil
		}
		linked[[2]tree.NodeID{u, v}] = struct{}{}
		return b.AddLink(u, v, 0, 0)
	}
	dcs := map[string]bool{}
	for i, a := range sorted {
		dc, pod, rack := a.Labels["dc"], a.Labels["pod"], a.Labels["rack"]
		dcs[dc] = true
		up := sw("dc:" + dc)
		if pod != "" {
			p := sw("pod:" + dc + "/" + pod)
			if err := link(p, up); err != nil {
				return nil, err
			}
			up = p
		}
		if rack != "" {
			r := sw("rack:" + dc + "/" + pod + "/" + rack)
			if err := link(r, up); err != nil {
				return nil, err
			}
			up = r
		}
		if err := link(tree.NodeID(i), up); err != nil {
			return nil, err
		}
	}
	if len(dcs) > 1 {
		wan := sw("wan")
		names := make([]string, 0, len(dcs))
		for dc := range dcs {
			names = append(names, dc)
		}
		slices.Sort(names)
		for _, dc := range names {
			d, _ := b.Lookup("dc:" + dc)
			if err := link(d, wan); err != nil {
				return nil, err
			}
		}
	}
	return b.Build()
}
