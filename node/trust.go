package node

import (
	"errors"
	"fmt"
	"slices"
)

// ErrForbidden is wrapped by the error of a request its identity has no right to make (a
// publish to a channel the policy does not grant it).
var ErrForbidden = errors.New("node: forbidden")

// mayPublish reports whether identity who may publish channel under Config.Publishers (nil:
// anyone may publish anything).
func (a *Agent) mayPublish(who, ch string) error {
	p := a.cfg.Publishers
	if p == nil {
		return nil
	}
	for _, key := range []string{ch, "*"} {
		if names, ok := p[key]; ok && (slices.Contains(names, who) || slices.Contains(names, "*")) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s may not publish channel %s", ErrForbidden, who, ch)
}
