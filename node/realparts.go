package node

import (
	"errors"
)

// hashErrs are the store errors that mean "this chunk's bytes do not match the manifest".
var hashErrs = []error{errMemHash}

func isHashMismatch(err error) bool {
	for _, e := range hashErrs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func openStore(dir string) (objectStore, error) { return newMemStore(), nil }

// GossipAddr is the bound gossip address.
func (a *Agent) GossipAddr() string {
	if a.members == nil {
		return ""
	}
	return a.members.GossipAddr()
}

// manifestFor turns a checked protocol manifest into the store's manifest.
func (a *Agent) manifestFor(m pbManifest) (manifest, error) { return memManifestFrom(m), nil }
