package sim

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PlotFormat returns the plot format for a file name: "svg" or "png" by its extension, or an
// error naming the file.
func PlotFormat(name string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	}
	return "", fmt.Errorf("sim: plot %q: want a .svg or .png file", name)
}

// WritePlot draws a three-panel figure of results and writes it to w in format ("svg" or
// "png"): on the left the CDF of transfer completion times (to the last receiver) per scheme,
// in the middle the CDF of per-receiver completion times (pooled over seeds), on the right
// each scheme's mean total bandwidth normalized to the first scheme's. Cost O(n log n) in the
// number of receivers.
func WritePlot(w io.Writer, results []Result, format string) error {
	sums := Summarize(results)
	if len(sums) == 0 {
		return fmt.Errorf("sim: nothing to plot")
	}
	topo := sums[0].Topology
	cdf, err := cdfPlot("Transfer completion time, "+topo, "TCT (slots)", "fraction of transfers", sums, results,
		func(r Result) []float64 { return r.TCT })
	if err != nil {
		return err
	}
	rcdf, err := cdfPlot("Receiver completion time, "+topo, "completion (slots)", "fraction of receivers", sums, results,
		func(r Result) []float64 {
			var all []float64
			for _, rt := range r.ReceiverTimes {
				all = append(all, rt...)
			}
			return all
		})
	if err != nil {
		return err
	}

	bw := plot.New()
	bw.Title.Text = "Total bandwidth, relative to " + sums[0].Scheme
	bw.Y.Label.Text = "bandwidth / " + sums[0].Scheme
	bw.Y.Min = 0
	bw.Add(plotter.NewGrid())
	base := sums[0].TotalBandwidth.Mean
	vals := make(plotter.Values, len(sums))
	names := make([]string, len(sums))
	for i, s := range sums {
		if base > 0 {
			vals[i] = s.TotalBandwidth.Mean / base
		}
		names[i] = s.Scheme
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return fmt.Errorf("sim: plot: %w", err)
	}
	bars.Color = plotutil.Color(0)
	bars.LineStyle.Width = 0
	bw.Add(bars)
	top := 0.0
	labels := plotter.XYLabels{}
	for i, v := range vals {
		top = max(top, v)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v})
		labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f", v))
	}
	if lb, err := plotter.NewLabels(labels); err == nil {
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XCenter
			lb.TextStyle[i].YAlign = draw.YBottom
		}
		bw.Add(lb)
	}
	bw.Y.Max = top * 1.12
	bw.NominalX(names...)
	if len(names) > 4 {
		bw.X.Tick.Label.Rotation = 0.6
		bw.X.Tick.Label.XAlign = draw.XRight
	}

	width, height := 16*vg.Inch, 4.2*vg.Inch
	var c draw.Canvas
	var out io.WriterTo
	switch format {
	case "svg":
		sc := vgsvg.New(width, height)
		c, out = draw.New(sc), sc
	case "png":
		ic := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(120))
		c, out = draw.New(ic), vgimg.PngCanvas{Canvas: ic}
	default:
		return fmt.Errorf("sim: plot format %q: want svg or png", format)
	}
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Points(18), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{cdf, rcdf, bw}}, tiles, c)
	cdf.Draw(canvases[0][0])
	rcdf.Draw(canvases[0][1])
	bw.Draw(canvases[0][2])
	if _, err := out.WriteTo(w); err != nil {
		return fmt.Errorf("sim: writing plot: %w", err)
	}
	return nil
}

// cdfPlot draws, per scheme, the CDF of the values get returns for its results.
func cdfPlot(title, xlabel, ylabel string, sums []Summary, results []Result, get func(Result) []float64) (*plot.Plot, error) {
	cdf := plot.New()
	cdf.Title.Text = title
	cdf.X.Label.Text = xlabel
	cdf.Y.Label.Text = ylabel
	cdf.Y.Min, cdf.Y.Max = 0, 1
	cdf.Legend.Top = true // CDFs leave the top left corner empty
	cdf.Legend.Left = true
	cdf.Legend.XOffs = vg.Points(8)
	cdf.Add(plotter.NewGrid())
	lo, hi := 0.0, 0.0
	for _, r := range results {
		for _, x := range get(r) {
			if x > 0 && (lo == 0 || x < lo) {
				lo = x
			}
			hi = max(hi, x)
		}
	}
	cdf.X.Tick.Marker = plainTicks{plot.DefaultTicks{}}
	if lo > 0 && hi/lo > 30 { // long tails: a log axis keeps the body readable
		cdf.X.Scale = plot.LogScale{}
		cdf.X.Tick.Marker = plot.LogTicks{Prec: -1}
		cdf.X.Label.Text = xlabel + ", log scale"
	}
	for i, s := range sums {
		var xs []float64
		for _, r := range results {
			if r.Scheme == s.Scheme {
				xs = append(xs, get(r)...)
			}
		}
		if len(xs) == 0 {
			continue
		}
		slices.Sort(xs)
		pts := make(plotter.XYs, 0, len(xs)+1)
		pts = append(pts, plotter.XY{X: xs[0], Y: 0})
		for k, x := range xs {
			pts = append(pts, plotter.XY{X: x, Y: float64(k+1) / float64(len(xs))})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("sim: plot: %w", err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.5)
		l.StepStyle = plotter.PostStep
		cdf.Add(l)
		cdf.Legend.Add(s.Scheme, l)
	}
	return cdf, nil
}

// plainTicks drops the trailing zeros of another ticker's labels ("25" for "25.00").
type plainTicks struct{ plot.Ticker }

func (t plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := t.Ticker.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 6, 64)
		}
	}
	return ticks
}
