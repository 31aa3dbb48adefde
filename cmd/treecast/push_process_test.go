package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/treecast/treecast/node/identity"
)

// procCluster is a cluster of `treecast agent` processes over TLS with an encrypted gossip,
// and an operator identity for the CLI processes the tests run.
type procCluster struct {
	t      *testing.T
	certs  string
	seed   string // gossip address of the first agent
	agents map[string]*agentProcess
	data   map[string]string
	args   map[string][]string
	env    map[string][]string
	opEnv  []string
}

func newProcCluster(t *testing.T) *procCluster {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("process tests use Unix signals")
	}
	pc := &procCluster{t: t, certs: testCerts(t), agents: map[string]*agentProcess{}, data: map[string]string{}, args: map[string][]string{}, env: map[string][]string{}}
	if _, _, err := run(t, "certs", "issue", "--dir", pc.certs, "--name", "op", "--role", "operator"); err != nil {
		t.Fatal(err)
	}
	cert, key := identity.Files(pc.certs, "op")
	ca, _ := identity.CAFiles(pc.certs)
	pc.opEnv = []string{"TREECAST_TLS_CERT=" + cert, "TREECAST_TLS_KEY=" + key, "TREECAST_TLS_CA=" + ca}
	return pc
}

// start starts (or restarts, on the same data directory) the agent called name.
func (pc *procCluster) start(name string, extra ...string) *agentProcess {
	pc.t.Helper()
	if _, ok := pc.data[name]; !ok {
		pc.data[name] = pc.t.TempDir()
		pc.args[name] = extra
		pc.env[name] = agentTLSEnv(pc.t, pc.certs, name)
	}
	args := []string{"--name", name, "--data", pc.data[name], "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}
	if pc.seed != "" {
		args = append(args, "--join", pc.seed)
	}
	p := startAgentProcess(pc.t, pc.env[name], append(args, pc.args[name]...)...)
	if pc.seed == "" {
		pc.seed = p.field(pc.t, "gossip")
	}
	pc.agents[name] = p
	return p
}

func (pc *procCluster) addr(name string) string { return pc.agents[name].field(pc.t, "grpc") }

// cli runs `treecast ARGS` as a process with the operator's identity.
func (pc *procCluster) cli(stdin []byte, args ...string) (stdout, stderr string, code int) {
	pc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "TREECAST_TEST_MAIN=1"), pc.opEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		pc.t.Fatalf("treecast %v: %v; stderr: %s", args, err, errb.String())
	}
	return out.String(), errb.String(), code
}

// startCLI starts `treecast ARGS` as a process and returns it with its outputs.
func (pc *procCluster) startCLI(args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	pc.t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "TREECAST_TEST_MAIN=1"), pc.opEnv...)
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, out, errb
}

// waitFor polls cond every 50 ms until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// members returns name -> state as agent's gossip sees it.
func (pc *procCluster) members(agent string) map[string]string {
	out, _, code := pc.cli(nil, "members", "--agent", pc.addr(agent))
	m := map[string]string{}
	if code != 0 {
		return m
	}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

func (pc *procCluster) waitMembers(agent string, want map[string]string) {
	pc.t.Helper()
	waitFor(pc.t, 30*time.Second, fmt.Sprintf("%s to see %v", agent, want), func() bool {
		got := pc.members(agent)
		for n, s := range want {
			if got[n] != s {
				return false
			}
		}
		return true
	})
}

// objects returns digest -> complete for an agent's store.
func (pc *procCluster) objects(agent string) map[string]bool {
	out, _, code := pc.cli(nil, "ls", "--json", "--agent", pc.addr(agent))
	var st struct {
		Objects []struct {
			Digest   string `json:"digest"`
			Complete bool   `json:"complete"`
		} `json:"objects"`
	}
	m := map[string]bool{}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return m
	}
	for _, o := range st.Objects {
		m[o.Digest] = o.Complete
	}
	return m
}

