//go:build unix

package drain

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// errWouldBlock: nothing is buffered.
var errWouldBlock = errors.New("drain: would block")

// readNow reads what the kernel has buffered for nc, without waiting: one
// non-blocking read(2). A connection without a descriptor has nothing to
// read this way.
func readNow(nc net.Conn, p []byte) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, errWouldBlock
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				return true // done, whatever happened: never wait
			}
		}
	})
	if rerr != nil {
		n = 0
	}
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
