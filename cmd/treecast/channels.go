package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// memberStatusTimeout bounds the Status call to each member that ls makes.
const memberStatusTimeout = 3 * time.Second

// memberStatuses asks every alive member the agent lists (itself included, from st) for its
// status, concurrently, each call bounded by memberStatusTimeout. A member that does not
// answer maps to its error. Cost: one Status RPC per alive member.
func memberStatuses(c *cobra.Command, st *pb.StatusResponse) map[string]memberStatus {
	ctx := c.Context()
	out := map[string]memberStatus{st.GetNode(): {st: st}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range st.GetMembers() {
		if m.GetName() == st.GetNode() || m.GetState() != pb.MemberState_MEMBER_STATE_ALIVE {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms memberStatus
			client, done, err := dialAgent(c, m.GetGrpcAddr())
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, memberStatusTimeout)
				ms.st, err = client.Status(cctx, &pb.StatusRequest{})
				cancel()
				done()
			}
			ms.err = err
			mu.Lock()
			out[m.GetName()] = ms
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

type memberStatus struct {
	st  *pb.StatusResponse
	err error
}

// writeChannels prints, for each channel the agent knows, its latest version as the agent's
// table has it, then which version each member holds: every subscriber, and any other member
// that holds a version.
func writeChannels(_ context.Context, w io.Writer, st *pb.StatusResponse, members map[string]memberStatus) {
	fmt.Fprintf(w, "\nCHANNEL\tVERSION\tDIGEST\tSIZE\tORIGIN\n")
	for _, ch := range st.GetChannels() {
		ver := "-"
		if ch.GetVersion() != 0 {
			ver = fmt.Sprint(ch.GetVersion())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", ch.GetName(), ver, orDash(ch.GetDigest()), ch.GetSize(), orDash(ch.GetOrigin()))
	}
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nCHANNEL\tNODE\tSUBSCRIBED\tHOLDS\n")
	for _, ch := range st.GetChannels() {
		for _, n := range names {
			ms := members[n]
			if ms.err != nil {
				fmt.Fprintf(w, "%s\t%s\t?\tunreachable: %v\n", ch.GetName(), n, ms.err)
				continue
			}
			var mine *pb.ChannelInfo
			for _, c := range ms.st.GetChannels() {
				if c.GetName() == ch.GetName() {
					mine = c
				}
			}
			if mine == nil || !mine.GetSubscribed() && mine.GetHeldDigest() == "" {
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ch.GetName(), n, yesNo(mine.GetSubscribed()), holding(ch, mine))
		}
	}
}

// holding describes the version a member holds against the latest the asking agent knows.
func holding(latest, mine *pb.ChannelInfo) string {
	var s string
	switch {
	case mine.GetHeldDigest() == "":
		s = "none"
	case latest.GetDigest() != "" && mine.GetHeldDigest() == latest.GetDigest():
		s = "latest"
	case mine.GetHeldVersion() > latest.GetVersion():
		s = fmt.Sprintf("%d %s (newer)", mine.GetHeldVersion(), mine.GetHeldDigest())
	default:
		s = fmt.Sprintf("%d %s (older)", mine.GetHeldVersion(), mine.GetHeldDigest())
	}
	if e := mine.GetCatchupError(); e != "" {
		s += "; catch-up failing: " + e
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
