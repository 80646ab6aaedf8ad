package capture

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// Defaults of StreamOptions.
const (
	// DefaultRTSPLatency is the jitter buffer of an RTSP stream: enough for
	// a LAN or a good cellular link, small next to a plate's time in view.
	DefaultRTSPLatency = 200 * time.Millisecond
	// DefaultStallTimeout is how long a stream may send no frame before
	// Read fails and the Runner reopens it.
	DefaultStallTimeout = 5 * time.Second
)

// streamCloseWait bounds how long Close waits for a read in flight before
// it abandons the capture to that read (see Stream.Close).
const streamCloseWait = time.Second

// maxRTSPLatency bounds StreamOptions.Latency: beyond it a frame is too old
// to place a read in time.
const maxRTSPLatency = 10 * time.Second

// StreamOptions tune the network and pipeline sources (KindRTSP and
// KindGStreamer); Validate rejects them for other kinds.
type StreamOptions struct {
	// Transport carries RTSP media: "tcp" (default, "" means it) sends RTP
	// inside the RTSP connection, so a server that goes away is noticed at
	// once and NAT and firewalls do not matter; "udp" has the least latency
	// on a clean LAN; "auto" lets rtspsrc try UDP first, then TCP.
	Transport string `yaml:"transport" json:"transport,omitempty"`
	// Latency is the RTSP jitter buffer (0 = DefaultRTSPLatency).
	Latency time.Duration `yaml:"latency" json:"latency,omitempty"`
	// StallTimeout is how long a Read waits for a frame before it fails
	// with ErrDevice, so that the Runner reopens the stream
	// (0 = DefaultStallTimeout). Open, and the first frame after it, may
	// take twice as long (a decoder waits for a key frame).
	StallTimeout time.Duration `yaml:"stall_timeout" json:"stall_timeout,omitempty"`
}

// Stream is a live Source read through OpenCV's GStreamer backend: an RTSP
// camera (KindRTSP, Config.Path is the rtsp:// URL) or any GStreamer
// pipeline that ends in an appsink (KindGStreamer).
//
// RTSP goes through GStreamer rather than OpenCV's FFmpeg backend because
// gocv 0.31 cannot pass FFmpeg's per-capture open and read timeouts (only a
// process-wide environment variable can), while rtspsrc takes transport and
// latency per stream, opens in tens of milliseconds and fails at once on a
// refused connection. Neither backend can interrupt a read of a stream that
// went silent (OpenCV 4.6 blocks in the read for 25 to 30 s on RTSP and for
// ever on a UDP pipeline), and its open of a silent live pipeline blocks
// for ever too; so both run on a goroutine, and Open and Read give up after
// StreamOptions.StallTimeout (twice that for the open and first frame).
type Stream struct {
	cfg      Config
	pipeline string
	label    string // names the source in errors; an RTSP password is masked
	stall    time.Duration
	g        grabber
	seq      uint64
}

var _ Source = (*Stream)(nil)

func openStream(ctx context.Context, cfg Config) (*Stream, error) {
	s := &Stream{cfg: cfg, stall: cfg.Stream.StallTimeout}
	if s.stall <= 0 {
		s.stall = DefaultStallTimeout
	}
	if cfg.Kind == KindRTSP {
		s.pipeline = rtspPipeline(cfg)
		s.label = "rtsp stream " + redactURL(cfg.Path)
	} else {
		s.pipeline = cfg.Path
		s.label = fmt.Sprintf("gstreamer pipeline %q", cfg.Path)
	}
	if isBlocked(s.pipeline) {
		// A second pipeline would compete with the blocked one for the same
		// UDP port or camera session; wait (the Runner backs off) until the
		// stream comes back and releases it.
		return nil, fmt.Errorf("open %s: the previous capture is still blocked reading the stalled stream: %w", s.label, ErrDevice)
	}
	type opened struct {
		vc *gocv.VideoCapture
		ok bool
	}
	ch := make(chan opened, 1)
	go func() {
		vc, err := gocv.OpenVideoCaptureWithAPI(s.pipeline, gocv.VideoCaptureGstreamer)
		ch <- opened{vc, err == nil && vc != nil && vc.IsOpened()}
	}()
	// OpenCV 4.6 waits in open until the pipeline negotiates, which a silent
	// live source never does; give it as long as a first frame.
	timer := time.NewTimer(2 * s.stall)
	defer timer.Stop()
	abandon := func() {
		done := make(chan struct{})
		go func() {
			if o := <-ch; o.vc != nil {
				o.vc.Close()
			}
			close(done)
		}()
		markBlocked(s.pipeline, done)
	}
	select {
	case o := <-ch:
		if !o.ok {
			if o.vc != nil {
				o.vc.Close()
			}
			return nil, fmt.Errorf("open %s: GStreamer could not start it (refused, not found, or a bad pipeline; try it with gst-launch-1.0): %w", s.label, ErrDevice)
		}
		s.g.vc = o.vc
		return s, nil
	case <-ctx.Done():
		abandon()
		return nil, ctx.Err()
	case <-timer.C:
		abandon()
		return nil, fmt.Errorf("open %s: no frame format negotiated within %v (is the stream sending?): %w", s.label, 2*s.stall, ErrDevice)
	}
}

