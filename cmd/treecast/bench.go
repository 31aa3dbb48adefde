package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/bench"
	"github.com/treecast/treecast/bench/testbed"
)

func init() { commands = append(commands, newBenchCmd) }

func newBenchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark treecast: against its peers on a namespace testbed, and one relay hop against raw TCP",
	}
	c.AddCommand(newBenchTestbedCmd(), newBenchRelayCmd(), newBenchServeCmd(), newBenchRemoveCmd())
	return c
}

func newBenchTestbedCmd() *cobra.Command {
	var (
		racks, hosts, runs    int
		joinBatch             int
		rate, uplink, size    string
		peers                 []string
		out, name             string
		timeout               time.Duration
		install, keep, noPlot bool
		perFrame              bool
	)
	c := &cobra.Command{
		Use:   "testbed [--racks R --hosts H --rate 100M --size 50MiB --runs 3] --out DIR",
		Short: "Run treecast and its peers side by side on a two-tier testbed of network namespaces",
		Long: `Build a two-tier network of Linux network namespaces (R racks of H hosts under a core switch,
every arc shaped by tbf to --rate, addresses in 198.18.0.0/15, nothing joined to the machine's
own network; links pass TCP's 64 KiB offload packets whole, as hosts with TSO and GRO and
hardware switches do, unless --per-frame), and distribute one object from host r0h0 to
every other host with each peer, --runs times each, runs interleaved:

  treecast             agents in every host (this binary), push --to all with the defaults
  treecast:FLAGS       the same with extra push flags, e.g. "treecast:--strategy chain --chunk 256KiB"
  uftp                 IP multicast with NAK repair (uftp/uftpd)
  bittorrent           aria2c swarm with opentracker, torrent made by mktorrent
  http                 every receiver fetches from the source with curl

Each run is timed until every receiver holds its copy, every copy's SHA-256 is checked, and
the copies each arc carried are read from interface counters. The report goes to DIR as
Markdown (testbed.md), JSON (testbed.json) and a PNG plot (testbed.png), and a line per run
to stderr (the Markdown and JSON are rewritten after every run, so an interrupted benchmark
leaves a partial report). Needs root; with --install, missing Debian packages are installed with apt-get.
The testbed and every process are removed at the end, also on Ctrl-C.`,
		Example: `  treecast bench testbed --racks 4 --hosts 4 --rate 100M --size 50MiB --runs 3 --out report/
  treecast bench testbed --peer treecast --peer uftp --size 4MiB --runs 1 --out small/`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr(fmt.Errorf("--out DIR is required"))
			}
			cfg := bench.Config{Racks: racks, HostsPerRack: hosts, Runs: runs, Timeout: timeout, Install: install, PerFrame: perFrame,
				Keep: keep, Name: name, Log: c.ErrOrStderr(), Seed: 1}
			r, err := parseSize(rate)
			if err != nil {
				return usageErr(fmt.Errorf("--rate: %w", err))
			}
			cfg.Rate = float64(r)
			if uplink != "" {
				u, err := parseSize(uplink)
				if err != nil {
					return usageErr(fmt.Errorf("--uplink-rate: %w", err))
				}
				cfg.UplinkRate = float64(u)
			}
			if cfg.Size, err = parseSize(size); err != nil {
				return usageErr(fmt.Errorf("--size: %w", err))
			}
			for _, p := range peers {
				peer, err := bench.PeerByName(p)
				if err != nil {
					return usageErr(err)
				}
				cfg.Peers = append(cfg.Peers, peer)
			}
			if cfg.Peers == nil {
				cfg.Peers = bench.DefaultPeers()
			}
			if joinBatch < 0 {
				return usageErr(fmt.Errorf("--join-batch %d is negative", joinBatch))
			}
			for _, p := range cfg.Peers {
				if tc, ok := p.(*bench.Treecast); ok {
					tc.JoinBatch = joinBatch
				}
			}
			if cfg.Treecast, err = os.Executable(); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return usageErr(err)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			command := "treecast bench testbed " + strings.Join(quoteArgs(argsAfter(os.Args, "testbed")), " ")
			cfg.OnResult = func(r *bench.Report) { // a partial report survives an interrupted benchmark
				r.Command = command
				_ = writeBenchReport(r, out, false)
			}
			rep, err := bench.Run(c.Context(), cfg)
			if rep == nil {
				return err
			}
			rep.Command = command
			if werr := writeBenchReport(rep, out, !noPlot); werr != nil {
				return werr
			}
			fmt.Fprintf(c.OutOrStdout(), "report: %s\n", filepath.Join(out, "testbed.md"))
			if err != nil {
				return err
			}
			for _, res := range rep.Results {
				if !res.OK() {
					return &exitError{code: 1, err: fmt.Errorf("run %d of %s failed: %s", res.Run, res.Peer, res.Error)}
				}
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&racks, "racks", 4, "racks under the core switch")
	f.IntVar(&hosts, "hosts", 4, "hosts per rack")
	f.StringVar(&rate, "rate", "100M", "rate of every host link, bits/s (100M, 1G)")
	f.StringVar(&uplink, "uplink-rate", "", "rate of every rack uplink, bits/s (default: --rate)")
	f.BoolVar(&perFrame, "per-frame", false, "links carry Ethernet frames one by one instead of passing TCP's offload packets whole (the kernel's per-frame work then bounds the TCP peers)")
	f.StringVar(&size, "size", "50MiB", "object size")
	f.IntVar(&runs, "runs", 3, "runs per peer")
	f.StringArrayVar(&peers, "peer", nil, "a peer to run, repeatable: treecast, treecast:FLAGS, uftp, bittorrent, http (default: treecast, treecast:--strategy chain --chunk 256KiB, uftp, bittorrent, http)")
	f.IntVar(&joinBatch, "join-batch", 0, "start the treecast agents this many at a time (0: all at once)")
	f.StringVar(&out, "out", "", "directory for testbed.md, testbed.json and testbed.png (required)")
	f.StringVar(&name, "name", "", "testbed name, 1 to 8 of [a-z0-9] (default: random)")
	f.DurationVar(&timeout, "timeout", 0, "bound on one run (default: 60s + 2 x receivers x ideal)")
	f.BoolVar(&install, "install", true, "install missing Debian packages with apt-get (root)")
	f.BoolVar(&keep, "keep", false, "keep the work directory (copies and logs of every process)")
	f.BoolVar(&noPlot, "no-plot", false, "skip the PNG plot")
	return c
}

