package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/treecast/treecast/node/transfer"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// fetchObject fetches the object digest from member m with the Fetch RPC: first the manifest
// (which must name the digest), then, in one stream, the chunks this agent's store does not
// hold yet; each is verified against the manifest as it is written, and the object is
// committed (visible) only when whole. A holder that gossip declares dead cuts the stream at
// once. Memory: one chunk plus the gRPC stream window. count (if not nil) gets the bytes of
// every chunk received.
func (a *Agent) fetchObject(ctx context.Context, m Member, digest string, count func(bytes int)) error {
	cc, err := a.conn(m.Name, m.Addr)
	if err != nil {
		return err
	}
	ctx, stop := a.members.Watch(ctx, m.Name)
	defer stop()
	client := pb.NewAgentClient(cc)
	// The manifest alone: an empty range.
	st, err := client.Fetch(ctx, &pb.FetchRequest{Digest: digest, Ranges: []*pb.ChunkRange{{}}})
	if err != nil {
		return err
	}
	first, err := st.Recv()
	if err != nil {
		return err
	}
	man, err := transfer.ManifestFromProto(first.GetManifest())
	if err != nil {
		return err
	}
	if man.Digest() != digest {
		return fmt.Errorf("%w: asked for %s, got the manifest of %s", ErrManifest, digest, man.Digest())
	}
	part, err := a.store.Begin(man)
	if err != nil {
		return fmt.Errorf("node: begin %s: %w", digest, err)
	}
	defer part.Close() // keeps the verified chunks staged when the fetch fails
	n := man.NumChunks()
	have := make([]bool, n)
	missing := n
	for _, i := range part.Held() {
		if i >= 0 && i < n && !have[i] {
			have[i] = true
			missing--
		}
	}
	if missing > 0 {
		var ranges []*pb.ChunkRange
		for i := 0; i < n; i++ {
			if have[i] {
				continue
			}
			j := i
			for j < n && !have[j] {
				j++
			}
			ranges = append(ranges, &pb.ChunkRange{Start: uint64(i), End: uint64(j)})
			i = j
		}
		st, err := client.Fetch(ctx, &pb.FetchRequest{Digest: digest, Ranges: ranges})
		if err != nil {
			return err
		}
		if _, err := st.Recv(); err != nil { // the manifest again
			return err
		}
		for {
			msg, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("node: fetch %s: %d chunks missing: %w", digest, missing, err)
			}
			ch := msg.GetChunk()
			if ch == nil || ch.GetIndex() >= uint64(n) {
				return fmt.Errorf("%w: fetch of %s answered %v", ErrBadHeader, digest, msg.Msg)
			}
			i := int(ch.GetIndex())
			if err := part.WriteChunk(i, ch.GetData()); err != nil {
				return fmt.Errorf("node: chunk %d of %s: %w", i, digest, err)
			}
			a.m.engine.BytesIn.Add(float64(len(ch.GetData())))
			if count != nil {
				count(len(ch.GetData()))
			}
			if !have[i] {
				have[i] = true
				missing--
			}
		}
		if missing > 0 {
			return fmt.Errorf("%w: %s served %s without %d of its %d chunks", ErrTruncated, m.Name, digest, missing, n)
		}
	}
	if err := part.Commit(); err != nil {
		return fmt.Errorf("node: commit %s: %w", digest, err)
	}
	return nil
}
