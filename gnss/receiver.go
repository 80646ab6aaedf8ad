package gnss

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Reopen backoff bounds; variables so tests can shorten them.
var (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

const (
	readTimeout    = 500 * time.Millisecond
	logEvery       = 30 * time.Second // repeated port errors are logged at most this often
	healthySession = 5 * time.Second  // a port session this long resets the backoff
	defaultKeep    = 1024             // fixes kept by the Receiver's History (~3.4 min at 5 Hz): a pass is stamped when it ends, up to tracker.max_duration after its best frame
)

// Config configures a Receiver.
type Config struct {
	Port       string        // e.g. /dev/ttyUSB0 or a pty path; "" = no receiver
	Baud       int           // default 9600
	StaleAfter time.Duration // default 3s: History.At gives ok=false beyond it
}

// DefaultConfig returns the defaults: no port, 9600 baud, stale after 3s.
func DefaultConfig() Config {
	return Config{Baud: 9600, StaleAfter: 3 * time.Second}
}

// Validate reports the first invalid field. Every error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.Baud < 0:
		return fmt.Errorf("%w: gnss.baud %d must be positive", ErrInvalidConfig, c.Baud)
	case c.StaleAfter < 0:
		return fmt.Errorf("%w: gnss.stale_after %s must not be negative", ErrInvalidConfig, c.StaleAfter)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Baud <= 0 {
		c.Baud = d.Baud
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = d.StaleAfter
	}
	return c
}

// Status is a snapshot of a Receiver for diagnostics.
type Status struct {
	Enabled      bool      // a port is configured
	Port         string    // configured port path
	PortOpen     bool      // the port is open now
	Opens        uint64    // successful opens so far
	OpenErrors   uint64    // failed opens so far
	LastError    string    // last open/read error ("" when none)
	LastSentence time.Time // local time of the last sentence with a good checksum
	HasFix       bool
	LastFix      Fix
	LastFixAt    time.Time // local time the last fix's epoch arrived
	Bytes        uint64    // bytes read from the port
	Sentences    uint64    // sentences with a good checksum
	BadSentences uint64    // sentences with a bad or missing checksum
	Fixes        uint64    // fixes decoded
}

// statusTracker is the mutable Status shared by the port goroutine and
// Status callers.
type statusTracker struct {
	mu sync.Mutex
	s  Status
}

func (t *statusTracker) update(f func(*Status)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	f(&t.s)
	t.mu.Unlock()
}

func (t *statusTracker) get() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.s
}

// Receiver reads a serial GNSS receiver, decodes it and feeds a History.
// A port that is absent or disappears is reopened with capped exponential
// backoff (100ms..5s); silence or garbage never blocks anyone, since
// consumers only call History().At and WallTime.
type Receiver struct {
	cfg  Config
	log  *slog.Logger
	hist *History
	st   statusTracker

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a Receiver for cfg (zero fields take DefaultConfig values).
// A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) *Receiver {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		cfg:  cfg,
		log:  logger.With("subsystem", "gnss"),
		hist: NewHistory(cfg.StaleAfter, defaultKeep),
	}
	r.st.s.Enabled = cfg.Port != ""
	r.st.s.Port = cfg.Port
	return r
}

// History returns the History the Receiver feeds. It is never nil.
func (r *Receiver) History() *History { return r.hist }

// Status returns a snapshot of the receiver's state.
func (r *Receiver) Status() Status { return r.st.get() }

// Start starts reading the port in the background until ctx is done or Close
// is called. With no port configured it only logs that GNSS is disabled.
// It does not wait for the port: an absent port is retried in the background.
func (r *Receiver) Start(ctx context.Context) error {
	if err := r.cfg.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.started:
		return ErrStarted
	}
	r.started = true
	if r.cfg.Port == "" {
		r.log.Info("gnss disabled: no port configured")
		return nil
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	loop := &portLoop{
		path: r.cfg.Port,
		baud: r.cfg.Baud,
		log:  r.log,
		st:   &r.st,
		emit: func(f Fix, seen time.Time) error {
			r.hist.Add(f, seen)
			return nil
		},
	}
	go func() {
		defer close(r.done)
		_ = loop.run(ctx) // emit never fails; run returns only when ctx is done
	}()
	return nil
}

// Close stops the port goroutine and waits for it, at most until ctx is
// done. It is idempotent.
func (r *Receiver) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close gnss receiver: %w", ctx.Err())
	}
}

// ReadPort reads the receiver at port (baud <= 0 means 9600) and calls emit
// for every fix until ctx is done, reopening the port with capped backoff when
// it is absent or disappears. It returns nil when ctx is done, ErrNoPort for an
// empty port, and emit's error (wrapped) when emit fails. Port trouble is
// logged to slog.Default, rate-limited.
func ReadPort(ctx context.Context, port string, baud int, emit func(Fix) error) error {
	if port == "" {
		return ErrNoPort
	}
	if baud <= 0 {
		baud = DefaultConfig().Baud
	}
	loop := &portLoop{
		path: port,
		baud: baud,
		log:  slog.Default().With("subsystem", "gnss"),
		emit: func(f Fix, _ time.Time) error { return emit(f) },
	}
	return loop.run(ctx)
}

