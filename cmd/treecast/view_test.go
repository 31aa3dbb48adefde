package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
)

// operatorHTTP is an HTTPS client with an operator certificate of the CA in dir.
func operatorHTTP(t *testing.T, dir string) *http.Client {
	t.Helper()
	if _, _, err := run(t, "certs", "issue", "--dir", dir, "--name", "op", "--role", "operator"); err != nil {
		t.Fatal(err)
	}
	cert, key := identity.Files(dir, "op")
	ca, _ := identity.CAFiles(dir)
	src, err := identity.Load(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: src.ClientConfig("")}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestViewProxiesWithTheOperatorCertificate runs the view proxy against a secured agent: the
// browser side needs the printed URL's token (then a cookie) and the proxy's own host name;
// the page and the event stream come through over mutual TLS.
func TestViewProxiesWithTheOperatorCertificate(t *testing.T) {
	c := nodetest.StartCluster(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MetricsAddr = "127.0.0.1:0" }})
	op, err := c.Identity("operator", identity.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	agent := strings.TrimSuffix(strings.TrimPrefix(c.Agents[0].EventsURL(), "https://"), "/events")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := startView(ctx, "0.0.0.0:0", agent, op.ClientConfig("")); err == nil {
		t.Fatal("the view listened on a non-loopback address")
	}
	v, err := startView(ctx, "127.0.0.1:0", agent, op.ClientConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	base := strings.TrimSuffix(v.URL(), "/?token="+v.token)

	get := func(cl *http.Client, url string, host string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, string(b)
	}
	if code, _ := get(http.DefaultClient, base+"/", ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
	if code, _ := get(http.DefaultClient, base+"/?token=wrong", ""); code != http.StatusForbidden {
		t.Fatalf("a wrong token: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if code, body := get(browser, v.URL(), ""); code != http.StatusOK || !strings.Contains(body, "app.js") {
		t.Fatalf("the printed URL: %d %.200s", code, body)
	}
	if code, _ := get(browser, base+"/", "evil.example:80"); code != http.StatusForbidden {
		t.Fatalf("another host name (DNS rebinding): %d", code)
	}
	select {
	case <-v.Opened():
		t.Fatal("opened before any event stream")
	default:
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			if !strings.Contains(sc.Text(), `"type":"hello"`) || !strings.Contains(sc.Text(), `"agent":"a00"`) {
				t.Fatalf("first event through the proxy: %s", sc.Text())
			}
			break
		}
	}
	select {
	case <-v.Opened():
	case <-ctx.Done():
		t.Fatal("Opened not closed by an event stream")
	}
}
