package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// service is the gRPC edge of the agent: it converts protocol messages to the engine's types
// and errors to status codes.
type service struct {
	pb.UnimplementedAgentServer
	a *Agent
}

var _ pb.AgentServer = (*service)(nil)

func registerService(s *grpc.Server, a *Agent) { pb.RegisterAgentServer(s, &service{a: a}) }

// statusErr maps the package's errors to gRPC status codes.
func statusErr(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrNoReceivers), errors.Is(err, ErrUnknownDigest), errors.Is(err, ErrUnknownMember), errors.Is(err, ErrUnknownTag):
		code = codes.NotFound
	case errors.Is(err, ErrOutsideData), errors.Is(err, ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, ErrBadHeader), errors.Is(err, ErrManifest), errors.Is(err, ErrPlan), errors.Is(err, ErrConfig), errors.Is(err, ErrBadRef):
		code = codes.InvalidArgument
	case errors.Is(err, ErrTruncated):
		code = codes.DataLoss
	case errors.Is(err, ErrPartialObject), errors.Is(err, ErrObjectChanged):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, ErrDiskFull), errors.Is(err, store.ErrQuota):
		code = codes.ResourceExhausted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// Push serves a parent's stream: header, holding answer, chunks, subtree results, done.
func (s *service) Push(stream pb.Agent_PushServer) error {
	first, err := recvWithin(stream.Recv, s.a.cfg.Limits.HeaderTimeout, "Push header")
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return statusErr(fmt.Errorf("%w: first message is not a header", ErrBadHeader))
	}
	if id, ok := identity.FromContext(stream.Context()); ok && h.GetParent() != id.Name {
		return status.Errorf(codes.PermissionDenied, "node: %s may not push as %q: a parent pushes under its own name", id.Name, h.GetParent())
	}
	if err := s.a.checkManifest(h.GetManifest()); err != nil {
		return statusErr(err)
	}
	man, err := transfer.ManifestFromProto(h.GetManifest())
	if err != nil {
		return statusErr(err)
	}
	hdr := transfer.Header{Transfer: h.GetTransferId(), Manifest: man, Plan: h.GetPlan(), Addrs: h.GetAddresses(), Child: h.GetNode(),
		Parent: h.GetParent(), Source: h.GetSource(), Rate: int64(min(h.GetRateLimit(), 1<<62)),
		Meta: transfer.Meta{Tag: h.GetTag(), Channel: h.GetChannel(), ChannelVersion: h.GetChannelVersion()}}
	if err := checkMeta(hdr.Meta); err != nil {
		return statusErr(err)
	}
	switch len(h.GetStripes()) {
	case 0:
		hdr.Stripe = 0
	case 1:
		hdr.Stripe = int(h.GetStripes()[0])
	default:
		return statusErr(fmt.Errorf("%w: %d stripes on one stream; open one stream per stripe", ErrBadHeader, len(h.GetStripes())))
	}
	d := &grpcDown{a: s.a, stream: stream, self: s.a.cfg.Name}
	err = s.a.engine.Receive(stream.Context(), hdr, d)
	if err != nil && !d.answered {
		// Refused before the holding answer (the object could not even begin, e.g. on a full
		// disk): the parent reads the reason from the stream's status.
		return statusErr(err)
	}
	if sendErr := stream.Send(&pb.PushResponse{Msg: &pb.PushResponse_Done{Done: &d.done}}); sendErr != nil && err == nil {
		err = sendErr
	}
	if err != nil {
		// The failure is in the results sent up; the stream itself ends cleanly.
		return nil
	}
	return statusErr(err)
}

