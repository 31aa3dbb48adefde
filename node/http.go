package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/liveview"
)

// serveHTTP binds Config.MetricsAddr and serves the agent's HTTP API on it:
//
//   - /metrics: Prometheus metrics;
//   - /events: the agent's events as Server-Sent Events (package node/events);
//   - /: the live page (package node/liveview), which reads /events.
//
// With TLS (Config.TLS) the listener speaks the same mutual TLS as the gRPC port: a client
// must present a certificate of the cluster's CA (role node, operator or monitor), or the
// handshake fails. Without TLS (Config.Insecure) it is plaintext HTTP.
func (a *Agent) serveHTTP() error {
	lis, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("node: http listen %s: %w", a.cfg.MetricsAddr, err)
	}
	a.metricsLis = lis
	if a.cfg.TLS != nil {
		lis = tls.NewListener(lis, a.cfg.TLS.ServerConfig())
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{}))
	mux.Handle("/events", a.live.bus.Handler(func() any { return a.live.hello(a.Members()) }))
	a.healthRoutes(mux) // healthz.go
	if a.cfg.Profiling {
		mux.Handle("/debug/pprof/", a.operatorOnly(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", a.operatorOnly(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", a.operatorOnly(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", a.operatorOnly(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", a.operatorOnly(http.HandlerFunc(pprof.Trace)))
	}
	mux.Handle("/", liveview.Handler())
	a.metricsSrv = &http.Server{
		Handler:           a.httpAuth(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug), // failed handshakes of strangers
	}
	a.goFunc(func() {
		if err := a.metricsSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http serve", "err", err)
		}
	})
	return nil
}

// httpAuth admits, with TLS, only requests over a connection whose client certificate (the
// handshake verified it against the cluster's CA) has a role: node, operator or monitor.
func (a *Agent) httpAuth(next http.Handler) http.Handler {
	if a.cfg.TLS == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "node: no verified client certificate", http.StatusUnauthorized)
			return
		}
		if _, ok := clientRole(r); !ok {
			http.Error(w, "node: the client certificate has no role of this cluster", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientRole returns the cluster role of the request's verified client certificate, and
// false when it has none (or the request came without one).
func clientRole(r *http.Request) (identity.Role, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", false
	}
	id, err := identity.FromCert(r.TLS.VerifiedChains[0][0])
	if err != nil {
		return "", false
	}
	role, err := identity.ParseRole(string(id.Role))
	return role, err == nil
}

// operatorOnly admits, with TLS, only requests whose client certificate has the operator
// role; without TLS every request. (httpAuth, around the whole mux, has refused requests
// without a certificate of the cluster.)
func (a *Agent) operatorOnly(next http.Handler) http.Handler {
	if a.cfg.TLS == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if role, _ := clientRole(r); role != identity.RoleOperator {
			http.Error(w, "node: profiles are for operators", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// EventsURL is the URL of the agent's event stream (https when the agent has TLS), or ""
// when the agent serves no HTTP (no Config.MetricsAddr).
func (a *Agent) EventsURL() string {
	if a.metricsLis == nil {
		return ""
	}
	scheme := "http"
	if a.cfg.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + a.metricsLis.Addr().String() + "/events"
}
