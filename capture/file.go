package capture

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"

	"gocv.io/x/gocv"
)

// fallbackFileFPS is used when a video file does not say its frame rate.
const fallbackFileFPS = 10

// File is a Source that decodes a video file with OpenCV.
type File struct {
	cfg   Config
	vc    *gocv.VideoCapture
	pace  pacer
	next  uint64    // index of the next frame to return
	first *gocv.Mat // frame decoded by Open to prove the file is a video
	eof   bool
}

var _ Source = (*File)(nil)

func openFile(cfg Config) (*File, error) {
	if _, err := os.Stat(cfg.Path); err != nil {
		// os.Stat's error already names the path.
		return nil, fmt.Errorf("open video file: %w", err)
	}
	vc, err := gocv.VideoCaptureFile(cfg.Path)
	if err != nil {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("open video file %s: %w", cfg.Path, ErrNoFrames)
	}
	// Decode one frame now so a corrupt file fails at Open, naming the
	// path, rather than looking like an empty video at the first Read.
	first := gocv.NewMat()
	if !vc.Read(&first) || first.Empty() {
		first.Close()
		vc.Close()
		return nil, fmt.Errorf("open video file %s: %w", cfg.Path, ErrNoFrames)
	}
	fps := cfg.FPS
	if fps <= 0 {
		fps = vc.Get(gocv.VideoCaptureFPS)
		if fps <= 0 || fps > 1000 || math.IsNaN(fps) {
			fps = fallbackFileFPS
		}
	}
	return &File{cfg: cfg, vc: vc, pace: newPacer(fps, cfg.Realtime), first: &first}, nil
}

// FPS is the rate the timestamps follow: Config.FPS, else the file's own.
func (s *File) FPS() float64 { return s.pace.fps }

// Read returns the next frame, io.EOF after the last one (unless
// Config.Loop), or ctx.Err().
func (s *File) Read(ctx context.Context) (Frame, error) {
	if s.vc == nil {
		return Frame{}, fmt.Errorf("read video file %s: %w", s.cfg.Path, ErrClosed)
	}
	if s.eof {
		return Frame{}, io.EOF
	}
	t := s.pace.stamp(s.next)
	if err := s.pace.wait(ctx, t); err != nil {
		return Frame{}, err
	}
	img, err := s.decode()
	if err != nil {
		return Frame{}, err
	}
	s.next++
	return Frame{Img: img, Seq: s.next, Time: t, Camera: s.cfg.Name}, nil
}

func (s *File) decode() (gocv.Mat, error) {
	if s.first != nil {
		img := *s.first
		s.first = nil
		return img, nil
	}
	img := gocv.NewMat()
	if s.vc.Read(&img) && !img.Empty() {
		return img, nil
	}
	if !s.cfg.Loop {
		img.Close()
		s.eof = true
		return gocv.Mat{}, io.EOF
	}
	s.vc.Set(gocv.VideoCapturePosFrames, 0)
	if s.vc.Read(&img) && !img.Empty() {
		return img, nil
	}
	img.Close()
	return gocv.Mat{}, fmt.Errorf("rewind video file %s: %w", s.cfg.Path, ErrNoFrames)
}

// Close releases the file. It is idempotent.
func (s *File) Close() error {
	if s.vc == nil {
		return nil
	}
	if s.first != nil {
		s.first.Close()
		s.first = nil
	}
	err := s.vc.Close()
	s.vc = nil
	return err
}
