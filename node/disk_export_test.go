package node

import "github.com/treecast/treecast/node/store"

// SetStoreOpenFile makes the agent's store open the files it writes through fn (fault
// injection: a full disk). Only tests of this package's directory can call it.
func SetStoreOpenFile(cfg *Config, fn store.OpenFileFunc) {
	cfg.storeOptions = append(cfg.storeOptions, store.WithOpenFile(fn))
}