// rtspPipeline is the pipeline for an RTSP URL. The caps after rtspsrc keep
// an audio track away from the video decoder; appsink keeps only the newest
// frame, since the Runner does the queueing (and dropping).
func rtspPipeline(cfg Config) string {
	lat := cfg.Stream.Latency
	if lat <= 0 {
		lat = DefaultRTSPLatency
	}
	proto := " protocols=tcp"
	switch cfg.Stream.Transport {
	case "udp":
		proto = " protocols=udp"
	case "auto":
		proto = ""
	}
	return fmt.Sprintf(`rtspsrc location="%s" latency=%d%s ! application/x-rtp,media=video ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false`,
		cfg.Path, lat.Milliseconds(), proto)
}

// Read returns the next frame. It returns ctx.Err() at once when ctx ends
// (the read in flight goes on and its frame is returned by the next Read),
// and an error wrapping ErrDevice when the stream ends, fails or sends no
// frame for StallTimeout. A frame that is not a picture (a pipeline that
// delivers encoded bytes) wraps ErrBadFrame.
func (s *Stream) Read(ctx context.Context) (Frame, error) {
	stall := s.stall
	if s.seq == 0 {
		stall *= 2
	}
	gr, err := s.g.read(ctx, stall)
	switch {
	case err == nil:
	case errors.Is(err, ErrClosed):
		return Frame{}, fmt.Errorf("read %s: %w", s.label, ErrClosed)
	case errors.Is(err, errStalled):
		return Frame{}, fmt.Errorf("read %s: no frame for %v: %w", s.label, stall, ErrDevice)
	case errors.Is(err, errGrab):
		return Frame{}, fmt.Errorf("read %s: stream ended or failed: %w", s.label, ErrDevice)
	default:
		return Frame{}, err
	}
	s.seq++
	img, err := toBGR(gr.img)
	if err != nil {
		return Frame{}, fmt.Errorf("read %s: frame %d: %v: %w", s.label, s.seq, err, ErrBadFrame)
	}
	return Frame{Img: img, Seq: s.seq, Time: gr.t, Camera: s.cfg.Name}, nil
}

// toBGR takes img and returns it as BGR 8UC3 (closing img if it converts).
// OpenCV's appsink accepts gray and 4-channel video and even JPEG bytes,
// so a user pipeline without a BGR caps filter can deliver those.
func toBGR(img gocv.Mat) (gocv.Mat, error) {
	var code gocv.ColorConversionCode
	switch {
	case img.Type() == gocv.MatTypeCV8UC3:
		return img, nil
	case img.Rows() > 1 && img.Type() == gocv.MatTypeCV8UC1:
		code = gocv.ColorGrayToBGR
	case img.Rows() > 1 && img.Type() == gocv.MatTypeCV8UC4:
		code = gocv.ColorBGRAToBGR
	default:
		t, rows := img.Type(), img.Rows()
		img.Close()
		return gocv.Mat{}, fmt.Errorf("pipeline delivers %v with %d rows, not a BGR picture (end it with videoconvert ! video/x-raw,format=BGR ! appsink)", t, rows)
	}
	bgr := gocv.NewMat()
	gocv.CvtColor(img, &bgr, code)
	img.Close()
	return bgr, nil
}

