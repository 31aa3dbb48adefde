package sim

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
)

func plotResults() []Result {
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []Result
	for seed := range 3 {
		for i, name := range []string{"dccast", "p2p", "random"} {
			r := Result{Scheme: name, Topology: "gscale", Seed: uint64(seed), TotalBandwidth: float64(100 + 30*i)}
			for range 50 {
				r.TCT = append(r.TCT, 10+rng.ExpFloat64()*float64(20+10*i))
			}
			rs = append(rs, r)
		}
	}
	return rs
}

func TestWritePlot(t *testing.T) {
	rs := plotResults()
	var svg bytes.Buffer
	if err := WritePlot(&svg, rs, "svg"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "dccast", "random", "Transfer completion time", "Receiver completion time"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	var pngBuf bytes.Buffer
	if err := WritePlot(&pngBuf, rs, "png"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngBuf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 400 {
		t.Fatalf("PNG is %v", b)
	}
	if err := WritePlot(&svg, rs, "gif"); err == nil {
		t.Error("gif accepted")
	}
	if err := WritePlot(&svg, nil, "svg"); err == nil {
		t.Error("empty results accepted")
	}
	for name, ok := range map[string]bool{"a.svg": true, "a.PNG": true, "a.pdf": false, "a": false} {
		if _, err := PlotFormat(name); (err == nil) != ok {
			t.Errorf("PlotFormat(%q) error %v", name, err)
		}
	}
}
