package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/treecast/treecast/node/identity"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// Removes asked by one agent of another carry the operator's signed consent: an agent that
// relays `treecast rm --to TARGET` calls the others with its node certificate, and without
// the operator's signature any node could delete objects on every agent it reaches.

// removeGrantSkew bounds how far a grant's time may be from the checking agent's clock.
const removeGrantSkew = 10 * time.Minute

// ErrNoGrant is the error of a remove asked by an agent without a valid operator grant.
var ErrNoGrant = errors.New("node: a remove asked by another agent needs the operator's signed grant")

// removePayload is what a RemoveGrant signs.
func removePayload(ref string, force bool, unix int64) []byte {
	f := "0"
	if force {
		f = "1"
	}
	return []byte("treecast-remove\x00" + ref + "\x00" + f + "\x00" + strconv.FormatInt(unix, 10))
}

// SignRemove signs the remove of ref (with force) at time at with the operator certificate of
// src, for RemoveRequest.grant. Cost: one signature.
func SignRemove(src *identity.Source, ref string, force bool, at time.Time) (*pb.RemoveGrant, error) {
	if self := src.Self(); self.Role != identity.RoleOperator {
		return nil, fmt.Errorf("%w: %s has role %s, not operator", identity.ErrIdentity, self.Name, self.Role)
	}
	unix := at.Unix()
	sig, cert, err := src.Sign(removePayload(ref, force, unix))
	if err != nil {
		return nil, err
	}
	return &pb.RemoveGrant{Cert: cert, Signature: sig, UnixSeconds: unix}, nil
}

// checkRemoveGrant verifies that g is an operator's signature, from a certificate of the
// cluster's CA, over this remove, made within removeGrantSkew of now. Errors wrap ErrNoGrant.
func (a *Agent) checkRemoveGrant(g *pb.RemoveGrant, ref string, force bool) error {
	if a.cfg.TLS == nil {
		return nil // an insecure cluster trusts every caller
	}
	if g == nil {
		return ErrNoGrant
	}
	if d := time.Since(time.Unix(g.GetUnixSeconds(), 0)); d > removeGrantSkew || d < -removeGrantSkew {
		return fmt.Errorf("%w: signed %v from this agent's clock", ErrNoGrant, d.Round(time.Second))
	}
	id, err := a.cfg.TLS.VerifySignature(g.GetCert(), removePayload(ref, force, g.GetUnixSeconds()), g.GetSignature())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoGrant, err)
	}
	if id.Role != identity.RoleOperator {
		return fmt.Errorf("%w: signed by %s, role %s", ErrNoGrant, id.Name, id.Role)
	}
	return nil
}

type removeGrantKey struct{}

// WithRemoveGrant returns ctx carrying g: RemoveObject passes it to the agents it asks.
func WithRemoveGrant(ctx context.Context, g *pb.RemoveGrant) context.Context {
	return context.WithValue(ctx, removeGrantKey{}, g)
}

func removeGrantFrom(ctx context.Context) *pb.RemoveGrant {
	g, _ := ctx.Value(removeGrantKey{}).(*pb.RemoveGrant)
	return g
}
