package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/treecast/treecast/sim"
	"github.com/treecast/treecast/tree"
)

func init() { commands = append(commands, newSimCmd) }

type simFlags struct {
	topo, schemes, rate, copies, volume, seeds, format, plot, trace, progress, preset string
	lambda, chunk                                                                     float64
	horizon                                                                           int
}

func newSimCmd() *cobra.Command {
	var f simFlags
	c := &cobra.Command{
		Use:   "sim",
		Short: "Simulate multicast schemes on a topology and compare them",
		Long: `Simulate multicast tree and scheduling schemes on a topology under a random (or traced)
workload, and compare their bandwidth and transfer completion times (TCT).

Time is in slots and volume in units: an arc of the default capacity (10 Gbit/s) carries
one unit per slot. Transfers arrive as a Poisson process of rate --lambda per slot until
--horizon, each with --copies receivers and a --volume drawn from a distribution:
"10+exp:20" (10 plus an exponential of mean 20), "pareto:ALPHA,MIN,max=CAP", "const:X".

Schemes: tree policies of the scheduler, where the network replicates (dccast, random,
minmax, spt, p2p, p2p-kN, p2p-lp, p2p-lp-kN, quickcast, multitree, multitree-kN) under the
rate policy of --rate or their own (quickcast@maxmin, p2p-lp@srpt), and overlay
strategies, where only the agents replicate (overlay:chain, overlay:tree, overlay:forest,
overlay:unicast). p2p-lp is the papers' P2P baseline: every receiver over its 3 (N)
shortest paths at rates a linear program picks, in FCFS or SRPT order.

Tables, CSV and JSON give per-transfer completion times (to the last receiver) and
per-receiver ones (RCT: each receiver's own completion, QuickCast's metric).

--preset NAME sets the flags to a paper's setting (flags given explicitly override it):
` + presetHelp() + `
Ctrl-C stops the run and prints the results so far (exit code 130).`,
		Example: `  treecast sim --preset quickcast-fig8
  treecast sim --preset dccast-p2p --copies 3
  treecast sim --topo gscale --schemes dccast,p2p --seeds 1-5
  treecast sim --topo zoo:cogentco --schemes dccast,quickcast --rate maxmin --format json
  treecast sim --topo fattree:8 --schemes overlay:chain,overlay:unicast --copies 4-16 --horizon 50 --plot tct.png`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd, &f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.preset, "preset", "", "a paper's setting (see above); explicit flags override it")
	fl.StringVar(&f.topo, "topo", "gscale", "topology: fattree:K, leafspine:S,L,H, bcube:N,K, gscale, random:N,E,SEED, ringchords:N,E,SEED, zoo:NAME, or a .graphml / edge-list file")
	fl.StringVar(&f.schemes, "schemes", "dccast,p2p", "comma-separated schemes to compare; the first is the reference for bandwidth ratios")
	fl.StringVar(&f.rate, "rate", "fcfs", "rate policy of network schemes: fcfs, srpt or maxmin")
	fl.Float64Var(&f.lambda, "lambda", 1, "mean transfer arrivals per slot (Poisson)")
	fl.StringVar(&f.copies, "copies", "1-6", "receivers per transfer, uniform in A-B")
	fl.StringVar(&f.volume, "volume", "10+exp:20", "transfer volume distribution, in units")
	fl.IntVar(&f.horizon, "horizon", 500, "transfers arrive in slots 0 to horizon-1")
	fl.StringVar(&f.seeds, "seeds", "1", "seeds to run, A-B; every scheme sees the same workload per seed")
	fl.StringVar(&f.trace, "trace", "", "CSV trace (arrival,source,receivers,volume) to replay instead of a random workload")
	fl.Float64Var(&f.chunk, "chunk", 1, "chunk size of overlay schemes, in units")
	fl.StringVar(&f.format, "format", "table", "output: table (one row per scheme, mean ± spread over seeds), csv or json (one record per run)")
	fl.StringVar(&f.plot, "plot", "", "also draw TCT CDFs and relative bandwidth to FILE.svg or FILE.png")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (bars on a terminal, lines otherwise), bars, lines or none")
	return c
}

// presetHelp lists the presets for the command's help.
func presetHelp() string {
	var b strings.Builder
	for _, p := range sim.Presets() {
		fmt.Fprintf(&b, "  %-24s %s, %s\n", p.Name, p.Paper, p.Figure)
		fmt.Fprintf(&b, "  %-24s = %s (%s)\n", "", strings.Join(p.Args(), " "), p.Note)
	}
	return b.String()
}

