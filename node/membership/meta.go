package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// MaxMetaSize is memberlist's limit on a node's metadata, in bytes.
const MaxMetaSize = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned by [New] when labels and channels do not fit in the gossip
// metadata.
var ErrMetaTooLarge = errors.New("membership: metadata too large")

// Meta is the metadata every agent gossips about itself.
type Meta struct {
	Addr     string            `json:"g"`           // gRPC address, host:port
	Labels   map[string]string `json:"l,omitempty"` // dc, pod, rack, ...
	Channels []string          `json:"c,omitempty"` // channels subscribed to
	Leaving  bool              `json:"x,omitempty"` // the agent is leaving the cluster cleanly
}

// Encode returns the metadata as gossiped, or an error wrapping [ErrMetaTooLarge] when it
// takes more than [MaxMetaSize] bytes.
func (m Meta) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: labels and channels take %d bytes of gossip metadata, more than %d", ErrMetaTooLarge, len(b), MaxMetaSize)
	}
	return b, nil
}

// DecodeMeta parses another agent's gossip metadata (untrusted bytes from the network): JSON
// with a gRPC address that must be host:port; labels and channels as announced. Errors name
// the problem. Cost: O(len(b)), at most MaxMetaSize.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > MaxMetaSize {
		return m, fmt.Errorf("membership: gossip metadata of %d bytes, more than %d", len(b), MaxMetaSize)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("membership: gossip metadata: %w", err)
	}
	if err := CheckHostPort(m.Addr); err != nil {
		return m, fmt.Errorf("membership: gossip metadata: gRPC address %q: %w", m.Addr, err)
	}
	return m, nil
}

// CheckHostPort checks that addr is host:port with a port in [0, 65535] (the host may be
// empty). It does no name resolution.
func CheckHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number in [0, 65535]", port)
	}
	return nil
}
