// Package transfer is treecast's forwarding engine: the state of one agent in every push it
// takes part in, as the source that sends an object down a plan, or as a receiver that
// stores, verifies and forwards it to its own children, and the repair and Reed-Solomon
// decoding that let receivers finish when a relay fails.
//
// The engine knows the rest of the agent only through small interfaces ([Store], [Partial],
// [Manifest], [Members], [Transport], [Plan]) and a few functions in [Deps] (a goroutine
// owner, the agent's lifetime, its rate cap). It opens no socket and no file: package node
// binds it to the gRPC transport, the on-disk store of package node/store and the gossip of
// package node/membership, and tests bind it to in-process streams, an in-memory store and
// [membership.Static]. Streams are [Upstream] (a parent's view of the stream to one child)
// and [Downstream] (a child's view of the stream from its parent); messages are [Header],
// chunks, a holding bitmap and [UpMsg]s (progress and results flowing toward the source).
//
// # A push, through the engine
//
//  1. The source calls [Engine.Prepare] with the object's manifest and the plan: with parity,
//     every group is encoded once to put the parity chunks' SHA-256 in the manifest. Then
//     [Engine.Push] opens, for each stripe, one stream to each of its children and sends a
//     [Header] (transfer id, manifest, the whole plan and its nodes' addresses, the child's
//     name, the stripe, the push's rate cap). Chunk i belongs to stripe i mod S (with
//     parity, see below). A relay dials a child at the header's address when its own view
//     of the cluster does not know it yet ([Transport].OpenPush).
//  2. [Engine.Receive] serves an incoming stream: the first stream of a transfer decodes the
//     plan, checks the manifest and begins a partial object in the store (an object the
//     store has nothing of, [FreshStore], is begun while the stream's children are dialled:
//     creating and preallocating its files is then off each hop of the setup wave; a store
//     that cannot begin it refuses the stream as before, its children's streams cut for a
//     repair); every stream is answered with a bitmap of the chunks already held, and the
//     parent skips those. A relay's first stream of a stripe opens its own children's
//     streams first and answers its parent only when they answered (or failed, or two
//     seconds passed): the setup wave.
//     A stripe's streams thus all open, hop by hop, on idle links before its first chunk
//     leaves the source; opened under load, each hop's TCP and TLS handshakes queue behind
//     the data on links already full, and the deepest receivers start, and end, later.
//     The source sends no chunk until every stripe's streams are open (the same bound),
//     then paces its streams of different stripes against each other (no stripe writes more
//     than two of its chunks ahead of what another's child acknowledged, in proportion), so
//     that the stripes, which share its uplink, end together rather than one after the other
//     at half rate.
//  3. The receiver verifies each chunk against the manifest's hash as it writes it, and hands
//     it at once to the forwarders of its own children in that stripe (pipelined). Each
//     forwarder has a bounded queue (Config.QueueChunks) that never blocks the relay: when a
//     child is slower, the chunks that do not fit are remembered by index and read back from
//     the store once it catches up, so a slow or stalled child slows only its own subtree and
//     memory stays bounded. A chunk whose hash does not match is fetched again
//     ([Transport.FetchChunk]) from the parent, then the source.
//  4. When every chunk of every stripe is verified the receiver commits the object (only then
//     is it visible) and sends its result up each incoming stream; parents relay their
//     subtree's progress and results up, so every receiver's verdict reaches the source,
//     whose [Engine.Push] returns a [Report] of one [Result] per receiver.
//
// # Failures and repair
//
// A relay that dies, a stream that breaks, or a relay whose own transfer fails (a full disk)
// does not fail the receivers below it:
//
//   - The receiver whose incoming stream broke keeps the chunks it verified and its own
//     forwarders, and waits (at most Config.StallTimeout) for a new parent. Its children see
//     nothing: their streams stay open.
//   - The parent of the broken stream opens it again, after 100 ms then 200 ms, while
//     [Members.Alive] lists the child alive (a transient break, or an agent restarted on the
//     same address, resumes where it stopped). Otherwise it reports the child failed and
//     re-attaches each of the child's children, with its subtree unchanged, to itself: the
//     nearest live ancestor, the rule of scheduler.Replan. The new stream's header exchange
//     skips what the receiver holds, so nothing it verified is sent again; it answers with
//     its subtree's results so far.
//   - A relay that fails its transfer cuts (not closes) its children's streams, so they wait
//     for its parent to re-attach them in the same way.
//   - Every stream to a child is opened under [Members.Watch]: when gossip declares the child
//     dead the stream is cut at once, so a repair does not wait for TCP to notice.
//   - A failed source ends the push; running the same push again (same digest) from any agent
//     that holds the object resumes every receiver from what it verified.
//
// # Reed-Solomon parity
//
// A plan with K data and M parity trees (its Coding method) codes every group of K
// consecutive data chunks with M parity chunks (klauspost/reedsolomon). Piece p of group g
// (data chunk gK+p, or parity chunk p-K) travels on tree (p+g) mod (K+M), so every tree
// carries at most one piece of a group. During the push the source encodes each group again
// as its parity trees need it (a small cache keeps the last groups). A receiver verifies
// parity chunks like data chunks, keeps them in memory only while their group is incomplete,
// and decodes a group's missing data chunks from any K of its K+M pieces as soon as a tree
// that owes it a piece is orphaned, or that piece is late (decodeLag groups behind the
// others, or its tree is the last still sending): a receiver that lost up to M trees, or has
// a stalled parent, finishes without waiting for a repair, and an undisturbed push decodes
// little. Decoded chunks are verified, written, counted in treecast_chunks_decoded_total, and
// forwarded down their own tree. The bandwidth cost is (K+M)/K.
//
// # Memory
//
// Memory per transfer is bounded whatever the object size. On a relay, each incoming stripe
// stream holds at most the transport's window of undelivered data, plus 3 chunks being
// verified and written, plus each child's queue of at most QueueChunks chunks (the queues
// share the chunk buffers; what overflows a queue waits in the store, as an index). The
// source reads one chunk at a time per child stream. treecast_queued_bytes_max reports the
// high-water mark of the queues.
//
// # Errors
//
// Errors wrap the package's sentinels ([ErrBadHeader], [ErrTruncated], [ErrParentLost],
// [ErrStalled], ...) with %w. A receiver's failure reaches the source in its [Result], not
// as an error of [Engine.Push].
package transfer
