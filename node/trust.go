package node

import (
	"errors"
	"fmt"
	"slices"

	"github.com/treecast/treecast/node/channel"
	"github.com/treecast/treecast/node/identity"
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

// versionTrust signs this agent's channel versions with its certificate's key and checks the
// versions it learns: signed by an agent of the cluster (a node certificate of the CA) whose
// name is the version's origin, for a publisher the policy allows. An agent without TLS
// trusts every version.
type versionTrust struct{ a *Agent }

func (t versionTrust) Sign(v channel.Version) (channel.Version, error) {
	sig, cert, err := t.a.cfg.TLS.Sign(v.Signed())
	if err != nil {
		return v, err
	}
	v.Sig, v.Cert = sig, cert
	return v, nil
}

func (t versionTrust) Verify(v channel.Version) error {
	if len(v.Sig) == 0 {
		return fmt.Errorf("%w: channel %s version %d is not signed", ErrForbidden, v.Channel, v.Version)
	}
	id, err := t.a.cfg.TLS.VerifySignature(v.Cert, v.Signed(), v.Sig)
	if err != nil {
		return err
	}
	if id.Name != v.Origin || id.Role != identity.RoleNode {
		return fmt.Errorf("%w: channel %s version %d claims origin %s, signed by %s (%s)", ErrForbidden, v.Channel, v.Version, v.Origin, id.Name, id.Role)
	}
	return t.a.mayPublish(v.By, v.Channel)
}

var _ channel.Trust = versionTrust{}
