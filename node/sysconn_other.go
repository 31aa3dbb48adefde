//go:build !linux

package node

import "net"

// newSysConn returns c, writing gathered buffers with net.Buffers when it is a TCP
// connection: raw system calls are used on Linux only.
func newSysConn(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return tcpGather{tc}
	}
	return c
}

// tcpGather is a TCP connection that writes gathered buffers with writev where the system
// has it.
type tcpGather struct{ *net.TCPConn }

func (c tcpGather) writeBuffers(v net.Buffers) (int64, error) { return v.WriteTo(c.TCPConn) }
