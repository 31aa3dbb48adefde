package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/treecast/treecast/node/identity"
	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// MinChunkSize is the smallest chunk size a push may ask for.
const MinChunkSize = 4 << 10

// maxFollow bounds SubmitRequest.follow.
const maxFollow = 30 * 24 * time.Hour

// pushOptionsFromPB converts the protocol's options.
func pushOptionsFromPB(o *pb.PushOptions) (PushOptions, error) {
	opts := PushOptions{Fanout: int(o.GetFanout()), Stripes: int(o.GetStripes()), Parity: int(o.GetParity()), ChunkSize: int(o.GetChunkSize()),
		RateLimit: int64(min(o.GetRateLimit(), 1<<62))}
	switch o.GetStrategy() {
	case pb.Strategy_STRATEGY_UNSPECIFIED, pb.Strategy_STRATEGY_AUTO:
		opts.Strategy = "auto"
	case pb.Strategy_STRATEGY_CHAIN:
		opts.Strategy = "chain"
	case pb.Strategy_STRATEGY_TREE:
		opts.Strategy = "tree"
	case pb.Strategy_STRATEGY_FOREST:
		opts.Strategy = "forest"
	case pb.Strategy_STRATEGY_UNICAST:
		opts.Strategy = "unicast"
	}
	if c := opts.ChunkSize; c != 0 && (c < MinChunkSize || c > MaxChunkSize) {
		return opts, fmt.Errorf("%w: chunk size %d outside [%d, %d]", ErrConfig, c, MinChunkSize, MaxChunkSize)
	}
	return opts, nil
}

// startPush validates a Submit or Upload request and starts its push, detached: storeFn (nil
// when the request names a digest) stores the object first. Errors found before the push
// exists (a bad target, an unknown digest, a path outside the data dir) are returned.
func (a *Agent) startPush(ctx context.Context, req *pb.SubmitRequest, source string, storeFn func(context.Context) (string, int64, error)) (*pushRun, error) {
	target, err := targetString(req.GetTarget())
	if err != nil {
		return nil, err
	}
	opts, err := pushOptionsFromPB(req.GetOptions())
	if err != nil {
		return nil, err
	}
	if id, ok := identity.FromContext(ctx); ok {
		opts.Publisher = id.Name
	}
	opts.Tag, opts.Channel = req.GetTag(), req.GetChannel()
	follow := req.GetFollow().AsDuration()
	if follow < 0 || follow > maxFollow {
		return nil, fmt.Errorf("%w: follow %v outside [0, %v]", ErrConfig, follow, maxFollow)
	}
	if ch, ok := strings.CutPrefix(strings.TrimSpace(target), "channel:"); ok {
		if err := a.checkChannel(ch); err != nil {
			return nil, err
		}
		if opts.Channel != "" && opts.Channel != ch {
			return nil, fmt.Errorf("%w: target channel:%s and channel %s differ", ErrConfig, ch, opts.Channel)
		}
	} else if _, _, err := matchTargets(a.Members(), target, a.cfg.Name); err != nil {
		return nil, err
	}
	rec := pushRecord{State: PushStoring, Target: target, Opts: optsOf(opts), Follow: follow, Source: source}
	switch {
	case storeFn != nil:
	case req.GetDigest() != "":
		if _, err := store.ParseDigest(req.GetDigest()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
		m, err := a.resolveObject(Object{Digest: req.GetDigest()}, 0)
		if err != nil {
			return nil, a.partialHint(req.GetDigest(), err)
		}
		rec.State, rec.Digest, rec.Size, rec.Source = PushRunning, m.Digest(), m.Size(), m.Digest()
	case req.GetPath() != "":
		p, err := store.Within(a.cfg.DataDir, req.GetPath())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOutsideData, err)
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
		rec.Source = p
		storeFn = func(context.Context) (string, int64, error) { return a.importChecked(p, target, opts) }
	default:
		return nil, fmt.Errorf("%w: push needs a path or a digest", ErrBadHeader)
	}
	r, err := a.pushes.newRun(rec)
	if err != nil {
		return nil, err
	}
	a.log.Info("push accepted", "push", r.rec.ID, "target", target, "object", source, "by", opts.Publisher)
	if !a.goFunc(func() { r.runWith(storeFn) }) {
		return nil, ErrClosed
	}
	return r, nil
}

