package tree

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// ParseGraphML reads a topology in GraphML as the Internet Topology Zoo writes it. name
// names the graph and prefixes error messages (a file name, usually).
//
//   - Nodes become Sites named by their GraphML id; their data (label, Latitude, Longitude,
//     Country, ...) become Labels under the keys' attr.name.
//   - Edges are undirected links. Parallel edges between the same pair are merged into one
//     link whose capacity is the sum of theirs (the Zoo's own link counts merge them too);
//     self-loops are skipped.
//   - Capacity comes from LinkSpeedRaw (bits/s) when present, else DefaultCapacity.
//   - Latency is the great-circle distance between the endpoints' coordinates over the
//     speed of light in fibre (about 200,000 km/s) when both have coordinates, else 0.
//
// Malformed input returns an error wrapping ErrMalformedTopology that names the file, the
// line and the problem. Cost O(size of the input).
func ParseGraphML(r io.Reader, name string) (*Graph, error) {
	d := xml.NewDecoder(r)
	keys := map[string]string{} // key id -> attr.name
	type edge struct {
		u, v  string
		attrs map[string]string
		line  int
	}
	var (
		nodeIDs   []string
		nodeAttrs = map[string]map[string]string{}
		nodeLine  = map[string]int{}
		edges     []edge
		sawGraph  bool
	)
	fail := func(format string, args ...any) error {
		line, _ := d.InputPos()
		return fmt.Errorf("%w: %s:%d: %s", ErrMalformedTopology, name, line, fmt.Sprintf(format, args...))
	}
	attr := func(se xml.StartElement, key string) (string, bool) {
		for _, a := range se.Attr {
			if a.Name.Local == key {
				return a.Value, true
			}
		}
		return "", false
	}
	// readData collects the <data key=...>value</data> children of the current element.
	readData := func(end string) (map[string]string, error) {
		out := map[string]string{}
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fail("inside <%s>: %v", end, err)
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if t.Name.Local != "data" {
					if err := d.Skip(); err != nil {
						return nil, fail("inside <%s>: %v", end, err)
					}
					continue
				}
				k, _ := attr(t, "key")
				var v string
				if err := d.DecodeElement(&v, &t); err != nil {
					return nil, fail("bad <data>: %v", err)
				}
				if n, ok := keys[k]; ok {
					k = n
				}
				out[k] = v
			case xml.EndElement:
				return out, nil
			}
		}
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fail("%v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "key":
			id, _ := attr(se, "id")
			an, _ := attr(se, "attr.name")
			if id != "" && an != "" {
				keys[id] = an
			}
		case "graph":
			sawGraph = true
			if ed, ok := attr(se, "edgedefault"); ok && ed != "undirected" && ed != "directed" {
				return nil, fail("edgedefault %q", ed)
			}
		case "node":
			id, ok := attr(se, "id")
			if !ok || id == "" {
				return nil, fail("<node> without an id")
			}
			if _, dup := nodeAttrs[id]; dup {
				return nil, fail("duplicate node id %q", id)
			}
			line, _ := d.InputPos()
			attrs, err := readData("node")
			if err != nil {
				return nil, err
			}
			nodeIDs = append(nodeIDs, id)
			nodeAttrs[id] = attrs
			nodeLine[id] = line
		case "edge":
			u, ok1 := attr(se, "source")
			v, ok2 := attr(se, "target")
			if !ok1 || !ok2 {
				return nil, fail("<edge> without source or target")
			}
			line, _ := d.InputPos()
			attrs, err := readData("edge")
			if err != nil {
				return nil, err
			}
			edges = append(edges, edge{u, v, attrs, line})
		}
	}
	if !sawGraph {
		return nil, fmt.Errorf("%w: %s: no <graph> element", ErrMalformedTopology, name)
	}
	b := NewBuilder(name)
	for _, id := range nodeIDs {
		if _, err := b.AddNode(id, Site, nodeAttrs[id]); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrMalformedTopology, name, nodeLine[id], err)
		}
	}
	for _, e := range edges {
		u, ok := b.Lookup(e.u)
		if !ok {
			return nil, fmt.Errorf("%w: %s:%d: edge source %q is not a node", ErrMalformedTopology, name, e.line, e.u)
		}
		v, ok := b.Lookup(e.v)
		if !ok {
			return nil, fmt.Errorf("%w: %s:%d: edge target %q is not a node", ErrMalformedTopology, name, e.line, e.v)
		}
		if u == v {
			continue // self-loops carry nothing between nodes
		}
		capacity := 0.0
		if s, ok := e.attrs["LinkSpeedRaw"]; ok && s != "" {
			c, err := strconv.ParseFloat(s, 64)
			if err != nil || c <= 0 || math.IsInf(c, 0) {
				return nil, fmt.Errorf("%w: %s:%d: LinkSpeedRaw %q is not a positive number", ErrMalformedTopology, name, e.line, s)
			}
			capacity = c
		}
		lat := geoLatency(nodeAttrs[e.u], nodeAttrs[e.v])
		if err := b.AddLink(u, v, capacity, lat); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrMalformedTopology, name, e.line, err)
		}
	}
	g, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformedTopology, name, err)
	}
	return g, nil
}

// geoLatency is the propagation delay along the great circle between two nodes' coordinates,
// at 200,000 km/s; 0 when either lacks valid coordinates.
func geoLatency(a, b map[string]string) time.Duration {
	lat1, ok1 := coord(a, "Latitude", 90)
	lon1, ok2 := coord(a, "Longitude", 180)
	lat2, ok3 := coord(b, "Latitude", 90)
	lon2, ok4 := coord(b, "Longitude", 180)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0
	}
	const earthKm, fibreKmPerSec = 6371.0, 200000.0
	rad := math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	km := 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(h)))
	return time.Duration(km / fibreKmPerSec * float64(time.Second))
}

func coord(m map[string]string, key string, limit float64) (float64, bool) {
	s, ok := m[key]
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > limit {
		return 0, false
	}
	return f, true
}
