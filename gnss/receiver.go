package gnss

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Reopen backoff bounds; variables so tests can shorten them.
var (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

// garbageLimit is how many bytes may arrive without one good sentence before
// an auto-baud session gives up its rate and detects again (the receiver was
// reconfigured, or another device sits on the port). It is well above the
// decoder's 4 KiB read-ahead and the binary frames some receivers send
// between sentences. A variable so tests can shorten it.
var garbageLimit = 16 << 10

// BaudAuto, as Config.Baud, detects the rate among AutoBauds.
const BaudAuto = 0

// AutoBauds are the rates auto-detection tries, in order, after the last
// rate it detected.
var AutoBauds = []int{4800, 9600, 38400, 115200}

// minGoodSentences is how many sentences with a good checksum a rate must
// bring within DetectWindow to be chosen. Noise at a wrong rate practically
// never forms one.
const minGoodSentences = 2

// maxProbeBytes bounds what one rate's probe buffers: this much without
// minGoodSentences good sentences is a wrong rate.
const maxProbeBytes = 16 << 10

// Port is what a Receiver needs of a serial port; go.bug.st/serial's Port
// has it. Read returns (0, nil) when the read timeout passes without data;
// Close unblocks a pending Read.
type Port interface {
	io.ReadCloser
	SetReadTimeout(t time.Duration) error
}

// OpenFunc opens the serial port at path at the given baud rate.
type OpenFunc func(path string, baud int) (Port, error)

// OpenSerial is the default OpenFunc: go.bug.st/serial, 8N1.
func OpenSerial(path string, baud int) (Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud})
	if err != nil {
		return nil, err
	}
	return p, nil
}

const (
	readTimeout    = 500 * time.Millisecond
	logEvery       = 30 * time.Second // repeated port errors are logged at most this often
	healthySession = 5 * time.Second  // a port session this long resets the backoff
	defaultKeep    = 1024             // fixes kept by the Receiver's History (~3.4 min at 5 Hz): a pass is stamped when it ends, up to tracker.max_duration after its best frame
)

// Config configures a Receiver.
type Config struct {
	Port       string        // e.g. /dev/ttyUSB0 or a pty path; "" = no receiver
	Baud       int           // BaudAuto (0, the default) detects among AutoBauds at every open
	StaleAfter time.Duration // default 3s: History.At gives ok=false beyond it
	// DetectWindow is how long auto-detection listens at each rate (it moves
	// on as soon as good sentences arrive). Default 2s: a 1 Hz receiver sends
	// at least two sentences in it.
	DetectWindow time.Duration
	// Open opens the port; default OpenSerial. Tests pass fake ports here
	// (a pty ignores the baud rate, so detection cannot be tested on one).
	Open OpenFunc
}

// DefaultConfig returns the defaults: no port, auto baud, stale after 3s,
// 2s detection window per rate.
func DefaultConfig() Config {
	return Config{Baud: BaudAuto, StaleAfter: 3 * time.Second, DetectWindow: 2 * time.Second}
}

// Validate reports the first invalid field. Every error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.Baud < 0:
		return fmt.Errorf("%w: gnss.baud %d must be positive (or 0 to detect)", ErrInvalidConfig, c.Baud)
	case c.DetectWindow < 0:
		return fmt.Errorf("%w: gnss.detect_window %s must not be negative", ErrInvalidConfig, c.DetectWindow)
	case c.StaleAfter < 0:
		return fmt.Errorf("%w: gnss.stale_after %s must not be negative", ErrInvalidConfig, c.StaleAfter)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Baud < 0 {
		c.Baud = BaudAuto
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = d.StaleAfter
	}
	if c.DetectWindow <= 0 {
		c.DetectWindow = d.DetectWindow
	}
	if c.Open == nil {
		c.Open = OpenSerial
	}
	return c
}

