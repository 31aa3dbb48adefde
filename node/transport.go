package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"

	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// The client side of the agent's gRPC edge: the engine's transfer.Transport over the Push and
// Fetch RPCs, by member name (resolved by gossip; a Push stream's child that gossip has not
// brought yet is dialled at the address its push's header gave, else awaited up to
// Config.DialTimeout).

// grpcUp adapts a client Push stream to the engine's upstream.
type grpcUp struct {
	stream  pb.Agent_PushClient
	pending []transfer.UpMsg // progress entries of one ProgressEvent not yet returned
}

// Unacked returns the bytes sent that the child's end has not acknowledged, when the stream
// is a raw one over a socket that tells (transfer.Unacked); gRPC's streams do not.
func (u *grpcUp) Unacked() (int, bool) {
	if g, ok := u.stream.(*grpc.GenericClientStream[pb.PushRequest, pb.PushResponse]); ok {
		if r, ok := g.ClientStream.(*rawClientStream); ok {
			return r.Unacked()
		}
	}
	return 0, false
}

type grpcTransport struct{ a *Agent }

// OpenPush opens a Push stream to the member named child: at gossip's address for it, else at
// hint (the address the push's source knew, when it is host:port), else at the address gossip
// brings within Config.DialTimeout. With TLS the handshake proves the child's name wherever
// it was dialled.
func (g grpcTransport) OpenPush(ctx context.Context, child, hint string) (transfer.Upstream, error) {
	addr, err := g.a.members.Addr(child)
	if err != nil {
		if _, _, herr := net.SplitHostPort(hint); hint != "" && herr == nil {
			addr, err = hint, nil
			g.a.m.dialHints.Inc()
		} else {
			addr, err = g.a.members.WaitAddr(ctx, child, g.a.cfg.DialTimeout)
		}
	}
	if err != nil {
		return nil, err
	}
	if !g.a.cfg.PushOverGRPC {
		st, err := g.a.openRawPush(ctx, child, addr)
		if err == nil {
			g.a.m.pushWire.WithLabelValues("raw").Inc()
			return &grpcUp{stream: st}, nil
		}
		if !errors.Is(err, errNoRaw) {
			return nil, err
		}
		g.a.log.Debug("push stream over gRPC", "child", child, "why", err)
	}
	c, err := g.a.conn(child, addr)
	if err != nil {
		return nil, err
	}
	st, err := pb.NewAgentClient(c).Push(ctx)
	if err != nil {
		return nil, err
	}
	g.a.m.pushWire.WithLabelValues("grpc").Inc()
	return &grpcUp{stream: st}, nil
}

// Warm opens (TCP, TLS, HTTP/2) the gRPC connections to the named members gossip knows, in
// the background; an unknown member or a failed dial is left to the stream that needs it.
// With the raw wire it does nothing: every Push stream dials a connection of its own, and a
// warmed gRPC connection would only cost each child a TLS handshake while streams open.
func (g grpcTransport) Warm(_ context.Context, names []string) {
	if !g.a.cfg.PushOverGRPC {
		return
	}
	for _, name := range names {
		addr, err := g.a.members.Addr(name)
		if err != nil {
			continue
		}
		if c, err := g.a.conn(name, addr); err == nil {
			c.Connect()
		}
	}
}

func (u *grpcUp) SendHeader(h transfer.Header) error {
	return u.stream.Send(&pb.PushRequest{Msg: &pb.PushRequest_Header{Header: &pb.PushHeader{
		TransferId: h.Transfer, Manifest: h.Manifest.Proto(), Plan: h.Plan, Addresses: h.Addrs, Node: h.Child,
		Source: h.Source, Parent: h.Parent, Stripes: []uint32{uint32(h.Stripe)}, RateLimit: uint64(max(h.Rate, 0)),
		Tag: h.Meta.Tag, Channel: h.Meta.Channel, ChannelVersion: h.Meta.ChannelVersion,
	}}})
}

