// Package node is the treecast agent: a gRPC server that stores, forwards and serves pushed
// objects, a member of the cluster's gossip, and the library entry point of a push.
//
// # Running an agent
//
// [Start] validates a [Config], opens the content-addressed store in Config.DataDir, binds the
// gRPC listener (port 0 picks a free port; [Agent.Addr] reports it), joins the gossip cluster
// through Config.Join, registers the treecast Agent service and the gRPC health service, and,
// when Config.MetricsAddr is set, serves on that HTTP address Prometheus metrics (/metrics),
// its events as Server-Sent Events (/events, package node/events) and the live page (/,
// package node/liveview), behind the gRPC port's mutual TLS (any role of the cluster's CA;
// plaintext only when insecure), and with Config.Profiling Go's live profiles
// (/debug/pprof/, operators only). [Agent.Close] leaves
// the cluster, lets running streams drain, and waits for every goroutine the agent started.
//
// # The parts
//
// The agent wires four packages, each one concept, dependencies pointing down:
//
//   - node/membership: gossip (hashicorp/memberlist), each agent's metadata (gRPC address,
//     labels, channels; at most 512 bytes), join, rejoin, leave, and watches that fire when a
//     member is declared dead.
//   - node/transfer: the forwarding engine, one push's state at the source and at each
//     receiver, forwarders, repair, Reed-Solomon parity.
//   - node/channel: the channel table, publishing, background catch-up.
//   - node/store: the content-addressed chunk store on disk.
//
// This package holds the [Agent] that starts and stops them, the gRPC edge (the treecast
// Agent service and its client side, which map errors to status codes), target selection,
// planning (through package scheduler), and the library entry points.
//
// # A push, end to end
//
//  1. Submit or Upload (pushsvc.go), from `treecast push`, start a detached push whose rounds
//     call [Agent.Push] (see Detached pushes): the object is stored
//     first if given by path (node/store; the path must lie inside the data directory), the
//     target ("all", "channel:NAME", a label selector "rack=r1,dc=east", or node names) is
//     resolved against the alive members of node/membership, and package scheduler plans an
//     overlay forest over the receivers on the topology inferred from their labels.
//  2. node/transfer prepares the push (with parity, the parity chunks' hashes go in the
//     manifest) and the source's engine opens one Push stream per stripe to each of its
//     children, over the transport of this package (the push wire below), which resolves
//     each child's address through node/membership; the engine cuts the stream when gossip
//     declares the child dead. Every header carries the addresses the source's gossip knew
//     for the plan's nodes: a relay whose own gossip has not brought a child yet (a member
//     that joined moments ago, a large cluster still converging) dials it there rather than
//     waiting up to Config.DialTimeout, and with TLS the handshake still proves the child's
//     name (treecast_push_dials_by_header_address_total counts those dials).
//  3. On each receiver, the Push RPC hands the stream to node/transfer: the receiver begins a
//     partial object in node/store, answers with the chunks it holds, verifies and writes
//     every chunk, and forwards it at once down its own subtree. Broken streams are repaired
//     by the nearest live parent; with parity, receivers decode what a lost tree owed them.
//  4. Each receiver commits its object when whole and verified, and its result flows up the
//     streams to the source. [Agent.Push] returns the [Report] (Submit streams it to the CLI),
//     one [Result] per receiver. For a "channel:NAME" target, node/channel then records the
//     channel's new version and gossips it; subscribers that missed the push catch up later.
//
// Package transfer's doc describes repair, parity and memory bounds in detail; package
// channel's, channels and catch-up.
//
// # The push wire
//
// A Push stream carries the object's bytes, so it does not travel as gRPC messages: each
// stream is a TCP connection of its own to the child's gRPC port (rawpush.go). The port's
// listener tells the two apart, by the TLS handshake's ALPN protocol ("treecast-push/1"
// rather than gRPC's "h2") or, without TLS, by the connection's first 24 bytes, so an
// operator opens one port per agent as before. On that connection the parent writes the
// Push RPC's messages (a 5-byte prefix and the message encoded by the agent's codec), the
// frames of chunks straight from the chunk's buffer with one writev, and the child reads
// each frame's bytes from the socket straight into its chunk's buffer (a frame's index,
// offset and flag come before its bytes, so the first few bytes say where the rest goes:
// transfer.Placer), one copy per byte in the child; gRPC would split every message into 16
// KiB HTTP/2 frames, copy each out of its read buffer, hand it between two goroutines, and
// copy what it sends into its write buffer. The child serves the stream with the Push RPC's
// own handler behind the same interceptor (mutual TLS identity, roles, per-peer stream
// limits), and ends it with a status as gRPC would; an end-of-requests message distinguishes
// a parent that finished from one whose connection died (a failure, repaired as such).
// Over TLS the parent does not wait for the child's answer to the raw preface before sending
// the stream's header (ALPN already chose the wire), a round trip less per hop. On Linux the
// stream's socket reads and writes are raw system calls (sysconn_linux.go): the socket is
// non-blocking and the netpoller still waits for it, but the Go scheduler is not told, so an
// agent that goes idle between packets does not wake the runtime's monitor thread with each
// socket call (on a 64-agent testbed on two cores those wake-ups had taken a quarter of the
// agents' CPU; 18% after, the rest from disk writes and gossip). A stream's large buffers
// (under TLS, the 256 KiB that gathers a message's records into one write and the 256 KiB
// the child reads the socket into; the child's 32 KiB message reader) come from pools and go
// back when the stream closes, once no read or write uses them: an agent opening and closing
// streams all day allocates them once (a stream costs about 175 KB of garbage, 882 KB
// before).
// Config.PushOverGRPC sends Push streams as gRPC messages instead, and a child that does not
// answer the raw wire (an agent of an older version) gets them that way regardless.
// treecast_push_streams_opened_total{wire} counts both kinds.
//
// # Membership
//
// [Agent.Members] lists what gossip sees. Start tries the seeds of Config.Join with backoff
// for Config.JoinTimeout, then starts alone if none answered (agents started at once find
// each other soon after); it fails only when another agent already uses the name.
// Afterwards the agent joins again, every Config.RejoinInterval (every few seconds while
// alone), the seeds it lost, and reaches out to two of the members it holds dead, in turn:
// after a partition heals, each side's dead records of the other are refuted in that
// exchange instead of waiting for gossip to carry them over. A graceful Close announces
// the leave and waits two gossip intervals for the announcement to go out.
//
// # Channels
//
// [Agent.Publish] (and the Submit RPC with a "channel:NAME" target) pushes an object to the
// channel's alive subscribers and then makes it the channel's latest version
// ([ChannelVersion]); [Agent.Channels] shows each channel's latest version, the version held
// and a pending catch-up error.
//
// # Names, lifecycle, scrub and software updates
//
// A push may carry a tag NAME:VERSION ([PushOptions].Tag) that the source and every receiver
// record at commit; [Agent.Pull] (the Pull RPC, `treecast get`) resolves a digest or a tag
// (asking the nearest members for a tag it does not know) and fetches the object from the
// nearest holder when the store lacks it, resuming what an interrupted pull staged.
// [Agent.RemoveObject] removes an object here or on every agent of a target (a channel's
// latest only when forced); [Agent.DeleteChannel] gossips a signed tombstone. A store quota
// evicts least recently used objects, never a channel's latest, a tagged object or a version
// kept by Config.ChannelRetain, which removes older channel versions. Staged objects expire
// after Limits.StagingTTL. With Config.ScrubRate the agent re-verifies stored chunks in the
// background and repairs a bad one from another holder (scrub.go). With Config.ChannelDirs
// and ChannelHooks a subscriber keeps a channel's latest version at a path (atomic rename)
// and runs a hook on each new version; the hook's exit status reaches the push's report in
// the receiver's [Result].Hook. A push with [PushOptions].Channel publishes the channel
// whatever its target; publishing a channel nobody subscribes to and no version names is
// refused ([ErrConfig]).
//
// # Rate caps
//
// Config.RateLimit caps everything an agent sends (Push chunks and Fetch answers) with a
// token bucket; PushOptions.RateLimit caps every sender of one push (it travels in the Push
// headers).
//
// # Detached pushes
//
// The Submit and Upload RPCs start a push that belongs to the agent, not to the call
// (pushes.go, pushrun.go, pushwatch.go): it gets an id (the Accepted event), the client may
// go away, Watch reattaches, ListPushes and CancelPush list and stop pushes. Upload stores
// the client's bytes in one temporary file of the store, renamed into place only once the
// client's UploadEnd (digest and size) matches; a client that saw its file change
// ([StableFile], [CheckUnchanged]) sends an error instead and nothing is kept. A push runs
// in rounds: every member the target matches is listed, those gossip does not see alive as
// offline; receivers that fail while alive, and offline ones that come back, are fed in
// later rounds (at most three tries each), and a following push (SubmitRequest.follow) keeps
// feeding members that appear until its window ends. Each push's record is written
// atomically to DATA/pushes/ID.json at every change; a push that was running when the
// agent stopped resumes when it starts again on the same data directory (receivers resume
// from the chunks they hold: a parent sends a child only the chunks its Holding answer
// lacks, and a relay first sends its children what it holds). The last 200 finished
// records are kept.
//
// # The data directory
//
// DATA/store holds the objects (node/store), DATA/pushes the push records, DATA/peers.json
// the gossip addresses of the members last seen alive (Start joins them besides
// Config.Join, so a seed restarted without seeds finds its cluster again), and
// DATA/agent.lock the lock an agent holds while it runs: a second agent on the same
// directory fails to start with [ErrDataDirLocked]. With Config.MetricsAddr, GET /healthz
// (behind the same mutual TLS as the rest of the HTTP address) answers 200 while the agent
// serves and 503 once it stops.
//
// # Events and the live view
//
// The agent publishes what it sees on an event bus (package node/events): gossip's member
// changes, the pushes it sends (their plan, each receiver's progress at most every 250 ms,
// results, the re-attachments the engine's rule implies, the report), the repairs it makes
// itself, and the channel versions it publishes. Publishing never blocks: a reader that
// falls behind is cut off and resumes from the ring of recent events. The HTTP address serves
// them on /events and draws them on the live page (package node/liveview).
//
// # Stopping
//
// [Agent.Close] is graceful: the transfers the agent receives or relays are let run to their
// end (at most 10 s; the agent keeps serving and stays in gossip meanwhile), then gossip
// leave (announced in the metadata, so the others list the agent "left", not "dead"),
// running streams drained (at most 5 s), then everything closed; its own pushes stay
// running on disk and resume at the next start. [Agent.Kill] stops as a crash would (no leave, streams cut), for tests
// and demos of failures. Both wait for every goroutine the agent started.
//
// # Testing
//
// Package nodetest starts clusters of real agents on loopback (real gRPC, gossip and stores in
// temporary directories) and waits for gossip to converge. It is the one package under node/
// that imports node: a harness above the agent, as raft's rafttest is above raft.
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
