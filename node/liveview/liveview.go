// Package liveview is the agent's live web page: one HTML page, a style sheet and a script,
// embedded in the binary (no build step, no third-party code), that reads the agent's
// Server-Sent Events stream (/events, package node/events) and draws what it sees:
//
//   - the current push's plan: every tree (stripe) of the forest in its own colour, parent
//     to child, each node filling as its chunks arrive, failed nodes marked, and receivers
//     re-attached under a new parent drawn with a dashed arc from it;
//   - the receivers grouped by rack (from their labels), each with its state: waiting,
//     receiving, verified, failed, re-attached, and gone when gossip declares the member
//     dead;
//   - the plan's copies per arc of the topology the agent inferred from the labels;
//   - the recent pushes with their reports, and the last events.
//
// The page keeps its state in the browser and rebuilds it from the stream's "hello" event
// (recent pushes and members) when it (re)connects; EventSource reconnects by itself with
// the last event id it saw, and the agent replays what it missed.
//
// For tests and tools the DOM states are stable: every receiver is an element with class
// "node", attribute data-name its name and data-state one of waiting, receiving, verified,
// failed; data-gone="true" marks a member gossip declared dead and data-reattached="true"
// one re-attached under a new parent. #status holds "live" while the stream is open.
//
// [Handler] serves the files with a Content-Security-Policy that allows only the page's own
// script, style and connections. The page is served by the agent on its HTTP address
// (behind mutual TLS when the agent has TLS: see `treecast view`).
package liveview

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the page (/ is index.html) and its script and style sheet. Anything else
// is 404. Cost: the files are served from memory.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	fileServer := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", "/index.html", "/app.js", "/style.css":
		default:
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// File returns an embedded file of the page by name (index.html, app.js, style.css), for
// tests.
func File(name string) ([]byte, error) { return files.ReadFile("static/" + name) }
