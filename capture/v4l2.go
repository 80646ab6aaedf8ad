package capture

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"gocv.io/x/gocv"
)

// maxExposureUS bounds Config.ExposureUS for V4L2 (one second).
const maxExposureUS = 1e6

// v4l2ExposureManual is V4L2_EXPOSURE_MANUAL, the value OpenCV's V4L2
// backend passes through to V4L2_CID_EXPOSURE_AUTO for CAP_PROP_AUTO_EXPOSURE.
const v4l2ExposureManual = 1

// V4L2 is a Source reading a Video4Linux2 device through OpenCV.
type V4L2 struct {
	cfg      Config
	g        grabber
	seq      uint64
	format   string
	warnings []error
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
	s := &V4L2{cfg: cfg}
	s.warnings = applyV4L2(vc, cfg)
	s.format = fourccString(uint32(vc.Get(gocv.VideoCaptureFOURCC)))
	s.g.vc = vc
	return s, nil
}

// propDevice is the part of *gocv.VideoCapture that applyV4L2 uses, so the
// settings logic can be tested without a device.
type propDevice interface {
	Set(prop gocv.VideoCaptureProperties, v float64)
	Get(prop gocv.VideoCaptureProperties) float64
}

// applyV4L2 asks the driver for the configured format and controls and
// reads each back. A driver may refuse or round any of them; that is
// reported as a warning (Warnings, Stats.Warnings), not a failure, since
// the camera still delivers frames.
func applyV4L2(dev propDevice, cfg Config) []error {
	var warns []error
	warn := func(format string, args ...any) {
		warns = append(warns, fmt.Errorf("v4l2 device %s: "+format, append([]any{cfg.Path}, args...)...))
	}
	// The format goes first: it decides which sizes and rates exist.
	if cfg.PixelFormat != "" {
		name, code, _ := parsePixelFormat(cfg.PixelFormat) // Validate checked it
		dev.Set(gocv.VideoCaptureFOURCC, float64(code))
		if got := uint32(dev.Get(gocv.VideoCaptureFOURCC)); got != code {
			warn("pixel format: asked %s, driver uses %q", name, fourccString(got))
		}
	}
	if cfg.Width > 0 {
		dev.Set(gocv.VideoCaptureFrameWidth, float64(cfg.Width))
	}
	if cfg.Height > 0 {
		dev.Set(gocv.VideoCaptureFrameHeight, float64(cfg.Height))
	}
	if cfg.Width > 0 || cfg.Height > 0 {
		w, h := int(dev.Get(gocv.VideoCaptureFrameWidth)), int(dev.Get(gocv.VideoCaptureFrameHeight))
		if (cfg.Width > 0 && w != cfg.Width) || (cfg.Height > 0 && h != cfg.Height) {
			warn("size: asked %dx%d, driver gives %dx%d", cfg.Width, cfg.Height, w, h)
		}
	}
	if cfg.FPS > 0 {
		dev.Set(gocv.VideoCaptureFPS, cfg.FPS)
		if got := dev.Get(gocv.VideoCaptureFPS); math.Abs(got-cfg.FPS) > 0.5 {
			warn("fps: asked %g, driver gives %g", cfg.FPS, got)
		}
	}
	if us := cfg.ExposureUS; us > 0 {
		// UVC drivers ignore an exposure time while auto exposure is on.
		dev.Set(gocv.VideoCaptureAutoExposure, v4l2ExposureManual)
		if got := dev.Get(gocv.VideoCaptureAutoExposure); got != v4l2ExposureManual {
			warn("auto exposure: asked manual (%d), driver reports %g", v4l2ExposureManual, got)
		}
		want := math.Max(1, math.Round(us/100))
		dev.Set(gocv.VideoCaptureExposure, want)
		if got := dev.Get(gocv.VideoCaptureExposure); math.Abs(got-want) > math.Max(1, want/100) {
			warn("exposure: asked %g µs, driver reports %g µs", us, got*100)
		}
	}
	if g := cfg.V4L2Gain; g > 0 {
		dev.Set(gocv.VideoCaptureGain, g)
		if got := dev.Get(gocv.VideoCaptureGain); math.Abs(got-g) > math.Max(0.5, g/100) {
			warn("gain: asked %g, driver reports %g", g, got)
		}
	}
	// A short driver queue keeps latency low; the Runner does the queueing.
	dev.Set(gocv.VideoCaptureBufferSize, 2)
	return warns
}

