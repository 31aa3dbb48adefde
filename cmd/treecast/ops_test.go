package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/treecast/treecast/node/identity"
)

// TestVersion prints the build's version line; an argument is a usage error.
func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "treecast ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version: %q, %v", out, err)
	}
	if _, _, err := run(t, "version", "extra"); exitCode(err) != 2 {
		t.Errorf("version extra: exit %d (%v), want 2", exitCode(err), err)
	}
	if _, _, err := run(t, "nosuchcommand"); exitCode(err) != 2 {
		t.Errorf("an unknown command: exit %d (%v), want 2", exitCode(err), err)
	}
}

// TestHealthz asks an agent process for /healthz on its metrics listener, with the
// operator's certificate (the listener speaks the gRPC port's mutual TLS).
func TestHealthz(t *testing.T) {
	pc := newProcCluster(t)
	p := pc.start("h0", "--metrics", "127.0.0.1:0")
	url := strings.Replace(strings.TrimSpace(p.field(t, "metrics")), "/metrics", "/healthz", 1)
	cert, key := identity.Files(pc.certs, "op")
	ca, _ := identity.CAFiles(pc.certs)
	src, err := identity.Load(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: src.ClientConfig("")}
	defer tr.CloseIdleConnections()
	// The cluster's CA trusted, but no client certificate: refused.
	anon := src.ClientConfig("")
	anon.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	anonTr := &http.Transport{TLSClientConfig: anon}
	defer anonTr.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: anonTr}).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /healthz without a client certificate: %s", resp.Status)
	}
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status  string `json:"status"`
		Name    string `json:"name"`
		Members int    `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body.Status != "ok" || body.Name != "h0" || body.Members != 1 {
		t.Fatalf("GET %s: %s %+v", url, resp.Status, body)
	}
}
