package node

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/treecast/treecast/node/channel"
	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The gRPC edge of names and lifecycle: Pull, Tags, Remove, DeleteChannel.

// Pull makes the agent hold an object, fetching it from the cluster if needed.
func (s *service) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	r, err := s.a.Pull(ctx, req.GetRef())
	if err != nil {
		return nil, statusErr(err)
	}
	return &pb.PullResponse{Digest: r.Digest, Size: uint64(max(r.Size, 0)), Holder: r.Holder,
		BytesFetched: uint64(max(r.BytesFetched, 0)), ChunksAlreadyHeld: uint64(max(r.AlreadyHeld, 0))}, nil
}

// Tags lists the agent's tags, or the one asked for (NotFound when unknown).
func (s *service) Tags(_ context.Context, req *pb.TagsRequest) (*pb.TagsResponse, error) {
	if t := req.GetTag(); t != "" {
		if _, err := store.ParseTag(t); err != nil {
			return nil, statusErr(fmt.Errorf("%w: %w", ErrBadRef, err))
		}
	}
	out := &pb.TagsResponse{}
	for _, t := range s.a.Tags() {
		if req.GetTag() != "" && t.Tag != req.GetTag() {
			continue
		}
		out.Tags = append(out.Tags, &pb.TagInfo{Tag: t.Tag, Digest: t.Digest, Created: timestamppb.New(t.Created), Held: t.Held})
	}
	if req.GetTag() != "" && len(out.Tags) == 0 {
		return nil, statusErr(fmt.Errorf("%w: %s", ErrUnknownTag, req.GetTag()))
	}
	return out, nil
}

// Remove deletes an object here, or on every agent of a target (operators only).
func (s *service) Remove(ctx context.Context, req *pb.RemoveRequest) (*pb.RemoveResponse, error) {
	role := ""
	if id, ok := identity.FromContext(ctx); ok {
		role = string(id.Role)
	}
	return s.a.removeRPC(ctx, req, role)
}

// DeleteChannel deletes a channel cluster-wide, for the calling operator.
func (s *service) DeleteChannel(ctx context.Context, req *pb.DeleteChannelRequest) (*pb.DeleteChannelResponse, error) {
	by := ""
	if id, ok := identity.FromContext(ctx); ok {
		by = id.Name
	}
	v, err := s.a.DeleteChannel(req.GetName(), by)
	if err != nil {
		return nil, statusErr(err)
	}
	return &pb.DeleteChannelResponse{Version: v.Version}, nil
}

// checkMeta validates what a Push header asks a receiver to record.
func checkMeta(m transfer.Meta) error {
	if m.Tag != "" {
		if _, err := store.ParseTag(m.Tag); err != nil {
			return fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
	}
	if m.Channel != "" && !channel.ValidName(m.Channel) {
		return fmt.Errorf("%w: channel %q", ErrBadHeader, m.Channel)
	}
	return nil
}

func hookToPB(h *transfer.Hook) *pb.HookResult {
	if h == nil {
		return nil
	}
	return &pb.HookResult{ExitCode: int32(h.Exit), Error: h.Err}
}

func hookFromPB(h *pb.HookResult) *transfer.Hook {
	if h == nil {
		return nil
	}
	e := h.GetError()
	if len(e) > 4096 {
		e = e[:4096]
	}
	return &transfer.Hook{Exit: int(h.GetExitCode()), Err: e}
}