// PixelFormat is the FourCC the driver delivers, as it reported at open.
func (s *V4L2) PixelFormat() string { return s.format }

// Warnings lists the settings the driver refused or changed at open.
func (s *V4L2) Warnings() []error { return s.warnings }

// Read grabs the next frame. If ctx ends first it returns ctx.Err() at once;
// the grab goes on in the background and its frame is returned by the next
// Read (or closed by Close), so no Mat is leaked. OpenCV's V4L2 backend
// bounds a grab by its select timeout (10 s), so no stall timer is needed.
func (s *V4L2) Read(ctx context.Context) (Frame, error) {
	gr, err := s.g.read(ctx, 0)
	switch {
	case err == nil:
	case errors.Is(err, ErrClosed):
		return Frame{}, fmt.Errorf("read v4l2 device %s: %w", s.cfg.Path, ErrClosed)
	case errors.Is(err, errGrab):
		return Frame{}, fmt.Errorf("read v4l2 device %s: %w", s.cfg.Path, ErrDevice)
	default:
		return Frame{}, err
	}
	s.seq++
	img, err := toBGR(gr.img)
	if err != nil {
		return Frame{}, fmt.Errorf("read v4l2 device %s: frame %d: %v: %w", s.cfg.Path, s.seq, err, ErrBadFrame)
	}
	return Frame{Img: img, Seq: s.seq, Time: gr.t, Camera: s.cfg.Name}, nil
}

// Close waits for an in-flight grab (bounded by the driver timeout), closes
// its frame and releases the device: the device must be free before it can
// be reopened. It is idempotent.
func (s *V4L2) Close() error {
	_, err := s.g.close(-1)
	return err
}

// parsePixelFormat returns the FourCC name and code of a pixel format
// setting, accepting the usual aliases.
func parsePixelFormat(s string) (name string, code uint32, err error) {
	switch strings.ToUpper(s) {
	case "MJPG", "MJPEG":
		s = "MJPG"
	case "YUYV", "YUY2":
		s = "YUYV"
	}
	code, err = fourcc(s)
	return s, code, err
}

// fourcc packs a four-character code the way V4L2 and OpenCV do: the first
// character in the low byte.
func fourcc(s string) (uint32, error) {
	if len(s) != 4 {
		return 0, fmt.Errorf("fourcc %q is not 4 characters", s)
	}
	var code uint32
	for i := 3; i >= 0; i-- {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return 0, fmt.Errorf("fourcc %q has a non-printable character", s)
		}
		code = code<<8 | uint32(c)
	}
	return code, nil
}

// fourccString unpacks a FourCC code; bytes that are not printable show
// as '?'.
func fourccString(code uint32) string {
	b := make([]byte, 4)
	for i := range b {
		c := byte(code >> (8 * i))
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

// validateV4L2 checks the V4L2 meaning of the shared fields PixelFormat
// (a FourCC) and ExposureUS, and V4L2Gain.
func (c Config) validateV4L2() error {
	if c.Kind != KindV4L2 {
		if c.V4L2Gain != 0 {
			return fmt.Errorf("capture config %q: v4l2_gain is for kind %q, not %q: %w", c.Name, KindV4L2, c.Kind, ErrInvalidConfig)
		}
		return nil
	}
	if c.PixelFormat != "" {
		if _, _, err := parsePixelFormat(c.PixelFormat); err != nil {
			return fmt.Errorf("capture config %q: pixel_format: %v (v4l2 wants MJPG, YUYV or another FourCC): %w", c.Name, err, ErrInvalidConfig)
		}
	}
	if c.ExposureUS < 0 || c.ExposureUS > maxExposureUS || math.IsNaN(c.ExposureUS) {
		return fmt.Errorf("capture config %q: exposure_us %v (want 0 to %g): %w", c.Name, c.ExposureUS, float64(maxExposureUS), ErrInvalidConfig)
	}
	if c.GainDB != 0 {
		return fmt.Errorf("capture config %q: gain_db: a v4l2 driver counts gain in its own units, set v4l2_gain: %w", c.Name, ErrInvalidConfig)
	}
	if c.V4L2Gain < 0 || math.IsNaN(c.V4L2Gain) || math.IsInf(c.V4L2Gain, 0) {
		return fmt.Errorf("capture config %q: v4l2_gain %v: %w", c.Name, c.V4L2Gain, ErrInvalidConfig)
	}
	return nil
}
