package main

import (
	"github.com/treecast/treecast/node/identity"

	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// writeConfig writes a configuration file in a new temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// printedConfig runs `treecast agent ARGS --print-config` and decodes what it prints.
func printedConfig(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, stderr, err := run(t, append(append([]string{"agent"}, args...), "--print-config")...)
	if err != nil {
		t.Fatalf("agent %v --print-config: %v (%s)", args, err, stderr)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("--print-config printed no YAML mapping: %v\n%s", err, out)
	}
	return m
}

// TestConfigPrecedence sets keys in a file, overrides some with TREECAST_* variables and
// some with flags, and checks each key's effective value: flag > env > file > default.
func TestConfigPrecedence(t *testing.T) {
	data := t.TempDir()
	path := writeConfig(t, `
name: from-file
data: `+data+`
listen: 127.0.0.1:7000   # overridden by TREECAST_LISTEN
gossip: 127.0.0.1:7001   # overridden by --gossip
chunk: 65536             # TREECAST_CHUNK is set too, but --chunk wins
join: [127.0.0.1:1, 127.0.0.1:2]   # replaced (not appended to) by TREECAST_JOIN
labels: {dc: east, rack: r1}
channels: web,db
verbose: true
`)
	t.Setenv("TREECAST_LISTEN", "127.0.0.1:7100")
	t.Setenv("TREECAST_CHUNK", "1024")
	t.Setenv("TREECAST_JOIN", "127.0.0.1:3")
	t.Setenv("TREECAST_METRICS", "") // empty: unset
	got := printedConfig(t, "--config", path, "--gossip", "127.0.0.1:7201", "--chunk", "2048")
	want := map[string]any{
		"name":             "from-file",
		"data":             data,
		"listen":           "127.0.0.1:7100",
		"gossip":           "127.0.0.1:7201",
		"chunk":            2048,
		"join":             []any{"127.0.0.1:3"},
		"labels":           []any{"dc=east", "rack=r1"},
		"channels":         []any{"web", "db"},
		"verbose":          true,
		"metrics":          "", // default
		"rate-limit":       "",
		"advertise":        "",
		"gossip-advertise": "",
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}

	// The configuration file may also come from TREECAST_CONFIG.
	t.Setenv("TREECAST_CONFIG", path)
	if got := printedConfig(t); got["name"] != "from-file" {
		t.Errorf("with TREECAST_CONFIG: name = %v, want from-file", got["name"])
	}
}

// TestConfigFiles: of several files, a key of a later one replaces the same key of an
// earlier one (a list whole); keys of the earlier ones stay.
func TestConfigFiles(t *testing.T) {
	data := t.TempDir()
	first := writeConfig(t, "name: n1\ndata: "+data+"\nlabels: {dc: east, rack: r1}\nchannels: [web]\n")
	second := writeConfig(t, "labels: {rack: r2}\n")
	for _, args := range [][]string{
		{"--config", first, "--config", second},
		{"--config", first + "," + second},
	} {
		got := printedConfig(t, args...)
		if !reflect.DeepEqual(got["labels"], []any{"rack=r2"}) || got["name"] != "n1" || !reflect.DeepEqual(got["channels"], []any{"web"}) {
			t.Errorf("%v: labels %v name %v channels %v, want [rack=r2] n1 [web]", args, got["labels"], got["name"], got["channels"])
		}
	}
	t.Setenv("TREECAST_CONFIG", first+","+second)
	if got := printedConfig(t); !reflect.DeepEqual(got["labels"], []any{"rack=r2"}) {
		t.Errorf("TREECAST_CONFIG=%s,%s: labels %v, want [rack=r2]", first, second, got["labels"])
	}
	bad := writeConfig(t, "name: n1\nrack: r1\n")
	if _, _, err := run(t, "agent", "--config", first, "--config", bad, "--print-config"); err == nil || !strings.Contains(err.Error(), bad+": line 2: unknown key \"rack\"") {
		t.Errorf("second file with an unknown key: %v, want an error naming the file, line and key", err)
	}
}

// TestConfigRoundTrip: what --print-config prints is a configuration file that yields itself.
func TestConfigRoundTrip(t *testing.T) {
	out, _, err := run(t, "agent", "--name", "n1", "--data", t.TempDir(), "--labels", "rack=r1", "--join", "127.0.0.1:9", "--rate-limit", "1G", "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := run(t, "agent", "--config", writeConfig(t, out), "--print-config")
	if err != nil {
		t.Fatalf("--print-config output is not a valid --config: %v\n%s", err, out)
	}
	if again != out {
		t.Errorf("round trip changed the configuration:\n%s\nthen:\n%s", out, again)
	}
}

// TestConfigKeysAreFlags: the configuration keys are exactly the agent command's flags (but
// help, config and print-config), so a flag added to the command is a key at once.
func TestConfigKeysAreFlags(t *testing.T) {
	got := printedConfig(t, "--name", "n1", "--data", t.TempDir())
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	flags := configKeys(newAgentCmd().Flags())
	slices.Sort(keys)
	if !slices.Equal(keys, flags) || len(flags) < 10 {
		t.Errorf("printed keys %v, want the agent's flags %v", keys, flags)
	}
	for _, k := range []string{"help", "config", "print-config"} {
		if _, ok := got[k]; ok {
			t.Errorf("key %q printed: not a configuration key", k)
		}
	}
}

// TestConfigErrors: bad keys and values stop the agent before it starts, with a message
// naming the key, the value and where they come from.
func TestConfigErrors(t *testing.T) {
	data := t.TempDir()
	base := "name: n1\ndata: " + data + "\n"
	cases := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "unknown key", file: base + "lables: {rack: r1}\n", want: []string{`line 3`, `unknown key "lables"`, "labels"}},
		{name: "flag-only key", file: base + "print-config: true\n", want: []string{`unknown key "print-config"`}},
		{name: "repeated key", file: base + "name: n2\n", want: []string{`line 3`, `key "name" repeats line 1`}},
		{name: "bad int", file: base + "chunk: lots\n", want: []string{`line 3`, `key "chunk"`, `"lots"`}},
		{name: "bad bool", file: base + "verbose: maybe\n", want: []string{`key "verbose"`, `"maybe"`}},
		{name: "list for a scalar", file: base + "listen: [127.0.0.1:1, 127.0.0.1:2]\n", want: []string{`key "listen"`, `[127.0.0.1:1, 127.0.0.1:2]`, "is a list"}},
		{name: "nested list", file: base + "join: [[a]]\n", want: []string{`key "join"`, "list item"}},
		{name: "not a mapping", file: "- name\n- n1\n", want: []string{"want a mapping", "not a list"}},
		{name: "not yaml", file: base + "labels: {rack\n", want: []string{"config", "yaml"}},
		{name: "bad env", file: base, env: map[string]string{"TREECAST_CHUNK": "x1"}, want: []string{`TREECAST_CHUNK="x1"`, `key "chunk"`}},
		{name: "validated address", file: base + "listen: nowhere\n", want: []string{`listen address "nowhere"`}},
		{name: "validated label", file: base + "labels: [rack]\n", want: []string{`--labels: "rack" is not key=value`}},
		{name: "validated env label", file: base, env: map[string]string{"TREECAST_LABELS": "dc=,rack=r1"}, want: []string{`label "dc"=""`}},
		{name: "required", file: "data: " + data + "\n", want: []string{`"name" not set`}},
		{name: "missing file", args: []string{"--config", filepath.Join(data, "nope.yaml")}, want: []string{"nope.yaml", "no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"agent", "--print-config"}, c.args...)
			if c.file != "" {
				args = append(args, "--config", writeConfig(t, c.file))
			}
			out, _, err := run(t, args...)
			if err == nil {
				t.Fatalf("no error; printed:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if out != "" {
				t.Errorf("printed a configuration despite the error:\n%s", out)
			}
		})
	}
}

// agentProcess is a `treecast agent` running as its own process.
type agentProcess struct {
	cmd    *exec.Cmd
	first  string // the address line
	stderr *syncBuffer
	exited chan error
}

// startAgentProcess starts `treecast agent ARGS` with env added to the test's environment
// and waits for its address line. t.Cleanup kills it if the test did not stop it.
func startAgentProcess(t *testing.T, env []string, args ...string) *agentProcess {
	t.Helper()
	p := &agentProcess{stderr: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], append([]string{"agent"}, args...)...)
	p.cmd.Env = append(append(os.Environ(), "TREECAST_TEST_MAIN=1"), env...)
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
		p.exited <- p.cmd.Wait()
	}()
	select {
	case p.first = <-lines:
	case <-time.After(20 * time.Second):
		t.Fatalf("agent %v printed no address line; stderr: %s", args, p.stderr.String())
	}
	if p.first == "" {
		t.Fatalf("agent %v exited: %s", args, p.stderr.String())
	}
	return p
}

