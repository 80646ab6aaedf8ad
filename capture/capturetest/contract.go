package capturetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/capture"
)

// RunSourceContract checks what every capture.Source promises. open must
// return a fresh, open source with at least three frames; the suite closes
// it.
func RunSourceContract(t *testing.T, open func(t *testing.T) capture.Source) {
	t.Helper()
	t.Run("Frames", func(t *testing.T) {
		src := open(t)
		defer src.Close()
		var prev capture.Frame
		for i := range 3 {
			f, err := src.Read(context.Background())
			if err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
			if f.Img.Empty() || f.Img.Type() != gocv.MatTypeCV8UC3 {
				t.Errorf("frame %d: empty %v, type %v; want BGR 8UC3", i, f.Img.Empty(), f.Img.Type())
			}
			if i == 0 && f.Seq < 1 {
				t.Errorf("first Seq = %d, want >= 1", f.Seq)
			}
			if i > 0 && (f.Seq <= prev.Seq || f.Time.Before(prev.Time)) {
				t.Errorf("frame %d: seq %d time %v after seq %d time %v", i, f.Seq, f.Time, prev.Seq, prev.Time)
			}
			// time.Time.String shows the monotonic reading as "m=±...".
			if !strings.Contains(f.Time.String(), "m=") {
				t.Errorf("frame %d: Time %v has no monotonic reading", i, f.Time)
			}
			prev = f
			if err := f.Close(); err != nil {
				t.Errorf("close frame: %v", err)
			}
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		src := open(t)
		defer src.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f, err := src.Read(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Read(canceled) = %v, want context.Canceled", err)
		}
		f.Close()
	})
	t.Run("Close", func(t *testing.T) {
		src := open(t)
		if err := src.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := src.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		f, err := src.Read(context.Background())
		if err == nil {
			f.Close()
			t.Errorf("Read after Close succeeded")
		}
	})
}
