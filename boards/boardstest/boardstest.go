// Package boardstest provides fakes for testing code that uses boards: fake
// GPIO pins (periph's gpiotest.Pin behind the same gpio.PinIO interface), a
// recorder of output writes, a tick-by-tick clock for the board loop, a fake
// sysfs, and New, which builds a started Board on them.
package boardstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/alpr-agent/alpr-agent/boards"
)

// hangGuard bounds every wait of the fakes; no test asserts a duration.
const hangGuard = 10 * time.Second

// Pin is a fake output or input: a gpiotest.Pin whose Out calls are also
// sent, in order, on Writes (buffered; a test that does not read it loses
// nothing but the record once the buffer is full).
type Pin struct {
	*gpiotest.Pin
	Writes chan gpio.Level
}

// NewPin returns a fake pin named name.
func NewPin(name string) *Pin {
	return &Pin{Pin: &gpiotest.Pin{N: name}, Writes: make(chan gpio.Level, 4096)}
}

// Out implements gpio.PinOut and records the level.
func (p *Pin) Out(l gpio.Level) error {
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	select {
	case p.Writes <- l:
	default:
	}
	return nil
}

// Set sets the level an input reads (the outside world driving the line).
// It does not go through Out, so it is not recorded.
func (p *Pin) Set(l gpio.Level) {
	p.Lock()
	p.L = l
	p.Unlock()
}

// Level returns the pin's current level.
func (p *Pin) Level() gpio.Level { return p.Read() }

// Next waits for the next recorded write.
func (p *Pin) Next(t testing.TB) gpio.Level {
	t.Helper()
	select {
	case l := <-p.Writes:
		return l
	case <-time.After(hangGuard):
		t.Fatalf("%s: no write", p.N)
		return gpio.Low
	}
}

// Drain discards the recorded writes so far.
func (p *Pin) Drain() {
	for {
		select {
		case <-p.Writes:
		default:
			return
		}
	}
}

var _ gpio.PinIO = (*Pin)(nil)

// Pins is a fake GPIO registry.
type Pins struct {
	mu   sync.Mutex
	pins map[string]*Pin
}

// NewPins returns a registry holding a fake pin for each name.
func NewPins(names ...string) *Pins {
	r := &Pins{pins: map[string]*Pin{}}
	for _, n := range names {
		r.pins[n] = NewPin(n)
	}
	return r
}

// Get returns the fake pin name, or nil.
func (r *Pins) Get(name string) *Pin {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pins[name]
}

// ByName is a boards.Config.PinByName: nil (an untyped nil interface) for an
// unknown name, like gpioreg.ByName.
func (r *Pins) ByName(name string) gpio.PinIO {
	if p := r.Get(name); p != nil {
		return p
	}
	return nil
}

// Clock drives the board loop one tick at a time. Wire it with
// cfg.NewTicker = c.NewTicker and cfg.AfterTick = c.AfterTick (New does).
type Clock struct {
	t       testing.TB
	mu      sync.Mutex
	now     time.Time
	period  time.Duration
	ch      chan time.Time
	ready   chan struct{}
	handled chan time.Time
}

// NewClock returns a clock whose first tick comes one period after start.
func NewClock(t testing.TB, start time.Time) *Clock {
	return &Clock{t: t, now: start, ch: make(chan time.Time), ready: make(chan struct{}), handled: make(chan time.Time)}
}

// NewTicker is a boards.Config.NewTicker. A board asks for one ticker.
func (c *Clock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	c.period = d
	c.mu.Unlock()
	close(c.ready)
	return c.ch, func() {}
}

// AfterTick is a boards.Config.AfterTick.
func (c *Clock) AfterTick(t time.Time) { c.handled <- t }

