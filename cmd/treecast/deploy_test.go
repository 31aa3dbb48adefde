package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The deployment files under deploy/ are checked here against the agent command itself:
// every flag they name is one of its flags, every configuration they carry passes its
// validation, and their ports, paths and users agree with each other.

// agentFlagNames returns the agent command's long flag names.
func agentFlagNames() map[string]bool {
	names := map[string]bool{}
	for _, k := range configKeys(newAgentCmd().Flags()) {
		names[k] = true
	}
	names["config"] = true
	return names
}

// checkAgentArgs checks that args (after "agent") name only flags of the agent command and
// returns the values of --config.
func checkAgentArgs(t *testing.T, where string, args []string) (configs []string) {
	t.Helper()
	flags := agentFlagNames()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not a --flag", where, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !flags[name] {
			t.Errorf("%s: --%s is not a flag of treecast agent", where, name)
			continue
		}
		fl := newAgentCmd().Flags().Lookup(name)
		if !hasVal && (fl == nil || fl.NoOptDefVal == "") {
			if i+1 == len(args) {
				t.Errorf("%s: --%s has no value", where, name)
				break
			}
			i++
			val = args[i]
		}
		if name == "config" {
			configs = append(configs, val)
		}
	}
	return configs
}

// exampleConfig is the effective configuration of deploy/agent.yaml alone (its defaults
// filled), as --print-config prints it.
func exampleConfig(t *testing.T) map[string]any {
	t.Helper()
	return printedConfig(t, "--config", filepath.Join("deploy", "agent.yaml"))
}

// port returns the port of a host:port.
func port(t *testing.T, hostport any) int {
	t.Helper()
	_, p, err := net.SplitHostPort(fmt.Sprint(hostport))
	if err != nil {
		t.Fatalf("%v: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%v: %v", hostport, err)
	}
	return n
}

// ---- systemd

