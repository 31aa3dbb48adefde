package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// TestReportOfflineAndHeld renders a report with an offline member and a receiver that held
// the object already, and checks the exit status each outcome gives.
func TestReportOfflineAndHeld(t *testing.T) {
	verified := func(name string, held uint64, in uint64) *pb.ReceiverResult {
		return &pb.ReceiverResult{Receiver: name, Status: pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED, Elapsed: durationpb.New(time.Millisecond),
			ChunksAlreadyHeld: held, BytesReceived: in}
	}
	offline := &pb.ReceiverResult{Receiver: "c", Status: pb.ReceiverStatus_RECEIVER_STATUS_OFFLINE, Error: "offline: gossip does not see this member alive"}
	rep := &pb.Report{Digest: "sha256:ab", Elapsed: durationpb.New(time.Second), Receivers: []*pb.ReceiverResult{
		verified("a", 3, 0), verified("b", 0, 2e6), offline}}
	var buf bytes.Buffer
	writeReport(&buf, rep, 2e6)
	out := buf.String()
	for _, want := range []string{"a         verified  0.00     held", "b         verified  0.00     2000.0", "c         offline   0.00     -       offline: gossip", "2 verified, 0 failed, 1 offline"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "27") {
		t.Errorf("a nonsense rate for a receiver that held the object:\n%s", out)
	}
	c := &cobra.Command{}
	c.SetOut(&bytes.Buffer{})
	for _, tc := range []struct {
		name string
		recv []*pb.ReceiverResult
		code int
	}{
		{"all verified", []*pb.ReceiverResult{verified("a", 0, 1)}, 0},
		{"offline", []*pb.ReceiverResult{verified("a", 0, 1), offline}, 3},
		{"failed and offline", []*pb.ReceiverResult{{Receiver: "a", Status: pb.ReceiverStatus_RECEIVER_STATUS_FAILED}, offline}, 1},
		{"only offline", []*pb.ReceiverResult{offline}, 3},
		{"none", nil, 1},
	} {
		err := finishPush(c, &pb.Report{Receivers: tc.recv}, nil, false)
		if exitCode(err) != tc.code {
			t.Errorf("%s: exit %d (%v), want %d", tc.name, exitCode(err), err, tc.code)
		}
	}
}