// recvWithin receives the first message of a stream with recv, or fails with
// DeadlineExceeded (naming what was awaited) when none comes within d: an idle stream holds no
// goroutine of the agent for long. The receive goes on in its own goroutine, which ends with
// the stream.
func recvWithin[M any](recv func() (M, error), d time.Duration, what string) (M, error) {
	type res struct {
		m   M
		err error
	}
	c := make(chan res, 1)
	go func() {
		m, err := recv()
		c <- res{m, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-c:
		return r.m, r.err
	case <-t.C:
		var zero M
		return zero, status.Errorf(codes.DeadlineExceeded, "node: no %s within %v", what, d)
	}
}

// checkManifest applies the agent's limits to a manifest from the network.
func (a *Agent) checkManifest(m *pb.Manifest) error {
	l := a.cfg.Limits
	if n := len(m.GetChunkHashes()) + len(m.GetParity().GetParityHashes()); n > l.MaxChunks {
		return fmt.Errorf("%w: %d chunks, at most %d", ErrManifest, n, l.MaxChunks)
	}
	if m.GetSize() > uint64(l.MaxObject) {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrManifest, m.GetSize(), l.MaxObject)
	}
	return nil
}

// grpcDown adapts a server Push stream to the engine's downstream.
type grpcDown struct {
	a        *Agent
	stream   pb.Agent_PushServer
	done     pb.PushDone
	answered bool
	self     string // this agent's name: its own failure goes in PushDone.error
}

// RecvFrame receives through the agent's codec (codec.go): a chunk frame arrives in a pooled
// buffer, which the caller frees.
func (d *grpcDown) RecvFrame() (transfer.Frame, error) {
	for {
		d.a.hang()
		var in pushFrameIn
		if err := d.stream.RecvMsg(&in); err != nil {
			return transfer.Frame{}, err
		}
		if in.isFrame {
			return in.frame, nil // checked by the decoder
		}
		switch x := in.req.Msg.(type) {
		case *pb.PushRequest_Chunk:
			c := x.Chunk
			if c.GetIndex() > 1<<40 || c.GetOffset() > MaxChunkSize {
				return transfer.Frame{}, fmt.Errorf("%w: chunk index %d, offset %d", ErrBadHeader, c.GetIndex(), c.GetOffset())
			}
			return transfer.Frame{Index: int(c.GetIndex()), Offset: int(c.GetOffset()), Data: c.GetData(), More: c.GetMore()}, nil
		case *pb.PushRequest_End:
			if x.End.GetAborted() {
				return transfer.Frame{}, fmt.Errorf("node: parent aborted: %s", x.End.GetReason())
			}
			return transfer.Frame{}, io.EOF
		default:
			return transfer.Frame{}, fmt.Errorf("%w: unexpected %T after the header", ErrBadHeader, in.req.Msg)
		}
	}
}

// SetPlacer hands p to the stream's reader when the stream is on the push wire, which reads
// chunk frames into place (gRPC's own reader cannot: it ignores p).
func (d *grpcDown) SetPlacer(p *transfer.Placer) {
	if g, ok := d.stream.(*grpc.GenericServerStream[pb.PushRequest, pb.PushResponse]); ok {
		if rs, ok := g.ServerStream.(*rawServerStream); ok {
			rs.setPlacer(p)
		}
	}
}

func (d *grpcDown) SendHeld(b []byte) error {
	d.a.hang()
	n := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	d.answered = true
	return d.stream.Send(&pb.PushResponse{Msg: &pb.PushResponse_Holding{Holding: &pb.Holding{Bitmap: b, Count: uint64(n)}}})
}

func (d *grpcDown) SendUp(m transfer.UpMsg) error {
	d.a.hang()
	if m.Final && !m.OK && d.self != "" && m.Receiver == d.self {
		d.done.Error = m.Err
	}
	if m.Final {
		if m.OK {
			d.done.Verified++
		} else {
			d.done.Failed++
		}
	}
	return d.stream.Send(upToPB(m))
}

