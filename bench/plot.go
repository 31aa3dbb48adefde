package bench

import (
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePNG draws the report as a PNG: per peer, the median seconds (bars, labelled with x
// ideal) with every run as a point and the ideal as a line, and the median max copies on an
// arc (bars) with every run as a point.
func (r *Report) WritePNG(w io.Writer) error {
	sums := r.Summaries()
	names := make([]string, len(sums))
	for i, s := range sums {
		names[i] = s.Peer
	}
	secs, err := r.panel(sums, names, "Seconds until every receiver verified", "seconds",
		func(s Summary) float64 { return s.Seconds }, func(res Result) float64 { return res.Seconds },
		func(s Summary) string { return fmt.Sprintf("%.1fx", s.XIdeal) }, r.Ideal, "ideal")
	if err != nil {
		return err
	}
	copies, err := r.panel(sums, names, "Max copies on an arc", "copies (bytes / object)",
		func(s Summary) float64 { return s.MaxCopies }, func(res Result) float64 { return res.MaxCopies },
		func(s Summary) string { return fmt.Sprintf("%.2f", s.MaxCopies) }, 1, "one copy")
	if err != nil {
		return err
	}
	width, height := 12*vg.Inch, 5*vg.Inch
	ic := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))
	c := draw.New(ic)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(18), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{secs, copies}}, tiles, c)
	secs.Draw(canvases[0][0])
	copies.Draw(canvases[0][1])
	if _, err := (vgimg.PngCanvas{Canvas: ic}).WriteTo(w); err != nil {
		return fmt.Errorf("bench: writing plot: %w", err)
	}
	return nil
}

// panel is one bar chart of a value per peer: the median as a bar with a label, each run as
// a point, and a reference line.
func (r *Report) panel(sums []Summary, names []string, title, ylabel string, med func(Summary) float64,
	each func(Result) float64, label func(Summary) string, ref float64, refName string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s\n%s, %s", title, r.Network, FormatSize(r.Object))
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	vals := make(plotter.Values, len(sums))
	top := ref
	labels := plotter.XYLabels{}
	for i, s := range sums {
		vals[i] = med(s)
		top = max(top, vals[i])
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: vals[i]})
		labels.Labels = append(labels.Labels, label(s))
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(36))
	if err != nil {
		return nil, fmt.Errorf("bench: plot: %w", err)
	}
	bars.Color = plotutil.Color(0)
	bars.LineStyle.Width = 0
	p.Add(bars)
	var pts plotter.XYs
	for i, name := range names {
		for _, res := range r.Results {
			if res.Peer == name && each(res) > 0 {
				pts = append(pts, plotter.XY{X: float64(i), Y: each(res)})
				top = max(top, each(res))
			}
		}
	}
	if len(pts) > 0 {
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("bench: plot: %w", err)
		}
		sc.GlyphStyle.Color = plotutil.Color(1)
		sc.GlyphStyle.Radius = vg.Points(2.5)
		sc.GlyphStyle.Shape = draw.CrossGlyph{}
		p.Add(sc)
		p.Legend.Add("each run", sc)
	}
	line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: ref}, {X: float64(len(sums)) - 0.5, Y: ref}})
	if err != nil {
		return nil, fmt.Errorf("bench: plot: %w", err)
	}
	line.Color = plotutil.Color(2)
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(line)
	p.Legend.Add(refName, line)
	p.Legend.Top = true
	if lb, err := plotter.NewLabels(labels); err == nil {
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XCenter
			lb.TextStyle[i].YAlign = draw.YBottom
		}
		p.Add(lb)
	}
	p.Y.Max = top * 1.3
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.5
	p.X.Tick.Label.XAlign = draw.XRight
	return p, nil
}
