package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Summary is one peer's runs in a report: medians over its runs.
type Summary struct {
	Peer string `json:"peer"`
	// Runs and OK count the runs and those in which every receiver verified its copy.
	Runs int `json:"runs"`
	OK   int `json:"ok"`
	// Seconds, XIdeal, MaxCopies and CPUSeconds are medians over the runs in which every
	// receiver verified its copy (0 if none did).
	Seconds   float64 `json:"median_seconds"`
	XIdeal    float64 `json:"median_x_ideal"`
	MaxCopies float64 `json:"median_max_copies"`
	// CPUSeconds is the median CPU time of the run's processes.
	CPUSeconds float64 `json:"median_cpu_seconds"`
	// MaxArcs lists, once each, the arcs that carried the most in some run, with their kind.
	MaxArcs []string `json:"max_arcs"`
	// Verified and Receivers are summed over the runs.
	Verified  int `json:"verified"`
	Receivers int `json:"receivers"`
}

// Summaries returns one summary per peer, in the report's peer order.
func (r *Report) Summaries() []Summary {
	var out []Summary
	for _, peer := range r.Peers {
		s := Summary{Peer: peer}
		var secs, xs, copies, cpu []float64
		seen := map[string]bool{}
		for _, res := range r.Results {
			if res.Peer != peer {
				continue
			}
			s.Runs++
			if res.OK() {
				s.OK++
			}
			s.Verified += res.Verified
			s.Receivers += res.Receivers
			if res.OK() && res.Seconds > 0 {
				cpu = append(cpu, res.CPUSeconds)
				secs, xs, copies = append(secs, res.Seconds), append(xs, res.XIdeal), append(copies, res.MaxCopies)
				if a := res.MaxArc + " (" + res.MaxKind + ")"; !seen[a] {
					seen[a] = true
					s.MaxArcs = append(s.MaxArcs, a)
				}
			}
		}
		s.Seconds, s.XIdeal, s.MaxCopies, s.CPUSeconds = median(secs), median(xs), median(copies), median(cpu)
		out = append(out, s)
	}
	return out
}

// WriteJSON writes the report, with its summaries, as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Summaries []Summary `json:"summaries"`
	}{r, r.Summaries()})
}

// WriteMarkdown writes the report as Markdown: the setup, a table of medians per peer and a
// table of every run. plot, if not empty, is the file name of the PNG plot to link.
func (r *Report) WriteMarkdown(w io.Writer, plot string) error {
	var b strings.Builder
	net := fmt.Sprintf("%s, %s", r.Network, FormatSize(r.Object))
	fmt.Fprintf(&b, "## %s\n\n", net)
	if r.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	}
	fmt.Fprintf(&b, "Run %s on %s, %d CPUs. Source r0h0, %d receivers; %d run(s) per peer, interleaved. "+
		"Ideal = object / (link rate x %.2f) = %.2f s. Copies on an arc = bytes it carried (interface counters, "+
		"Ethernet headers included) / object size. CPU s = CPU time (user + system) "+
		"of every process of the run, setup included.", r.Date, r.Kernel, r.CPUs, receivers(r), r.Runs, Goodput, r.Ideal)
	if r.PerFrame {
		b.WriteString(" Links carry Ethernet frames one by one (`--per-frame`): every bridge and veth handles each frame.")
	} else {
		b.WriteString(" Links pass TCP's 64 KiB segmentation-offload packets whole, as hosts with TSO and GRO and " +
			"hardware switches do (a TCP copy counts about 1.00, a copy in UDP datagrams about 1.05).")
	}
	if len(r.Tools) > 0 {
		var tools []string
		for _, k := range sortedKeys(r.Tools) {
			tools = append(tools, k+" "+r.Tools[k])
		}
		fmt.Fprintf(&b, " Debian packages: %s.", strings.Join(tools, ", "))
	}
	if r.LoadStart != "" {
		fmt.Fprintf(&b, " Load average (1, 5, 15 min) %s at the start, %s at the end.", r.LoadStart, r.LoadEnd)
	}
	b.WriteString("\n\n")
	if plot != "" {
		fmt.Fprintf(&b, "![seconds and max copies per peer](%s)\n\n", plot)
	}
	fmt.Fprintf(&b, "Medians over the runs in which every receiver verified its copy (runs ok):\n\n")
	b.WriteString("| network, object | peer | seconds | x ideal | max copies on an arc | which arc | receivers verified | runs ok | CPU s |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n")
	for _, s := range r.Summaries() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d/%d | %d/%d | %s |\n", net, s.Peer, num(s.Seconds, 1), num(s.XIdeal, 2),
			num(s.MaxCopies, 2), strings.Join(s.MaxArcs, ", "), s.Verified, s.Receivers, s.OK, s.Runs, num(s.CPUSeconds, 0))
	}
	b.WriteString("\nEvery run:\n\n")
	b.WriteString("| network, object | peer | run | seconds | x ideal | max copies on an arc | which arc | receivers verified | CPU s | error, notes |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |\n")
	for _, res := range r.Results {
		arc := "-"
		if res.MaxArc != "" {
			arc = res.MaxArc + " (" + res.MaxKind + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %d/%d | %s | %s |\n", net, res.Peer, res.Run, num(res.Seconds, 2),
			num(res.XIdeal, 2), num(res.MaxCopies, 2), arc, res.Verified, res.Receivers, num(res.CPUSeconds, 0), mdEscape(errorAndNotes(res)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// errorAndNotes is the error of a run and its notes, counted when many (the first shown).
func errorAndNotes(r Result) string {
	s := r.Error
	if len(r.Notes) > 0 {
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("%d note(s), first: %s", len(r.Notes), r.Notes[0])
	}
	return s
}

func receivers(r *Report) int {
	if len(r.Results) == 0 {
		return 0
	}
	return r.Results[0].Receivers
}

func num(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func mdEscape(s string) string {
	if s == "" {
		return ""
	}
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// FormatSize writes a byte count in binary units: "50 MiB".
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
