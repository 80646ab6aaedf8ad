package capture

import (
	"context"
	"fmt"
	"time"
)

// Source is one open camera, stream or file.
//
// Read blocks until the next frame, until ctx is done (it returns ctx.Err()),
// or until an error. Finite sources return io.EOF after the last frame. An
// error wrapping ErrBadFrame concerns only that frame; any other error means
// the source is broken and should be closed (and may be reopened). On error
// the returned Frame is the zero Frame. The caller owns a returned Frame.
//
// Read is not safe for concurrent use. Close releases the device or file; it
// is idempotent and may be called while no Read is running.
type Source interface {
	Read(ctx context.Context) (Frame, error)
	Close() error
}

// Kinds of Source that Open knows.
const (
	KindFile   = "file"   // a video file, decoded by OpenCV
	KindImages = "images" // a folder of .jpg/.jpeg/.png, sorted by name
	KindV4L2   = "v4l2"   // a Video4Linux2 device such as /dev/video0
	KindGigE   = "gige"   // a GigE Vision camera, through Aravis
	// KindRTSP is a network camera; Path is its rtsp:// URL.
	KindRTSP = "rtsp"
	// KindGStreamer is any GStreamer pipeline; Path is the pipeline, in
	// gst-launch syntax, ending in appsink.
	KindGStreamer = "gstreamer"
)

// DefaultImagesFPS is the playback rate of an image folder when Config.FPS
// is 0.
const DefaultImagesFPS = 10

// Config says which source to open and how.
type Config struct {
	// Name is the camera name (e.g. "front"); it is copied to Frame.Camera.
	Name string `yaml:"name" json:"name"`
	// Kind is one of the Kind constants.
	Kind string `yaml:"kind" json:"kind"`
	// Path is the file, folder or device path.
	Path string `yaml:"path" json:"path"`
	// Width and Height are requested from a V4L2 device (0 = driver
	// default); ignored for files and images.
	Width  int `yaml:"width" json:"width"`
	Height int `yaml:"height" json:"height"`
	// FPS is requested from a V4L2 device. For files and images it is the
	// playback rate that the timestamps follow: 0 means the file's own rate
	// (DefaultImagesFPS for images).
	FPS float64 `yaml:"fps" json:"fps"`
	// Realtime (files and images) paces frames at FPS, so Read returns no
	// earlier than the frame's timestamp, like a live camera. Without it
	// frames are read as fast as they are consumed.
	Realtime bool `yaml:"realtime" json:"realtime"`
	// Loop (files and images) restarts at the end instead of returning
	// io.EOF. Seq and Time keep counting up across the restart.
	Loop bool `yaml:"loop" json:"loop"`
	// PixelFormat is the camera's pixel format; frames are converted to
	// BGR. For GigE a GenICam name (GigEPixelFormats: Mono8, BayerRG8,
	// ...); for V4L2 a FourCC (MJPG, YUYV, ...); "" keeps the camera's.
	PixelFormat string `yaml:"pixel_format" json:"pixel_format"`
	// ExposureUS is the exposure time in µs, which turns auto exposure
	// off; 0 keeps the camera's setting. GigE and V4L2.
	ExposureUS float64 `yaml:"exposure_us" json:"exposure_us"`
	// GainDB is the gain in dB, which turns auto gain off; 0 keeps the
	// camera's setting. GigE only for now.
	GainDB float64 `yaml:"gain_db" json:"gain_db"`
	// V4L2Gain is a V4L2 device's gain in the driver's own units (V4L2
	// does not count in dB); 0 keeps the driver's setting.
	V4L2Gain float64 `yaml:"v4l2_gain" json:"v4l2_gain,omitempty"`
	// Stream tunes KindRTSP and KindGStreamer sources.
	Stream StreamOptions `yaml:"stream" json:"stream"`
}

// Live reports whether the source is a live sensor, which must never be
// blocked: the Runner drops the oldest frame for live sources and blocks for
// recordings (files, images).
func (c Config) Live() bool {
	return c.Kind != KindFile && c.Kind != KindImages
}

// Validate returns an error wrapping ErrInvalidConfig or ErrUnknownKind that
// names the bad field.
func (c Config) Validate() error {
	switch c.Kind {
	case KindFile, KindImages, KindV4L2, KindRTSP, KindGStreamer:
	case KindGigE:
		if err := c.validateGigE(); err != nil {
			return err
		}
	case "":
		return fmt.Errorf("capture config %q: kind: %w", c.Name, ErrInvalidConfig)
	default:
		return fmt.Errorf("capture config %q: kind %q: %w", c.Name, c.Kind, ErrUnknownKind)
	}
	if c.Path == "" {
		return fmt.Errorf("capture config %q: path is empty: %w", c.Name, ErrInvalidConfig)
	}
	if c.Width < 0 || c.Height < 0 {
		return fmt.Errorf("capture config %q: width/height %dx%d: %w", c.Name, c.Width, c.Height, ErrInvalidConfig)
	}
	if c.FPS < 0 || c.FPS > 1000 || c.FPS != c.FPS {
		return fmt.Errorf("capture config %q: fps %v: %w", c.Name, c.FPS, ErrInvalidConfig)
	}
	if err := c.validateStream(); err != nil {
		return err
	}
	return c.validateV4L2()
}

// Open validates cfg and opens the source it names. Errors name the path
// (a missing file or device wraps fs.ErrNotExist; a corrupt video wraps
// ErrNoFrames).
func Open(ctx context.Context, cfg Config) (Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case KindFile:
		return openFile(cfg)
	case KindImages:
		return openImages(cfg)
	case KindGigE:
		return openGigE(ctx, cfg)
	case KindRTSP, KindGStreamer:
		return openStream(ctx, cfg)
	default:
		return openV4L2(cfg)
	}
}

// pacer stamps frame i of a recording at start + i/fps on the monotonic
// clock and, in realtime mode, waits until that time.
type pacer struct {
	start    time.Time
	fps      float64
	realtime bool
}

func newPacer(fps float64, realtime bool) pacer {
	return pacer{start: time.Now(), fps: fps, realtime: realtime}
}

func (p pacer) stamp(i uint64) time.Time {
	return p.start.Add(time.Duration(float64(i) * float64(time.Second) / p.fps))
}

// wait blocks until t in realtime mode; it returns ctx.Err() if ctx ends
// first.
func (p pacer) wait(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !p.realtime {
		return nil
	}
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
