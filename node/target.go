package node

import (
	"fmt"
	"sort"
	"strings"
)

// selectTargets resolves a target against the alive members and returns the receivers'
// names, sorted, without self. target is "all", "channel:NAME", a label selector
// ("k=v,k2=v2": every pair must match) or a list of names ("a,b").
func selectTargets(members []Member, target, self string) ([]string, error) {
	t := strings.TrimSpace(target)
	if t == "" {
		return nil, fmt.Errorf("%w: empty target", ErrNoReceivers)
	}
	alive := map[string]Member{}
	for _, m := range members {
		if m.State == "" || m.State == "alive" {
			alive[m.Name] = m
		}
	}
	var out []string
	match := func(f func(Member) bool) {
		for name, m := range alive {
			if name != self && f(m) {
				out = append(out, name)
			}
		}
	}
	switch {
	case t == "all":
		match(func(Member) bool { return true })
	case strings.HasPrefix(t, "channel:"):
		ch := strings.TrimPrefix(t, "channel:")
		match(func(m Member) bool {
			for _, c := range m.Channels {
				if c == ch {
					return true
				}
			}
			return false
		})
	case strings.Contains(t, "="):
		want := map[string]string{}
		for _, kv := range strings.Split(t, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%w: selector %q: %q is not key=value", ErrNoReceivers, t, kv)
			}
			want[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		match(func(m Member) bool {
			for k, v := range want {
				if m.Labels[k] != v {
					return false
				}
			}
			return true
		})
	default:
		for _, name := range strings.Split(t, ",") {
			name = strings.TrimSpace(name)
			if name == self {
				continue
			}
			if _, ok := alive[name]; !ok {
				return nil, fmt.Errorf("%w: %q is not an alive member", ErrNoReceivers, name)
			}
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoReceivers, target)
	}
	sort.Strings(out)
	out = dedup(out)
	return out, nil
}

func dedup(s []string) []string {
	o := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			o = append(o, x)
		}
	}
	return o
}
