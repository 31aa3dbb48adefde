package node_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/nodetest"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// TestSealedManifests: over real gRPC and TLS, a secured cluster's source cuts BLAKE3 chunks
// and seals the manifest with its node key, and every receiver, relay and leaf, ends with the
// object byte-exact and the sealed manifest (so it can push the object on); SHA256Chunks on
// the source, or an insecure cluster, keeps SHA-256 chunks with the chain.
func TestSealedManifests(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     nodetest.Options
		wantAlg  pb.ChunkHash
		wantSeal bool
	}{
		{"secure", nodetest.Options{}, pb.ChunkHash_CHUNK_HASH_BLAKE3, true},
		{"secure, sha256 chunks", nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.SHA256Chunks = true }}, pb.ChunkHash_CHUNK_HASH_SHA256, false},
		{"insecure", nodetest.Options{Insecure: true}, pb.ChunkHash_CHUNK_HASH_SHA256, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := nodetest.StartCluster(t, 3, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			data := randomBytes(300_000, 31)
			rep, err := c.Agents[0].Push(ctx, node.Object{Path: mustWrite(t, c, 0, "obj", data)}, "a01,a02", node.PushOptions{Strategy: "chain", ChunkSize: 16 << 10})
			if err != nil || rep.Failed() != 0 {
				t.Fatalf("push: %v %+v", err, rep.Receivers)
			}
			for _, a := range c.Agents {
				got, err := c.Read(a.Name(), rep.Digest)
				if err != nil || string(got) != string(data) {
					t.Fatalf("%s: copy differs (%v)", a.Name(), err)
				}
				m := fetchManifest(t, ctx, c, a, rep.Digest)
				if m.GetChunkHash() != tc.wantAlg || (m.GetSeal() != nil) != tc.wantSeal || (len(m.GetChain()) > 0) == tc.wantSeal {
					t.Fatalf("%s: manifest %s, seal %v, %d chaining values", a.Name(), m.GetChunkHash(), m.GetSeal() != nil, len(m.GetChain()))
				}
				if !tc.wantSeal {
					continue
				}
				cert, err := x509.ParseCertificate(m.GetSeal().GetCert())
				if err != nil {
					t.Fatal(err)
				}
				if id, err := identity.FromCert(cert); err != nil || id.Name != "a00" || id.Role != identity.RoleNode {
					t.Fatalf("%s: sealed by %+v (%v), want node a00", a.Name(), id, err)
				}
			}
		})
	}
}

// fetchManifest asks agent a (as an operator, or in plaintext) for the manifest of digest.
func fetchManifest(t *testing.T, ctx context.Context, c *nodetest.Cluster, a *node.Agent, digest string) *pb.Manifest {
	t.Helper()
	conn, err := c.Dial(a.Addr(), "op", identity.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := pb.NewAgentClient(conn).Fetch(ctx, &pb.FetchRequest{Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.Recv()
	if err != nil || msg.GetManifest() == nil {
		t.Fatalf("fetch %s from %s: %v, %v", digest, a.Name(), msg, err)
	}
	return msg.GetManifest()
}
