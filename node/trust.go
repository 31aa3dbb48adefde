package node

import (
	"errors"
	"fmt"
	"slices"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/store"
)

// ErrForbidden is wrapped by the error of a request its identity has no right to make (a
// publish to a channel the policy does not grant it).
var ErrForbidden = errors.New("node: forbidden")

// mayPublish reports whether identity who may publish channel under Config.Publishers (nil:
// anyone may publish anything).
func (a *Agent) mayPublish(who, ch string) error {
	p := a.cfg.Publishers
	if p == nil {
		return nil
	}
	for _, key := range []string{ch, "*"} {
		if names, ok := p[key]; ok && (slices.Contains(names, who) || slices.Contains(names, "*")) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s may not publish channel %s", ErrForbidden, who, ch)
}

// manifestSealer is the store's Sealer on an agent with TLS: it seals manifests with the
// agent's node key and trusts the seal of a node certificate of the cluster's CA, of any
// node: the one that hashed the object may not be the one pushing it.
type manifestSealer struct{ src *identity.Source }

func (m manifestSealer) Seal(payload []byte) (store.Seal, error) {
	sig, cert, err := m.src.Sign(payload)
	return store.Seal{Cert: cert, Sig: sig}, err
}

func (m manifestSealer) VerifySeal(payload []byte, s store.Seal) error {
	id, err := m.src.VerifySignature(s.Cert, payload, s.Sig)
	if err != nil {
		return err
	}
	if id.Role != identity.RoleNode {
		return fmt.Errorf("%w: a manifest sealed by %s, of role %s, not a node", identity.ErrIdentity, id.Name, id.Role)
	}
	return nil
}
