package transfer

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/treecast/treecast/node/store"
)

// Disk is a node/store Store as the engine's [Store].
type Disk struct{ S *store.Store }

func (d Disk) Begin(m Manifest) (Partial, error) {
	sm, ok := m.(StoreManifest)
	if !ok {
		return nil, fmt.Errorf("%w: manifest of type %T", ErrManifest, m)
	}
	h, err := d.S.Begin(sm.M)
	if err != nil {
		return nil, err
	}
	return diskPartial{h}, nil
}

// Fresh reports whether nothing of the object is in the store (see FreshStore).
func (d Disk) Fresh(digest string) bool {
	dg, err := store.ParseDigest(digest)
	return err == nil && d.S.Fresh(dg)
}

func (d Disk) ReadChunk(digest string, i int) ([]byte, error) {
	dg, err := store.ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	return d.S.ReadChunk(dg, i)
}

// ReadChunkBuf reads chunk i of a complete object into a pooled buffer.
func (d Disk) ReadChunkBuf(digest string, i int) (*Buf, error) {
	dg, err := store.ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	var b *Buf
	if _, err := d.S.ReadChunkTo(dg, i, func(n int) []byte { b = NewBuf(n); return b.B }); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

// diskPartial is a store.Partial behind the engine's Partial. A write or commit that
// meets a full disk (ENOSPC, EDQUOT) discards the partial object at once, for every transfer
// that shares it: keeping its chunks for a resume would keep holding the space that the
// agent's other transfers need. The error wraps store.ErrDiskFull and the file system's error; the
// object was never visible, and a later push of it starts over.
type diskPartial struct{ h *store.Partial }

func (p diskPartial) WriteChunk(i int, data []byte) error {
	return p.discardIfFull(p.h.WriteChunk(i, data))
}
func (p diskPartial) ReadChunk(i int) ([]byte, error) { return p.h.ReadChunk(i) }
func (p diskPartial) Held() []int                     { return p.h.Held().Indexes() }
func (p diskPartial) Commit() error                   { return p.discardIfFull(p.h.Commit()) }
func (p diskPartial) Abort() error                    { return p.h.Abort() }
func (p diskPartial) Close() error                    { return p.h.Close() }

func (p diskPartial) discardIfFull(err error) error {
	if err == nil || !isDiskFull(err) {
		return err
	}
	d := p.h.Manifest().Digest
	full := fmt.Errorf("%w: %w", store.ErrDiskFull, err)
	// The transfer's other writers (and other transfers of the object) then fail with
	// ErrAborted wrapping full: whichever error the transfer reports says why.
	if aerr := p.h.AbortFor(full); aerr != nil {
		return fmt.Errorf("%w (discarding partial %s: %v)", full, d, aerr)
	}
	return fmt.Errorf("%w (partial %s discarded to free its space)", full, d)
}

// isDiskFull reports whether err is a full disk or an exhausted disk quota.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

var (
	_ Store   = Disk{}
	_ Partial = diskPartial{}
)
