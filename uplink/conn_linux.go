package uplink

import "syscall"

// quickAck sends the ACK the kernel holds back for what was just read, at
// once (TCP_QUICKACK is not sticky: the kernel may delay later ACKs again,
// so it is asked after every read). Errors are ignored: a delayed ACK is
// only slower.
func quickAck(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
