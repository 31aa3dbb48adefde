package liveview

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestHandlerServesThePageOnly(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for path, want := range map[string]int{"/": 200, "/app.js": 200, "/style.css": 200, "/events.go": 404, "/static/app.js": 404, "/../liveview.go": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		if want != 200 {
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if path == "/" && !strings.Contains(string(b), `<script src="app.js">`) {
			t.Errorf("/ is not the page")
		}
	}
}

// TestPageHandlesTheDocumentedEvents checks that the page handles every event type of the
// README's table, and documents none it does not handle.
func TestPageHandlesTheDocumentedEvents(t *testing.T) {
	js, err := File("app.js")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "innerHTML") {
		t.Error("app.js uses innerHTML: event strings must go through textContent")
	}
	var handled []string
	for _, m := range regexp.MustCompile(`case "([a-z_]+)":`).FindAllStringSubmatch(string(js), -1) {
		handled = append(handled, m[1])
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	_, table, ok := strings.Cut(string(readme), "| type | when | fields |")
	if !ok {
		t.Fatal("README has no event table")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cell, -1) {
			documented = append(documented, m[1])
		}
	}
	for _, typ := range []string{"hello", "gap", "member_join", "member_update", "member_gone", "push_start", "progress", "result", "reattach", "push_done"} {
		if !slices.Contains(handled, typ) {
			t.Errorf("the page does not handle %s", typ)
		}
	}
	for _, typ := range documented {
		if typ == "repair" || typ == "channel_version" { // shown in the page's event log only
			continue
		}
		if !slices.Contains(handled, typ) {
			t.Errorf("README documents %s; the page does not handle it", typ)
		}
	}
	if len(documented) != 12 {
		t.Errorf("README's event table lists %d types: %v", len(documented), documented)
	}
}
