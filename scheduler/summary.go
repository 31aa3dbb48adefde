package scheduler

import (
	"fmt"
	"math"
)

// Summary is what a user of a plan needs to know of it, as one line (String) or one JSON
// object: the agents carry it in `push --json` and `demo --json` as "plan".
type Summary struct {
	// Strategy is the strategy the plan runs; Auto says auto chose it.
	Strategy Strategy `json:"strategy"`
	Auto     bool     `json:"auto"`
	// Stripes is the number of data stripes, Parity the parity trees.
	Stripes int `json:"stripes"`
	Parity  int `json:"parity"`
	// Receivers is the number of receivers; Depth the most overlay hops to one of them.
	Receivers int `json:"receivers"`
	Depth     int `json:"depth"`
	// ChunkSize is the chunk size the plan asks for, in bytes.
	ChunkSize int `json:"chunk_size"`
	// MaxArcCopies is the predicted largest number of copies of the object on one arc of
	// the topology the plan was built on (switch-to-switch arcs included); TotalCopies the
	// sum over arcs.
	MaxArcCopies float64 `json:"max_arc_copies"`
	TotalCopies  float64 `json:"total_copies"`
}

// Summary returns the plan's summary. Cost O(sum of path lengths).
func (p *Plan) Summary() Summary {
	c := p.Copies()
	round := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	return Summary{
		Strategy: p.Strategy, Auto: p.Auto, Stripes: p.DataStripes, Parity: p.Parity,
		Receivers: len(p.Receivers), Depth: p.Depth(), ChunkSize: p.ChunkSize,
		MaxArcCopies: round(c.Max), TotalCopies: round(c.Total),
	}
}

// String returns the summary in one line, such as "auto: forest, 8 stripes, depth 16,
// max 1.12 copies per arc, 256 KiB chunks, 8191 receivers".
func (s Summary) String() string {
	name := string(s.Strategy)
	if s.Auto {
		name = "auto: " + name
	}
	stripes := fmt.Sprintf("%d stripe", s.Stripes)
	if s.Stripes != 1 {
		stripes += "s"
	}
	if s.Parity > 0 {
		stripes += fmt.Sprintf(" + %d parity", s.Parity)
	}
	return fmt.Sprintf("%s, %s, depth %d, max %.2f copies per arc, %s chunks, %d receivers",
		name, stripes, s.Depth, s.MaxArcCopies, sizeString(s.ChunkSize), s.Receivers)
}

// sizeString writes a byte count in KiB or MiB when it is a whole number of them.
func sizeString(b int) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
