//go:build !linux

package gnsstest

import (
	"os"
	"testing"
)

// OpenPTY skips the test: the raw-mode pty helper is implemented for Linux
// only (the devices this agent runs on).
func OpenPTY(t testing.TB) (master *os.File, slavePath string) {
	t.Helper()
	t.Skip("gnsstest.OpenPTY: pseudo-terminals are only supported on linux")
	return nil, ""
}
