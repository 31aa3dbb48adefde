package membership

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// filterTransport is memberlist's own UDP/TCP transport with a filter in front of it: gossip
// to or from a peer the filter blocks is dropped (packets vanish, connections are refused),
// as in a network partition. Tests use it (Config.gossipFilter) to partition and heal the
// gossip of agents that run in one process; gRPC traffic is not affected.
type filterTransport struct {
	*memberlist.NetTransport
	blocked func(peer string) bool // peer is a gossip address, host:port

	packets chan *memberlist.Packet
	closing chan struct{} // Shutdown began: drop everything, but keep reading
	done    chan struct{} // the inner transport is shut down: stop reading
	wg      sync.WaitGroup
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*filterTransport)(nil)

var errPartitioned = errors.New("membership: gossip peer partitioned away (test filter)")

func newFilterTransport(bindAddr string, bindPort int, blocked func(string) bool) (*filterTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{bindAddr}, BindPort: bindPort})
	if err != nil {
		return nil, fmt.Errorf("membership: gossip transport: %w", err)
	}
	t := &filterTransport{NetTransport: nt, blocked: blocked, packets: make(chan *memberlist.Packet),
		closing: make(chan struct{}), done: make(chan struct{})}
	// The inner transport's listener blocks until its packets are read, even while it shuts
	// down: this loop reads them until it is down. (Streams need no filter: a partition is
	// symmetric, and the other side's filter refuses to dial.)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			select {
			case p := <-nt.PacketCh():
				if t.blocked(p.From.String()) {
					continue
				}
				select {
				case t.packets <- p:
				case <-t.closing:
				}
			case <-t.done:
				return
			}
		}
	}()
	return t, nil
}

func (t *filterTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *filterTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.blocked(addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *filterTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *filterTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.blocked(addr) {
		return nil, errPartitioned
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *filterTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (t *filterTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.closing)
		err = t.NetTransport.Shutdown()
		close(t.done)
		t.wg.Wait()
	})
	return err
}
