package node

// SetCorrupt installs a test hook that may alter each chunk an agent sends on a Push stream
// (to flip bits in transit). Only tests of this package's directory can call it.
func SetCorrupt(cfg *Config, f func(child string, index int, data []byte) []byte) { cfg.corrupt = f }

// EncodePlan builds and encodes the plan a push from src to dsts would use.
func EncodePlan(src string, dsts []string, strategy string) ([]byte, error) {
	_, raw, err := buildPlan(nil, src, dsts, PushOptions{Strategy: strategy})
	return raw, err
}