// pushStatus is `treecast status ID --json` for one push.
func (pc *procCluster) pushStatus(agent, id string) pushInfoJSON {
	pc.t.Helper()
	out, errb, code := pc.cli(nil, "status", id, "--json", "--agent", pc.addr(agent))
	var ps []pushInfoJSON
	if code != 0 || json.Unmarshal([]byte(out), &ps) != nil || len(ps) != 1 {
		pc.t.Fatalf("status %s: exit %d: %s %s", id, code, out, errb)
	}
	return ps[0]
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func receiverStatus(p pushInfoJSON) map[string]string {
	m := map[string]string{}
	for _, r := range p.Receivers {
		m[r.Name] = r.Status
	}
	return m
}

// pushID finds the push's id in what push printed.
func pushID(t *testing.T, stderr string) string {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "push" && len(f[1]) == 16 {
			return f[1]
		}
	}
	t.Fatalf("no push id in %q", stderr)
	return ""
}

// TestUploadPushProcesses pushes a file that lies in no data directory, and standard input,
// through agent processes: every receiver holds the exact bytes; the submitting agent's store
// holds one copy.
func TestUploadPushProcesses(t *testing.T) {
	pc := newProcCluster(t)
	for _, n := range []string{"u0", "u1", "u2"} {
		pc.start(n)
	}
	pc.waitMembers("u0", map[string]string{"u0": "alive", "u1": "alive", "u2": "alive"})
	file := filepath.Join(t.TempDir(), "release.tar")
	data := randomBytes(3<<20+17, 7)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errb, code := pc.cli(nil, "push", file, "--to", "all", "--agent", pc.addr("u0"), "--chunk", "256KiB")
	if code != 0 || !strings.Contains(out, "2 verified, 0 failed, 0 offline") {
		t.Fatalf("push of a file outside the data dirs: exit %d\n%s\n%s", code, out, errb)
	}
	stdinData := randomBytes(1<<20+3, 8)
	out, errb, code = pc.cli(stdinData, "push", "-", "--to", "u2", "--agent", pc.addr("u1"), "--json")
	if code != 0 {
		t.Fatalf("push of standard input: exit %d\n%s\n%s", code, out, errb)
	}
	for _, c := range []struct {
		agent string
		data  []byte
	}{{"u1", data}, {"u2", data}, {"u2", stdinData}} {
		dst := filepath.Join(t.TempDir(), "out")
		if _, errb, code := pc.cli(nil, "get", digestOf(c.data), "-o", dst, "--agent", pc.addr(c.agent)); code != 0 {
			t.Fatalf("get from %s: %s", c.agent, errb)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, c.data) {
			t.Fatalf("%s holds %d bytes, not the %d pushed", c.agent, len(got), len(c.data))
		}
	}
	// One copy on the submitting agent: the store's object, no copy of the file beside it.
	var bytesOnDisk int64
	_ = filepath.Walk(pc.data["u0"], func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			bytesOnDisk += fi.Size()
		}
		return nil
	})
	if bytesOnDisk < int64(len(data)) || bytesOnDisk > int64(len(data))+1<<20 {
		t.Errorf("the submitting agent's data dir holds %d bytes for an object of %d", bytesOnDisk, len(data))
	}
	// A path on the agent's own host is read there; one that escapes the data dir is refused.
	inside := filepath.Join(pc.data["u0"], "local.bin")
	if err := os.WriteFile(inside, randomBytes(100_000, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errb, code := pc.cli(nil, "push", "agent:"+inside, "--to", "u1", "--agent", pc.addr("u0")); code != 0 {
		t.Fatalf("push agent:%s: exit %d\n%s%s", inside, code, out, errb)
	}
	if _, errb, code := pc.cli(nil, "push", "agent:"+file, "--to", "u1", "--agent", pc.addr("u0")); code != 1 || !strings.Contains(errb, "outside") {
		t.Fatalf("push of an agent path outside its data dir: exit %d: %s", code, errb)
	}
}

// TestPushSurvivesCtrlC interrupts `push` mid-push: it detaches (exit 130, telling how to
// reattach), the push completes at its agent, and `watch` shows its report.
func TestPushSurvivesCtrlC(t *testing.T) {
	pc := newProcCluster(t)
	pc.start("c0", "--rate-limit", "2MiB")
	pc.start("c1")
	pc.start("c2")
	pc.waitMembers("c0", map[string]string{"c1": "alive", "c2": "alive"})
	file := filepath.Join(t.TempDir(), "big.bin")
	data := randomBytes(6<<20, 11)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _, errb := pc.startCLI("push", file, "--to", "c1,c2", "--agent", pc.addr("c0"), "--chunk", "256KiB", "--strategy", "unicast")
	waitFor(t, 30*time.Second, "the push's progress", func() bool { return strings.Contains(errb.String(), "25%") })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(errb.String(), "treecast watch") {
		t.Fatalf("push after Ctrl-C: exit %d, want %d and how to reattach:\n%s", code, exitInterrupted, errb.String())
	}
	id := pushID(t, errb.String())
	out, werr, code := pc.cli(nil, "watch", id, "--agent", pc.addr("c0"))
	if code != 0 || !strings.Contains(out, "2 verified, 0 failed, 0 offline") {
		t.Fatalf("watch %s: exit %d\n%s\n%s", id, code, out, werr)
	}
	for _, n := range []string{"c1", "c2"} {
		if !pc.objects(n)[digestOf(data)] {
			t.Errorf("%s does not hold the object after the detached push", n)
		}
	}
	logs := pc.agents["c0"].stderr.String()
	for _, want := range []string{"push ended", "receiver verified", "receiver=c1", "receiver=c2"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the agent's log lacks %q:\n%s", want, logs)
		}
	}
	list, _, _ := pc.cli(nil, "status", "--agent", pc.addr("c0"))
	if !strings.Contains(list, id) || !strings.Contains(list, "done") {
		t.Errorf("status lists no done push %s:\n%s", id, list)
	}
}

