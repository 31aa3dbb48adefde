package node

import (
	"encoding/json"
	"net/http"
)

// The agent's HTTP health endpoint, beside /metrics on Config.MetricsAddr: GET /healthz
// answers 200 with {"status":"ok","name":...,"members":N} while the agent serves (N: the
// members gossip sees alive, itself included), and 503 with "stopping" once Close began.
// For load balancers, container probes and scripts that speak HTTP, not gRPC.

type healthzBody struct {
	Status  string `json:"status"`
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// healthRoutes adds /healthz to the agent's HTTP mux.
func (a *Agent) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		body := healthzBody{Status: "ok", Name: a.cfg.Name}
		for _, m := range a.Members() {
			if m.IsAlive() {
				body.Members++
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if a.isClosed() {
			body.Status = "stopping"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}