// field returns the word after label in the address line ("grpc", "gossip").
func (p *agentProcess) field(t *testing.T, label string) string {
	t.Helper()
	f := strings.Fields(p.first)
	for i := range f[:len(f)-1] {
		if f[i] == label {
			return f[i+1]
		}
	}
	t.Fatalf("no %s address in %q", label, p.first)
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (p *agentProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v; stderr: %s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the agent did not exit within 20 s of SIGTERM")
	}
}

// TestAgentFromExampleConfig runs an agent from deploy/agent.yaml (addresses and data
// directory overridden by TREECAST_* variables, as a container or a test network would) and
// checks that it joins a cluster started with flags, with the file's name, labels and
// channels.
func TestAgentFromExampleConfig(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM is a Unix signal")
	}
	certs := testCerts(t)
	seed := startAgentProcess(t, agentTLSEnv(t, certs, "seed"), "--name", "seed", "--data", t.TempDir(),
		"--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--labels", "dc=dc1,rack=r0")
	example := startAgentProcess(t, append(agentTLSEnv(t, certs, "node-1"),
		"TREECAST_DATA="+t.TempDir(),
		"TREECAST_LISTEN=127.0.0.1:0",
		"TREECAST_GOSSIP=127.0.0.1:0",
		"TREECAST_METRICS=127.0.0.1:0",
		"TREECAST_JOIN="+seed.field(t, "gossip"),
	), "--config", filepath.Join("deploy", "agent.yaml"))
	if !strings.HasPrefix(example.first, "agent node-1: ") {
		t.Fatalf("address line %q, want the name node-1 of the example file", example.first)
	}

	// The seed's view of the cluster: the example agent, alive, with the file's labels and
	// channels.
	want := []string{"node-1", "alive", example.field(t, "grpc"), "dc=dc1,pod=p1,rack=r1", "web"}
	if _, _, err := run(t, "certs", "issue", "--dir", certs, "--name", "op", "--role", "operator"); err != nil {
		t.Fatal(err)
	}
	opCert, opKey := identity.Files(certs, "op")
	ca, _ := identity.CAFiles(certs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var out string
	for {
		var err error
		out, _, err = run(t, "members", "--agent", seed.field(t, "grpc"), "--tls-cert", opCert, "--tls-key", opKey, "--tls-ca", ca)
		if err == nil && hasRow(out, want) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the seed does not list %v:\n%s\nexample agent: %s", want, out, example.stderr.String())
		case <-tick.C:
		}
	}
	t.Logf("members seen by the seed:\n%s", out)
	example.stop(t)
	seed.stop(t)
}

// hasRow reports whether a line of the members table out shows want: name, state, gRPC
// address, labels and channels (the gossip address is not compared).
func hasRow(out string, want []string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == want[0] && f[1] == want[1] && f[2] == want[2] && f[4] == want[3] && f[5] == want[4] {
			return true
		}
	}
	return false
}
