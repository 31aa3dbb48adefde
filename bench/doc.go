// Package bench is treecast's benchmark harness: it distributes one object from one host to
// every other host of a network-namespace testbed (package bench/testbed: racks of hosts
// under a core switch, every arc shaped), with treecast and with the tools treecast competes
// with, side by side, and reports how long each took and how many copies each put on the
// network's arcs.
//
// # What runs
//
// A [Peer] is one way of distributing the object from host r0h0 to all others:
//
//   - [Treecast]: an agent (the treecast binary, `treecast agent`, a process of its own) in
//     every host, labelled with its rack, joined by gossip to the source's agent; once every
//     agent's gossip lists every agent, `treecast push OBJECT --to all --json` against the
//     source's agent, with the defaults or with extra flags.
//   - [UFTP]: IP multicast with NAK repair (uftpd in every receiver, uftp in the source, a
//     closed group, a fixed rate just under the link rate).
//   - [BitTorrent]: aria2c in every host with opentracker in the source; mktorrent makes the
//     torrent.
//   - [HTTP]: every receiver fetches the object from an HTTP server in the source with curl.
//
// The programs come from Debian packages (uftp, aria2, opentracker, mktorrent, curl);
// [EnsureTools] installs the missing ones with apt-get when allowed and root.
//
// # What is measured
//
// [Run] builds the testbed, writes a random object, and runs every peer Config.Runs times,
// interleaved (run 1 of every peer, then run 2, ...). A run's clock and the arc counters are
// read just before the transfer starts (after the peer's daemons are up: agents joined,
// uftpd listening, tracker up) and again once every receiver holds its copy; then every
// receiver's copy is read back and its SHA-256 compared with the object's. A [Result]
// holds the seconds, seconds over the ideal (object / (link rate x [Goodput])), the copies
// every arc carried (bytes on the arc / object size, from the switches' interface
// counters, so Ethernet, IP and TCP headers count: one TCP copy is about 1.05), the
// largest of them and its arc, and how many receivers verified.
//
// A run that fails (a timeout, a receiver without a byte-exact copy, a tool's error) is
// recorded with its error, and the benchmark goes on. The work directory (object, copies,
// a log per process) is removed at the end, or kept and named when a run failed or
// Config.Keep is set.
//
// # Reports
//
// [Report.WriteMarkdown] writes the setup, a table of medians per peer and a table of every
// run; [Report.WriteJSON] the same data; [Report.WritePNG] a plot of seconds and max copies
// per peer. The command `treecast bench testbed` runs all this and writes the three files.
//
// # Cleanup and cost
//
// Every process a run starts is stopped when the run ends (SIGTERM, then SIGKILL after 5 s),
// killed with the benchmark if it dies (parent-death signal), and the testbed's Close kills
// whatever still runs in its namespaces before deleting them, also when the context is
// cancelled (Ctrl-C). A benchmark costs Runs x peers transfers; HTTP unicast, which sends
// one copy per receiver through the source's link, is the slowest (receivers x ideal).
// Everything shares the machine's CPUs, so CPU-bound peers slow down on a busy machine:
// the report records the load average at the start and the end.
package bench
