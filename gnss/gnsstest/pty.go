//go:build linux

package gnsstest

import (
	"fmt"
	"os"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// OpenPTY opens a real pseudo-terminal pair and returns its master side and
// the path of its slave side (what a Receiver opens as its "serial port").
// Both are closed at t.Cleanup.
//
// The helper keeps the slave open in raw mode itself, so bytes written to
// master before a reader opens the slave are kept (not echoed, not mangled)
// and a reader closing the slave does not hang up the master. Closing the
// master is an unplug: a reader of the slave then gets an error.
func OpenPTY(t testing.TB) (master *os.File, slavePath string) {
	t.Helper()
	m, s, err := Open()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		_ = s.Close()
	})
	return m, s.Name()
}

// Open is OpenPTY for programs that are not tests (the demo): the caller
// closes both files. The slave is in raw mode; the master is non-blocking
// and registered with Go's poller, so closing it unblocks a Read or Write
// in progress (creack/pty leaves it blocking, which would hang a writer
// whose reader went away).
func Open() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	if err := makeRaw(s); err != nil {
		_ = m.Close()
		_ = s.Close()
		return nil, nil, fmt.Errorf("set pty raw: %w", err)
	}
	fd, err := unix.Dup(int(m.Fd()))
	_ = m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		_ = s.Close()
		return nil, nil, fmt.Errorf("make pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}

func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}