// unitFile is a systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// last returns the effective value of a key (the last one given), or "".
func (u unitFile) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func TestSystemdUnit(t *testing.T) {
	unitPath := filepath.Join("deploy", "systemd", "treecast-agent.service")
	u := parseUnit(t, unitPath)
	for _, kv := range [][3]string{
		{"Service", "ProtectSystem", "strict"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "Restart", "on-failure"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.last(kv[0], kv[1]); got != kv[2] || len(u[kv[0]][kv[1]]) == 0 {
			t.Errorf("[%s] %s=%q, want %q", kv[0], kv[1], got, kv[2])
		}
	}
	if d, err := time.ParseDuration(u.last("Service", "TimeoutStopSec")); err != nil || d < 10*time.Second {
		t.Errorf("TimeoutStopSec=%q: want a stop timeout of at least 10s for running streams to finish (%v)", u.last("Service", "TimeoutStopSec"), err)
	}

	// Its own unprivileged user, declared in the sysusers.d file.
	user := u.last("Service", "User")
	if user == "" || user == "root" || u.last("Service", "DynamicUser") == "yes" {
		t.Errorf("User=%q: want a user of its own", user)
	}
	sysusers, err := os.ReadFile(filepath.Join("deploy", "systemd", "treecast.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^u\s+` + regexp.QuoteMeta(user) + `\s`).Match(sysusers) {
		t.Errorf("treecast.sysusers declares no user %q", user)
	}

	// ExecStart runs `treecast agent --config /etc/treecast/agent.yaml` with real flags.
	exec0 := strings.Fields(u.last("Service", "ExecStart"))
	if len(exec0) < 2 || filepath.Base(exec0[0]) != "treecast" || exec0[1] != "agent" {
		t.Fatalf("ExecStart=%v: want treecast agent ...", exec0)
	}
	configs := checkAgentArgs(t, "ExecStart", exec0[2:])
	if !slices.Equal(configs, []string{"/etc/treecast/agent.yaml"}) {
		t.Errorf("ExecStart --config %v, want /etc/treecast/agent.yaml", configs)
	}
	if cd := u.last("Service", "ConfigurationDirectory"); cd == "" || !strings.HasPrefix(configs[0], "/etc/"+cd+"/") {
		t.Errorf("ConfigurationDirectory=%q does not hold %v", cd, configs)
	}

	// The data directory of the example configuration is the one writable path.
	data := fmt.Sprint(exampleConfig(t)["data"])
	if !slices.Contains(strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " ")), data) {
		t.Errorf("ReadWritePaths=%v does not include the data directory %s of deploy/agent.yaml", u["Service"]["ReadWritePaths"], data)
	}
	if sd := u.last("Service", "StateDirectory"); "/var/lib/"+sd != data {
		t.Errorf("StateDirectory=%q: want the data directory %s created for the user", sd, data)
	}

	// The TLS keys of agent.yaml (commented until the agent takes them) name files of the
	// configuration directory, which the unit can read.
	exText, err := os.ReadFile(filepath.Join("deploy", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	flags := agentFlagNames()
	tlsKeys := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(#\s*)?(tls-cert|tls-key|tls-ca|gossip-key):\s*(\S+)`).FindAllStringSubmatch(string(exText), -1) {
		tlsKeys[m[2]] = true
		if cd := u.last("Service", "ConfigurationDirectory"); !strings.HasPrefix(m[3], "/etc/"+cd+"/") {
			t.Errorf("agent.yaml: %s: %s is not in the configuration directory /etc/%s", m[2], m[3], cd)
		}
		if flags[m[2]] && m[1] != "" {
			t.Errorf("treecast agent has --%s now: uncomment it in agent.yaml", m[2])
		}
	}
	if len(tlsKeys) != 4 {
		t.Errorf("agent.yaml shows TLS keys %v, want tls-cert, tls-key, tls-ca and gossip-key", tlsKeys)
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not installed (Debian package systemd): unit not verified by systemd")
		}
		// verify checks that ExecStart's program exists: point it at an executable here.
		text, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		copyPath := filepath.Join(dir, "treecast-agent.service")
		if err := os.WriteFile(copyPath, bytes.ReplaceAll(text, []byte(exec0[0]+" "), []byte(self+" ")), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", copyPath).CombinedOutput()
		var findings []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "treecast-agent.service") {
				findings = append(findings, l)
			}
		}
		if err != nil || len(findings) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		// The exposure score of systemd's own security review (0 = fully sandboxed, 10 =
		// not at all); offline mode reads the unit file only.
		out, err = exec.Command(sa, "security", "--offline=yes", "--no-pager", copyPath).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for treecast-agent.service: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Logf("systemd-analyze security --offline not available (%v): %.200s", err, out)
			return
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("systemd-analyze security: exposure %.1f", score)
		if score > 2.0 {
			t.Errorf("systemd-analyze security: exposure %.1f, want at most 2.0 (hardened)", score)
		}
	})
	t.Run("systemd-sysusers", func(t *testing.T) {
		su, err := exec.LookPath("systemd-sysusers")
		if err != nil {
			t.Skip("systemd-sysusers not installed (Debian package systemd)")
		}
		root := t.TempDir()
		if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		// With --root, file arguments are read under the root: give the file on stdin.
		cmd := exec.Command(su, "--root="+root, "-")
		cmd.Stdin = bytes.NewReader(sysusers)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("systemd-sysusers: %v\n%s", err, out)
		}
		passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^` + user + `:x:[1-9][0-9]*:[0-9]+:[^:]*:` + data + `:`).Match(passwd) {
			t.Errorf("systemd-sysusers made no user %s with home %s:\n%s", user, data, passwd)
		}
	})
}

// ---- container image

// dockerInstr is one instruction of a Dockerfile.
type dockerInstr struct {
	line int
	cmd  string // upper case
	args string
}

// dockerStage is one build stage.
type dockerStage struct {
	from, name string
	instrs     []dockerInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions (continuation lines
// joined, comments dropped).
func parseDockerfile(t *testing.T, text string) (args map[string]string, stages []*dockerStage) {
	t.Helper()
	args = map[string]string{}
	var cur strings.Builder
	start := 0
	lines := strings.Split(text, "\n")
	for n, raw := range lines {
		l := strings.TrimSpace(raw)
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if strings.HasPrefix(l, "#") { // a comment inside a continued instruction
			continue
		}
		if cur.Len() == 0 {
			start = n + 1
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		in := dockerInstr{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)}
		cur.Reset()
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := &dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				t.Errorf("Dockerfile:%d: FROM %s: want FROM IMAGE [AS NAME]", in.line, in.args)
			}
			stages = append(stages, st)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) == 0:
			t.Errorf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
		default:
			stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
		}
	}
	if cur.Len() > 0 {
		t.Errorf("Dockerfile ends inside a continued instruction")
	}
	return args, stages
}

// execForm decodes an instruction's JSON (exec form) arguments.
func execForm(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Errorf("Dockerfile:%d: %s %s: want the exec (JSON) form: %v", in.line, in.cmd, in.args, err)
	}
	return v
}

func TestDockerfile(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args, stages := parseDockerfile(t, string(text))
	if len(stages) < 2 {
		t.Fatalf("%d build stages, want a build stage and a final one", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if build.name != "build" || !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("first stage FROM %s AS %s, want FROM golang:... AS build", build.from, build.name)
	}
	// The Go of the build image is the go.mod's.
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goDirective := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goDirective == nil || args["GO_VERSION"] != string(goDirective[1]) || !strings.Contains(build.from, "${GO_VERSION}") {
		t.Errorf("build image %s with GO_VERSION=%q: want go.mod's Go %s", build.from, args["GO_VERSION"], goDirective[1])
	}
	// The build makes a static binary of ./cmd/treecast.
	binary := ""
	for _, in := range build.instrs {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			if !strings.Contains(in.args, "CGO_ENABLED=0") || !strings.Contains(in.args, "./cmd/treecast") {
				t.Errorf("Dockerfile:%d: %s: want CGO_ENABLED=0 go build ... ./cmd/treecast (a static binary for an empty base)", in.line, in.args)
			}
			if m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(in.args); m != nil {
				binary = m[1]
			}
		}
	}
	if binary == "" {
		t.Fatalf("the build stage runs no go build -o BINARY")
	}

	// The final stage: an empty (or distroless static) base with the binary, the CA roots
	// and the data directory, all copied from the build stage; no shell, so no RUN.
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s: want scratch or gcr.io/distroless/static", final.from)
	}
	data := fmt.Sprint(exampleConfig(t)["data"])
	var user, entry, cmdArgs []string
	var haveBinary, haveCA bool
	var exposed []string
	for _, in := range final.instrs {
		switch in.cmd {
		case "RUN", "ADD":
			t.Errorf("Dockerfile:%d: %s in the final stage: copy built files from the build stage instead", in.line, in.cmd)
		case "COPY":
			f := strings.Fields(in.args)
			from := ""
			for _, o := range f {
				if v, ok := strings.CutPrefix(o, "--from="); ok {
					from = v
				}
			}
			if from != build.name {
				t.Errorf("Dockerfile:%d: COPY %s: want --from=%s (nothing from the build context in the image)", in.line, in.args, build.name)
			}
			src, dst := f[len(f)-2], f[len(f)-1]
			switch {
			case src == binary && dst == "/usr/local/bin/treecast":
				haveBinary = true
			case strings.Contains(src, "ca-certificates") && strings.HasPrefix(dst, "/etc/ssl/certs/"):
				haveCA = true
			case dst == data && strings.Contains(in.args, "--chown="):
			default:
				t.Errorf("Dockerfile:%d: COPY %s: the image holds the binary, the CA roots and the data directory %s only", in.line, in.args, data)
			}
		case "USER":
			user = strings.Split(in.args, ":")
		case "ENTRYPOINT":
			entry = execForm(t, in)
		case "CMD":
			cmdArgs = execForm(t, in)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		}
	}
	if !haveBinary || !haveCA {
		t.Errorf("final stage: binary copied %v, CA roots copied %v; want both", haveBinary, haveCA)
	}
	if len(user) == 0 {
		t.Fatalf("the final stage sets no USER: the agent would run as root")
	}
	if uid, err := strconv.Atoi(user[0]); err != nil || uid == 0 {
		t.Errorf("final USER %v: want a numeric non-root uid (an empty base has no /etc/passwd)", user)
	}
	if !slices.Equal(entry, []string{"/usr/local/bin/treecast"}) {
		t.Errorf("ENTRYPOINT %v, want [/usr/local/bin/treecast]", entry)
	}
	if len(cmdArgs) < 1 || cmdArgs[0] != "agent" {
		t.Fatalf("CMD %v, want agent ...", cmdArgs)
	}
	if configs := checkAgentArgs(t, "CMD", cmdArgs[1:]); !slices.Equal(configs, []string{"/etc/treecast/agent.yaml"}) {
		t.Errorf("CMD --config %v, want /etc/treecast/agent.yaml", configs)
	}
	// The exposed ports are the example configuration's.
	ex := exampleConfig(t)
	want := []string{fmt.Sprintf("%d/tcp", port(t, ex["listen"])), fmt.Sprintf("%d/tcp", port(t, ex["gossip"])),
		fmt.Sprintf("%d/udp", port(t, ex["gossip"])), fmt.Sprintf("%d/tcp", port(t, ex["metrics"]))}
	slices.Sort(want)
	slices.Sort(exposed)
	if !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want the ports of deploy/agent.yaml %v", exposed, want)
	}

	t.Run("dockerignore", func(t *testing.T) {
		ignore, err := os.ReadFile(filepath.Join("deploy", "Dockerfile.dockerignore"))
		if err != nil {
			t.Fatal(err)
		}
		kept := map[string]bool{}
		for _, l := range strings.Split(string(ignore), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "!"); ok {
				kept[strings.TrimSuffix(v, "/")] = true
			}
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Skip("no go command to list the packages the build needs")
		}
		out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		need := []string{"go.mod", "go.sum"}
		for _, p := range strings.Fields(string(out)) {
			if rest, ok := strings.CutPrefix(p, "github.com/treecast/treecast/"); ok {
				need = append(need, strings.Split(rest, "/")[0])
			}
		}
		for _, n := range need {
			if !kept[n] {
				t.Errorf("Dockerfile.dockerignore leaves %s out of the build context; the build needs it", n)
			}
		}
	})
	t.Run("hadolint", func(t *testing.T) {
		h, err := exec.LookPath("hadolint")
		if err != nil {
			t.Skip("hadolint not installed (not packaged in Debian); the checks above stand in for it")
		}
		if out, err := exec.Command(h, filepath.Join("deploy", "Dockerfile")).CombinedOutput(); err != nil {
			t.Errorf("hadolint: %v\n%s", err, out)
		}
	})
}

// ---- Kubernetes

type k8sMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type k8sEnv struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []k8sEnv `yaml:"env"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type k8sVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
	EmptyDir  *struct{} `yaml:"emptyDir"`
	HostPath  *struct{} `yaml:"hostPath"`
	Projected *struct {
		Sources []map[string]any `yaml:"sources"`
	} `yaml:"projected"`
}

