package storage

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendFile copies n bytes at pos of f to w with sendfile(2) when w exposes a
// raw socket descriptor. handled is false when it cannot, and nothing was
// written.
func sendFile(w io.Writer, f File, pos, n int64) (written int64, handled bool, err error) {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	src := int(f.Fd())
	var serr error
	werr := rc.Write(func(fd uintptr) bool {
		for written < n {
			off := pos + written
			m, e := unix.Sendfile(int(fd), src, &off, int(min(n-written, 1<<30)))
			if m > 0 {
				written += int64(m)
			}
			switch {
			case errors.Is(e, unix.EAGAIN):
				return false // wait until the socket is writable
			case errors.Is(e, unix.EINTR):
				continue
			case e != nil:
				serr = e
				return true
			case m == 0:
				serr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if serr == nil {
		serr = werr
	}
	return written, true, serr
}
