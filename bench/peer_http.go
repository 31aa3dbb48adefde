package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// HTTP is unicast from the source: an HTTP file server (Go's net/http, run as the hidden
// command `treecast bench serve`) in the source, and every receiver fetching the object
// with curl, all at once. The source's link carries one copy per receiver. Debian package
// curl.
type HTTP struct{}

// Name is "http unicast (curl)".
func (h *HTTP) Name() string { return "http unicast (curl)" }

// Tools is curl (the server is the treecast binary).
func (h *HTTP) Tools() []Tool { return []Tool{{Binary: "curl", Package: "curl"}} }

const httpPort = 8080

// Run serves the object from the source and fetches it into every receiver.
func (h *HTTP) Run(ctx context.Context, e *Env) (map[int]string, error) {
	if e.cfg.Treecast == "" {
		return nil, errors.New("bench: the http peer serves with `treecast bench serve`: Config.Treecast is empty")
	}
	hosts := e.Hosts()
	srcDir := filepath.Join(e.dir, "http-src")
	if err := linkOrCopy(e.object, filepath.Join(srcDir, "object")); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(hosts[0].Addr.String(), fmt.Sprint(httpPort))
	srv, err := e.exec(ctx, 0, "httpd", e.cfg.Treecast, "bench", "serve", "--dir", srcDir, "--listen", addr)
	if err != nil {
		return nil, err
	}
	if err := srv.waitListening(ctx, "tcp", httpPort); err != nil {
		return nil, err
	}
	copies := map[int]string{}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	var clients []*proc
	for i := 1; i < len(hosts); i++ {
		dest := filepath.Join(e.dir, "http", hosts[i].Name, "object")
		if err := mkdir(filepath.Dir(dest)); err != nil {
			return nil, err
		}
		copies[i] = dest
		p, err := e.exec(ctx, i, "curl", "curl", "-sS", "--fail", "-o", dest, "http://"+addr+"/object")
		if err != nil {
			return copies, err
		}
		clients = append(clients, p)
	}
	var first error
	for _, p := range clients {
		if err := p.wait(ctx); err != nil && first == nil {
			first = fmt.Errorf("%s: %w: %s", p.name, err, p.tail())
		}
	}
	if err := e.Stop(ctx); err != nil && first == nil {
		first = err
	}
	return copies, first
}

// ServeFiles serves the files of dir over HTTP on ln until ctx ends: the server side of the
// http peer. It closes ln and returns the server's error, or nil after a clean shutdown.
func ServeFiles(ctx context.Context, dir string, ln net.Listener) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		ln.Close()
		return fmt.Errorf("bench: serve: %s is not a directory", dir)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("bench: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		return nil
	}
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o755) }
