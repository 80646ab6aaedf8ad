package capturetest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpr-agent/alpr-agent/capture"
)

// Camera is a fake capture.Source that plays a ClipSpec. As a live camera
// (Live) it stamps frames with time.Now() and never ends; otherwise it ends
// with io.EOF after the clip (unless Loop) and stamps frame i at
// open + i/FPS, like capture's file source.
type Camera struct {
	// Spec is the scene; keep it small (e.g. SmallClip) in tests, since
	// every frame is rendered.
	Spec ClipSpec
	// Name goes into Frame.Camera.
	Name string
	// FailAfter > 0 makes Read fail with ErrCameraFailed once this many
	// frames have been returned (and ever after).
	FailAfter int
	// Live makes the camera endless and stamps frames with time.Now().
	Live bool
	// Loop restarts the clip at its end (non-live only).
	Loop bool
	// Interval, if > 0, is slept before each frame (a live camera's frame
	// period), honouring ctx.
	Interval time.Duration

	mu     sync.Mutex
	start  time.Time
	n      int
	closed atomic.Bool
}

var _ capture.Source = (*Camera)(nil)

// NewCamera returns a finite (non-live) camera playing spec.
func NewCamera(spec ClipSpec) *Camera { return &Camera{Spec: spec, start: time.Now()} }

// SmallClip is a cheap 160x90 clip of frames frames at 10 fps with one car,
// for tests that need many frames, not legible plates.
func SmallClip(frames int) ClipSpec {
	return ClipSpec{
		Width: 160, Height: 90, FPS: 10, Duration: time.Duration(frames) * 100 * time.Millisecond, Seed: 7,
		Cars: []CarSpec{{Plate: "TEST01", Speed: 60, Lane: 85, Scale: 0.5}},
	}
}

// Read renders the next frame.
func (c *Camera) Read(ctx context.Context) (capture.Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return capture.Frame{}, fmt.Errorf("read fake camera %s: %w", c.Name, capture.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return capture.Frame{}, err
	}
	if c.FailAfter > 0 && c.n >= c.FailAfter {
		return capture.Frame{}, fmt.Errorf("read fake camera %s: %w: %w", c.Name, ErrCameraFailed, capture.ErrDevice)
	}
	frames := c.Spec.Frames()
	if frames == 0 {
		return capture.Frame{}, io.EOF
	}
	if !c.Live && !c.Loop && c.n >= frames {
		return capture.Frame{}, io.EOF
	}
	if c.Interval > 0 {
		t := time.NewTimer(c.Interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return capture.Frame{}, ctx.Err()
		}
	}
	if c.start.IsZero() {
		c.start = time.Now()
	}
	m, err := c.Spec.FrameMat(c.n % frames)
	if err != nil {
		return capture.Frame{}, fmt.Errorf("read fake camera %s: %w", c.Name, err)
	}
	ts := time.Now()
	if !c.Live {
		ts = c.start.Add(time.Duration(float64(c.n) * float64(time.Second) / c.Spec.FPS))
	}
	c.n++
	return capture.Frame{Img: m, Seq: uint64(c.n), Time: ts, Camera: c.Name}, nil
}

// Close is idempotent.
func (c *Camera) Close() error {
	c.closed.Store(true)
	return nil
}

// Closed reports whether Close was called.
func (c *Camera) Closed() bool { return c.closed.Load() }

// Opener is a fake capture.Runner.Open: each call makes a new Camera with
// New and counts the opens; the calls listed in Fail fail with
// ErrOpenFailed (1 is the first call).
type Opener struct {
	New  func(n int) *Camera
	Fail map[int]bool

	mu      sync.Mutex
	calls   int
	cameras []*Camera
}

// Open implements the signature of capture.Runner.Open.
func (o *Opener) Open(ctx context.Context, cfg capture.Config) (capture.Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.Fail[o.calls] {
		return nil, fmt.Errorf("open fake camera %s: %w", cfg.Name, ErrOpenFailed)
	}
	cam := o.New(o.calls)
	if cam.Name == "" {
		cam.Name = cfg.Name
	}
	o.cameras = append(o.cameras, cam)
	return cam, nil
}

// Calls is how many times Open was called.
func (o *Opener) Calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

// Cameras are the cameras opened so far.
func (o *Opener) Cameras() []*Camera {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*Camera(nil), o.cameras...)
}