type k8sDaemonSet struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				ServiceAccountName            string `yaml:"serviceAccountName"`
				AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
				HostNetwork                   bool   `yaml:"hostNetwork"`
				TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
					RunAsUser      int   `yaml:"runAsUser"`
					SeccompProfile struct {
						Type string `yaml:"type"`
					} `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				InitContainers []k8sContainer `yaml:"initContainers"`
				Containers     []k8sContainer `yaml:"containers"`
				Volumes        []k8sVolume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPodMonitor struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port      string `yaml:"port"`
			Path      string `yaml:"path"`
			Scheme    string `yaml:"scheme"`
			TLSConfig struct {
				CA         k8sSecretRef `yaml:"ca"`
				Cert       k8sSecretRef `yaml:"cert"`
				KeySecret  k8sKeyRef    `yaml:"keySecret"`
				ServerName string       `yaml:"serverName"`
				Insecure   bool         `yaml:"insecureSkipVerify"`
			} `yaml:"tlsConfig"`
		} `yaml:"podMetricsEndpoints"`
	} `yaml:"spec"`
}

// k8sDoc is one decoded manifest document.
// k8sKeyRef names a key of a Secret; k8sSecretRef holds one (Prometheus Operator's SecretOrConfigMap).
type k8sKeyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type k8sSecretRef struct {
	Secret k8sKeyRef `yaml:"secret"`
}

type k8sDoc struct {
	file     string
	Kind     string  `yaml:"kind"`
	Metadata k8sMeta `yaml:"metadata"`
	node     *yaml.Node
}

// loadManifests decodes every document of the YAML files of dir, keyed by "Kind/name".
func loadManifests(t *testing.T, dir string) (map[string]*k8sDoc, []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	docs := map[string]*k8sDoc{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			d := &k8sDoc{file: filepath.Base(f), node: &n}
			if err := n.Decode(d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d.Kind == "" || (d.Metadata.Name == "" && d.Kind != "Kustomization") {
				t.Errorf("%s: a document without kind or name", f)
			}
			key := d.Kind + "/" + d.Metadata.Name
			if docs[key] != nil {
				t.Errorf("%s: %s defined twice", f, key)
			}
			docs[key] = d
		}
	}
	return docs, files
}

// decodeDoc decodes the document kind/name into v.
func decodeDoc(t *testing.T, docs map[string]*k8sDoc, key string, v any) {
	t.Helper()
	d := docs[key]
	if d == nil {
		t.Fatalf("no %s in the manifests", key)
	}
	if err := d.node.Decode(v); err != nil {
		t.Fatalf("%s (%s): %v", key, d.file, err)
	}
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// expandEnv expands Kubernetes' $(VAR) references with vars.
func expandEnv(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// podEnv returns a container's variables as the kubelet would set them, the downward API
// fields given by fields (fieldPath -> value).
func podEnv(t *testing.T, c k8sContainer, fields map[string]string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			v, ok := fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("container %s: %s from unknown field %s", c.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			vars[e.Name] = v
		default:
			vars[e.Name] = expandEnv(e.Value, vars)
		}
	}
	return vars
}

// uncommentTLS returns the DaemonSet text with its commented TREECAST_* variables (the TLS
// block, kept commented until agents take TLS flags) made live.
func uncommentTLS(text string) string {
	re := regexp.MustCompile(`(?m)^(\s*)# (- name: TREECAST_\w+|  value: .*)$`)
	return re.ReplaceAllString(text, "$1$2")
}

