// Package membership is a treecast agent's view of its cluster: who the other agents are,
// where they listen, what labels and channels they carry, and whether they are alive.
//
// It wraps hashicorp/memberlist. Each agent gossips a small metadata record ([Meta], at most
// 512 bytes: its gRPC address, its labels and its channels); [Gossip] keeps a copy of every
// member's record as memberlist's events arrive, so reading the view never touches
// memberlist's locks.
//
// # A push, as membership sees it
//
//  1. The agent that runs a push reads [Gossip.Members] to resolve its target ("all", a label
//     selector, a channel) and to infer the topology from the labels.
//  2. The forwarding engine (package node/transfer) resolves each child's gRPC address with
//     [Gossip.WaitAddr] (waiting briefly when gossip has not brought the child yet) and
//     watches it with [Gossip.Watch]: when gossip declares the child dead, the watch's
//     context is cancelled with [ErrMemberGone], so the stream to it is cut at once and its
//     subtree repaired without waiting for TCP to notice. [Gossip.Alive] tells a repair
//     whether reopening a broken stream is worth trying.
//  3. Channel versions travel beside membership: a [State] delegate (package node/channel)
//     receives gossip messages and push/pull state, and queues its own broadcasts with
//     [Gossip.QueueBroadcast].
//
// # Lifecycle
//
// [New] creates the memberlist and binds its UDP and TCP port (nothing is joined yet, so the
// caller can wire its State delegate to the returned Gossip first); [Gossip.Join] joins the
// seeds and refuses to run under a name another live agent uses ([ErrNameTaken]);
// [Gossip.Rejoin] runs until its context ends and joins again, every RejoinInterval, the
// seeds that are not alive members (memberlist does not heal a partition by itself); in its
// first rounds it also exchanges state with random members, so that agents started together
// list each other within seconds.
// [Gossip.Leave] announces a graceful leave and waits for it to go out; [Gossip.Shutdown]
// stops at once.
//
// On loopback addresses the local profile of memberlist is used (probes every 200 ms), on
// others the LAN profile.
//
// # Testing
//
// [Static] is a fixed view for tests of packages that need members but no gossip; a test may
// declare a member dead with [Static.SetState]. [Config.Filter] puts a filtering transport in
// front of memberlist's own, dropping gossip to and from chosen peers: a network partition of
// the gossip alone, for tests of partitions and healing.
package membership
