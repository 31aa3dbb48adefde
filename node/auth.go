package node

import (
	"context"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node/identity"
)

// Authorization at the RPC edge: with TLS, every call carries the verified identity of its
// peer's certificate, and each method is open to some roles only. Push and Fetch streams are
// also counted, in all and per peer, against the agent's Limits.

// methodRoles lists the roles that may call each method. Operators submit pushes and read
// complete objects (treecast get); nodes push to and fetch from each other; anyone of the
// cluster may read the status and the health. A method not listed is refused.
var methodRoles = map[string][]identity.Role{
	"/treecast.v1.Agent/Submit":                                 {identity.RoleOperator},
	"/treecast.v1.Agent/Push":                                   {identity.RoleNode},
	"/treecast.v1.Agent/Fetch":                                  {identity.RoleNode, identity.RoleOperator},
	"/treecast.v1.Agent/Status":                                 {identity.RoleNode, identity.RoleOperator},
	"/treecast.v1.Agent/Pull":                                   {identity.RoleOperator},
	"/treecast.v1.Agent/Tags":                                   {identity.RoleNode, identity.RoleOperator},
	"/treecast.v1.Agent/Remove":                                 {identity.RoleNode, identity.RoleOperator}, // nodes: only on the agent called (see service.Remove)
	"/treecast.v1.Agent/DeleteChannel":                          {identity.RoleOperator},
	"/treecast.v1.Agent/Upload":                                 {identity.RoleOperator},
	"/treecast.v1.Agent/CancelPush":                             {identity.RoleOperator},
	"/treecast.v1.Agent/Watch":                                  {identity.RoleNode, identity.RoleOperator},
	"/treecast.v1.Agent/ListPushes":                             {identity.RoleNode, identity.RoleOperator},
	"/grpc.health.v1.Health/Check":                              {identity.RoleNode, identity.RoleOperator},
	"/grpc.health.v1.Health/Watch":                              {identity.RoleNode, identity.RoleOperator},
	"/grpc.health.v1.Health/List":                               {identity.RoleNode, identity.RoleOperator},
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": nil,
}

// authorize checks the caller of method: with TLS, its identity's role; it returns the
// caller's identity (empty without TLS).
func (a *Agent) authorize(ctx context.Context, method string) (identity.Identity, error) {
	if a.cfg.TLS == nil {
		return identity.Identity{}, nil
	}
	id, ok := identity.FromContext(ctx)
	if !ok {
		return id, status.Error(codes.Unauthenticated, "node: no verified client certificate")
	}
	for _, r := range methodRoles[method] {
		if r == id.Role {
			return id, nil
		}
	}
	return id, status.Errorf(codes.PermissionDenied, "node: %s (role %s) may not call %s", id.Name, id.Role, method)
}

func (a *Agent) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if _, err := a.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a *Agent) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	id, err := a.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	var lim *streamLimit
	switch info.FullMethod {
	case "/treecast.v1.Agent/Push":
		lim = a.pushStreams
	case "/treecast.v1.Agent/Fetch":
		lim = a.fetchStreams
	}
	if lim != nil {
		key := id.Name
		if key == "" { // no TLS: the peer's host
			if p, ok := peer.FromContext(ss.Context()); ok {
				key, _, _ = net.SplitHostPort(p.Addr.String())
			}
		}
		if err := lim.acquire(key); err != nil {
			return status.Error(codes.ResourceExhausted, err.Error())
		}
		defer lim.release(key)
	}
	return h(srv, ss)
}

// streamLimit counts streams in all and per peer.
type streamLimit struct {
	what         string
	max, perPeer int
	mu           sync.Mutex
	total        int
	by           map[string]int
}

func newStreamLimit(what string, max, perPeer int) *streamLimit {
	return &streamLimit{what: what, max: max, perPeer: perPeer, by: map[string]int{}}
}

func (l *streamLimit) acquire(peer string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return fmt.Errorf("node: %d %s streams open, the limit", l.total, l.what)
	}
	if l.by[peer] >= l.perPeer {
		return fmt.Errorf("node: %d %s streams open from %s, the limit per peer", l.by[peer], l.what, peer)
	}
	l.total++
	l.by[peer]++
	return nil
}

func (l *streamLimit) release(peer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.by[peer]--; l.by[peer] <= 0 {
		delete(l.by, peer)
	}
}