func writeBenchReport(rep *bench.Report, dir string, plot bool) error {
	write := func(name string, fn func(f *os.File) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	png := ""
	if plot {
		png = "testbed.png"
		if err := write(png, func(f *os.File) error { return rep.WritePNG(f) }); err != nil {
			return err
		}
	}
	if err := write("testbed.json", func(f *os.File) error { return rep.WriteJSON(f) }); err != nil {
		return err
	}
	return write("testbed.md", func(f *os.File) error { return rep.WriteMarkdown(f, png) })
}

// argsAfter returns the arguments after the first one equal to word.
func argsAfter(args []string, word string) []string {
	for i, a := range args {
		if a == word {
			return args[i+1:]
		}
	}
	return nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

func newBenchServeCmd() *cobra.Command {
	var dir, listen string
	c := &cobra.Command{
		Use:    "serve --dir DIR --listen ADDR",
		Short:  "Serve the files of DIR over HTTP (the source of the benchmark's http peer)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			return bench.ServeFiles(c.Context(), dir, ln)
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to serve")
	c.Flags().StringVar(&listen, "listen", "", "address host:port")
	_ = c.MarkFlagRequired("dir")
	_ = c.MarkFlagRequired("listen")
	return c
}

func newBenchRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a testbed left behind by a killed benchmark (its namespaces and their processes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return testbed.Remove(args[0])
		},
	}
}