// applyPreset sets every flag of the named preset the user did not set, and tells on w the
// command it stands for.
func applyPreset(cmd *cobra.Command, name string, w io.Writer) error {
	p, err := sim.LookupPreset(name)
	if err != nil {
		return usageErr(err)
	}
	args := p.Args()
	var eff []string
	for i := 0; i < len(args); i += 2 {
		flag, val := strings.TrimPrefix(args[i], "--"), args[i+1]
		if !cmd.Flags().Changed(flag) {
			if err := cmd.Flags().Set(flag, val); err != nil {
				return err
			}
		}
		eff = append(eff, args[i], cmd.Flags().Lookup(flag).Value.String())
	}
	fmt.Fprintf(w, "treecast sim: preset %s (%s, %s) = treecast sim %s\n", p.Name, p.Paper, p.Figure, strings.Join(eff, " "))
	return nil
}

func runSim(cmd *cobra.Command, f *simFlags) error {
	if f.preset != "" {
		if err := applyPreset(cmd, f.preset, cmd.ErrOrStderr()); err != nil {
			return err
		}
	}
	x, err := f.experiment()
	if err != nil {
		return err
	}
	switch f.format {
	case "table", "csv", "json":
	default:
		return usageErr(fmt.Errorf("unknown format %q (want table, csv or json)", f.format))
	}
	plotFormat := ""
	if f.plot != "" {
		if plotFormat, err = sim.PlotFormat(f.plot); err != nil {
			return usageErr(err)
		}
	}
	prog, err := newSimProgress(cmd.ErrOrStderr(), f.progress)
	if err != nil {
		return err
	}
	x.Progress = prog.update
	results, runErr := x.Run(cmd.Context())
	prog.close()
	interrupted := runErr != nil && cmd.Context().Err() != nil && errors.Is(runErr, cmd.Context().Err())
	if runErr != nil && !interrupted {
		return runErr
	}
	complete := results
	if interrupted {
		// Partial figures would skew the comparison: the table and the plot keep only the
		// seeds every scheme finished; CSV and JSON keep every run, with "completed".
		done := map[uint64]int{}
		for _, r := range results {
			if r.Completed == r.Transfers {
				done[r.Seed]++
			}
		}
		complete = nil
		for _, r := range results {
			if done[r.Seed] == len(x.Schemes) {
				complete = append(complete, r)
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "treecast sim: interrupted; the table and plot show the %d seed(s) every scheme finished\n",
			len(complete)/len(x.Schemes))
	}
	shown := results
	if f.format == "table" {
		shown = complete
	}
	if err := writeResults(cmd.OutOrStdout(), f.format, shown); err != nil {
		return err
	}
	if f.plot != "" && len(complete) > 0 {
		if err := writePlotFile(f.plot, plotFormat, complete); err != nil {
			return err
		}
	}
	if interrupted {
		return &exitError{code: 130, err: runErr}
	}
	return nil
}

// experiment builds the experiment the flags describe.
func (f *simFlags) experiment() (sim.Experiment, error) {
	var x sim.Experiment
	g, err := tree.ParseSpec(f.topo)
	if err != nil {
		return x, usageErr(err)
	}
	x.Graph = g
	if x.Schemes, err = sim.ParseSchemes(f.schemes); err != nil {
		return x, usageErr(err)
	}
	x.Rate = f.rate
	valid := false
	for _, r := range sim.RatePolicies {
		valid = valid || r == f.rate
	}
	if !valid {
		return x, usageErr(fmt.Errorf("unknown rate policy %q (want %s)", f.rate, strings.Join(sim.RatePolicies, ", ")))
	}
	if x.Seeds, err = sim.ParseRange(f.seeds, 0); err != nil {
		return x, usageErr(fmt.Errorf("--seeds: %w", err))
	}
	if !(f.chunk > 0) {
		return x, usageErr(fmt.Errorf("--chunk %v: must be > 0", f.chunk))
	}
	x.ChunkVolume = f.chunk
	if f.trace != "" {
		file, err := os.Open(f.trace)
		if err != nil {
			return x, usageErr(err)
		}
		defer file.Close()
		if x.Trace, err = sim.ReadTrace(file, g); err != nil {
			return x, usageErr(fmt.Errorf("%s: %w", f.trace, err))
		}
		return x, nil
	}
	x.Workload.Lambda = f.lambda
	x.Workload.Horizon = f.horizon
	if x.Workload.Receivers, err = sim.ParseRange(f.copies, 1); err != nil {
		return x, usageErr(fmt.Errorf("--copies: %w", err))
	}
	if x.Workload.Volume, err = sim.ParseVolume(f.volume); err != nil {
		return x, usageErr(fmt.Errorf("--volume: %w", err))
	}
	if err := x.Workload.Validate(g); err != nil {
		return x, usageErr(err)
	}
	return x, nil
}

func writePlotFile(name, format string, results []sim.Result) error {
	file, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := sim.WritePlot(file, results, format); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

func writeResults(w io.Writer, format string, results []sim.Result) error {
	switch format {
	case "json":
		if results == nil {
			results = []sim.Result{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Results []sim.Result `json:"results"`
		}{results})
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"scheme", "topology", "seed", "transfers", "completed", "total_bandwidth", "max_copies",
			"mean_tct", "p50_tct", "p99_tct", "max_tct", "mean_receiver_time", "p50_receiver_time", "p99_receiver_time", "wall_ms"})
		g := func(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }
		for _, r := range results {
			cw.Write([]string{r.Scheme, r.Topology, strconv.FormatUint(r.Seed, 10), strconv.Itoa(r.Transfers),
				strconv.Itoa(r.Completed), g(r.TotalBandwidth), g(r.MaxCopies), g(r.MeanTCT), g(r.P50TCT),
				g(r.P99TCT), g(r.MaxTCT), g(r.MeanReceiverTime), g(r.P50ReceiverTime), g(r.P99ReceiverTime), g(r.WallMS)})
		}
		cw.Flush()
		return cw.Error()
	}
	sums := sim.Summarize(results)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scheme\truns\ttransfers\tbandwidth\tbw ratio\tmax copies\tmean TCT\tp50 TCT\tp99 TCT\tmax TCT\tmean RCT\tp50 RCT\tp99 RCT\twall ms\t")
	pm := func(s sim.Stat) string {
		if s.Std == 0 {
			return strconv.FormatFloat(s.Mean, 'f', 1, 64)
		}
		return fmt.Sprintf("%.1f ± %.1f", s.Mean, s.Std)
	}
	for _, s := range sums {
		ratio := "-"
		if base := sums[0].TotalBandwidth.Mean; base > 0 {
			ratio = fmt.Sprintf("%.3f", s.TotalBandwidth.Mean/base)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t\n", s.Scheme, s.Runs, s.Transfers.Mean,
			pm(s.TotalBandwidth), ratio, s.MaxCopies.Mean, pm(s.MeanTCT), pm(s.P50TCT), pm(s.P99TCT), pm(s.MaxTCT),
			pm(s.MeanReceiverTime), pm(s.P50ReceiverTime), pm(s.P99ReceiverTime), s.WallMS.Mean)
	}
	if len(sums) > 0 {
		fmt.Fprintf(tw, "\ntopology %s; times in slots, volumes in units; TCT per transfer (last receiver), RCT per receiver; ± is the standard deviation over seeds\t\n", sums[0].Topology)
	}
	return tw.Flush()
}