// TestPushResumesAfterAgentRestart stops the agent that runs a push mid-push and starts it
// again on the same data directory: the push resumes and completes, and the receivers are
// sent only the chunks they lacked.
func TestPushResumesAfterAgentRestart(t *testing.T) {
	pc := newProcCluster(t)
	pc.start("r0")
	pc.start("r1", "--rate-limit", "2MiB")
	pc.start("r2")
	pc.waitMembers("r1", map[string]string{"r0": "alive", "r2": "alive"})
	file := filepath.Join(t.TempDir(), "big.bin")
	data := randomBytes(8<<20, 12)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errb, code := pc.cli(nil, "push", file, "--to", "r0,r2", "--agent", pc.addr("r1"), "--chunk", "256KiB", "--strategy", "unicast", "--detach")
	if code != 0 {
		t.Fatalf("push --detach: exit %d\n%s%s", code, out, errb)
	}
	id := strings.TrimSpace(out)
	held := func(agent string) bool {
		o, _, _ := pc.cli(nil, "ls", "--json", "--agent", pc.addr(agent))
		return strings.Contains(o, `"chunks_held":`)
	}
	waitFor(t, 30*time.Second, "receivers to hold some chunks", func() bool { return held("r0") && held("r2") })
	pc.agents["r1"].stop(t)
	pc.start("r1")
	out, werr, code := pc.cli(nil, "watch", id, "--agent", pc.addr("r1"), "--json")
	if code != 0 {
		t.Fatalf("watch %s after the restart: exit %d\n%s\n%s\n%s", id, code, out, werr, pc.agents["r1"].stderr.String())
	}
	var rep pushJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	resumed := 0
	for _, r := range rep.Receivers {
		if r.Status != "verified" {
			t.Errorf("%s: %s %s", r.Name, r.Status, r.Error)
		}
		if r.AlreadyHeld > 0 {
			resumed++
		}
	}
	if resumed == 0 {
		t.Errorf("no receiver resumed from the chunks it held: %+v", rep.Receivers)
	}
	for _, n := range []string{"r0", "r2"} {
		if !pc.objects(n)[digestOf(data)] {
			t.Errorf("%s does not hold the object", n)
		}
	}
}

