package pgtest

import (
	"errors"
	"testing"
)

func TestNewServer_NotInstalled(t *testing.T) {
	_, err := newServer([]Option{WithBinDir(t.TempDir())})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("newServer with no binaries = %v, want ErrNotInstalled", err)
	}
}
