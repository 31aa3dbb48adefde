package node

import (
	"testing"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/store"
)

// TestManifestSealer: a node's seal verifies on another node of the same CA; a changed
// payload, an operator's seal and a node of another CA do not.
func TestManifestSealer(t *testing.T) {
	load := func(dir, name string, role identity.Role) manifestSealer {
		t.Helper()
		if err := identity.Issue(dir, name, role, []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		cert, key := identity.Files(dir, name)
		ca, _ := identity.CAFiles(dir)
		src, err := identity.Load(cert, key, ca)
		if err != nil {
			t.Fatal(err)
		}
		return manifestSealer{src}
	}
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if err := identity.InitCA(d); err != nil {
			t.Fatal(err)
		}
	}
	a, b, op, foreign := load(dir, "a", identity.RoleNode), load(dir, "b", identity.RoleNode), load(dir, "op", identity.RoleOperator), load(other, "c", identity.RoleNode)
	payload := []byte("layout")
	seal := func(s manifestSealer) store.Seal {
		sl, err := s.Seal(payload)
		if err != nil {
			t.Fatal(err)
		}
		return sl
	}
	if err := b.VerifySeal(payload, seal(a)); err != nil {
		t.Fatalf("a's seal on b: %v", err)
	}
	for name, tc := range map[string]struct {
		payload []byte
		seal    store.Seal
	}{
		"changed payload": {[]byte("layouT"), seal(a)},
		"operator":        {payload, seal(op)},
		"another CA":      {payload, seal(foreign)},
		"cert swapped":    {payload, store.Seal{Cert: seal(b).Cert, Sig: seal(a).Sig}},
	} {
		if err := b.VerifySeal(tc.payload, tc.seal); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
