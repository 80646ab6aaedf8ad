package capture_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

func closeRunner(t *testing.T, r *capture.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func liveConfig() capture.Config {
	return capture.Config{Name: "front", Kind: "v4l2", Path: "/dev/fake0"}
}

func TestRunner_ReopensAfterFailure(t *testing.T) {
	checkLeaks(t)
	op := &capturetest.Opener{
		New: func(int) *capturetest.Camera {
			return &capturetest.Camera{Spec: capturetest.SmallClip(50), Live: true, FailAfter: 4}
		},
		Fail: map[int]bool{2: true}, // the first reopen fails too
	}
	r := capture.NewRunner(liveConfig(), 64, nil)
	r.Open = op.Open
	r.MinBackoff, r.MaxBackoff = time.Millisecond, 4*time.Millisecond
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 4 frames per camera: 14 frames need at least 4 cameras, 3 reopens.
	for i := range 14 {
		f, ok := <-r.Frames()
		if !ok {
			t.Fatalf("channel closed after %d frames", i)
		}
		if f.Camera != "front" {
			t.Errorf("Camera = %q", f.Camera)
		}
		f.Close()
	}
	st := r.Stats()
	if st.Reopens < 3 || st.Failures < 4 || st.FramesIn < 14 || st.LastError == "" || st.Dropped != 0 {
		t.Errorf("stats %+v: want >= 3 reopens, >= 4 failures (one an open), a last error, no drops", st)
	}
	if op.Calls() < 5 {
		t.Errorf("opener called %d times, want >= 5", op.Calls())
	}
	closeRunner(t, r)
	for i, cam := range op.Cameras() {
		if !cam.Closed() {
			t.Errorf("camera %d not closed", i)
		}
	}
	if _, ok := <-r.Frames(); ok {
		t.Error("Frames() still open after Close")
	}
}

func TestRunner_DropsOldestForLiveSource(t *testing.T) {
	checkLeaks(t)
	op := &capturetest.Opener{New: func(int) *capturetest.Camera {
		return &capturetest.Camera{Spec: capturetest.SmallClip(20), Live: true}
	}}
	const queue = 3
	r := capture.NewRunner(liveConfig(), queue, nil)
	r.Open = op.Open
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The consumer is asleep: the runner must keep reading and drop.
	eventually(t, "drops", func() bool { return r.Stats().Dropped >= 10 })
	st := r.Stats()
	if st.Queued != queue || st.Reopens != 0 {
		t.Errorf("stats %+v: want a full queue of %d and no reopen", st, queue)
	}
	// The queued frames are the newest: their Seqs are far past 1 and
	// consecutive or close to it.
	f := <-r.Frames()
	if f.Seq <= 10 {
		t.Errorf("first frame read has Seq %d: the oldest frames were not dropped", f.Seq)
	}
	f.Close()
	closeRunner(t, r) // closes the Mats still queued; checkLeaks verifies
	if st := r.Stats(); st.FramesIn < st.Dropped+1 {
		t.Errorf("stats %+v: more dropped than read", st)
	}
}

func TestRunner_BlocksForFileSource(t *testing.T) {
	checkLeaks(t)
	const n, queue = 25, 2
	op := &capturetest.Opener{New: func(int) *capturetest.Camera {
		return capturetest.NewCamera(capturetest.SmallClip(n))
	}}
	r := capture.NewRunner(capture.Config{Name: "rec", Kind: "file", Path: "clip.avi"}, queue, nil)
	r.Open = op.Open
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer closeRunner(t, r)
	eventually(t, "a full queue", func() bool { return r.Stats().Queued == queue })
	time.Sleep(20 * time.Millisecond) // give a wrongly dropping runner the chance to
	if st := r.Stats(); st.Dropped != 0 || st.FramesIn > queue+1 {
		t.Errorf("stats %+v: a file source must block, not read ahead or drop", st)
	}
	var seq uint64
	for f := range r.Frames() { // ends when the source hits io.EOF
		seq++
		if f.Seq != seq {
			t.Errorf("Seq %d, want %d (no gaps for a file)", f.Seq, seq)
		}
		f.Close()
	}
	if seq != n {
		t.Errorf("got %d frames, want %d", seq, n)
	}
	if st := r.Stats(); st.Dropped != 0 || st.Reopens != 0 || st.Failures != 0 || st.FPS < 9 || st.FPS > 11 {
		t.Errorf("stats %+v: want no drops/reopens/failures and ~10 fps", st)
	}
}

func TestRunner_RealSources(t *testing.T) {
	clip := writeClip(t, 8)
	dir := t.TempDir()
	if err := capturetest.WriteImages(dir, capturetest.SmallClip(4)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "frame-0003.jpg"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cfg       capture.Config
		frames    int
		badFrames uint64
	}{
		{"File", capture.Config{Kind: "file", Path: clip}, 8, 0},
		{"ImagesWithBadFile", capture.Config{Kind: "images", Path: dir}, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			r := capture.NewRunner(tt.cfg, 4, nil)
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			n := 0
			for f := range r.Frames() {
				n++
				f.Close()
			}
			st := r.Stats()
			if n != tt.frames || st.BadFrames != tt.badFrames || st.Reopens != 0 {
				t.Errorf("got %d frames, stats %+v; want %d frames, %d bad", n, st, tt.frames, tt.badFrames)
			}
			closeRunner(t, r)
		})
	}
}

