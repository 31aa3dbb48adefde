// Package channel is treecast's channel table: for each named channel, the object its latest
// publish made current, spread to every agent by gossip, and the background catch-up that
// brings a subscriber that missed a publish up to date.
//
// # The table
//
// A publish ([Table.Publish]) records a [Version] with the digest, size, publisher and a
// version number (the publisher's clock in ns at the start of the publish, or one more than
// the newest version it knew). Every agent keeps a [Table] channel -> latest version, merged
// by highest version (ties: larger digest), so the order updates arrive in does not matter
// and an older version never replaces a newer one. The table spreads three ways: the
// publisher sends the new version to every alive member (one small TCP message each, over
// gossip's reliable channel), gossip broadcasts it (each agent passes on what was news to
// it), and memberlist's push/pull exchanges whole tables at every join and every 15 s
// (local) or 30 s (LAN), which brings a joining or restarted agent up to date at once. The
// Table is the State delegate of package node/membership for this. It is saved in
// DataDir/channels.json ([Table.Load], [Table.Save]). State received from the network is
// checked before it is merged (names, digests, sizes, at most 1,024 channels): bad state is
// dropped whole.
//
// # Catch-up
//
// [Table.Run] is the agent's catch-up goroutine. Every second, and at once when the table
// changes, it checks each channel: a subscribed channel whose latest version the store does
// not hold, and that no push is delivering right now, is fetched in the background from the
// nearest alive member that holds it (same rack, then pod, then dc, then anyone; the
// publisher and the subscribers first, in random order within a level). The fetch itself is
// the agent's ([Catchup].Fetch, over the Fetch RPC): verified chunk by chunk, resumable, and
// visible only when whole. A member that does not hold the object is skipped and the next
// one tried; when none serves it, the channel is retried after 1 s, doubling up to 1 min,
// and [Table.Status] shows the error meanwhile. One catch-up runs at a time per agent. An
// agent not subscribed to a channel never fetches it. Costs: a scan is two stats per
// channel; finding a holder is one Fetch per member tried (O(members) in the worst case).
package channel
