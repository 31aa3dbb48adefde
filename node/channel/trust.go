package channel

import (
	"fmt"

	"github.com/treecast/treecast/node/identity"
)

// CertTrust signs this agent's versions with its certificate's key and checks the versions
// it learns: signed by an agent of the cluster (a node certificate of the CA) whose name is
// the version's origin, for a publisher MayPublish allows.
type CertTrust struct {
	Source     *identity.Source
	MayPublish func(by, channel string) error
}

// Sign implements Trust.
func (t CertTrust) Sign(v Version) (Version, error) {
	sig, cert, err := t.Source.Sign(v.Signed())
	if err != nil {
		return v, err
	}
	v.Sig, v.Cert = sig, cert
	return v, nil
}

// Verify implements Trust.
func (t CertTrust) Verify(v Version) error {
	if len(v.Sig) == 0 {
		return fmt.Errorf("%w: channel %s version %d is not signed", ErrChannelState, v.Channel, v.Version)
	}
	id, err := t.Source.VerifySignature(v.Cert, v.Signed(), v.Sig)
	if err != nil {
		return err
	}
	if id.Name != v.Origin || id.Role != identity.RoleNode {
		return fmt.Errorf("%w: channel %s version %d claims origin %s, signed by %s (%s)", ErrChannelState, v.Channel, v.Version, v.Origin, id.Name, id.Role)
	}
	return t.MayPublish(v.By, v.Channel)
}

var _ Trust = CertTrust{}
