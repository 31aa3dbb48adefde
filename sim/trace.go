package sim

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/treecast/treecast/tree"
)

// maxTraceLine bounds the length of one trace line.
const maxTraceLine = 1 << 20

// ReadTrace reads a workload from a CSV trace, one transfer per line:
//
//	arrival,source,receivers,volume
//	0,s1,s3;s7,25.5
//
// arrival is a whole slot number >= 0, source a node name of g, receivers node names of g
// separated by ';' (the source and duplicates are dropped; at least one must remain), volume
// a positive number of units. Blank lines and lines starting with '#' are skipped, and a
// first line "arrival,source,receivers,volume" is taken as a header. Transfers are returned
// sorted by arrival (stable: lines with the same arrival keep their order) and numbered in
// that order. Errors wrap ErrBadTrace and name the line and the field. Cost O(size of the
// trace).
func ReadTrace(r io.Reader, g *tree.Graph) ([]Transfer, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxTraceLine)
	var out []Transfer
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, ",")
		if len(out) == 0 && strings.EqualFold(strings.ReplaceAll(text, " ", ""), "arrival,source,receivers,volume") {
			continue
		}
		if len(fields) != 4 {
			return nil, fmt.Errorf("%w: line %d: %d fields, want 4 (arrival,source,receivers,volume)", ErrBadTrace, line, len(fields))
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		arr, err := strconv.Atoi(fields[0])
		if err != nil || arr < 0 {
			return nil, fmt.Errorf("%w: line %d: field arrival: %q is not a whole slot number >= 0", ErrBadTrace, line, fields[0])
		}
		src, ok := g.Lookup(fields[1])
		if !ok {
			return nil, fmt.Errorf("%w: line %d: field source: unknown node %q in %s", ErrBadTrace, line, fields[1], g.Name())
		}
		var dsts []tree.NodeID
		for _, name := range strings.Split(fields[2], ";") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			v, ok := g.Lookup(name)
			if !ok {
				return nil, fmt.Errorf("%w: line %d: field receivers: unknown node %q in %s", ErrBadTrace, line, name, g.Name())
			}
			if v != src && !slices.Contains(dsts, v) {
				dsts = append(dsts, v)
			}
		}
		if len(dsts) == 0 {
			return nil, fmt.Errorf("%w: line %d: field receivers: %q has no receiver other than the source", ErrBadTrace, line, fields[2])
		}
		vol, err := strconv.ParseFloat(fields[3], 64)
		if err != nil || !(vol > 0) || math.IsInf(vol, 0) {
			return nil, fmt.Errorf("%w: line %d: field volume: %q is not a positive number", ErrBadTrace, line, fields[3])
		}
		out = append(out, Transfer{Arrival: arr, Src: src, Dsts: dsts, Volume: vol})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: after line %d: %v", ErrBadTrace, line, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no transfers", ErrBadTrace)
	}
	slices.SortStableFunc(out, func(a, b Transfer) int { return a.Arrival - b.Arrival })
	for i := range out {
		out[i].ID = i
	}
	return out, nil
}

// WriteTrace writes transfers in the format ReadTrace reads, with a header line.
func WriteTrace(w io.Writer, g *tree.Graph, ts []Transfer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "arrival,source,receivers,volume")
	for _, t := range ts {
		names := make([]string, len(t.Dsts))
		for i, d := range t.Dsts {
			names[i] = g.NodeName(d)
		}
		fmt.Fprintf(bw, "%d,%s,%s,%s\n", t.Arrival, g.NodeName(t.Src), strings.Join(names, ";"),
			strconv.FormatFloat(t.Volume, 'g', -1, 64))
	}
	return bw.Flush()
}