// Status is a snapshot of a Receiver for diagnostics.
type Status struct {
	Enabled      bool      // a port is configured
	Port         string    // configured port path
	PortOpen     bool      // the port is open now (also while probing a rate)
	Opens        uint64    // sessions so far: opens kept for reading (baud probes that were closed again do not count)
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
	Baud         int       // rate in use: the configured one, or the detected one (0 while unknown)
	AutoBaud     bool      // the rate is detected (Config.Baud is BaudAuto)
	Detecting    bool      // probing rates now
	BaudDetects  uint64    // successful detections
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
	r.st.s.AutoBaud = cfg.Baud == BaudAuto
	r.st.s.Baud = cfg.Baud
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
		path:   r.cfg.Port,
		baud:   r.cfg.Baud,
		open:   r.cfg.Open,
		window: r.cfg.DetectWindow,
		log:    r.log,
		st:     &r.st,
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

// ReadPort reads the receiver at port (baud <= 0 detects the rate among
// AutoBauds) and calls emit
// for every fix until ctx is done, reopening the port with capped backoff when
// it is absent or disappears. It returns nil when ctx is done, ErrNoPort for an
// empty port, and emit's error (wrapped) when emit fails. Port trouble is
// logged to slog.Default, rate-limited.
func ReadPort(ctx context.Context, port string, baud int, emit func(Fix) error) error {
	if port == "" {
		return ErrNoPort
	}
	if baud < 0 {
		baud = BaudAuto
	}
	loop := &portLoop{
		path:   port,
		baud:   baud,
		open:   OpenSerial,
		window: DefaultConfig().DetectWindow,
		log:    slog.Default().With("subsystem", "gnss"),
		emit:   func(f Fix, _ time.Time) error { return emit(f) },
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
	path   string
	baud   int // BaudAuto: detect at every open
	open   OpenFunc
	window time.Duration // per-rate detection window
	log    *slog.Logger
	st     *statusTracker // nil for ReadPort
	emit   func(f Fix, seen time.Time) error

	logged     map[string]logState // by message+error: repeats are rate-limited
	remembered int                 // last detected rate, tried first
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
		port, rate, pre, err := l.connect(ctx)
		if ctx.Err() != nil {
			if port != nil {
				_ = port.Close()
			}
			return nil
		}
		if err != nil {
			l.st.update(func(s *Status) {
				s.LastError = err.Error()
				if !errors.Is(err, ErrNoBaud) {
					s.OpenErrors++
				}
			})
			msg := "gnss port unavailable"
			if errors.Is(err, ErrNoBaud) {
				msg = "gnss baud rate not detected"
			}
			l.logLimited(slog.LevelWarn, msg, err, "retry_in", backoff)
		} else {
			l.st.update(func(s *Status) { s.PortOpen = true; s.Opens++; s.Baud = rate })
			l.logLimited(slog.LevelInfo, "gnss port open", nil, "baud", rate)
			began := time.Now()
			err = l.session(ctx, port, pre)
			_ = port.Close()
			l.st.update(func(s *Status) {
				s.PortOpen = false
				if l.baud == BaudAuto {
					s.Baud = 0 // detected again at the next open
				}
			})
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

// connect opens the port at the configured rate, or detects the rate. pre
// holds what detection already read (it belongs to the session).
func (l *portLoop) connect(ctx context.Context) (port Port, rate int, pre []byte, err error) {
	if l.baud != BaudAuto {
		port, err = l.open(l.path, l.baud)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("open serial %s: %w", l.path, err)
		}
		return port, l.baud, nil, nil
	}
	return l.detect(ctx)
}

// detect tries the remembered rate, then AutoBauds, each for the detection
// window, and keeps the port open at the first rate where checksummed NMEA
// arrives. It returns ErrNoBaud (wrapped) when none does, and an open or read
// error when the port is absent or goes away.
func (l *portLoop) detect(ctx context.Context) (Port, int, []byte, error) {
	l.st.update(func(s *Status) { s.Detecting, s.Baud = true, 0 })
	defer l.st.update(func(s *Status) { s.Detecting = false })
	rates := make([]int, 0, len(AutoBauds)+1)
	if l.remembered != 0 {
		rates = append(rates, l.remembered)
	}
	for _, r := range AutoBauds {
		if r != l.remembered {
			rates = append(rates, r)
		}
	}
	var heard []string
	for _, rate := range rates {
		if ctx.Err() != nil {
			return nil, 0, nil, ctx.Err()
		}
		port, err := l.open(l.path, rate)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("open serial %s at %d baud: %w", l.path, rate, err)
		}
		l.st.update(func(s *Status) { s.PortOpen = true })
		pr, err := l.probe(ctx, port)
		if err == nil && pr.good >= minGoodSentences {
			l.remembered = rate
			l.st.update(func(s *Status) { s.BaudDetects++ })
			l.logLimited(slog.LevelInfo, "gnss baud detected", nil, "baud", rate)
			return port, rate, pr.buf, nil
		}
		_ = port.Close()
		l.st.update(func(s *Status) { s.PortOpen = false; s.BadSentences += uint64(pr.bad) })
		if err != nil {
			return nil, 0, nil, err
		}
		heard = append(heard, fmt.Sprintf("%d: %d bytes", rate, len(pr.buf)))
	}
	return nil, 0, nil, fmt.Errorf("detect baud on %s (%s): %w", l.path, strings.Join(heard, ", "), ErrNoBaud)
}

type probeResult struct {
	buf       []byte
	good, bad int
}

// probe reads port for the detection window, or until enough good sentences
// arrived, or until maxProbeBytes. A read error (other than ctx's) is
// returned: the port went away.
func (l *portLoop) probe(ctx context.Context, port Port) (probeResult, error) {
	var pr probeResult
	stop := context.AfterFunc(ctx, func() { _ = port.Close() })
	defer stop()
	deadline := time.Now().Add(l.window)
	chunk := make([]byte, 1024)
	scanned := 0
	for {
		left := time.Until(deadline)
		if left <= 0 || len(pr.buf) >= maxProbeBytes {
			return pr, nil
		}
		if err := port.SetReadTimeout(min(left, readTimeout)); err != nil {
			return pr, fmt.Errorf("set read timeout on %s: %w", l.path, err)
		}
		n, err := port.Read(chunk)
		if ctx.Err() != nil {
			return pr, ctx.Err()
		}
		if n > 0 {
			pr.buf = append(pr.buf, chunk[:n]...)
			l.st.update(func(s *Status) { s.Bytes += uint64(n) })
			g, b, next := countSentences(pr.buf, scanned)
			pr.good, pr.bad, scanned = pr.good+g, pr.bad+b, next
			if pr.good >= minGoodSentences {
				return pr, nil
			}
		}
		if err != nil {
			return pr, fmt.Errorf("read serial %s: %w", l.path, err)
		}
	}
}

// countSentences counts the candidate sentences (from the last '$' of a line
// to its end) with good and bad checksums in the complete lines of buf after
// from, and returns the offset after the last complete line.
func countSentences(buf []byte, from int) (good, bad, next int) {
	next = from
	for {
		i := bytes.IndexByte(buf[next:], '\n')
		if i < 0 {
			return good, bad, next
		}
		line := bytes.TrimRight(buf[next:next+i], "\r \t")
		next += i + 1
		j := bytes.LastIndexByte(line, '$')
		if j < 0 || len(line)-j < 7 {
			continue
		}
		if cand := line[j:]; checksumOK(string(cand)) && printable(cand) {
			good++
		} else {
			bad++
		}
	}
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// session reads an open port until it fails or ctx is done; pre is what
// baud detection already read from it. In auto-baud mode a long run of bytes
// without a good sentence ends the session with errGarbage (the rate is
// detected again).
func (l *portLoop) session(ctx context.Context, port Port, pre []byte) error {
	if err := port.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("set read timeout on %s: %w", l.path, err)
	}
	// Closing the port unblocks a pending Read at once.
	stop := context.AfterFunc(ctx, func() { _ = port.Close() })
	defer stop()

	pr := &portReader{ctx: ctx, port: port, st: l.st}
	if l.baud == BaudAuto {
		pr.garbageLimit = garbageLimit
	}
	var src io.Reader = pr
	if len(pre) > 0 {
		src = io.MultiReader(bytes.NewReader(pre), pr)
	}
	d := NewDecoder(src)
	d.now = time.Now
	d.onSentence = func(ok bool) {
		if ok {
			pr.sinceGood = 0
		}
		l.st.update(func(s *Status) {
			if ok {
				s.Sentences++
				s.LastSentence = time.Now()
			} else {
				s.BadSentences++
			}
		})
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

// errGarbage ends an auto-baud session whose port sends no NMEA any more.
var errGarbage = errors.New("no good sentence in a long run of bytes: detecting the baud rate again")

// portReader turns the port's read timeouts (0, nil) into a ctx check, so the
// decoder never sees an empty read, and counts bytes. With a garbageLimit it
// fails with errGarbage once that many bytes came without a good sentence
// (the decoder resets sinceGood).
type portReader struct {
	ctx          context.Context
	port         Port
	st           *statusTracker
	garbageLimit int
	sinceGood    int
}

func (p *portReader) Read(b []byte) (int, error) {
	for {
		if err := p.ctx.Err(); err != nil {
			return 0, err
		}
		if p.garbageLimit > 0 && p.sinceGood >= p.garbageLimit {
			return 0, errGarbage
		}
		n, err := p.port.Read(b)
		if n > 0 {
			p.sinceGood += n
			p.st.update(func(s *Status) { s.Bytes += uint64(n) })
			return n, err
		}
		if err != nil {
			return 0, err
		}
	}
}
