package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBenchRelay runs `treecast bench relay` for real: three agent processes (this test
// binary as the treecast command), a push down the chain, and raw TCP.
// With --tls the agents run mutual TLS and an encrypted gossip key.
func TestBenchRelay(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	t.Setenv("TREECAST_TEST_MAIN", "1") // the agents this test binary spawns run main
	for _, tls := range []bool{false, true} {
		args := []string{"bench", "relay", "--size", "8MiB", "--chunk", "1MiB", "--json"}
		prof := ""
		if tls {
			args = append(args, "--tls")
		} else { // and each agent's CPU profile
			prof = filepath.Join(t.TempDir(), "profiles")
			args = append(args, "--cpuprofile", prof)
		}
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			testBenchRelay(t, args)
			if prof == "" {
				return
			}
			for _, name := range []string{"source", "relay", "leaf"} {
				b, err := os.ReadFile(filepath.Join(prof, name+".pprof"))
				if err != nil {
					t.Fatal(err)
				}
				// A profile is a gzipped protocol buffer, written whole when the agent stops.
				if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
					t.Errorf("%s.pprof: %d bytes, not a CPU profile", name, len(b))
				}
			}
		})
	}
}

func testBenchRelay(t *testing.T, args []string) {
	out, stderr, err := run(t, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res benchRelayResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	for _, key := range []string{`"raw_tcp_mbps"`, `"relay_mbps"`, `"ratio"`, `"cpu_s_per_gib"`, `"source"`, `"relay"`, `"leaf"`, `"max_rss_mib"`} {
		if !strings.Contains(out, key) {
			t.Errorf("JSON lacks %s: %s", key, out)
		}
	}
	if res.RawTCPMBps <= 0 || res.RelayMBps <= 0 || math.Abs(res.Ratio-res.RelayMBps/res.RawTCPMBps) > 1e-9 {
		t.Fatalf("throughputs: %+v", res)
	}
	if res.CPU.Source < 0 || res.CPU.Relay < 0 || res.CPU.Leaf < 0 || res.CPU.Source+res.CPU.Relay+res.CPU.Leaf <= 0 {
		t.Fatalf("CPU per GiB: %+v", res.CPU)
	}
	if res.MaxRSSMiB < 1 || res.MaxRSSMiB > 4096 {
		t.Fatalf("peak RSS %v MiB", res.MaxRSSMiB)
	}
	if res.RawCopy.MBps <= 0 {
		t.Fatalf("raw TCP through a copying relay: %+v", res.RawCopy)
	}
	// The copying relay's thread read and wrote every byte: it cannot have cost nothing.
	if cpu := res.RawCopy.CPU; runtime.GOOS == "linux" && (cpu == nil || cpu.Relay <= 0 || cpu.Sink <= 0) {
		t.Fatalf("CPU per GiB of the copying relay and its sink: %+v", cpu)
	}
}

func TestBenchRelayFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "relay", "--size", "lots"},
		{"bench", "relay", "--chunk", "128MiB"},
	} {
		_, _, err := run(t, args...)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
}