// ErrPartialObject is returned for a push of an object the agent holds in part only.
var ErrPartialObject = errors.New("node: object held in part only")

// partialHint turns an unknown digest the agent holds in part into ErrPartialObject.
func (a *Agent) partialHint(digest string, err error) error {
	objs, oerr := a.store.Objects()
	if oerr != nil {
		return err
	}
	for _, o := range objs {
		if o.Digest == digest && !o.Complete {
			return fmt.Errorf("%w: %s: %d of %d chunks here; push it from an agent that holds it whole", ErrPartialObject, digest, o.Held, o.Chunks)
		}
	}
	if m, ok := a.engine.Receiving(digest); ok {
		return fmt.Errorf("%w: %s is being received here (%d chunks); push it from an agent that holds it whole", ErrPartialObject, digest, m.NumChunks())
	}
	return err
}

// chunkFor returns the chunk size to store an object of size bytes with for a push to
// target: the push's, else the agent's, else the plan's choice (DefaultChunkSize when the
// size is unknown or no plan can be made yet).
func (a *Agent) chunkFor(target string, opts PushOptions, size int64) int {
	if opts.ChunkSize > 0 {
		return opts.ChunkSize
	}
	if a.cfg.ChunkSize > 0 {
		return a.cfg.ChunkSize
	}
	if size > 0 {
		members := a.Members()
		if dsts, err := selectTargets(members, target, a.cfg.Name); err == nil {
			if full, _, _, err := buildFullPlan(members, a.cfg.Name, dsts, opts, size, 0); err == nil && full.ChunkSize > 0 {
				return full.ChunkSize
			}
		}
	}
	return DefaultChunkSize
}