func upToPB(m transfer.UpMsg) *pb.PushResponse {
	if m.Final {
		st := pb.ReceiverStatus_RECEIVER_STATUS_FAILED
		if m.OK {
			st = pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED
		}
		return &pb.PushResponse{Msg: &pb.PushResponse_Result{Result: &pb.ReceiverResult{
			Receiver: m.Receiver, Status: st, Error: m.Err, Elapsed: durationpb.New(transfer.SecondsDur(m.Seconds)),
			BytesReceived: uint64(max(m.BytesIn, 0)), ChunksAlreadyHeld: uint64(max(m.AlreadyHeld, 0)), ChunksDuplicate: uint64(max(m.Duplicates, 0)),
			ChunksDecoded: uint64(max(m.Decoded, 0)), Hook: hookToPB(m.Hook),
		}}}
	}
	return &pb.PushResponse{Msg: &pb.PushResponse_Progress{Progress: &pb.ProgressEvent{Receivers: []*pb.ReceiverProgress{{
		Receiver: m.Receiver, ChunksHeld: uint64(m.Held), ChunksTotal: uint64(m.Total),
	}}}}}
}

// Fetch serves chunks of a complete object, or, with allow_partial, the verified chunks of an
// object being received.
func (s *service) Fetch(req *pb.FetchRequest, stream pb.Agent_FetchServer) error {
	a := s.a
	a.hang()
	if id, ok := identity.FromContext(stream.Context()); ok && id.Role != identity.RoleNode && req.GetAllowPartial() {
		return status.Errorf(codes.PermissionDenied, "node: %s (role %s) may read complete objects only", id.Name, id.Role)
	}
	man, partial, err := a.findManifest(req.GetDigest(), req.GetAllowPartial())
	if err != nil {
		return statusErr(err)
	}
	if err := stream.Send(&pb.FetchResponse{Msg: &pb.FetchResponse_Manifest{Manifest: man.Proto()}}); err != nil {
		return err
	}
	n := uint64(man.NumChunks())
	ranges := req.GetRanges()
	if len(ranges) == 0 {
		ranges = []*pb.ChunkRange{{Start: 0, End: n}}
	}
	if len(ranges) > a.cfg.Limits.MaxFetchRanges {
		return statusErr(fmt.Errorf("%w: %d ranges, at most %d", ErrBadHeader, len(ranges), a.cfg.Limits.MaxFetchRanges))
	}
	// Ranges may come in any order but may not overlap: a Fetch sends each chunk at most once.
	sorted := append([]*pb.ChunkRange(nil), ranges...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetStart() < sorted[j].GetStart() })
	for k, r := range sorted {
		if k > 0 && r.GetStart() < sorted[k-1].GetEnd() && r.GetStart() < r.GetEnd() {
			return statusErr(fmt.Errorf("%w: ranges [%d, %d) and [%d, %d) overlap", ErrBadHeader,
				sorted[k-1].GetStart(), sorted[k-1].GetEnd(), r.GetStart(), r.GetEnd()))
		}
	}
	for _, r := range ranges {
		if r.GetStart() > r.GetEnd() || r.GetEnd() > n {
			return statusErr(fmt.Errorf("%w: range [%d, %d) outside %d chunks", ErrBadHeader, r.GetStart(), r.GetEnd(), n))
		}
		for i := r.GetStart(); i < r.GetEnd(); i++ {
			data, err := a.engine.LocalChunk(man.Digest(), int(i))
			if err != nil {
				if partial {
					continue
				}
				return statusErr(err)
			}
			if err := transfer.WaitLimiter(stream.Context(), a.limiter, len(data)); err != nil {
				return statusErr(err)
			}
			if err := stream.Send(&pb.FetchResponse{Msg: &pb.FetchResponse_Chunk{Chunk: &pb.Chunk{Index: i, Data: data}}}); err != nil {
				return err
			}
			a.m.engine.BytesOut.Add(float64(len(data)))
		}
	}
	return nil
}

// findManifest returns the manifest of a complete object, or with partial of one in transfer.
func (a *Agent) findManifest(digest string, partial bool) (transfer.Manifest, bool, error) {
	if m, err := a.store.Stat(digest); err == nil {
		return m, false, nil
	}
	if partial {
		if m, ok := a.engine.Receiving(digest); ok {
			return m, true, nil
		}
	}
	return nil, false, fmt.Errorf("%w: %s", ErrUnknownDigest, digest)
}

