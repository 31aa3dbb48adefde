package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds a Chromium to drive, or skips the test.
func browserPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH (Debian: apt-get install -y chromium): the live page is not tested in a browser")
	return ""
}

// pageNode is a receiver as the live page shows it.
type pageNode struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Gone       bool   `json:"gone"`
	Reattached bool   `json:"reattached"`
}

const readNodes = `JSON.stringify([...document.querySelectorAll('#racks .node')].map(n => ({
	name: n.dataset.name, state: n.dataset.state, gone: n.dataset.gone === "true", reattached: n.dataset.reattached === "true"})))`

// TestLivePageInChromium runs `treecast demo --web` as a process (a real cluster over mutual
// TLS, the source's page and events served through the operator's local proxy), opens the
// page in headless Chromium, and follows a push in which a relay is killed: from the page's
// DOM, every live receiver ends verified and the killed relay is marked failed and gone.
// With TREECAST_LIVEVIEW_PNG=FILE it writes a screenshot of the page mid-push there (the
// README's deploy/live-view.png).
func TestLivePageInChromium(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the demo's process test runs on Linux")
	}
	chrome := browserPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	const receivers = 7
	demo := exec.CommandContext(ctx, os.Args[0], "demo", "--web", "--web-wait", "60s", "--nodes", "8", "--rack", "4",
		"--size", "24MiB", "--chunk", "256KiB", "--strategy", "forest", "--stripes", "2", "--kill", "1", "--rate-limit", "5M")
	demo.Env = append(os.Environ(), "TREECAST_TEST_MAIN=1")
	stderr := &syncBuffer{}
	demo.Stderr = stderr
	out, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = demo.Process.Kill(); _ = demo.Wait() }()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	url := awaitLine(ctx, t, lines, "live view: ", func() string { return stderr.String() })

	// Chromium, headless, in a fresh profile, with nothing that calls out to the network.
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1100),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible("#status.live")); err != nil {
		t.Fatalf("open %s: %v; demo stderr: %s", url, err, stderr.String())
	}

	// Follow the push from the DOM until every receiver has its verdict; keep a screenshot
	// taken mid-push, after the kill if the page showed one.
	var (
		nodes   []pageNode
		shot    []byte
		shotBad bool
	)
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](readNodes))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &nodes); err != nil {
			t.Fatal(err)
		}
		running, failed, final := 0, 0, 0
		for _, n := range nodes {
			switch n.State {
			case "receiving":
				running++
			case "failed":
				failed++
				final++
			case "verified":
				final++
			}
		}
		if running > 0 && (shot == nil || failed > 0 && !shotBad) {
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			shot, shotBad = png, failed > 0
		}
		if len(nodes) == receivers && final == receivers {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page did not show every verdict: %+v; demo stderr: %s", nodes, stderr.String())
		case <-tick.C:
		}
	}

	// The demo names the relay it killed once the push has ended.
	killed := strings.TrimSuffix(awaitLine(ctx, t, lines, "killed mid-push: [", func() string { return stderr.String() }), "]")
	// Gossip declares the killed relay gone within seconds: the page marks it.
	for {
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](readNodes))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &nodes); err != nil {
			t.Fatal(err)
		}
		gone := false
		for _, n := range nodes {
			gone = gone || n.Name == killed && n.Gone
		}
		if gone {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page never marked %s gone: %+v", killed, nodes)
		case <-tick.C:
		}
	}
	reattached := 0
	for _, n := range nodes {
		if n.Reattached {
			reattached++
		}
		switch {
		case n.Name == killed && (n.State != "failed" || !n.Gone):
			t.Errorf("killed relay %s shown %+v, want failed and gone", killed, n)
		case n.Name != killed && n.State != "verified":
			t.Errorf("live receiver %s shown %+v, want verified", n.Name, n)
		}
	}
	failedMarks, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('#trees g.failed[data-name="`+killed+`"]').length`))
	if err != nil {
		t.Fatal(err)
	}
	if failedMarks == 0 {
		t.Errorf("the plan drawing does not mark %s failed", killed)
	}
	t.Logf("killed %s; %d receivers re-attached on the page; final DOM %+v", killed, reattached, nodes)
	if shot == nil {
		t.Error("no screenshot mid-push: the page never showed a receiver receiving")
	} else if p := os.Getenv("TREECAST_LIVEVIEW_PNG"); p != "" {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot (after the kill: %v) written to %s", shotBad, p)
	}

	// The demo checks every live copy byte for byte, then keeps the cluster up: Ctrl-C ends
	// it (exit 0: every live copy verified).
	for checked := false; !checked; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before checking the copies; stderr: %s", stderr.String())
			}
			if strings.HasPrefix(l, "byte-exact copies checked: ") {
				checked = true
				if !strings.HasPrefix(l, "byte-exact copies checked: 6 of 6 live receivers") {
					t.Errorf("demo: %s", l)
				}
			}
		case <-ctx.Done():
			t.Fatal("the demo did not check the copies")
		}
	}
	if err := demo.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := demo.Wait(); err != nil {
		t.Fatalf("demo: %v; stderr: %s", err, stderr.String())
	}
}

// awaitLine returns the rest of the first line of lines that starts with prefix, failing the
// test when lines ends (the process exited; stderr says why) or ctx ends first.
func awaitLine(ctx context.Context, t *testing.T, lines <-chan string, prefix string, stderr func() string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before printing %q; stderr: %s", prefix, stderr())
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return rest
			}
		case <-ctx.Done():
			t.Fatalf("the demo printed no %q in time; stderr: %s", prefix, stderr())
		}
	}
}