// simProgress reports an experiment's progress on stderr: mpb bars on a terminal, a plain
// line per finished run otherwise.
type simProgress struct {
	w     io.Writer
	mode  string
	p     *mpb.Progress
	bar   *mpb.Bar
	cur   sim.Progress
	start time.Time
}

func newSimProgress(w io.Writer, mode string) (*simProgress, error) {
	width := 110 // the line width of bars drawn to something other than a terminal
	f, isFile := w.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) {
		if tw, _, err := term.GetSize(int(f.Fd())); err == nil && tw > 0 {
			width = tw
		}
	}
	switch mode {
	case "auto":
		mode = "lines"
		if isFile && term.IsTerminal(int(f.Fd())) {
			mode = "bars"
		}
	case "bars", "lines", "none":
	default:
		return nil, usageErr(fmt.Errorf("unknown progress mode %q (want auto, bars, lines or none)", mode))
	}
	s := &simProgress{w: w, mode: mode}
	if mode == "bars" {
		s.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(width), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	}
	return s, nil
}

// update is called synchronously by the experiment as transfers complete.
func (s *simProgress) update(p sim.Progress) {
	newRun := p.Run != s.cur.Run || s.start.IsZero()
	if newRun && !s.start.IsZero() {
		s.finishRun()
	}
	if newRun {
		s.start = time.Now()
		if s.p != nil {
			name := fmt.Sprintf("%s seed %d (%d/%d)", p.Scheme, p.Seed, p.Run+1, p.Runs)
			s.bar = s.p.AddBar(int64(p.Total),
				mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.CountersNoUnit("%d/%d transfers"), decor.Name(" "), decor.Percentage()))
		}
	}
	s.cur = p
	if s.bar != nil {
		s.bar.SetCurrent(int64(p.Done))
	}
}

func (s *simProgress) finishRun() {
	switch {
	case s.bar != nil:
		if s.cur.Done >= s.cur.Total {
			s.bar.SetTotal(int64(s.cur.Total), true)
		} else {
			s.bar.Abort(false)
		}
		s.bar = nil
	case s.mode == "lines":
		fmt.Fprintf(s.w, "sim: %s seed %d (%d/%d): %d/%d transfers in %v\n", s.cur.Scheme, s.cur.Seed, s.cur.Run+1,
			s.cur.Runs, s.cur.Done, s.cur.Total, time.Since(s.start).Round(time.Millisecond))
	}
}

// close ends the last run's report and waits for the bars to be drawn.
func (s *simProgress) close() {
	if !s.start.IsZero() {
		s.finishRun()
		s.start = time.Time{}
	}
	if s.p != nil {
		s.p.Wait()
		s.p = nil
	}
}