// Status describes the agent.
func (s *service) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	st, err := s.a.Status()
	if err != nil {
		return nil, statusErr(err)
	}
	out := &pb.StatusResponse{Node: st.Name}
	for _, o := range st.Objects {
		out.Objects = append(out.Objects, &pb.ObjectInfo{Digest: o.Digest, Size: uint64(o.Size), ChunksTotal: uint64(o.Chunks),
			ChunksHeld: uint64(o.Held), Complete: o.Complete})
	}
	for _, t := range st.Transfers {
		ti := &pb.TransferInfo{TransferId: t.ID, Digest: t.Digest, ChunksHeld: uint64(t.Held), ChunksTotal: uint64(t.Total),
			Parents: t.Parents, Children: t.Children, Started: timestamppb.New(t.Started)}
		switch t.Role {
		case "source":
			ti.Role = pb.Role_ROLE_SOURCE
		case "relay":
			ti.Role = pb.Role_ROLE_RELAY
		default:
			ti.Role = pb.Role_ROLE_RECEIVER
		}
		out.Transfers = append(out.Transfers, ti)
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, memberToPB(m))
	}
	for _, ch := range st.ChannelTable {
		ci := &pb.ChannelInfo{Name: ch.Name, Subscribed: ch.Subscribed, Digest: ch.Latest.Digest, Version: ch.Latest.Version,
			Size: uint64(max(ch.Latest.Size, 0)), Origin: ch.Latest.Origin, HeldDigest: ch.Held.Digest, HeldVersion: ch.Held.Version,
			CatchupError: ch.CatchupErr}
		if !ch.Learned.IsZero() {
			ci.Updated = timestamppb.New(ch.Learned)
		}
		out.Channels = append(out.Channels, ci)
	}
	return out, nil
}

func memberToPB(m Member) *pb.Member {
	st := pb.MemberState_MEMBER_STATE_UNSPECIFIED
	switch m.State {
	case "alive":
		st = pb.MemberState_MEMBER_STATE_ALIVE
	case "suspect":
		st = pb.MemberState_MEMBER_STATE_SUSPECT
	case "dead":
		st = pb.MemberState_MEMBER_STATE_DEAD
	case "left":
		st = pb.MemberState_MEMBER_STATE_LEFT
	}
	return &pb.Member{Name: m.Name, GrpcAddr: m.Addr, GossipAddr: m.GossipAddr, Labels: m.Labels, Channels: m.Channels, State: st}
}

func resultToPB(r Result) *pb.ReceiverResult {
	st := pb.ReceiverStatus_RECEIVER_STATUS_FAILED
	if r.OK {
		st = pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED
	}
	return &pb.ReceiverResult{Receiver: r.Receiver, Status: st, Error: r.Err, Elapsed: durationpb.New(r.Elapsed), Via: r.Via,
		BytesReceived: uint64(max(r.BytesIn, 0)), ChunksAlreadyHeld: uint64(max(r.AlreadyHeld, 0)), ChunksDuplicate: uint64(max(r.Duplicates, 0)),
		ChunksDecoded: uint64(max(r.Decoded, 0)), Hook: hookToPB(r.Hook)}
}

// targetString turns a protocol Target into the target syntax of [Agent.Push].
func targetString(t *pb.Target) (string, error) {
	switch k := t.GetKind().(type) {
	case *pb.Target_Names:
		names := append([]string(nil), k.Names.GetNames()...)
		sort.Strings(names)
		if len(names) == 0 {
			return "", fmt.Errorf("%w: empty name list", ErrNoReceivers)
		}
		return joinNames(names), nil
	case *pb.Target_Selector:
		return k.Selector, nil
	case *pb.Target_Channel:
		return "channel:" + k.Channel, nil
	case *pb.Target_All:
		return "all", nil
	}
	return "", fmt.Errorf("%w: no target", ErrNoReceivers)
}

func joinNames(n []string) string {
	s := ""
	for i, x := range n {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

var _ transfer.Downstream = (*grpcDown)(nil)