// TestPushOfChangingFileRefused modifies a file while `push` uploads it: the push fails with
// a clear error and nothing is stored or pushed.
func TestPushOfChangingFileRefused(t *testing.T) {
	pc := newProcCluster(t)
	pc.start("m0")
	pc.start("m1")
	pc.waitMembers("m0", map[string]string{"m1": "alive"})
	file := filepath.Join(t.TempDir(), "growing.bin")
	data := randomBytes(192<<20, 13)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _, errb := pc.startCLI("push", file, "--to", "m1", "--agent", pc.addr("m0"))
	tmp := filepath.Join(pc.data["m0"], "store", "tmp")
	waitFor(t, 30*time.Second, "the upload to begin", func() bool {
		ents, _ := os.ReadDir(tmp)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Size() > 0 {
				return true
			}
		}
		return false
	})
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("torn"), 100<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(errb.String(), "changed while it was read") {
		t.Fatalf("push of a changing file: exit %d, want 1 and a clear error:\n%s", code, errb.String())
	}
	for _, n := range []string{"m0", "m1"} {
		if objs := pc.objects(n); len(objs) != 0 {
			t.Errorf("%s holds %v after a refused upload", n, objs)
		}
	}
	id := pushID(t, errb.String())
	if st := pc.pushStatus("m0", id); st.State != "failed" || !strings.Contains(st.Error, "changed") {
		t.Errorf("status of the refused push: %+v", st)
	}
}

// TestPushListsOfflineMembers pushes to a selector one of whose members is down: the report
// lists it offline and the exit status is 3; with --follow it is fed when it comes back.
func TestPushListsOfflineMembers(t *testing.T) {
	pc := newProcCluster(t)
	pc.start("o0", "--labels", "rack=r1")
	pc.start("o1", "--labels", "rack=r2")
	pc.start("o2", "--labels", "rack=r2")
	pc.waitMembers("o0", map[string]string{"o1": "alive", "o2": "alive"})
	_ = pc.agents["o2"].cmd.Process.Kill()
	pc.waitMembers("o0", map[string]string{"o2": "dead"})
	file := filepath.Join(t.TempDir(), "obj.bin")
	data := randomBytes(1<<20, 14)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errb, code := pc.cli(nil, "push", file, "--to", "rack=r2", "--agent", pc.addr("o0"))
	if code != 3 || !strings.Contains(out, "o2") || !strings.Contains(out, "offline") || !strings.Contains(out, "1 verified, 0 failed, 1 offline") {
		t.Fatalf("push with an offline member: exit %d, want 3 and o2 listed offline:\n%s\n%s", code, out, errb)
	}
	out, errb, code = pc.cli(nil, "push", file, "--to", "rack=r2", "--agent", pc.addr("o0"), "--follow", "2m")
	if code != 3 {
		t.Fatalf("push --follow: exit %d\n%s%s", code, out, errb)
	}
	id := pushID(t, errb)
	if st := pc.pushStatus("o0", id); st.State != "following" || receiverStatus(st)["o2"] != "offline" {
		t.Fatalf("status of the following push: %+v", st)
	}
	pc.start("o2")
	waitFor(t, 60*time.Second, "o2 to be fed when it came back", func() bool {
		return receiverStatus(pc.pushStatus("o0", id))["o2"] == "verified"
	})
	if !pc.objects("o2")[digestOf(data)] {
		t.Errorf("o2 does not hold the object")
	}
	if out, _, code := pc.cli(nil, "cancel", id, "--agent", pc.addr("o0")); code != 0 || !strings.Contains(out, "cancelled") {
		t.Errorf("cancel %s: exit %d: %s", id, code, out)
	}
}
