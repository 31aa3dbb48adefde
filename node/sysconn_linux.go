package node

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sysConn is a Push stream's TCP connection whose reads and writes enter the kernel as raw
// system calls: the socket is non-blocking, so neither can block, and the Go scheduler need
// not be told (syscall.Syscall tells it, so that a blocked thread's processor can be handed
// to another). What that telling costs showed on a testbed of 64 agents on two cores: a
// data-carrying agent goes idle between packets, and the first system call after each idle
// spell wakes the runtime's monitor thread (sysmon), which then polls every 20
// microseconds for a while: a quarter of the agents' CPU time went to those wake-ups and
// the context switches they cost. Waiting for the socket is still the netpoller's (the
// connection's deadlines hold), and one call copies at most what it is given.
type sysConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// newSysConn returns c with raw reads and writes when it is a TCP connection, else c.
func newSysConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &sysConn{TCPConn: tc, rc: rc}
}

func (c *sysConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, c.opErr("read", err)
	case errno != 0:
		return 0, c.opErr("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *sysConn) Write(p []byte) (int, error) {
	n, err := c.writeBuffers(net.Buffers{p})
	return int(n), err
}

// writeBuffers writes v with writev (at most iovMax pieces a call), to the last byte unless an
// error stops it.
func (c *sysConn) writeBuffers(v net.Buffers) (int64, error) {
	var total int64
	var errno syscall.Errno
	iov := make([]syscall.Iovec, 0, min(len(v), iovMax))
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			iov = iov[:0]
			for _, b := range v {
				if len(iov) == iovMax {
					break
				}
				if len(b) > 0 {
					iov = append(iov, syscall.Iovec{Base: &b[0]})
					iov[len(iov)-1].SetLen(len(b))
				}
			}
			if len(iov) == 0 {
				return true
			}
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			switch e {
			case 0:
				total += int64(r)
				v = consume(v, int(r))
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
	})
	switch {
	case err != nil:
		return total, c.opErr("writev", err)
	case errno != 0:
		return total, c.opErr("writev", os.NewSyscallError("writev", errno))
	}
	return total, nil
}

// unacked returns the bytes written to the socket that the peer has not acknowledged yet
// (not sent, or in flight): the SIOCOUTQ ioctl, one system call.
func (c *sysConn) unacked() (int, bool) {
	var n int32
	var errno syscall.Errno
	err := c.rc.Control(func(fd uintptr) {
		_, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return int(n), true
}

// iovMax is Linux's limit on the pieces of one writev.
const iovMax = 1024

// consume drops the first n bytes of v.
func consume(v net.Buffers, n int) net.Buffers {
	for len(v) > 0 && n >= len(v[0]) {
		n -= len(v[0])
		v = v[1:]
	}
	if len(v) > 0 {
		v[0] = v[0][n:]
	}
	return v
}

// opErr wraps err as net.Conn's methods do (timeouts stay net.Error timeouts).
func (c *sysConn) opErr(op string, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