// runTopologyInit runs the topology init container's script with a kubectl that answers
// the node's labels, in a directory standing for its mount path, and returns what it wrote.
func runTopologyInit(t *testing.T, init k8sContainer, runMount string, nodeLabels map[string]string) string {
	t.Helper()
	if len(init.Command) != 3 || init.Command[0] != "/bin/sh" || init.Command[1] != "-c" {
		t.Fatalf("init container %s: command %v, want /bin/sh -c SCRIPT", init.Name, init.Command)
	}
	dir := t.TempDir()
	bin := t.TempDir()
	// The stand-in kubectl: `get node NAME ... -o go-template={{with index .metadata.labels "KEY"}}...`
	// prints the label KEY of node NAME (from STUB_<KEY with non-alphanumerics as _>).
	stub := `#!/bin/sh
[ "$1 $2 $3" = "get node $EXPECT_NODE" ] || { echo "kubectl stub: unexpected $*" >&2; exit 2; }
key=
for a in "$@"; do
  case "$a" in *'index .metadata.labels "'*) key=${a#*labels \"}; key=${key%%\"*};; esac
done
[ -n "$key" ] || { echo "kubectl stub: no label in $*" >&2; exit 2; }
var=STUB_$(printf %s "$key" | tr -c 'A-Za-z0-9' _)
eval "printf %s \"\${$var:-}\""
`
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(init.Command[2], runMount, dir)
	cmd := exec.Command("/bin/sh", "-c", script)
	env := podEnv(t, init, map[string]string{"spec.nodeName": "node-a"})
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "EXPECT_NODE=node-a")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range nodeLabels {
		cmd.Env = append(cmd.Env, "STUB_"+regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString(k, "_")+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("topology init script: %v\n%s", err, out)
	}
	written, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(written) != 1 {
		t.Fatalf("the topology init script left %v in its directory, want one file", written)
	}
	return written[0]
}

