package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/treecast/treecast/node/identity"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig("a1", "/tmp/x")
	ok.Insecure = true
	certs := t.TempDir()
	if err := identity.InitCA(certs); err != nil {
		t.Fatal(err)
	}
	load := func(name string, role identity.Role) *identity.Source {
		if err := identity.Issue(certs, name, role, nil); err != nil {
			t.Fatal(err)
		}
		cert, key := identity.Files(certs, name)
		ca, _ := identity.CAFiles(certs)
		s, err := identity.Load(cert, key, ca)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a1, op, other := load("a1", identity.RoleNode), load("alice", identity.RoleOperator), load("b2", identity.RoleNode)
	key := make([]byte, 32)
	secure := func(src *identity.Source, keys ...[]byte) func(c *Config) {
		return func(c *Config) { c.Insecure, c.TLS, c.GossipKeys = false, src, keys }
	}
	cases := []struct {
		name string
		edit func(c *Config)
		want string // "" for valid; else a substring of the error naming the value
	}{
		{"insecure", func(*Config) {}, ""},
		{"secure", secure(a1, key), ""},
		{"no TLS", secure(nil), "no TLS certificate"},
		{"no gossip key", secure(a1), "no gossip key"},
		{"another's certificate", secure(other, key), `name "b2" of the TLS certificate`},
		{"operator certificate", func(c *Config) { secure(op, key)(c); c.Name = "alice" }, "role operator"},
		{"short gossip key", secure(a1, key[:7]), "gossip key of 7 bytes"},
		{"negative limit", func(c *Config) { c.Limits.MaxFanout = -1 }, "max fanout"},
		{"publishers", func(c *Config) { c.Publishers = map[string][]string{"web": nil} }, `"web" lists nobody`},
		{"no name", func(c *Config) { c.Name = "" }, "name is empty"},
		{"name with comma", func(c *Config) { c.Name = "a,b" }, `"a,b"`},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"bad listen", func(c *Config) { c.ListenAddr = "localhost" }, `listen address "localhost"`},
		{"bad gossip port", func(c *Config) { c.GossipAddr = "127.0.0.1:99999" }, `"127.0.0.1:99999"`},
		{"bad join", func(c *Config) { c.Join = []string{"10.0.0.1"} }, `join address "10.0.0.1"`},
		{"bad metrics", func(c *Config) { c.MetricsAddr = ":x" }, `metrics address ":x"`},
		{"profiling without HTTP", func(c *Config) { c.Profiling = true }, "profiling is served on the HTTP address"},
		{"profiling", func(c *Config) { c.Profiling, c.MetricsAddr = true, "127.0.0.1:0" }, ""},
		{"bad label", func(c *Config) { c.Labels = map[string]string{"rack": ""} }, `label "rack"=""`},
		{"bad channel", func(c *Config) { c.Channels = []string{"a b"} }, `channel "a b"`},
		{"negative rate", func(c *Config) { c.RateLimit = -1 }, "rate limit -1"},
		{"huge chunk", func(c *Config) { c.ChunkSize = MaxChunkSize + 1 }, "chunk size"},
		{"negative queue", func(c *Config) { c.QueueChunks = -2 }, "queue chunks -2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrConfig naming %s", err, tc.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"1000", 1000, false}, {"1G", 1e9, false}, {"500M", 500e6, false},
		{"64KiB", 64 << 10, false}, {"1.5Gi", 3 << 29, false}, {"10MB/s", 10e6, false}, {"2k", 2000, false},
		{"fast", 0, true}, {"-1M", 0, true}, {"1X", 0, true},
	}
	for _, c := range cases {
		got, err := ParseRate(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}
