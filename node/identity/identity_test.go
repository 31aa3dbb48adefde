package identity

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func mustCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := InitCA(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustIssue(t *testing.T, dir, name string, role Role) *Source {
	t.Helper()
	if err := Issue(dir, name, role, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cert, key := Files(dir, name)
	ca, _ := CAFiles(dir)
	s, err := Load(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshake runs one TLS 1.3 handshake over real TCP on loopback; it returns the identity
// the server saw, or the first error of either side.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (Identity, error) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		id  Identity
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			res <- result{err: err}
			return
		}
		id, err := FromCert(tc.ConnectionState().VerifiedChains[0][0])
		if err == nil {
			_, err = c.Write([]byte("k"))
		}
		res <- result{id, err}
	}()
	c, cerr := tls.Dial("tcp", l.Addr().String(), client)
	if cerr == nil {
		// TLS 1.3 tells a client that its certificate was refused on its first read.
		b := make([]byte, 1)
		_, cerr = io.ReadFull(c, b)
		c.Close()
	}
	r := <-res
	if cerr != nil {
		return r.id, cerr
	}
	return r.id, r.err
}

func TestMutualTLS(t *testing.T) {
	dir := mustCA(t)
	a := mustIssue(t, dir, "a", RoleNode)
	b := mustIssue(t, dir, "b", RoleNode)
	op := mustIssue(t, dir, "alice", RoleOperator)
	other := mustIssue(t, mustCA(t), "a", RoleNode) // same name, another cluster's CA

	if id, err := handshake(t, a.ServerConfig(), b.ClientConfig("a")); err != nil || id != (Identity{"b", RoleNode}) {
		t.Fatalf("b -> a: %+v, %v", id, err)
	}
	if id, err := handshake(t, a.ServerConfig(), op.ClientConfig("")); err != nil || id != (Identity{"alice", RoleOperator}) {
		t.Fatalf("operator -> a: %+v, %v", id, err)
	}
	if _, err := handshake(t, a.ServerConfig(), b.ClientConfig("c")); err == nil {
		t.Error("b accepted a's certificate as c's")
	}
	if _, err := handshake(t, a.ServerConfig(), other.ClientConfig("a")); err == nil {
		t.Error("a client of another CA was accepted")
	}
	if _, err := handshake(t, other.ServerConfig(), b.ClientConfig("a")); err == nil {
		t.Error("b accepted a server of another CA")
	}
	if _, err := handshake(t, op.ServerConfig(), b.ClientConfig("")); err == nil {
		t.Error("b accepted an operator certificate as a server")
	}
	noCert := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if _, err := handshake(t, a.ServerConfig(), noCert); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	tls12 := b.ClientConfig("a")
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := handshake(t, a.ServerConfig(), tls12); err == nil {
		t.Error("a TLS 1.2 client was accepted")
	}
}

// TestRotation: a certificate file replaced on disk is served from the next handshake on.
func TestRotation(t *testing.T) {
	dir := mustCA(t)
	a := mustIssue(t, dir, "a", RoleNode)
	b := mustIssue(t, dir, "b", RoleNode)
	before := a.Self()
	// Rotate a's certificate: issue a new one under another name, move it into place.
	if err := Issue(dir, "a2", RoleNode, nil); err != nil {
		t.Fatal(err)
	}
	ac, ak := Files(dir, "a")
	nc, nk := Files(dir, "a2")
	for _, mv := range [][2]string{{nc, ac}, {nk, ak}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	a.checked = a.checked.Add(-2e9) // as if a second had passed
	a.mu.Unlock()
	if _, err := handshake(t, a.ServerConfig(), b.ClientConfig("a2")); err != nil {
		t.Fatalf("after rotation, a serves a2's certificate: %v", err)
	}
	if a.Self() == before {
		t.Errorf("self still %+v after rotation", before)
	}
}

func TestFilesAndKeys(t *testing.T) {
	dir := mustCA(t)
	if err := InitCA(dir); !errors.Is(err, ErrExists) {
		t.Errorf("second InitCA: %v, want ErrExists", err)
	}
	if err := Issue(dir, "a", RoleNode, nil); err != nil {
		t.Fatal(err)
	}
	if err := Issue(dir, "a", RoleNode, nil); !errors.Is(err, ErrExists) {
		t.Errorf("second Issue: %v, want ErrExists", err)
	}
	if err := Issue(dir, "bad name", RoleNode, nil); !errors.Is(err, ErrIdentity) {
		t.Errorf("bad name: %v", err)
	}
	if err := Issue(dir, "x", Role("root"), nil); !errors.Is(err, ErrIdentity) {
		t.Errorf("bad role: %v", err)
	}
	if err := Issue(t.TempDir(), "x", RoleNode, nil); !errors.Is(err, ErrIdentity) {
		t.Errorf("no CA: %v", err)
	}
	_, key := Files(dir, "a")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, %v", fi.Mode(), err)
	}
	p, err := NewGossipKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ReadGossipKeys(p)
	if err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("gossip key: %v, %v", keys, err)
	}
	if _, err := NewGossipKey(dir); !errors.Is(err, ErrExists) {
		t.Errorf("second gossip key: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	_ = os.WriteFile(bad, []byte("# comment\nnot base64!\n"), 0o600)
	if _, err := ReadGossipKeys(bad); !errors.Is(err, ErrIdentity) {
		t.Errorf("bad key file: %v", err)
	}
}