func TestRunner_OpenKeepsFailing(t *testing.T) {
	r := capture.NewRunner(capture.Config{Name: "front", Kind: "v4l2", Path: "/dev/video99"}, 2, nil)
	r.MinBackoff, r.MaxBackoff = time.Millisecond, 2*time.Millisecond
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start must not fail for an absent camera: %v", err)
	}
	eventually(t, "failures", func() bool { return r.Stats().Failures >= 3 })
	if st := r.Stats(); st.LastError == "" || st.FramesIn != 0 {
		t.Errorf("stats %+v", st)
	}
	closeRunner(t, r)
}

func TestRunner_Lifecycle(t *testing.T) {
	t.Run("CloseIdempotent", func(t *testing.T) {
		op := &capturetest.Opener{New: func(int) *capturetest.Camera {
			return &capturetest.Camera{Spec: capturetest.SmallClip(5), Live: true}
		}}
		r := capture.NewRunner(liveConfig(), 2, nil)
		r.Open = op.Open
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); !errors.Is(err, capture.ErrStarted) {
			t.Errorf("second Start = %v, want ErrStarted", err)
		}
		closeRunner(t, r)
		closeRunner(t, r)
		if err := r.Start(context.Background()); !errors.Is(err, capture.ErrClosed) {
			t.Errorf("Start after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("CloseBeforeStart", func(t *testing.T) {
		r := capture.NewRunner(liveConfig(), 2, nil)
		closeRunner(t, r)
		closeRunner(t, r)
		if _, ok := <-r.Frames(); ok {
			t.Error("Frames() open after Close")
		}
	})
	t.Run("ContextCanceled", func(t *testing.T) {
		op := &capturetest.Opener{New: func(int) *capturetest.Camera {
			return &capturetest.Camera{Spec: capturetest.SmallClip(5), Live: true, Interval: time.Millisecond}
		}}
		r := capture.NewRunner(liveConfig(), 2, nil)
		r.Open = op.Open
		ctx, cancel := context.WithCancel(context.Background())
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		f := <-r.Frames()
		f.Close()
		cancel()
		for f := range r.Frames() { // the channel closes once the runner stops
			f.Close()
		}
		if st := r.Stats(); st.Failures != 0 || st.LastError != "" {
			t.Errorf("cancellation counted as a failure: %+v", st)
		}
		closeRunner(t, r)
	})
	t.Run("InvalidConfig", func(t *testing.T) {
		r := capture.NewRunner(capture.Config{Kind: "nosuchkind", Path: "x"}, 2, nil)
		if err := r.Start(context.Background()); !errors.Is(err, capture.ErrUnknownKind) {
			t.Errorf("Start = %v, want ErrUnknownKind", err)
		}
	})
}