// Replay decodes r (a captured NMEA log) and calls emit for every fix. It
// returns nil at the end of input, ctx's error when ctx is done (checked
// between fixes: a reader that blocks is not interrupted), a read error, or
// emit's error (wrapped).
func Replay(ctx context.Context, r io.Reader, emit func(Fix) error) error {
	d := NewDecoder(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := d.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := emit(f); err != nil {
			return fmt.Errorf("emit fix: %w", err)
		}
	}
}

// errEmit marks an error returned by the emit callback: it ends the loop.
type errEmit struct{ err error }

func (e errEmit) Error() string { return "emit fix: " + e.err.Error() }
func (e errEmit) Unwrap() error { return e.err }

// portLoop is the open/read/reopen loop shared by Receiver and ReadPort.
type portLoop struct {
	path string
	baud int
	log  *slog.Logger
	st   *statusTracker // nil for ReadPort
	emit func(f Fix, seen time.Time) error

	logged map[string]logState // by message+error: repeats are rate-limited
}

type logState struct {
	at         time.Time
	suppressed int
}

// logLimited logs at most once per logEvery for the same message and error
// (a flapping port must not flood the log), then says how many were held back.
func (l *portLoop) logLimited(level slog.Level, msg string, err error, args ...any) {
	key := msg
	if err != nil {
		key += ": " + err.Error()
		args = append(args, "err", err)
	}
	if l.logged == nil {
		l.logged = make(map[string]logState)
	}
	now := time.Now()
	st, seen := l.logged[key]
	if seen && now.Sub(st.at) < logEvery {
		st.suppressed++
		l.logged[key] = st
		return
	}
	if len(l.logged) > 64 { // errors with changing text: keep the map small
		clear(l.logged)
	}
	args = append(args, "port", l.path, "suppressed", st.suppressed)
	l.log.Log(context.Background(), level, msg, args...)
	l.logged[key] = logState{at: now}
}

func (l *portLoop) run(ctx context.Context) error {
	backoff := backoffMin
	for {
		if ctx.Err() != nil {
			return nil
		}
		port, err := serial.Open(l.path, &serial.Mode{BaudRate: l.baud})
		if err != nil {
			err = fmt.Errorf("open serial %s: %w", l.path, err)
			l.st.update(func(s *Status) { s.LastError = err.Error(); s.OpenErrors++ })
			l.logLimited(slog.LevelWarn, "gnss port unavailable", err, "retry_in", backoff)
		} else {
			l.st.update(func(s *Status) { s.PortOpen = true; s.Opens++ })
			l.logLimited(slog.LevelInfo, "gnss port open", nil, "baud", l.baud)
			began := time.Now()
			err = l.session(ctx, port)
			_ = port.Close()
			l.st.update(func(s *Status) { s.PortOpen = false })
			if ctx.Err() != nil {
				return nil
			}
			var ee errEmit
			if errors.As(err, &ee) {
				return ee
			}
			if time.Since(began) >= healthySession {
				backoff = backoffMin
			}
			l.st.update(func(s *Status) { s.LastError = err.Error() })
			l.logLimited(slog.LevelWarn, "gnss port lost", err, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// session reads an open port until it fails or ctx is done.
func (l *portLoop) session(ctx context.Context, port serial.Port) error {
	if err := port.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("set read timeout on %s: %w", l.path, err)
	}
	// Closing the port unblocks a pending Read at once.
	stop := context.AfterFunc(ctx, func() { _ = port.Close() })
	defer stop()

	d := NewDecoder(&portReader{ctx: ctx, port: port, st: l.st})
	d.now = time.Now
	if l.st != nil {
		d.onSentence = func(ok bool) {
			l.st.update(func(s *Status) {
				if ok {
					s.Sentences++
					s.LastSentence = time.Now()
				} else {
					s.BadSentences++
				}
			})
		}
	}
	for {
		f, seen, err := d.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("read serial %s: %w", l.path, err)
			}
			return err
		}
		l.st.update(func(s *Status) {
			s.HasFix, s.LastFix, s.LastFixAt = true, f, seen
			s.Fixes++
		})
		if err := l.emit(f, seen); err != nil {
			return errEmit{err}
		}
	}
}

// portReader turns the port's read timeouts (0, nil) into a ctx check, so the
// decoder never sees an empty read, and counts bytes.
type portReader struct {
	ctx  context.Context
	port serial.Port
	st   *statusTracker
}

func (p *portReader) Read(b []byte) (int, error) {
	for {
		if err := p.ctx.Err(); err != nil {
			return 0, err
		}
		n, err := p.port.Read(b)
		if n > 0 {
			p.st.update(func(s *Status) { s.Bytes += uint64(n) })
			return n, err
		}
		if err != nil {
			return 0, err
		}
	}
}
