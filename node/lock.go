package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrDataDirLocked is returned by [Start] when another agent runs on the same data directory.
var ErrDataDirLocked = errors.New("node: the data directory is in use by another agent")

// lockFile is the file in the data directory an agent holds an exclusive lock on while it
// runs (flock: the kernel releases it when the process dies, so a crash leaves no stale lock).
const lockFile = "agent.lock"

// lockDataDir takes the data directory's lock, or fails with ErrDataDirLocked at once.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node: data dir lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s): %w", ErrDataDirLocked, dir, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}
