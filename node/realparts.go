package node

// GossipAddr is the bound gossip address.
func (a *Agent) GossipAddr() string {
	if a.members == nil {
		return ""
	}
	return a.members.GossipAddr()
}