// Now returns the time of the last tick (or the start).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d without a tick (the next Tick comes a
// period after the new time).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Tick advances one period, delivers the tick and returns once the board
// loop has handled it.
func (c *Clock) Tick() time.Time {
	c.t.Helper()
	select {
	case <-c.ready:
	case <-time.After(hangGuard):
		c.t.Fatal("boardstest: the board never asked for a ticker (not started?)")
	}
	c.mu.Lock()
	c.now = c.now.Add(c.period)
	now := c.now
	c.mu.Unlock()
	select {
	case c.ch <- now:
	case <-time.After(hangGuard):
		c.t.Fatal("boardstest: the board loop does not take ticks (closed?)")
	}
	select {
	case <-c.handled:
	case <-time.After(hangGuard):
		c.t.Fatal("boardstest: the board loop did not finish a tick")
	}
	return now
}

// Ticks calls Tick n times.
func (c *Clock) Ticks(n int) {
	c.t.Helper()
	for i := 0; i < n; i++ {
		c.Tick()
	}
}

// Sysfs is a fake sysfs root in a temp dir.
type Sysfs struct {
	Root string
	t    testing.TB
}

// NewSysfs returns an empty fake sysfs under t.TempDir().
func NewSysfs(t testing.TB) *Sysfs { return &Sysfs{Root: t.TempDir(), t: t} }

// SetTemp writes thermal_zone<n> with the given type and temperature.
func (s *Sysfs) SetTemp(n int, typ string, celsius float64) {
	s.t.Helper()
	dir := filepath.Join(s.Root, "class", "thermal", fmt.Sprintf("thermal_zone%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "type"), []byte(typ+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	milli := strconv.FormatInt(int64(celsius*1000), 10)
	if err := os.WriteFile(filepath.Join(dir, "temp"), []byte(milli+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// SetModel writes the device-tree model (as the kernel does, NUL-terminated).
func (s *Sysfs) SetModel(model string) {
	s.t.Helper()
	dir := filepath.Join(s.Root, "firmware", "devicetree", "base")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model"), []byte(model+"\x00"), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// Fakes are what New wired a Board to.
type Fakes struct {
	Pins  *Pins
	Clock *Clock
	Sysfs *Sysfs
}

// Pin returns the fake for a pin name, failing the test when there is none.
func (f *Fakes) Pin(t testing.TB, name string) *Pin {
	t.Helper()
	p := f.Pins.Get(name)
	if p == nil {
		t.Fatalf("boardstest: no fake pin %s", name)
	}
	return p
}

// New builds and starts a Board for cfg on fake pins (the rpi pin map
// boards.RPiPins plus any names in cfg.Pins), a fake clock and a fake sysfs
// (cfg.SysfsRoot, if empty, becomes a new temp dir). An empty Profile
// becomes rpi4. The board is closed at t.Cleanup.
func New(t testing.TB, cfg boards.Config) (*boards.Board, *Fakes) {
	t.Helper()
	f := &Fakes{Clock: NewClock(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	if cfg.SysfsRoot == "" {
		f.Sysfs = NewSysfs(t)
		cfg.SysfsRoot = f.Sysfs.Root
	} else {
		f.Sysfs = &Sysfs{Root: cfg.SysfsRoot, t: t}
	}
	if cfg.Profile == "" {
		cfg.Profile = boards.ProfileRPi4
	}
	names := []string{boards.RPiPins.IR, boards.RPiPins.StatusLED, boards.RPiPins.ErrorLED, boards.RPiPins.Ignition}
	for _, n := range []string{cfg.Pins.IR, cfg.Pins.StatusLED, cfg.Pins.ErrorLED, cfg.Pins.Ignition} {
		if n != "" && n != boards.NotFitted {
			names = append(names, n)
		}
	}
	f.Pins = NewPins(names...)
	if cfg.PinByName == nil {
		cfg.PinByName = f.Pins.ByName
	}
	cfg.NewTicker = f.Clock.NewTicker
	cfg.AfterTick = f.Clock.AfterTick
	b := boards.New(cfg, nil)
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("boardstest: start board: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("boardstest: close board: %v", err)
		}
	})
	return b, f
}
