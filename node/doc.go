// Package node is the treecast agent: a gRPC server that stores, forwards and serves pushed
// objects, a member of the cluster's gossip, and the library entry point of a push.
//
// # Running an agent
//
// [Start] validates a [Config], opens the content-addressed store in Config.DataDir, binds the
// gRPC listener (port 0 picks a free port; [Agent.Addr] reports it), joins the gossip cluster
// through Config.Join, registers the treecast Agent service and the gRPC health service, and,
// when Config.MetricsAddr is set, serves Prometheus metrics on /metrics. [Agent.Close] leaves
// the cluster, lets running streams drain, and waits for every goroutine the agent started.
//
// # A push, end to end
//
//  1. [Agent.Push] (or the Submit RPC, which calls it) stores the object if given by path
//     (the path must lie inside the data directory), resolves the target against the alive
//     members ("all", "channel:NAME", a label selector "rack=r1,dc=east", or node names), and
//     builds a plan: for each stripe, an overlay tree over the receivers. Chunk i belongs to
//     stripe i mod S (with parity, see "Reed-Solomon parity" below).
//  2. For each stripe and each of its children the source opens one Push stream and sends a
//     header (transfer id, manifest, plan, the child's name, the stripe). The child begins a
//     partial object in its store and answers with a bitmap of the chunks it already holds;
//     the parent skips those.
//  3. The parent sends the stripe's chunks. The child verifies each chunk against the
//     manifest's hash as it writes it, and hands it at once to the forwarders of its own
//     children in that stripe (pipelined). Each forwarder has a bounded queue
//     (Config.QueueChunks) that never blocks the relay: when a child is slower, the chunks
//     that do not fit are remembered by index and read back from the store once it catches
//     up, so a slow or stalled child slows only its own subtree, never its siblings or the
//     path above, and memory stays bounded. A chunk whose hash does not match is rejected and
//     fetched again with the Fetch RPC from the parent, then the source.
//  4. When every chunk of every stripe is verified the receiver commits the object (only then
//     is it visible) and sends its result up each incoming stream; parents relay their
//     subtree's progress and results up, so every receiver's verdict reaches the source, which
//     ends with a [Report] of one [Result] per receiver.
//
// # Failures and repair
//
// A relay that dies, a stream that breaks, or a relay whose own transfer fails (a full disk)
// does not fail the receivers below it:
//
//   - The receiver whose incoming stream broke keeps the chunks it verified and its own
//     forwarders, and waits (at most Config.StallTimeout) for a new parent. Its children see
//     nothing: their streams stay open.
//   - The parent of the broken stream opens it again, after 100 ms then 200 ms, while gossip
//     lists the child alive (a transient break, or an agent restarted on the same address,
//     resumes where it stopped). Otherwise it reports the child failed and re-attaches each of
//     the child's children, with its subtree unchanged, to itself: the nearest live ancestor,
//     the rule of scheduler.Replan. The new stream's header exchange skips what the receiver
//     holds, so nothing it verified is sent again; it answers with its subtree's results so far.
//   - A relay that fails its transfer cuts (not closes) its children's streams, so they wait
//     for its parent to re-attach them in the same way.
//   - A failed source ends the push; running the same push again (same digest) from any agent
//     that holds the object resumes every receiver from what it verified.
//
// Repairs are counted in treecast_repairs_total. When gossip declares a member dead, the
// streams to it are cut at once, so a repair does not wait for TCP to notice.
//
// # Reed-Solomon parity
//
// PushOptions.Parity = M with the forest strategy and S = K data stripes codes every group of
// K consecutive data chunks with M parity chunks (klauspost/reedsolomon). Piece p of group g
// (data chunk gK+p, or parity chunk p-K) travels on tree (p+g) mod (K+M), so every tree
// carries at most one piece of a group. Before sending anything the source encodes the whole
// object once to put the parity chunks' SHA-256 in the manifest (one read of the object);
// during the push it encodes each group again as its parity trees need it (a small cache
// keeps the last groups). A receiver verifies parity chunks like data chunks, keeps them in
// memory only while their group is incomplete, and decodes a group's missing data chunks from
// any K of its K+M pieces as soon as a tree that owes it a piece is orphaned, or that piece is
// late (decodeLag groups behind the others, or its tree is the last still sending): a receiver
// that lost up to M trees, or has a stalled parent, finishes without waiting for a repair, and
// an undisturbed push decodes little. Decoded chunks
// are verified against the manifest, written, counted in treecast_chunks_decoded_total, and
// forwarded down their own tree, so the subtree below a broken tree keeps receiving. The
// bandwidth cost is (K+M)/K.
//
// # Membership
//
// Agents find each other by gossip (hashicorp/memberlist; the local profile on loopback
// addresses, the LAN profile otherwise). Each agent's metadata (at most 512 bytes) carries its
// gRPC address, labels and channels; [Agent.Members] lists what gossip sees. Start fails when
// no seed of Config.Join answers or when another agent already uses the name; afterwards the
// agent joins again, every Config.RejoinInterval, the seeds it lost. When gossip declares a
// member dead, the streams to it are cut at once, so its subtree is repaired without waiting
// for TCP to notice. A graceful Close announces the leave and waits two gossip intervals for
// the announcement to go out.
//
// # Channels and catch-up
//
// [Agent.Publish] (and the Submit RPC with a "channel:NAME" target, which `treecast push --to
// channel:NAME` sends) pushes an object to the channel's alive subscribers and then makes it
// the channel's latest version: a [ChannelVersion] with the digest, size, publisher and a
// version number (the publisher's clock in ns at the start of the publish, or one more than
// the newest version it knew). Every agent keeps a table channel -> latest version, merged by
// highest version (ties: larger digest), so the order updates arrive in does not matter and
// an older version never replaces a newer one. The table spreads three ways: the publisher
// sends the new version to every alive member (one small TCP message each), gossip
// broadcasts it (each agent passes on what was news to it), and memberlist's push/pull
// exchanges whole tables at every join and every 15 s (local) or 30 s (LAN), which brings a
// joining or restarted agent up to date at once. The table is saved in DataDir/channels.json.
//
// Each agent runs one catch-up goroutine (Close cancels and waits for it). Every second, and
// at once when the table changes, it checks each channel: a subscribed channel whose latest
// version the store does not hold, and that no push is delivering right now, is fetched in
// the background from the nearest alive member that holds it (same rack, then pod, then dc,
// then anyone; the publisher and the subscribers first, in random order within a level).
// The fetch uses the Fetch RPC: the manifest (which must carry the version's digest), then
// the chunks not yet staged, each verified against the manifest as it is written; the object
// becomes visible only when whole (a fetch interrupted by a holder's failure or a restart
// resumes from the staged chunks). A member that does not hold the object answers NotFound
// and the next one is tried; when none serves it, the channel is retried after 1 s, doubling
// up to 1 min, and [Agent.Channels] (Status, `treecast ls`) shows the error meanwhile. One
// catch-up runs at a time per agent; its memory is one chunk plus the gRPC stream window.
// An agent not subscribed to a channel never fetches it. Costs: a scan is two stats per
// channel; finding a holder is one Fetch RPC per member tried (O(members) in the worst case).
//
// # Rate caps
//
// Config.RateLimit caps everything an agent sends (Push chunks and Fetch answers) with a
// token bucket; PushOptions.RateLimit caps every sender of one push (it travels in the Push
// headers).
//
// # Stopping
//
// [Agent.Close] is graceful: gossip leave, running streams drained (at most 5 s), then
// everything closed. [Agent.Kill] stops as a crash would (no leave, streams cut), for tests
// and demos of failures. Both wait for every goroutine the agent started.
//
// # Testing
//
// Package nodetest starts clusters of real agents on loopback (real gRPC, gossip and stores in
// temporary directories) and waits for gossip to converge.
//
// # Memory
//
// Memory per transfer is bounded whatever the object size. On a relay, each incoming stripe
// stream holds at most the gRPC stream window (8 MiB) of undelivered data, plus 3 chunks being
// verified and written, plus each child's queue of at most QueueChunks chunks (the queues share
// the chunk buffers; what overflows a queue waits in the store, as an index): with the
// default 4 MiB chunks, 8 queued chunks and two children, at most about 84 MiB per relayed
// stripe, whatever the object size. The source reads one chunk at a time per child stream. The metric treecast_queued_bytes_max reports the
// high-water mark of the queues.
//
// # Full disk
//
// A receiver whose chunk write or commit meets a full disk (ENOSPC, or EDQUOT for a quota)
// fails that transfer with an error wrapping [ErrDiskFull] and the file system's error ("no
// space left on device"), which reaches the source in the receiver's [Result]. The partial
// object is discarded at once (it was never visible): kept for a resume, it would hold the
// space the agent's other transfers need; a later push of it starts over. A receiver that
// cannot even begin the object (its staging files cannot be created) refuses the stream with
// that error. The agent keeps serving its other transfers, and the other receivers of the
// same push are unaffected unless the full receiver relays to them (its subtree then fails
// with it, as for any failed relay).
//
// # Errors
//
// Errors wrap the package's sentinel errors ([ErrNoReceivers], [ErrUnknownDigest],
// [ErrOutsideData], [ErrTruncated], ...) with %w; they become gRPC status codes only at the
// RPC edge.
package node