func (u *grpcUp) RecvHeld() ([]byte, error) {
	m, err := u.stream.Recv()
	if err != nil {
		return nil, err
	}
	h := m.GetHolding()
	if h == nil {
		return nil, fmt.Errorf("%w: child answered %T, not a holding", ErrBadHeader, m.Msg)
	}
	return h.GetBitmap(), nil
}

// SendFrame sends a chunk frame through the agent's codec (codec.go): its bytes go to gRPC
// without a copy, and a pooled frame buffer stays referenced until they are written.
func (u *grpcUp) SendFrame(f transfer.Frame) error {
	return u.stream.SendMsg(&pushFrameOut{f: f})
}

func (u *grpcUp) CloseSend() error {
	if err := u.stream.Send(&pb.PushRequest{Msg: &pb.PushRequest_End{End: &pb.PushEnd{}}}); err != nil {
		return err
	}
	return u.stream.CloseSend()
}

func (u *grpcUp) RecvUp() (transfer.UpMsg, error) {
	for len(u.pending) == 0 {
		m, err := u.stream.Recv()
		if err != nil {
			return transfer.UpMsg{}, err
		}
		switch x := m.Msg.(type) {
		case *pb.PushResponse_Progress:
			for _, r := range x.Progress.GetReceivers() {
				u.pending = append(u.pending, transfer.UpMsg{Receiver: r.GetReceiver(), Held: int(r.GetChunksHeld()), Total: int(r.GetChunksTotal())})
			}
		case *pb.PushResponse_Result:
			r := x.Result
			return transfer.UpMsg{Receiver: r.GetReceiver(), Final: true, OK: r.GetStatus() == pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED,
				Err: r.GetError(), Seconds: r.GetElapsed().AsDuration().Seconds(), BytesIn: int64(min(r.GetBytesReceived(), 1<<62)),
				AlreadyHeld: int(min(r.GetChunksAlreadyHeld(), 1<<40)), Duplicates: int(min(r.GetChunksDuplicate(), 1<<40)),
				Decoded: int(min(r.GetChunksDecoded(), 1<<40)), Hook: hookFromPB(r.GetHook())}, nil
		case *pb.PushResponse_Done:
			// Drain to the end of the stream so its status is seen.
			if _, err := u.stream.Recv(); err != nil && !errors.Is(err, io.EOF) {
				return transfer.UpMsg{}, err
			}
			return transfer.UpMsg{}, io.EOF
		default:
			return transfer.UpMsg{}, fmt.Errorf("%w: unexpected %T from child", ErrBadHeader, m.Msg)
		}
	}
	m := u.pending[0]
	u.pending = u.pending[1:]
	return m, nil
}

// FetchChunk fetches chunk i of digest from the member named from: one Fetch RPC that allows
// a partial object (a relay serves its children's re-fetches before it completes).
func (g grpcTransport) FetchChunk(ctx context.Context, from, digest string, i int) ([]byte, error) {
	addr, err := g.a.members.WaitAddr(ctx, from, g.a.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	c, err := g.a.conn(from, addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := pb.NewAgentClient(c).Fetch(ctx, &pb.FetchRequest{Digest: digest, AllowPartial: true,
		Ranges: []*pb.ChunkRange{{Start: uint64(i), End: uint64(i + 1)}}})
	if err != nil {
		return nil, err
	}
	if _, err := st.Recv(); err != nil { // the manifest
		return nil, err
	}
	m, err := st.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s does not hold chunk %d of %s", ErrUnknownDigest, addr, i, digest)
		}
		return nil, err
	}
	ch := m.GetChunk()
	if ch == nil || ch.GetIndex() != uint64(i) {
		return nil, fmt.Errorf("%w: fetch of chunk %d answered %v", ErrBadHeader, i, m.Msg)
	}
	return ch.GetData(), nil
}

var (
	_ transfer.Transport = grpcTransport{}
	_ transfer.Upstream  = (*grpcUp)(nil)
)
