package node

import (
	"context"
	"fmt"
	"io"
)

// CopyObject writes the complete object digest from the agent's own store to w, chunk by
// chunk (memory O(chunk size)). It fails with [ErrUnknownDigest] unless the object is
// complete and visible.
func (a *Agent) CopyObject(ctx context.Context, digest string, w io.Writer) error {
	m, err := a.store.Stat(digest)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnknownDigest, digest, err)
	}
	for i := range m.NumChunks() {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := a.store.ReadChunk(digest, i)
		if err != nil {
			return fmt.Errorf("node: %s chunk %d: %w", digest, i, err)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the complete object digest from the agent's store (a later push sends it
// again). It fails with [ErrUnknownDigest] when the store does not hold it complete.
func (a *Agent) Remove(digest string) error {
	if err := a.store.Remove(digest); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnknownDigest, digest, err)
	}
	return nil
}
