package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/treecast/treecast/node/identity"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// defaultAgent is the agent address client commands use when --agent is not given: the
// TREECAST_AGENT environment variable, else 127.0.0.1:7700.
func defaultAgent() string {
	if a := os.Getenv("TREECAST_AGENT"); a != "" {
		return a
	}
	return "127.0.0.1:7700"
}

// agentFlag registers --agent and the TLS flags of a client command.
func agentFlag(c *cobra.Command, addr *string) {
	c.Flags().StringVar(addr, "agent", defaultAgent(), "gRPC address of the agent to talk to (env TREECAST_AGENT)")
	addTLSFlags(c, identity.RoleOperator)
}

// dialAgent opens a client connection to an agent, secured as c's TLS flags say. The
// connection is lazy: network errors show on the first call.
func dialAgent(c *cobra.Command, addr string) (pb.AgentClient, func(), error) {
	creds, err := clientCreds(c)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(80<<20)))
	if err != nil {
		return nil, nil, fmt.Errorf("agent %s: %w", addr, err)
	}
	return pb.NewAgentClient(conn), func() { conn.Close() }, nil
}

// parseTarget turns the --to syntax into a protocol target: "all", "channel:NAME", a label
// selector ("rack=r1", "pod=p2,dc=east") or node names ("a,b,c").
func parseTarget(s string) (*pb.Target, error) {
	switch {
	case s == "":
		return nil, fmt.Errorf("--to is required: node names, a label selector such as rack=r1, channel:NAME or all")
	case s == "all":
		return &pb.Target{Kind: &pb.Target_All{All: true}}, nil
	case strings.HasPrefix(s, "channel:"):
		name := strings.TrimPrefix(s, "channel:")
		if name == "" {
			return nil, fmt.Errorf("target %q: empty channel name", s)
		}
		return &pb.Target{Kind: &pb.Target_Channel{Channel: name}}, nil
	case strings.Contains(s, "="):
		return &pb.Target{Kind: &pb.Target_Selector{Selector: s}}, nil
	}
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return &pb.Target{Kind: &pb.Target_Names{Names: &pb.NodeNames{Names: names}}}, nil
}

// parseSize parses a byte size: a whole number with an optional unit, binary (KiB, MiB,
// GiB) or decimal (K or KB, M or MB, G or GB).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive whole number with an optional unit such as 4MiB or 1GiB", s)
	}
	return v * mult, nil
}

// objectRequest fills the object of a Submit request: a digest as is, a path made absolute.
func objectRequest(req *pb.SubmitRequest, arg string) error {
	if strings.HasPrefix(arg, "sha256:") {
		req.Object = &pb.SubmitRequest_Digest{Digest: arg}
		return nil
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return err
	}
	req.Object = &pb.SubmitRequest_Path{Path: abs}
	return nil
}
