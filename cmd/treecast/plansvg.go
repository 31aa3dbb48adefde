package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/treecast/treecast/scheduler"
	"github.com/treecast/treecast/tree"
)

// planSVGMaxNodes bounds the drawing: beyond it only the nodes the plan's paths cross are drawn.
const planSVGMaxNodes = 300

// stripeColors are the stripes' colours, as on the live page.
var stripeColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"}

// writePlanSVG draws plan p over its topology as SVG: switches and hosts in layers (hosts at
// the bottom, each switch as high as its distance from the nearest host; a graph without hosts
// on a circle), every link in grey with the copies the plan puts on it (red above one copy in
// either direction), and the overlay edges of every stripe as coloured arrows from parent to
// child. A topology of more than planSVGMaxNodes nodes is drawn as far as the plan's routes
// cross it. Cost: O(nodes + links) and O(plan edges × path length).
func writePlanSVG(w io.Writer, p *scheduler.Plan) error {
	g := p.Graph
	copies := p.Copies()
	drawn := map[tree.NodeID]bool{p.Source: true}
	for _, r := range p.Receivers {
		drawn[r] = true
	}
	if g.NumNodes() <= planSVGMaxNodes {
		for v := range g.NumNodes() {
			drawn[tree.NodeID(v)] = true
		}
	} else {
		for _, st := range p.Stripes {
			for _, e := range st.Edges {
				for _, a := range e.Path {
					arc := g.Arc(a)
					drawn[arc.From], drawn[arc.To] = true, true
				}
			}
		}
	}
	pos, width, height := layoutTopology(g, drawn)

	var b strings.Builder
	const top = 60
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="10">`+"\n",
		width, height+top+20, width, height+top+20)
	b.WriteString("<defs>")
	for i, c := range stripeColors {
		fmt.Fprintf(&b, `<marker id="arrow%d" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`, i, c)
	}
	b.WriteString("</defs>\n")
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", html.EscapeString(fmt.Sprintf("%s plan on %s from %s to %d receivers", p.Strategy, g.Name(), g.NodeName(p.Source), len(p.Receivers))))
	lb, _ := p.LowerBound()
	fmt.Fprintf(&b, `<text x="10" y="34">%s</text>`+"\n", html.EscapeString(fmt.Sprintf("%s · copies per arc: max %.2f (switch-to-switch %.2f, host %.2f), total %.2f, lower bound %.0f", p.Summary(), copies.Max, copies.MaxSwitch, copies.MaxHost, copies.Total, lb)))
	for s := range p.Stripes {
		kind := "stripe"
		if s >= p.DataStripes {
			kind = "parity tree"
		}
		x := 10 + 110*float64(s)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="48" x2="%.0f" y2="48" stroke="%s" stroke-width="3"/><text x="%.0f" y="52">%s %d</text>`+"\n", x, x+22, stripeColors[s%len(stripeColors)], x+27, kind, s)
	}
	fmt.Fprintf(&b, `<g transform="translate(0,%d)">`+"\n", top)

	// Links, with the copies the plan puts on each direction.
	for a := 0; a < g.NumArcs(); a += 2 {
		arc := g.Arc(tree.ArcID(a))
		if !drawn[arc.From] || !drawn[arc.To] {
			continue
		}
		u, v := pos[arc.From], pos[arc.To]
		fwd, rev := copies.PerArc[a], copies.PerArc[a+1]
		stroke, sw := "#ccc", 1.0
		if fwd+rev > 0 {
			stroke, sw = "#555", 1.5+math.Max(fwd, rev)
		}
		if fwd > 1.001 || rev > 1.001 {
			stroke = "#c62828"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"><title>%s</title></line>`+"\n",
			u[0], u[1], v[0], v[1], stroke, sw, html.EscapeString(fmt.Sprintf("%s -> %s: %.2f copies; %s -> %s: %.2f", g.NodeName(arc.From), g.NodeName(arc.To), fwd, g.NodeName(arc.To), g.NodeName(arc.From), rev)))
		if fwd+rev > 0 {
			lo, hi := u, v // the label sits three quarters of the way down, where links fan out least
			if lo[1] > hi[1] {
				lo, hi = hi, lo
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" font-size="9">%s</text>`+"\n", lo[0]+0.75*(hi[0]-lo[0])+3, lo[1]+0.75*(hi[1]-lo[1]), stroke, copiesLabel(fwd, rev))
		}
	}
	// Overlay edges: parent to child, one colour per stripe, bowed so that they stay apart.
	for s, st := range p.Stripes {
		col := stripeColors[s%len(stripeColors)]
		for _, e := range st.Edges {
			u, v := pos[e.From], pos[e.To]
			dx, dy := v[0]-u[0], v[1]-u[1]
			bow := 0.25 + 0.08*float64(s)
			cx, cy := (u[0]+v[0])/2-dy*bow, (u[1]+v[1])/2+dx*bow
			if len(g.Hosts()) > 0 {
				cy = math.Max(u[1], v[1]) + 30 + 0.15*math.Abs(dx) + 8*float64(s) // below the hosts
				cx = (u[0] + v[0]) / 2
			}
			fmt.Fprintf(&b, `<path d="M%.1f,%.1f Q%.1f,%.1f %.1f,%.1f" fill="none" stroke="%s" stroke-width="1.8" stroke-opacity="0.85" marker-end="url(#arrow%d)"><title>%s</title></path>`+"\n",
				u[0], u[1], cx, cy, v[0], v[1], col, s%len(stripeColors), html.EscapeString(fmt.Sprintf("stripe %d: %s -> %s", s, g.NodeName(e.From), g.NodeName(e.To))))
		}
	}
	// Nodes: hosts as squares (the source gold, receivers blue), switches and sites as circles.
	recv := map[tree.NodeID]bool{}
	for _, r := range p.Receivers {
		recv[r] = true
	}
	ids := make([]tree.NodeID, 0, len(drawn))
	for v := range drawn {
		ids = append(ids, v)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, v := range ids {
		q := pos[v]
		name := html.EscapeString(g.NodeName(v))
		switch {
		case g.Node(v).Kind == tree.Host || v == p.Source || recv[v]:
			fill := "#eee"
			if v == p.Source {
				fill = "#ffd54f"
			} else if recv[v] {
				fill = "#9ecae1"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s" stroke="#333"><title>%s</title></rect>`+"\n", q[0]-6, q[1]-6, fill, name)
		default:
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="#fff" stroke="#333"><title>%s</title></circle>`+"\n", q[0], q[1], name)
		}
		if len(drawn) <= 120 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`+"\n", q[0], q[1]-9, name)
		}
	}
	b.WriteString("</g>\n</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// copiesLabel shows a link's copies: one number when one direction carries them, both
// otherwise.
func copiesLabel(fwd, rev float64) string {
	f := func(x float64) string { return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", x), "0"), ".") }
	switch {
	case rev == 0:
		return f(fwd)
	case fwd == 0:
		return f(rev)
	}
	return f(fwd) + "/" + f(rev)
}

// layoutTopology places the drawn nodes: layers by distance from the nearest host (hosts at
// the bottom), each layer ordered by the mean position of its neighbours above (a few
// sweeps), or a circle when the graph has no hosts. It returns positions, width and height.
func layoutTopology(g *tree.Graph, drawn map[tree.NodeID]bool) (map[tree.NodeID][2]float64, float64, float64) {
	pos := map[tree.NodeID][2]float64{}
	var nodes []tree.NodeID
	for v := range drawn {
		nodes = append(nodes, v)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
	neighbours := func(v tree.NodeID) []tree.NodeID {
		var out []tree.NodeID
		for _, a := range g.Out(v) {
			if u := g.Arc(a).To; drawn[u] {
				out = append(out, u)
			}
		}
		return out
	}
	level := map[tree.NodeID]int{}
	var queue []tree.NodeID
	for _, v := range nodes {
		if g.Node(v).Kind == tree.Host {
			level[v] = 0
			queue = append(queue, v)
		}
	}
	if len(queue) == 0 { // a WAN of sites: a circle
		r := math.Max(150, 14*float64(len(nodes)))
		for i, v := range nodes {
			t := 2 * math.Pi * float64(i) / float64(len(nodes))
			pos[v] = [2]float64{r + 60 + r*math.Cos(t), r + 20 + r*math.Sin(t)}
		}
		return pos, math.Max(700, 2*r+120), 2*r + 40
	}
	for k := 0; k < len(queue); k++ {
		for _, u := range neighbours(queue[k]) {
			if _, seen := level[u]; !seen {
				level[u] = level[queue[k]] + 1
				queue = append(queue, u)
			}
		}
	}
	maxLevel := 0
	for _, v := range nodes {
		if _, ok := level[v]; !ok {
			level[v] = 1 // not connected to a host in the drawing
		}
		maxLevel = max(maxLevel, level[v])
	}
	layers := make([][]tree.NodeID, maxLevel+1)
	for _, v := range nodes {
		layers[level[v]] = append(layers[level[v]], v)
	}
	index := map[tree.NodeID]float64{}
	for _, l := range layers {
		for i, v := range l {
			index[v] = float64(i) / float64(max(len(l), 1))
		}
	}
	for range 3 { // top down: each layer under the mean of its neighbours above
		for k := maxLevel - 1; k >= 0; k-- {
			bary := map[tree.NodeID]float64{}
			for _, v := range layers[k] {
				sum, n := 0.0, 0
				for _, u := range neighbours(v) {
					if level[u] == k+1 {
						sum, n = sum+index[u], n+1
					}
				}
				bary[v] = index[v]
				if n > 0 {
					bary[v] = sum / float64(n)
				}
			}
			l := layers[k]
			sort.SliceStable(l, func(i, j int) bool { return bary[l[i]] < bary[l[j]] })
			for i, v := range l {
				index[v] = float64(i) / float64(len(l))
			}
		}
	}
	widest := 0
	for _, l := range layers {
		widest = max(widest, len(l))
	}
	const dx, dy = 34.0, 90.0
	width := math.Max(600, float64(widest)*dx+40)
	for k, l := range layers {
		step := (width - 40) / float64(len(l))
		for i, v := range l {
			pos[v] = [2]float64{20 + step*(float64(i)+0.5), 20 + dy*float64(maxLevel-k)}
		}
	}
	return pos, width, dy*float64(maxLevel) + 120
}