func TestKubernetesManifests(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("runs the init container's shell script")
	}
	dir := filepath.Join("deploy", "kubernetes")
	docs, files := loadManifests(t, dir)

	// The kustomization lists every manifest and sets the namespace of all.
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	decodeDoc(t, docs, "Kustomization/", &kust)
	var listed []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			listed = append(listed, b)
		}
	}
	slices.Sort(listed)
	res := slices.Clone(kust.Resources)
	slices.Sort(res)
	if !slices.Equal(res, listed) {
		t.Errorf("kustomization resources %v, want the manifests %v", kust.Resources, listed)
	}
	for key, d := range docs {
		switch d.Kind {
		case "Kustomization", "Namespace", "ClusterRole", "ClusterRoleBinding":
		default:
			if d.Metadata.Namespace != kust.Namespace {
				t.Errorf("%s: namespace %q, want %q", key, d.Metadata.Namespace, kust.Namespace)
			}
		}
	}

	var ds k8sDaemonSet
	decodeDoc(t, docs, "DaemonSet/treecast-agent", &ds)
	pod := ds.Spec.Template.Spec
	podLabels := ds.Spec.Template.Metadata.Labels
	if !subset(ds.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("DaemonSet selector %v does not select its pods %v", ds.Spec.Selector.MatchLabels, podLabels)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("the pod has %d containers and %d init containers, want the agent and the topology step", len(pod.Containers), len(pod.InitContainers))
	}
	agent, topo := pod.Containers[0], pod.InitContainers[0]
	volumes := map[string]k8sVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounts := func(c k8sContainer) map[string]string { // volume -> mount path (subPath joined)
		m := map[string]string{}
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("container %s mounts unknown volume %s", c.Name, vm.Name)
			}
			m[vm.Name] = vm.MountPath
		}
		return m
	}
	agentMounts, topoMounts := mounts(agent), mounts(topo)

	// Restricted Pod Security: non-root, no privilege escalation, no capabilities, the
	// runtime's seccomp profile, no host paths or host network.
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == 0 || sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser, seccomp RuntimeDefault", sc)
	}
	for _, c := range []k8sContainer{agent, topo} {
		s := c.SecurityContext
		if s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation || !slices.Equal(s.Capabilities.Drop, []string{"ALL"}) ||
			s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			t.Errorf("container %s: securityContext %+v: want no privilege escalation, capabilities dropped, read-only root", c.Name, s)
		}
	}
	if pod.HostNetwork {
		t.Errorf("hostNetwork: the restricted Pod Security Standard forbids it")
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath: the restricted Pod Security Standard forbids it", v.Name)
		}
	}
	// Only the topology step holds an API token.
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken not false: the agent needs no API token")
	}
	for name, v := range volumes {
		if v.Projected == nil {
			continue
		}
		if _, ok := agentMounts[name]; ok {
			t.Errorf("the agent mounts the API token volume %s", name)
		}
		if topoMounts[name] != "/var/run/secrets/kubernetes.io/serviceaccount" {
			t.Errorf("the topology step mounts the token volume %s at %q, want kubectl's in-cluster path", name, topoMounts[name])
		}
	}
	var sa struct {
		Metadata k8sMeta `yaml:"metadata"`
	}
	decodeDoc(t, docs, "ServiceAccount/"+pod.ServiceAccountName, &sa)
	var role struct {
		Rules []struct {
			Resources []string `yaml:"resources"`
			Verbs     []string `yaml:"verbs"`
		} `yaml:"rules"`
	}
	decodeDoc(t, docs, "ClusterRole/treecast-node-reader", &role)
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Resources, []string{"nodes"}) || !slices.Equal(role.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("ClusterRole rules %+v: want get nodes only", role.Rules)
	}
	var binding struct {
		RoleRef struct {
			Name string `yaml:"name"`
		} `yaml:"roleRef"`
		Subjects []struct {
			Kind, Name, Namespace string
		} `yaml:"subjects"`
	}
	decodeDoc(t, docs, "ClusterRoleBinding/treecast-node-reader", &binding)
	if binding.RoleRef.Name != "treecast-node-reader" || len(binding.Subjects) != 1 || binding.Subjects[0].Name != pod.ServiceAccountName || binding.Subjects[0].Namespace != kust.Namespace {
		t.Errorf("ClusterRoleBinding %+v does not bind the role to service account %s/%s", binding, kust.Namespace, pod.ServiceAccountName)
	}

	// The agent's command: real flags; the ConfigMap's file, then the topology step's.
	if len(agent.Args) == 0 || agent.Args[0] != "agent" {
		t.Fatalf("agent args %v, want agent ...", agent.Args)
	}
	configs := checkAgentArgs(t, "agent args", agent.Args[1:])
	if len(configs) != 2 {
		t.Fatalf("agent --config %v, want the ConfigMap's file and the topology file", configs)
	}
	cfgVol := ""
	for _, vm := range agent.VolumeMounts {
		if vm.MountPath == configs[0] || filepath.Join(vm.MountPath, vm.SubPath) == configs[0] {
			cfgVol = vm.Name
		}
	}
	if cfgVol == "" || volumes[cfgVol].ConfigMap == nil {
		t.Fatalf("the first --config %s is not mounted from a ConfigMap", configs[0])
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	decodeDoc(t, docs, "ConfigMap/"+volumes[cfgVol].ConfigMap.Name, &cm)
	cmText, ok := cm.Data[filepath.Base(configs[0])]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", volumes[cfgVol].ConfigMap.Name, filepath.Base(configs[0]))
	}
	runMount := agentMounts["run"]
	if runMount == "" || topoMounts["run"] != runMount || volumes["run"].EmptyDir == nil || filepath.Dir(configs[1]) != runMount {
		t.Fatalf("the topology file %s is not in an emptyDir both the topology step and the agent mount (agent %q, step %q)", configs[1], runMount, topoMounts["run"])
	}

	// Every TREECAST_* variable names a flag (the TLS block too, once agents have its
	// flags; until then it must stay commented).
	dsText, err := os.ReadFile(filepath.Join(dir, "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var dsTLS k8sDaemonSet
	if err := yaml.Unmarshal([]byte(uncommentTLS(string(dsText))), &dsTLS); err != nil {
		t.Fatalf("daemonset.yaml with the TLS variables uncommented: %v", err)
	}
	flags := agentFlagNames()
	announced := map[string]bool{"tls-cert": true, "tls-key": true, "tls-ca": true, "gossip-key": true}
	checkEnv := func(c k8sContainer, future bool) {
		for _, e := range c.Env {
			key, ok := strings.CutPrefix(e.Name, envPrefix)
			if !ok {
				continue
			}
			name := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
			if !flags[name] && !(future && announced[name]) {
				t.Errorf("container %s: %s names no flag of treecast agent", c.Name, e.Name)
			}
		}
	}
	checkEnv(agent, false)
	checkEnv(dsTLS.Spec.Template.Spec.Containers[0], true)

	// The certificates come from the Secret: every TLS path lies in its mount.
	tlsMount := ""
	for name, v := range volumes {
		if v.Secret != nil && v.Secret.SecretName != "" {
			tlsMount = agentMounts[name]
		}
	}
	if tlsMount == "" {
		t.Fatalf("the agent mounts no Secret")
	}
	tlsEnv := podEnv(t, dsTLS.Spec.Template.Spec.Containers[0], map[string]string{"spec.nodeName": "node-a", "status.podIP": "10.1.2.3"})
	for _, name := range []string{"TREECAST_TLS_CERT", "TREECAST_TLS_KEY", "TREECAST_TLS_CA", "TREECAST_GOSSIP_KEY"} {
		v := tlsEnv[name]
		if filepath.Dir(v) != tlsMount {
			t.Errorf("%s=%q: not a file of the Secret mounted at %s", name, v, tlsMount)
		}
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "_", "-"))
		live := podEnv(t, agent, map[string]string{"spec.nodeName": "node-a", "status.podIP": "10.1.2.3"})
		if _, set := live[name]; flags[flag] && !set {
			t.Errorf("treecast agent has --%s now: uncomment %s in daemonset.yaml", flag, name)
		}
	}
	if !strings.Contains(tlsEnv["TREECAST_TLS_CERT"], "node-a") {
		t.Errorf("TREECAST_TLS_CERT=%q: want the node's own certificate (an agent's name is its certificate's)", tlsEnv["TREECAST_TLS_CERT"])
	}

	// The labels: the topology step turns the node's labels into the second config file.
	var zoneLabel, rackLabel string
	for _, e := range topo.Env {
		switch e.Name {
		case "ZONE_LABEL":
			zoneLabel = e.Value
		case "RACK_LABEL":
			rackLabel = e.Value
		}
	}
	if zoneLabel != "topology.kubernetes.io/zone" || rackLabel == "" {
		t.Errorf("topology step: ZONE_LABEL=%q RACK_LABEL=%q, want topology.kubernetes.io/zone and a rack label", zoneLabel, rackLabel)
	}
	for _, c := range []struct {
		node map[string]string
		want []any
	}{
		{map[string]string{zoneLabel: "zone-a", rackLabel: "r7", "kubernetes.io/os": "linux"}, []any{"dc=zone-a", "rack=r7"}},
		{map[string]string{zoneLabel: "zone-a"}, []any{"dc=zone-a"}},
		{map[string]string{}, []any{}},
	} {
		topoFile := runTopologyInit(t, topo, runMount, c.node)
		cmFile := writeConfig(t, cmText)
		// The agent as the pod runs it: its variables, its two files; --print-config
		// validates and shows the result.
		for k, v := range podEnv(t, agent, map[string]string{"spec.nodeName": "node-a", "status.podIP": "10.1.2.3"}) {
			t.Setenv(k, v)
		}
		got := printedConfig(t, "--config", cmFile, "--config", topoFile)
		if !slicesEqualAny(got["labels"], c.want) {
			b, _ := os.ReadFile(topoFile)
			t.Errorf("node labels %v: agent labels %v, want %v; topology file:\n%s", c.node, got["labels"], c.want, b)
		}
		if got["name"] != "node-a" {
			t.Errorf("agent name %v, want the node's name node-a", got["name"])
		}
		checkPodConfig(t, got, agent, agentMounts, docs, kust.Namespace)
	}
}

