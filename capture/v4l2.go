package capture

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// V4L2 is a Source reading a Video4Linux2 device through OpenCV.
type V4L2 struct {
	cfg Config

	mu     sync.Mutex
	vc     *gocv.VideoCapture
	seq    uint64
	busy   chan struct{} // closed when the in-flight grab ends; nil when idle
	result chan grab     // result of the in-flight grab
}

type grab struct {
	img gocv.Mat
	t   time.Time
	ok  bool
}

var _ Source = (*V4L2)(nil)

func openV4L2(cfg Config) (*V4L2, error) {
	// OpenCV only logs a warning for a missing device; stat first so the
	// error says what is wrong and wraps fs.ErrNotExist.
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("open v4l2 device: %w", err)
	}
	vc, err := gocv.OpenVideoCaptureWithAPI(cfg.Path, gocv.VideoCaptureV4L2)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("open v4l2 device %s: %w", cfg.Path, ErrDevice)
	}
	if cfg.Width > 0 {
		vc.Set(gocv.VideoCaptureFrameWidth, float64(cfg.Width))
	}
	if cfg.Height > 0 {
		vc.Set(gocv.VideoCaptureFrameHeight, float64(cfg.Height))
	}
	if cfg.FPS > 0 {
		vc.Set(gocv.VideoCaptureFPS, cfg.FPS)
	}
	// A short driver queue keeps latency low; the Runner does the queueing.
	vc.Set(gocv.VideoCaptureBufferSize, 2)
	return &V4L2{cfg: cfg, vc: vc}, nil
}

// Read grabs the next frame. If ctx ends first it returns ctx.Err() at once;
// the grab goes on in the background and its frame is returned by the next
// Read (or closed by Close), so no Mat is leaked.
func (s *V4L2) Read(ctx context.Context) (Frame, error) {
	s.mu.Lock()
	if s.vc == nil {
		s.mu.Unlock()
		return Frame{}, fmt.Errorf("read v4l2 device %s: %w", s.cfg.Path, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return Frame{}, err
	}
	if s.busy == nil {
		s.busy = make(chan struct{})
		s.result = make(chan grab, 1)
		go s.grab(s.vc, s.busy, s.result)
	}
	busy, result := s.busy, s.result
	s.mu.Unlock()

	select {
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	case <-busy:
	}
	g := <-result
	s.mu.Lock()
	s.busy, s.result = nil, nil
	s.mu.Unlock()
	if !g.ok {
		return Frame{}, fmt.Errorf("read v4l2 device %s: %w", s.cfg.Path, ErrDevice)
	}
	s.seq++
	return Frame{Img: g.img, Seq: s.seq, Time: g.t, Camera: s.cfg.Name}, nil
}

func (s *V4L2) grab(vc *gocv.VideoCapture, busy chan struct{}, result chan grab) {
	img := gocv.NewMat()
	ok := vc.Read(&img)
	t := time.Now()
	if !ok || img.Empty() {
		img.Close()
		result <- grab{}
	} else {
		result <- grab{img: img, t: t, ok: true}
	}
	close(busy)
}

// Close waits for an in-flight grab (bounded by the driver timeout), closes
// its frame and releases the device. It is idempotent.
func (s *V4L2) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vc == nil {
		return nil
	}
	if s.busy != nil {
		<-s.busy
		if g := <-s.result; g.ok {
			g.img.Close()
		}
		s.busy, s.result = nil, nil
	}
	err := s.vc.Close()
	s.vc = nil
	return err
}
