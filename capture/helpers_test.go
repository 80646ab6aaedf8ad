package capture_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

// writeClip writes a small clip of n frames at 10 fps and returns its path.
func writeClip(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.avi")
	if err := capturetest.WriteClip(path, capturetest.SmallClip(n)); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkLeaks fails the test if it leaves more Mats open than it found (only
// under -tags matprofile).
func checkLeaks(t *testing.T) {
	t.Helper()
	before := openMats()
	if before < 0 {
		return
	}
	t.Cleanup(func() {
		if after := openMats(); after != before {
			t.Errorf("gocv Mats open: %d before, %d after: a Mat leaked", before, after)
		}
	})
}

// eventually polls cond until it holds or a generous deadline passes; it
// waits for progress and asserts no duration.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
