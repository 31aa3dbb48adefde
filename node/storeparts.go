package node

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/treecast/treecast/node/store"
	"github.com/treecast/treecast/node/transfer"
)

// The store adapter: node/store behind the engine's transfer.Store, and the rest of what the
// agent asks of its store.

// objectStore is the agent's content-addressed chunk store.
type objectStore interface {
	transfer.Store
	// Put stores the object read from r, cut in chunks of chunkSize bytes.
	Put(r io.Reader, chunkSize int) (transfer.Manifest, error)
	// Import stores the file at path, which must lie inside the data directory.
	Import(path string, chunkSize int) (transfer.Manifest, error)
	// Stat returns the manifest of a complete object.
	Stat(digest string) (transfer.Manifest, error)
	// Remove deletes a complete object.
	Remove(digest string) error
	// Objects lists the complete objects and the partial ones.
	Objects() ([]ObjectStatus, error)
	// ExpireStaging removes staged objects untouched for ttl that no transfer has open.
	ExpireStaging(ttl time.Duration) (int, error)
	Close() error
}

// storeSubdir is the store's directory inside Config.DataDir; files to push live elsewhere in
// the data dir.
const storeSubdir = "store"

// diskStore is the store: the engine's part (Begin, ReadChunk) and the agent's.
type diskStore struct {
	transfer.Disk
	s *store.Store
}

func openStore(dataDir string, opts ...store.Option) (objectStore, error) {
	s, err := store.Open(filepath.Join(dataDir, storeSubdir), append([]store.Option{store.WithPathRoot(dataDir)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return diskStore{transfer.Disk{S: s}, s}, nil
}

func (d diskStore) Put(r io.Reader, chunkSize int) (transfer.Manifest, error) {
	m, err := d.s.Put(r, chunkSize)
	if err != nil {
		return nil, err
	}
	return transfer.StoreManifest{M: m}, nil
}

// Import stores the file at path, which must lie in the data dir (outside the store).
func (d diskStore) Import(path string, chunkSize int) (transfer.Manifest, error) {
	m, err := d.s.Import(path, chunkSize)
	if errors.Is(err, store.ErrPathEscape) {
		return nil, fmt.Errorf("%w: %w", ErrOutsideData, err)
	}
	if err != nil {
		return nil, err
	}
	return transfer.StoreManifest{M: m}, nil
}

func (d diskStore) Stat(digest string) (transfer.Manifest, error) {
	dg, err := store.ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	m, err := d.s.Manifest(dg)
	if err != nil {
		return nil, err
	}
	return transfer.StoreManifest{M: m}, nil
}

func (d diskStore) Objects() ([]ObjectStatus, error) {
	var out []ObjectStatus
	for _, list := range []func() ([]store.Info, error){d.s.List, d.s.Partials} {
		infos, err := list()
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			out = append(out, ObjectStatus{Digest: in.Manifest.Digest.String(), Size: in.Manifest.Size,
				Chunks: in.Manifest.NumChunks(), Held: in.Held, Complete: in.Complete})
		}
	}
	return out, nil
}

func (d diskStore) Close() error { return d.s.Close() }

func (d diskStore) ExpireStaging(ttl time.Duration) (int, error) { return d.s.ExpireStaging(ttl) }

func (d diskStore) Remove(digest string) error {
	dg, err := store.ParseDigest(digest)
	if err != nil {
		return err
	}
	return d.s.Remove(dg)
}

var _ objectStore = diskStore{}