// Close releases the pipeline. A read in flight is given streamCloseWait to
// end; a read blocked on a silent stream cannot be interrupted, so the
// pipeline is then left to that read, which releases it when the stream
// sends again or the backend gives up, and Close returns. Until then Open
// of the same stream fails with ErrDevice. It is idempotent.
func (s *Stream) Close() error {
	abandoned, err := s.g.close(streamCloseWait)
	if abandoned != nil {
		markBlocked(s.pipeline, abandoned)
	}
	return err
}

// blocked holds the pipelines abandoned to a blocked open or read, keyed by
// pipeline string; each channel is closed when its pipeline is released.
var blocked struct {
	sync.Mutex
	m map[string]<-chan struct{}
}

func markBlocked(key string, done <-chan struct{}) {
	blocked.Lock()
	if blocked.m == nil {
		blocked.m = make(map[string]<-chan struct{})
	}
	blocked.m[key] = done
	blocked.Unlock()
	go func() {
		<-done
		blocked.Lock()
		if blocked.m[key] == done {
			delete(blocked.m, key)
		}
		blocked.Unlock()
	}()
}

func isBlocked(key string) bool {
	blocked.Lock()
	ch := blocked.m[key]
	blocked.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// redactURL masks the password of an RTSP URL, for errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// validateStream checks the fields of the stream kinds. Errors do not
// quote an RTSP URL that may carry a password.
func (c Config) validateStream() error {
	if c.Kind != KindRTSP && c.Kind != KindGStreamer {
		if c.Stream != (StreamOptions{}) {
			return fmt.Errorf("capture config %q: stream options are for kinds %q and %q, not %q: %w", c.Name, KindRTSP, KindGStreamer, c.Kind, ErrInvalidConfig)
		}
		return nil
	}
	switch c.Stream.Transport {
	case "", "tcp", "udp", "auto":
	default:
		return fmt.Errorf("capture config %q: stream.transport %q (want tcp, udp or auto): %w", c.Name, c.Stream.Transport, ErrInvalidConfig)
	}
	if c.Stream.Latency < 0 || c.Stream.Latency > maxRTSPLatency {
		return fmt.Errorf("capture config %q: stream.latency %v (want 0 to %v): %w", c.Name, c.Stream.Latency, maxRTSPLatency, ErrInvalidConfig)
	}
	if c.Stream.StallTimeout < 0 {
		return fmt.Errorf("capture config %q: stream.stall_timeout %v: %w", c.Name, c.Stream.StallTimeout, ErrInvalidConfig)
	}
	if c.Kind == KindGStreamer {
		elems := strings.Split(c.Path, "!")
		last := strings.Fields(elems[len(elems)-1])
		if len(elems) < 2 || len(last) == 0 || last[0] != "appsink" {
			return fmt.Errorf("capture config %q: path: a gstreamer pipeline must end in appsink: %w", c.Name, ErrInvalidConfig)
		}
		return nil
	}
	// The URL goes into a pipeline string inside quotes.
	if strings.ContainsAny(c.Path, " \t\r\n\"\\") {
		return fmt.Errorf("capture config %q: path: rtsp URL has spaces, quotes or backslashes: %w", c.Name, ErrInvalidConfig)
	}
	u, err := url.Parse(c.Path)
	if err != nil {
		return fmt.Errorf("capture config %q: path is not a valid URL: %w", c.Name, ErrInvalidConfig)
	}
	switch u.Scheme {
	case "rtsp", "rtsps", "rtspt", "rtsph":
	default:
		return fmt.Errorf("capture config %q: path %s: scheme %q is not rtsp, rtsps, rtspt or rtsph: %w", c.Name, u.Redacted(), u.Scheme, ErrInvalidConfig)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("capture config %q: path %s: no host: %w", c.Name, u.Redacted(), ErrInvalidConfig)
	}
	return nil
}