func slicesEqualAny(got any, want []any) bool {
	g, _ := got.([]any)
	return slices.Equal(g, want)
}

// checkPodConfig checks the agent's effective configuration in the pod against the pod's
// ports and mounts, the headless Service and the PodMonitor.
func checkPodConfig(t *testing.T, cfg map[string]any, agent k8sContainer, mounts map[string]string, docs map[string]*k8sDoc, ns string) {
	t.Helper()
	ports := map[string]int{} // name -> port
	protos := map[string]string{}
	for _, p := range agent.Ports {
		ports[p.Name] = p.ContainerPort
		protos[p.Name] = p.Protocol
	}
	for key, portName := range map[string]string{"listen": "grpc", "advertise": "grpc", "gossip": "gossip", "gossip-advertise": "gossip", "metrics": "http"} {
		if p := port(t, cfg[key]); p != ports[portName] {
			t.Errorf("%s %v: port %d, want the container port %s %d", key, cfg[key], p, portName, ports[portName])
		}
	}
	if ports["gossip-udp"] != ports["gossip"] || protos["gossip-udp"] != "UDP" {
		t.Errorf("gossip needs UDP and TCP on one port: %v %v", ports, protos)
	}
	for _, key := range []string{"advertise", "gossip-advertise"} {
		if h, _, _ := net.SplitHostPort(fmt.Sprint(cfg[key])); h != "10.1.2.3" {
			t.Errorf("%s %v: want the pod's IP", key, cfg[key])
		}
	}
	if cfg["data"] != mounts["data"] {
		t.Errorf("data %v is not the mounted data volume %s", cfg["data"], mounts["data"])
	}

	var svc k8sService
	decodeDoc(t, docs, "Service/treecast-gossip", &svc)
	if svc.Spec.ClusterIP != "None" || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q publishNotReadyAddresses %v, want a headless Service listing not-ready pods", svc.Metadata.Name, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
	}
	var ds k8sDaemonSet
	decodeDoc(t, docs, "DaemonSet/treecast-agent", &ds)
	if !subset(svc.Spec.Selector, ds.Spec.Template.Metadata.Labels) {
		t.Errorf("Service selector %v does not select the agents %v", svc.Spec.Selector, ds.Spec.Template.Metadata.Labels)
	}
	gossipPort := 0
	for _, p := range svc.Spec.Ports {
		if ports[p.TargetPort] != p.Port || protos[p.TargetPort] != p.Protocol {
			t.Errorf("Service port %s %d/%s -> %s: the container has %d/%s", p.Name, p.Port, p.Protocol, p.TargetPort, ports[p.TargetPort], protos[p.TargetPort])
		}
		if p.TargetPort == "gossip" {
			gossipPort = p.Port
		}
	}
	join, _ := cfg["join"].([]any)
	wantJoin := net.JoinHostPort(svc.Metadata.Name+"."+ns+".svc.cluster.local", strconv.Itoa(gossipPort))
	if len(join) != 1 || join[0] != wantJoin {
		t.Errorf("join %v, want the headless Service %s", cfg["join"], wantJoin)
	}

	var pm k8sPodMonitor
	decodeDoc(t, docs, "PodMonitor/treecast-agent", &pm)
	if !subset(pm.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels) {
		t.Errorf("PodMonitor selector %v does not select the agents", pm.Spec.Selector.MatchLabels)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" || ports[pm.Spec.PodMetricsEndpoints[0].Port] != port(t, cfg["metrics"]) {
		t.Errorf("PodMonitor endpoints %+v: want /metrics on the port of metrics %v", pm.Spec.PodMetricsEndpoints, cfg["metrics"])
	}
	// The HTTP address requires a client certificate of the cluster: the scrape is mutual TLS
	// with a certificate, its key and the CA from one Secret, and the agent's verified.
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		tc := ep.TLSConfig
		refs := []k8sKeyRef{tc.CA.Secret, tc.Cert.Secret, tc.KeySecret}
		if ep.Scheme != "https" || tc.Insecure || tc.ServerName == "" {
			t.Errorf("PodMonitor endpoint scheme %q, serverName %q, insecureSkipVerify %v: want https, a server name, verification", ep.Scheme, tc.ServerName, tc.Insecure)
		}
		for _, r := range refs {
			if r.Name == "" || r.Key == "" || r.Name != refs[0].Name {
				t.Errorf("PodMonitor TLS secret references %+v: want the CA, certificate and key of one Secret", refs)
				break
			}
		}
	}
}