// importChecked stores the file at p (inside the data dir) for a push, and fails with
// ErrObjectChanged, storing nothing, when the file changes while it is read (see
// [StableFile]).
func (a *Agent) importChecked(p, target string, opts PushOptions) (string, int64, error) {
	if inside(filepath.Join(a.cfg.DataDir, storeSubdir), p) {
		return "", 0, fmt.Errorf("%w: %q is inside the store", ErrOutsideData, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("node: push %s: %w", p, err)
	}
	defer f.Close()
	sf, err := StableFile(f)
	if err != nil {
		return "", 0, err
	}
	m, err := a.store.Put(sf, a.chunkFor(target, opts, sf.Size()))
	if err != nil {
		return "", 0, fmt.Errorf("node: push %s: %w", p, err)
	}
	return m.Digest(), m.Size(), nil
}

func inside(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Submit starts a push from this agent, detached, and streams its events until it ends or
// the client goes away (the push goes on; Watch reattaches).
func (s *service) Submit(req *pb.SubmitRequest, stream pb.Agent_SubmitServer) error {
	source := req.GetPath()
	if source == "" {
		source = req.GetDigest()
	}
	r, err := s.a.startPush(stream.Context(), req, source, nil)
	if err != nil {
		return statusErr(err)
	}
	return r.watch(stream.Context(), stream.Send)
}

// Watch streams the events of a push.
func (s *service) Watch(req *pb.WatchRequest, stream pb.Agent_WatchServer) error {
	r, err := s.a.pushes.get(req.GetPushId())
	if err != nil {
		return status.Error(codes.NotFound, err.Error())
	}
	return r.watch(stream.Context(), stream.Send)
}

// ListPushes lists recent pushes, or one.
func (s *service) ListPushes(_ context.Context, req *pb.ListPushesRequest) (*pb.ListPushesResponse, error) {
	out := &pb.ListPushesResponse{}
	if id := req.GetPushId(); id != "" {
		r, err := s.a.pushes.get(id)
		if err != nil {
			return nil, status.Error(codes.NotFound, err.Error())
		}
		out.Pushes = append(out.Pushes, r.info())
		return out, nil
	}
	limit := int(min(req.GetLimit(), keepPushes))
	if limit == 0 {
		limit = 50
	}
	for _, r := range s.a.pushes.list(limit) {
		out.Pushes = append(out.Pushes, r.info())
	}
	return out, nil
}

// CancelPush stops a push.
func (s *service) CancelPush(ctx context.Context, req *pb.CancelPushRequest) (*pb.CancelPushResponse, error) {
	r, err := s.a.pushes.get(req.GetPushId())
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	who := "an operator"
	if id, ok := identity.FromContext(ctx); ok {
		who = id.Name
	}
	return &pb.CancelPushResponse{State: r.cancelBy(who)}, nil
}

// Upload receives an object from the client into the store (one copy: the store's
// temporary file, renamed into place only once the client's UploadEnd matches what arrived)
// and pushes it, detached, streaming the push's events as Submit does.
func (s *service) Upload(stream pb.Agent_UploadServer) error {
	a := s.a
	first, err := recvWithin(stream.Recv, a.cfg.Limits.HeaderTimeout, "Upload header")
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "node: the first Upload message must be a header")
	}
	if h.GetSize() > a.cfg.Limits.MaxObject {
		return statusErr(fmt.Errorf("%w: %d bytes, at most %d", ErrManifest, h.GetSize(), a.cfg.Limits.MaxObject))
	}
	req := h.GetSubmit()
	if req == nil {
		req = &pb.SubmitRequest{}
	}
	name := h.GetName()
	if name == "" {
		name = "upload"
	}
	pr, pw := io.Pipe()
	type endInfo struct {
		digest string
		size   uint64
	}
	ends := make(chan endInfo, 1)
	storeFn := func(ctx context.Context) (string, int64, error) {
		stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
		defer stop()
		target, _ := targetString(req.GetTarget())
		opts, _ := pushOptionsFromPB(req.GetOptions())
		m, err := a.store.Put(pr, a.chunkFor(target, opts, h.GetSize()))
		if err != nil {
			pr.CloseWithError(err)
			return "", 0, fmt.Errorf("node: upload of %s: %w", name, err)
		}
		e := <-ends
		if e.digest != m.Digest() || e.size != uint64(m.Size()) {
			return "", 0, fmt.Errorf("%w: the client sent %s (%d bytes), the agent received %s (%d bytes)", ErrObjectChanged, e.digest, e.size, m.Digest(), m.Size())
		}
		return m.Digest(), m.Size(), nil
	}
	r, err := a.startPush(stream.Context(), req, name, storeFn)
	if err != nil {
		pr.CloseWithError(err)
		return statusErr(err)
	}
	go func() { // ends with the stream, which ends when Upload returns
		var n int64
		for {
			msg, err := stream.Recv()
			if err != nil {
				pw.CloseWithError(fmt.Errorf("node: upload of %s broken after %d bytes: %w", name, n, err))
				return
			}
			switch x := msg.GetMsg().(type) {
			case *pb.UploadRequest_Data:
				n += int64(len(x.Data))
				if h.GetSize() >= 0 && n > h.GetSize() {
					pw.CloseWithError(fmt.Errorf("%w: more than the %d bytes announced", ErrObjectChanged, h.GetSize()))
					return
				}
				if _, err := pw.Write(x.Data); err != nil {
					return
				}
			case *pb.UploadRequest_End:
				if e := x.End.GetError(); e != "" {
					pw.CloseWithError(fmt.Errorf("%w: %s", ErrObjectChanged, e))
					return
				}
				if h.GetSize() >= 0 && n != h.GetSize() {
					pw.CloseWithError(fmt.Errorf("%w: %d bytes announced, %d sent", ErrObjectChanged, h.GetSize(), n))
					return
				}
				ends <- endInfo{digest: x.End.GetDigest(), size: x.End.GetSize()}
				pw.Close()
				return
			default:
				pw.CloseWithError(fmt.Errorf("%w: unexpected %T in an upload", ErrBadHeader, msg.GetMsg()))
				return
			}
		}
	}()
	return r.watch(stream.Context(), stream.Send)
}
