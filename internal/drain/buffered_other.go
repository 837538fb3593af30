//go:build !linux

package drain

import "net"

// buffered cannot tell how much the kernel holds on this platform.
func buffered(net.Conn) (int, bool) { return 0, false }
