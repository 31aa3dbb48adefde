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
//     stripe i mod S.
//  2. For each stripe and each of its children the source opens one Push stream and sends a
//     header (transfer id, manifest, plan, the child's name, the stripe). The child begins a
//     partial object in its store and answers with a bitmap of the chunks it already holds;
//     the parent skips those.
//  3. The parent sends the stripe's chunks. The child verifies each chunk against the
//     manifest's hash as it writes it, and hands it at once to the forwarders of its own
//     children in that stripe (pipelined). Each forwarder has a bounded queue
//     (Config.QueueChunks): when a child is slow its queue fills, the parent stops reading its
//     own stream, and gRPC flow control slows the path above, so a slow child slows its
//     subtree and never grows memory. A chunk whose hash does not match is rejected and
//     fetched again with the Fetch RPC from the parent, then the source.
//  4. When every chunk of every stripe is verified the receiver commits the object (only then
//     is it visible) and sends its result up each incoming stream; parents relay their
//     subtree's progress and results up, so every receiver's verdict reaches the source, which
//     ends with a [Report] of one [Result] per receiver.
//  5. A child stream that breaks makes the parent report every receiver of that child's
//     subtree failed, with the error (re-planning the orphaned subtree hooks in there).
//
// # Memory
//
// A transfer holds at most about (QueueChunks+2) chunks per child stream, plus one chunk per
// incoming stream being verified: with the default 4 MiB chunks, 8 queued chunks and fan-out
// 2, about 80 MiB per relayed stripe, whatever the object size.
//
// # Errors
//
// Errors wrap the package's sentinel errors ([ErrNoReceivers], [ErrUnknownDigest],
// [ErrOutsideData], [ErrTruncated], ...) with %w; they become gRPC status codes only at the
// RPC edge.
package node
