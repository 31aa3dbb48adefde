package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
)

// testCerts makes a cluster CA and gossip key in a new directory, as `treecast certs` does.
func testCerts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if _, _, err := run(t, "certs", "init", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "certs", "gossip-key", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// agentTLSEnv issues name's node certificate in dir (the CA of testCerts) and returns the
// environment that gives an agent process its certificate and the gossip key.
func agentTLSEnv(t *testing.T, dir, name string) []string {
	t.Helper()
	if _, _, err := run(t, "certs", "issue", "--dir", dir, "--name", name, "--role", "node", "--host", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cert, key := identity.Files(dir, name)
	ca, _ := identity.CAFiles(dir)
	return []string{"TREECAST_TLS_CERT=" + cert, "TREECAST_TLS_KEY=" + key, "TREECAST_TLS_CA=" + ca,
		"TREECAST_GOSSIP_KEY=" + filepath.Join(dir, "gossip.key")}
}

// setEnv sets KEY=VALUE pairs for the rest of the test (commands read them when built).
func setEnv(t *testing.T, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// asOperator makes the client commands of the rest of the test connect as an operator of
// the cluster cl (a certificate of its CA, in the TREECAST_TLS_* variables).
func asOperator(t *testing.T, cl *nodetest.Cluster) {
	t.Helper()
	if _, err := cl.Identity("operator", identity.RoleOperator); err != nil {
		t.Fatal(err)
	}
	cert, key := identity.Files(cl.CertDir, "operator")
	ca, _ := identity.CAFiles(cl.CertDir)
	setEnv(t, []string{"TREECAST_TLS_CERT=" + cert, "TREECAST_TLS_KEY=" + key, "TREECAST_TLS_CA=" + ca})
}
