package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/treecast/treecast/tree"
)

// Preset is a named experiment setting taken from a paper: topology, schemes, workload and
// seeds as the paper states them, and the figure it reproduces. The command line applies a
// preset's values to the flags the user did not set ([Preset.Args] gives them as flags).
type Preset struct {
	Name string
	// Paper and Figure say where the setting comes from.
	Paper, Figure string
	Topology      string
	Schemes       string
	// Rate is the rate policy of schemes without their own "@RATE".
	Rate    string
	Lambda  float64
	Copies  string
	Volume  string
	Horizon int
	Seeds   string
	// Note tells what the preset fixes that the paper leaves open, and which flag sweeps the
	// figure's x axis.
	Note string
}

// QuickCastVolume is the heavy-tailed volume of the QuickCast presets: mean 20 and capped at
// 2,000 as in the paper, which does not give the shape: Pareto of shape 0.7 and minimum 0.54,
// whose mean after the cap is 19.9 units (see sim/README.md for other shapes of mean 20).
const QuickCastVolume = "pareto:0.7,0.54,max=2000"

var presets = []Preset{
	{
		Name: "dccast", Paper: "DCCast (HotCloud 2017)",
		Figure:   "the workload of its evaluation on GScale: DCCast against P2P (LP), random trees and MINMAX",
		Topology: "gscale", Schemes: "dccast,p2p-lp@srpt,p2p-lp@fcfs,random,minmax", Rate: "fcfs",
		Lambda: 1, Copies: "1-6", Volume: "10+exp:20", Horizon: 500, Seeds: "1-5",
		Note: "every arc of capacity 1 unit per slot",
	},
	{
		Name: "dccast-p2p", Paper: "DCCast (HotCloud 2017)",
		Figure:   "DCCast against P2P on GScale by number of copies: bandwidth and tail TCT saved",
		Topology: "gscale", Schemes: "dccast,p2p-lp@srpt,p2p-lp@fcfs", Rate: "fcfs",
		Lambda: 1, Copies: "6", Volume: "10+exp:20", Horizon: 500, Seeds: "1-5",
		Note: "the figure's x axis is the number of copies: sweep --copies 2 to 6",
	},
	{
		Name: "dccast-random", Paper: "DCCast (HotCloud 2017)",
		Figure:   "DCCast against RANDOM and MINMAX on random 50-node, 150-edge graphs: tail TCT",
		Topology: "ringchords:50,150,1", Schemes: "dccast,random,minmax", Rate: "fcfs",
		Lambda: 1, Copies: "6", Volume: "10+exp:20", Horizon: 500, Seeds: "1-5",
		Note: "graphs as the authors generate them (ring plus two chords per node); sweep the graph seed with --topo ringchords:50,150,G",
	},
	{
		Name: "quickcast-fig8", Paper: "QuickCast (INFOCOM 2018)",
		Figure:   "Fig. 8: mean receiver completion time, tail TCT and bandwidth of QuickCast against DCCast, GScale",
		Topology: "gscale", Schemes: "dccast,quickcast@maxmin,dccast@maxmin,quickcast", Rate: "fcfs",
		Lambda: 1, Copies: "10", Volume: QuickCastVolume, Horizon: 500, Seeds: "1-5",
		Note: "sizes of mean 20 capped at 2,000; the Pareto shape and the horizon are ours",
	},
	{
		Name: "quickcast-fig8-cogentco", Paper: "QuickCast (INFOCOM 2018)",
		Figure:   "Fig. 8: as quickcast-fig8, on Cogentco (197 nodes, 243 links)",
		Topology: "zoo:cogentco", Schemes: "dccast,quickcast@maxmin,dccast@maxmin,quickcast", Rate: "fcfs",
		Lambda: 1, Copies: "10", Volume: QuickCastVolume, Horizon: 500, Seeds: "1-5",
		Note: "as quickcast-fig8",
	},
}

// Presets returns the named paper settings, in a fixed order.
func Presets() []Preset { return slices.Clone(presets) }

// LookupPreset returns the preset of that name. The error wraps ErrBadWorkload and lists the
// names.
func LookupPreset(name string) (Preset, error) {
	for _, p := range presets {
		if p.Name == name {
			return p, nil
		}
	}
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return Preset{}, fmt.Errorf("%w: no preset %q (have %s)", ErrBadWorkload, name, strings.Join(names, ", "))
}

// Args returns the preset as the flags of "treecast sim" it stands for, in a fixed order.
func (p Preset) Args() []string {
	return []string{"--topo", p.Topology, "--schemes", p.Schemes, "--rate", p.Rate,
		"--lambda", strconv.FormatFloat(p.Lambda, 'g', -1, 64), "--copies", p.Copies,
		"--volume", p.Volume, "--horizon", strconv.Itoa(p.Horizon), "--seeds", p.Seeds}
}

// Experiment returns the preset's experiment (every scheme on every seed). Errors are those
// of the parsers of its parts and name the preset.
func (p Preset) Experiment() (Experiment, error) {
	x := Experiment{Rate: p.Rate}
	var err error
	fail := func(err error) (Experiment, error) { return Experiment{}, fmt.Errorf("preset %s: %w", p.Name, err) }
	if x.Graph, err = tree.ParseSpec(p.Topology); err != nil {
		return fail(err)
	}
	if x.Schemes, err = ParseSchemes(p.Schemes); err != nil {
		return fail(err)
	}
	if x.Seeds, err = ParseRange(p.Seeds, 0); err != nil {
		return fail(err)
	}
	w := Workload{Lambda: p.Lambda, Horizon: p.Horizon}
	if w.Receivers, err = ParseRange(p.Copies, 1); err != nil {
		return fail(err)
	}
	if w.Volume, err = ParseVolume(p.Volume); err != nil {
		return fail(err)
	}
	if err := w.Validate(x.Graph); err != nil {
		return fail(err)
	}
	x.Workload = w
	return x, nil
}
