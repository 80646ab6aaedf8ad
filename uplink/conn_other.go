//go:build !linux

package uplink

import "syscall"

// quickAck does nothing where TCP_QUICKACK does not exist.
func quickAck(syscall.RawConn) {}
