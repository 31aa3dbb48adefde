package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
)

func init() { commands = append(commands, newViewCmd) }

func newViewCmd() *cobra.Command {
	var listen string
	c := &cobra.Command{
		Use:   "view AGENT-HTTP-ADDR",
		Short: "Open an agent's live view: a local proxy to its page and event stream",
		Long: `Serve an agent's live web page and its event stream (/events) on a local address, so
that a browser can show it.

The agent serves the page on its HTTP address (agent --metrics), behind the same mutual TLS
as its gRPC port: a browser cannot present the client certificate it needs. treecast view
holds the operator's certificate (--tls-cert, --tls-key, --tls-ca or TREECAST_TLS_*) and
forwards the page, /events and /metrics to the agent over mutual TLS; --insecure speaks
plaintext HTTP to an agent run with --insecure.

The local side listens on 127.0.0.1 only (--listen) and admits only a browser that opened
the printed URL: its secret token is exchanged for a cookie on the first visit, and requests
for any other host name are refused (DNS rebinding). It runs until Ctrl-C.`,
		Example: `  treecast view 10.0.0.11:7701
  treecast view agent-3.example.net:7701 --listen 127.0.0.1:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			src, err := tlsSource(c)
			if err != nil {
				return err
			}
			var tc *tls.Config
			if src != nil {
				tc = src.ClientConfig("")
			}
			v, err := startView(c.Context(), listen, args[0], tc)
			if err != nil {
				return err
			}
			defer v.Close()
			fmt.Fprintf(c.OutOrStdout(), "live view of %s: %s\n", args[0], v.URL())
			fmt.Fprintln(c.OutOrStdout(), "(open it in a browser on this machine; Ctrl-C stops)")
			<-c.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "local address of the proxy (loopback only)")
	addTLSFlags(c, identity.RoleOperator)
	return c
}

// viewCookie holds the proxy's token in the browser.
const viewCookie = "treecast_view"

// view is a local proxy to an agent's HTTP address: the page, its event stream and metrics.
type view struct {
	srv    *http.Server
	lis    net.Listener
	token  string
	opened chan struct{}
	once   atomic.Bool
}

// startView listens on listen (a loopback address) and proxies to the agent's HTTP address
// agent, over mutual TLS with tc (nil: plaintext).
func startView(ctx context.Context, listen, agent string, tc *tls.Config) (*view, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--listen %q: %w", listen, err))
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, usageErr(fmt.Errorf("--listen %q: the view listens on a loopback address only (it holds your certificate)", listen))
	}
	if _, _, err := net.SplitHostPort(agent); err != nil {
		return nil, usageErr(fmt.Errorf("agent address %q: want host:port (the agent's --metrics address): %w", agent, err))
	}
	scheme := "http"
	tr := &http.Transport{Proxy: nil, ForceAttemptHTTP2: false, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second, MaxIdleConnsPerHost: 4}
	if tc != nil {
		scheme = "https"
		tr.TLSClientConfig = tc
	}
	target := &url.URL{Scheme: scheme, Host: agent}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Cookie") // the proxy's token is not the agent's business
			r.Out.Host = agent
		},
		Transport:     tr,
		FlushInterval: -1, // events go through at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, fmt.Sprintf("treecast view: agent %s: %v", agent, err), http.StatusBadGateway)
		},
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	v := &view{token: hex.EncodeToString(tok[:]), opened: make(chan struct{})}
	lc := net.ListenConfig{}
	if v.lis, err = lc.Listen(ctx, "tcp", listen); err != nil {
		return nil, err
	}
	v.srv = &http.Server{Handler: v.guard(rp), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = v.srv.Serve(v.lis) }()
	return v, nil
}

// URL is the address to open, with the token.
func (v *view) URL() string { return "http://" + v.lis.Addr().String() + "/?token=" + v.token }

// Opened is closed when a browser first opens the event stream.
func (v *view) Opened() <-chan struct{} { return v.opened }

// Close stops the proxy and its open streams.
func (v *view) Close() error { return v.srv.Close() }

// guard admits requests for the proxy's own host name that carry the token (the query of
// the printed URL, exchanged for a cookie, or the cookie), GET and HEAD only.
func (v *view) guard(next http.Handler) http.Handler {
	want := v.lis.Addr().String()
	_, port, _ := net.SplitHostPort(want)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != want && r.Host != "localhost:"+port {
			http.Error(w, "treecast view: unknown host "+r.Host, http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "treecast view: read only", http.StatusMethodNotAllowed)
			return
		}
		if t := r.URL.Query().Get("token"); t != "" {
			if subtle.ConstantTimeCompare([]byte(t), []byte(v.token)) != 1 {
				http.Error(w, "treecast view: wrong token", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: viewCookie, Value: v.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		ck, err := r.Cookie(viewCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(v.token)) != 1 {
			http.Error(w, "treecast view: open the URL treecast printed (with its token)", http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/events") {
			if v.once.CompareAndSwap(false, true) {
				close(v.opened)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// demoView serves the source agent's live view through a local proxy that holds an operator
// certificate of the demo's CA, prints its URL (on stdout, or stderr with --json), and waits
// up to cfg.webWait for a browser to open it.
func demoView(c *cobra.Command, cl *nodetest.Cluster, cfg demoConfig) (*view, error) {
	op, err := cl.Identity("operator", identity.RoleOperator)
	if err != nil {
		return nil, err
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(cl.Agents[0].EventsURL(), "https://"), "/events")
	v, err := startView(c.Context(), "127.0.0.1:0", addr, op.ClientConfig(""))
	if err != nil {
		return nil, err
	}
	w := c.OutOrStdout()
	if cfg.asJSON {
		w = c.ErrOrStderr()
	}
	fmt.Fprintf(w, "live view: %s\n", v.URL())
	if cfg.webWait > 0 {
		fmt.Fprintf(w, "waiting up to %v for a browser to open it before pushing\n", cfg.webWait)
		t := time.NewTimer(cfg.webWait)
		defer t.Stop()
		select {
		case <-v.Opened():
		case <-t.C:
		case <-c.Context().Done():
		}
	}
	return v, nil
}
