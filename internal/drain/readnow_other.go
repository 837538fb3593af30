//go:build !unix

package drain

import (
	"errors"
	"net"
)

// errWouldBlock: nothing is buffered.
var errWouldBlock = errors.New("drain: would block")

// readNow cannot read without waiting on this platform: after Stop, a
// read at a message boundary ends the input at once.
func readNow(net.Conn, []byte) (int, error) { return 0, errWouldBlock }
