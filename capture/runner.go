package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Default reopen backoff bounds of a Runner.
const (
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// maxBadFrames is how many undecodable frames in a row a Runner skips
// before it treats the source as broken and reopens it (with backoff), so a
// folder of bad files cannot spin the CPU.
const maxBadFrames = 10

// fpsAlpha is the EWMA weight of the newest frame interval.
const fpsAlpha = 0.1

// Incompleter is an optional interface of a Source that drops incomplete
// frames itself (GigE): Incomplete is how many it dropped since it was
// opened. It must be safe to call between Reads. The Runner adds it to
// Stats.Incomplete.
type Incompleter interface {
	Incomplete() uint64
}

// Stats is a snapshot of a Runner's counters.
type Stats struct {
	Camera    string    `json:"camera"`
	FramesIn  uint64    `json:"frames_in"`  // frames read from the source
	Dropped   uint64    `json:"dropped"`    // oldest frames dropped for a slow consumer (live sources)
	BadFrames uint64    `json:"bad_frames"` // frames skipped because they did not decode
	Failures  uint64    `json:"failures"`   // failed opens and broken reads
	Reopens   uint64    `json:"reopens"`    // successful opens after a failure
	Queued    int       `json:"queued"`     // frames waiting in the channel
	FPS       float64   `json:"fps"`        // EWMA of the rate by frame timestamps
	LastFrame time.Time `json:"last_frame"` // Time of the newest frame
	LastError string    `json:"last_error,omitempty"`

	// Incomplete counts frames the source dropped because the camera
	// delivered them incomplete (GigE missing packets); see Incompleter.
	Incomplete uint64 `json:"incomplete"`

	// LastFrameAge is how long ago LastFrame was taken, at the time of the
	// snapshot (0 before the first frame): a live camera that went quiet
	// shows here before its stall timeout fires.
	LastFrameAge time.Duration `json:"last_frame_age_ns"`
	// Warnings are the settings the source refused or changed at its last
	// open (exposure, gain, size, ...); the camera runs on without them.
	Warnings []string `json:"warnings,omitempty"`
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// Runner owns one source: it opens it, reads frames into a bounded channel,
// and when the source fails (an error other than io.EOF or ctx's) it closes
// it, logs, waits with capped exponential backoff (reset after a good frame)
// and reopens it. For a live source (Config.Live) a slow consumer makes the
// Runner drop the oldest queued frame (closing its Mat); for a file or image
// folder it blocks instead. At io.EOF (a finite source without Loop) it
// closes the channel.
type Runner struct {
	// Open opens the source; it defaults to capture.Open. Tests replace it
	// with a fake. Set it before Start.
	Open func(ctx context.Context, cfg Config) (Source, error)
	// MinBackoff and MaxBackoff bound the pause before a reopen. Set them
	// before Start.
	MinBackoff, MaxBackoff time.Duration

	cfg    Config
	logger *slog.Logger
	frames chan Frame

	mu     sync.Mutex
	state  int
	cancel context.CancelFunc
	done   chan struct{}
	stats  Stats
}

// NewRunner returns a Runner for cfg with a channel of queue frames (at
// least 1). A nil logger discards.
func NewRunner(cfg Config, queue int, logger *slog.Logger) *Runner {
	if queue < 1 {
		queue = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		Open:       Open,
		MinBackoff: DefaultMinBackoff,
		MaxBackoff: DefaultMaxBackoff,
		cfg:        cfg,
		logger:     logger.With("subsystem", "capture", "camera", cfg.Name),
		frames:     make(chan Frame, queue),
		stats:      Stats{Camera: cfg.Name},
	}
}

// Start validates the config and starts the reading goroutine under ctx. It
// does not wait for the camera: a camera that cannot be opened is retried
// in the background and reported in Stats and the log.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.cfg.Validate(); err != nil {
		return fmt.Errorf("start capture %q: %w", r.cfg.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateStarted:
		return fmt.Errorf("start capture %q: %w", r.cfg.Name, ErrStarted)
	case stateClosed:
		return fmt.Errorf("start capture %q: %w", r.cfg.Name, ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	r.state = stateStarted
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.run(ctx)
	return nil
}

// Frames is the output. The receiver owns each Frame and must Close it. The
// channel is closed at the end of a finite source, after Close, or when the
// Start context ends.
func (r *Runner) Frames() <-chan Frame { return r.frames }

// Close stops the runner, waits for its goroutine (or for ctx), and closes
// the Mats of the frames still queued. It is idempotent.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	switch r.state {
	case stateNew:
		r.state = stateClosed
		close(r.frames)
		r.mu.Unlock()
		return nil
	case stateStarted:
		r.state = stateClosed
		r.cancel()
	}
	done := r.done
	r.mu.Unlock()
	if done == nil { // closed before it was started
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close capture %q: %w", r.cfg.Name, ctx.Err())
	}
	for f := range r.frames { // closed by run; a concurrent consumer may take some
		f.Close()
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Queued = len(r.frames)
	s.Warnings = slices.Clone(s.Warnings)
	if !s.LastFrame.IsZero() {
		// Recordings stamp frames ahead of the clock; an age is never negative.
		s.LastFrameAge = max(time.Since(s.LastFrame), 0)
	}
	return s
}

func (r *Runner) run(ctx context.Context) {
	defer close(r.done)
	defer close(r.frames)
	minB, maxB := r.MinBackoff, r.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB < minB {
		maxB = minB
	}
	backoff := minB
	opened := false
	for {
		src, err := r.Open(ctx, r.cfg)
		if err == nil && src == nil {
			err = fmt.Errorf("open camera %q: opener returned no source", r.cfg.Name)
		}
		if err == nil {
			if opened {
				r.update(func(s *Stats) { s.Reopens++ })
				r.logger.Info("camera reopened")
			}
			var warns []string
			if w, ok := src.(interface{ Warnings() []error }); ok {
				for _, err := range w.Warnings() { // settings the camera did not take
					r.logger.Warn("camera setting", "err", err)
					warns = append(warns, err.Error())
				}
			}
			r.update(func(s *Stats) { s.Warnings = warns })
			opened = true
			var n int
			n, err = r.pump(ctx, src)
			if cerr := src.Close(); cerr != nil {
				r.logger.Warn("close camera", "err", cerr)
			}
			if n > 0 {
				backoff = minB
			}
			if errors.Is(err, io.EOF) {
				r.logger.Info("camera source ended")
				return
			}
		}
		if ctx.Err() != nil {
			return // cancellation is not a failure
		}
		r.update(func(s *Stats) { s.Failures++; s.LastError = err.Error() })
		r.logger.Warn("camera failed; reopening", "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, maxB)
	}
}

// pump reads frames from src into the channel until an error, and returns
// how many frames it delivered.
func (r *Runner) pump(ctx context.Context, src Source) (int, error) {
	n, bad := 0, 0
	inc, _ := src.(Incompleter)
	var seen uint64
	for {
		f, err := src.Read(ctx)
		if inc != nil {
			if c := inc.Incomplete(); c != seen {
				r.update(func(s *Stats) { s.Incomplete += c - seen })
				seen = c
			}
		}
		if err != nil {
			if errors.Is(err, ErrBadFrame) && bad < maxBadFrames {
				bad++
				r.update(func(s *Stats) { s.BadFrames++; s.LastError = err.Error() })
				if bad == 1 { // one line per streak, not per frame
					r.logger.Warn("skipping bad frame", "err", err)
				}
				continue
			}
			return n, err
		}
		bad = 0
		r.record(f)
		if !r.deliver(ctx, f) {
			return n, ctx.Err()
		}
		n++
	}
}

func (r *Runner) record(f Frame) {
	r.update(func(s *Stats) {
		s.FramesIn++
		if !s.LastFrame.IsZero() {
			if dt := f.Time.Sub(s.LastFrame).Seconds(); dt > 0 {
				if s.FPS == 0 {
					s.FPS = 1 / dt
				} else {
					s.FPS += fpsAlpha * (1/dt - s.FPS)
				}
			}
		}
		s.LastFrame = f.Time
	})
}

// deliver queues f. It reports false (having closed f) if ctx ended.
func (r *Runner) deliver(ctx context.Context, f Frame) bool {
	if !r.cfg.Live() {
		select {
		case r.frames <- f:
			return true
		case <-ctx.Done():
			f.Close()
			return false
		}
	}
	// A live sensor must not wait for the consumer: make room by dropping
	// the oldest frame, which is the least useful one.
	for {
		if ctx.Err() != nil {
			f.Close()
			return false
		}
		select {
		case r.frames <- f:
			return true
		default:
		}
		select {
		case old := <-r.frames:
			old.Close()
			r.update(func(s *Stats) { s.Dropped++ })
		default:
		}
	}
}

func (r *Runner) update(fn func(*Stats)) {
	r.mu.Lock()
	fn(&r.stats)
	r.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
