package boards

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// Profiles this build knows.
const (
	ProfileNone = "none" // a PC or test machine: no GPIO, temperatures only
	ProfileAuto = "auto" // load periph.io host drivers; use a Raspberry Pi pin map when the device tree names one
	ProfileRPi4 = "rpi4" // Raspberry Pi 4 (bcm283x GPIO)
	ProfileRPi5 = "rpi5" // Raspberry Pi 5 (RP1 GPIO through the gpio character device)
)

// Illuminator modes.
const (
	IROn     = "on"     // lit while capturing (SetCapturing(true))
	IRStrobe = "strobe" // one pulse per frame (FrameStart)
	IROff    = "off"    // never driven
)

// NotFitted, as a pin name, says the board has no such peripheral.
const NotFitted = "-"

// tickEvery is the board loop period: the resolution of LED patterns and of
// the ignition hold-off.
const tickEvery = 100 * time.Millisecond

// Pins names the GPIO lines of each function, as gpioreg.ByName knows them
// (BCM numbering on a Raspberry Pi: "GPIO18"). An empty field takes the
// profile's default; NotFitted ("-") marks the peripheral as absent.
type Pins struct {
	IR        string // IR illuminator output (through a driver/MOSFET)
	StatusLED string // status LED output (fix / no fix / uplink down / error patterns)
	ErrorLED  string // optional second LED, lit while Status.Err is set
	Ignition  string // ignition-sense input: high = ignition on, low = off
}

// RPiPins is the default pin map of the rpi4 and rpi5 profiles (BCM
// numbers, the same on both 40-pin headers). GPIO18 can do hardware PWM,
// which a strobing illuminator driver may want later.
var RPiPins = Pins{IR: "GPIO18", StatusLED: "GPIO23", ErrorLED: "GPIO24", Ignition: "GPIO17"}

// Config selects the board profile and where to read hardware state.
// Zero fields take DefaultConfig's values, so Config{Profile, SysfsRoot}
// alone is a valid configuration.
type Config struct {
	// Profile is "none" (no GPIO: a PC, a test machine), "rpi4", "rpi5" or
	// "auto" (load periph.io host drivers, report what loaded and pick a
	// Raspberry Pi pin map from the device-tree model).
	Profile string
	// SysfsRoot is the sysfs mount, configurable so tests point at fixtures.
	SysfsRoot string

	// Pins overrides the profile's pin map per pin.
	Pins Pins
	// IRMode is "on" (lit while capturing), "strobe" (pulse per frame) or
	// "off". Default "on".
	IRMode string
	// IRPulse is the strobe pulse length. Default 4ms.
	IRPulse time.Duration
	// IRActiveLow drives the illuminator low to light it (relay boards).
	IRActiveLow bool

	// Ignition enables the ignition-sense input (cruisers). Pole units leave
	// it off, so a floating input never shuts them down.
	Ignition bool
	// IgnitionHoldOff is how long the ignition must stay off before the board
	// asks for a graceful shutdown. Default 30s.
	IgnitionHoldOff time.Duration

	// ThermalZone is the thermal zone type to watch ("cpu-thermal"); empty
	// watches the hottest zone.
	ThermalZone string
	// ThrottleAboveC is the temperature above which the board suggests a
	// reduced frame rate. Default 80.
	ThrottleAboveC float64
	// ThrottleHysteresisC: throttling ends only below ThrottleAboveC minus
	// this. Default 5.
	ThrottleHysteresisC float64
	// ThrottleFactor is the frame-rate multiplier while throttled, in (0,1).
	// Default 0.5.
	ThrottleFactor float64
	// TempPoll is how often the temperature is read. Default 5s.
	TempPoll time.Duration

	// PinByName finds a pin; default gpioreg.ByName. When set, Start does not
	// initialise periph.io host drivers (the caller owns the pins): tests
	// pass gpiotest pins this way (see boardstest).
	PinByName func(name string) gpio.PinIO
	// NewTicker replaces time.NewTicker for the board loop; it returns the
	// tick channel and a stop func. Tests drive the loop tick by tick.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
	// AfterTick, when set, is called by the board loop after it handled the
	// tick at t (tests synchronise on it).
	AfterTick func(t time.Time)
}

// DefaultConfig returns the profile for a machine with no GPIO.
func DefaultConfig() Config {
	return Config{
		Profile:             ProfileNone,
		SysfsRoot:           "/sys",
		IRMode:              IROn,
		IRPulse:             4 * time.Millisecond,
		IgnitionHoldOff:     30 * time.Second,
		ThrottleAboveC:      80,
		ThrottleHysteresisC: 5,
		ThrottleFactor:      0.5,
		TempPoll:            5 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Profile == "" {
		c.Profile = d.Profile
	}
	if c.SysfsRoot == "" {
		c.SysfsRoot = d.SysfsRoot
	}
	if c.IRMode == "" {
		c.IRMode = d.IRMode
	}
	if c.IRPulse <= 0 {
		c.IRPulse = d.IRPulse
	}
	if c.IgnitionHoldOff <= 0 {
		c.IgnitionHoldOff = d.IgnitionHoldOff
	}
	if c.ThrottleAboveC == 0 {
		c.ThrottleAboveC = d.ThrottleAboveC
	}
	if c.ThrottleHysteresisC <= 0 {
		c.ThrottleHysteresisC = d.ThrottleHysteresisC
	}
	if c.ThrottleFactor == 0 {
		c.ThrottleFactor = d.ThrottleFactor
	}
	if c.TempPoll <= 0 {
		c.TempPoll = d.TempPoll
	}
	return c
}

// Validate reports a bad field by name. Zero fields are valid (defaults).
func (c Config) Validate() error {
	switch c.Profile {
	case ProfileNone, ProfileAuto, ProfileRPi4, ProfileRPi5:
	default:
		return fmt.Errorf("boards.profile %q: %w (want none, rpi4, rpi5 or auto)", c.Profile, ErrUnknownProfile)
	}
	if c.SysfsRoot == "" {
		return fmt.Errorf("boards.sysfs_root: %w: must not be empty", ErrInvalidConfig)
	}
	switch c.IRMode {
	case "", IROn, IRStrobe, IROff:
	default:
		return fmt.Errorf("boards.ir_mode %q: %w (want on, strobe or off)", c.IRMode, ErrInvalidConfig)
	}
	if c.ThrottleFactor < 0 || c.ThrottleFactor > 1 {
		return fmt.Errorf("boards.throttle_factor %g: %w: must be in (0,1]", c.ThrottleFactor, ErrInvalidConfig)
	}
	if c.IRPulse < 0 || c.IgnitionHoldOff < 0 || c.TempPoll < 0 || c.ThrottleHysteresisC < 0 {
		return fmt.Errorf("boards: %w: durations and hysteresis must not be negative", ErrInvalidConfig)
	}
	return nil
}

// State is the tri-state of one peripheral.
type State string

// The states a peripheral can be in after Start.
const (
	Loaded State = "loaded"
	Absent State = "absent"
	Broken State = "broken"
)

// Peripheral names reported by Peripherals (besides periph.io host drivers
// under the auto profile).
const (
	PeriphGPIO      = "gpio"
	PeriphIR        = "ir-illuminator"
	PeriphStatusLED = "status-led"
	PeriphErrorLED  = "error-led"
	PeriphIgnition  = "ignition-sense"
	PeriphCPUTemp   = "cpu-temperature"
)

// Peripheral is one piece of board hardware and how it came up.
type Peripheral struct {
	Name   string `json:"name"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Temperature is one thermal zone reading.
type Temperature struct {
	Zone    string  `json:"zone"`
	Celsius float64 `json:"celsius"`
}

// Status is what the agent tells the board to show on the status LED.
type Status struct {
	Fix      bool // GNSS has a current fix
	UplinkUp bool // the broker session is up
	Err      bool // something needs a technician (a stage keeps failing)
}

// Pattern is an LED blink pattern: one character per 100ms step, '1' lit,
// '0' dark, repeated.
type Pattern struct {
	Name  string
	Steps string
}

// The status LED patterns, in priority order (the first that applies wins).
var (
	PatternError      = Pattern{"error", "10"}               // fast blink, 5 Hz
	PatternNoFix      = Pattern{"no-fix", "1111100000"}      // slow blink, 1 Hz
	PatternUplinkDown = Pattern{"uplink-down", "1010000000"} // double blink each second
	PatternOK         = Pattern{"ok", "1111111111"}          // steady
)

// PatternFor returns the status LED pattern for s: error, then no fix, then
// uplink down, else ok.
func PatternFor(s Status) Pattern {
	switch {
	case s.Err:
		return PatternError
	case !s.Fix:
		return PatternNoFix
	case !s.UplinkUp:
		return PatternUplinkDown
	default:
		return PatternOK
	}
}

// outPin is an output with its polarity.
type outPin struct {
	p         gpio.PinIO
	activeLow bool
}

func (o *outPin) set(on bool) error {
	if o == nil {
		return nil
	}
	return o.p.Out(gpio.Level(on != o.activeLow))
}

// Board is the running board profile. Its methods are safe for concurrent
// use and never block on hardware beyond one GPIO write.
type Board struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	peripherals []Peripheral
	started     bool
	closed      bool
	cancel      context.CancelFunc
	done        chan struct{}

	// LEDs and ignition belong to the loop goroutine after Start.
	statusLED, errorLED *outPin
	ignition            gpio.PinIO

	status    Status // guarded by mu
	statusGen uint64 // bumped by SetStatus so a new pattern starts at step 0

	irMu      sync.Mutex
	ir        *outPin
	capturing bool
	strobeGen uint64
	irTimer   *time.Timer

	shutdown     chan struct{}
	shutdownOnce sync.Once

	throttled bool    // guarded by mu
	tempC     float64 // last watched temperature, guarded by mu
	hasTemp   bool
}

// New returns a board for cfg (zero fields take DefaultConfig's values);
// nothing touches hardware until Start. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) *Board {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Board{
		cfg:      cfg.withDefaults(),
		log:      logger.With("subsystem", "boards"),
		shutdown: make(chan struct{}),
	}
}

// Start loads the profile's drivers and pins and starts the board loop (LED
// patterns, ignition sense, temperature). A peripheral that fails is
// reported as broken, never returned as an error: the agent runs on with
// what it has. Errors: an invalid config, ErrStarted, ErrClosed, ctx's.
func (b *Board) Start(ctx context.Context) error {
	if err := b.cfg.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return ErrClosed
	case b.started:
		b.mu.Unlock()
		return ErrStarted
	}
	b.started = true
	b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}

	ps := b.setup()
	ps = append(ps, b.probeTemperature())
	for _, p := range ps {
		if p.State == Broken {
			b.log.Warn("peripheral broken", "name", p.Name, "reason", p.Reason)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.peripherals = ps
	if b.closed { // Close raced with Start
		return ErrClosed
	}
	loopCtx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	b.done = make(chan struct{})
	tick, stop := b.newTicker()
	go func() {
		defer close(b.done)
		defer stop()
		b.loop(loopCtx, tick)
	}()
	return nil
}

func (b *Board) newTicker() (<-chan time.Time, func()) {
	if b.cfg.NewTicker != nil {
		return b.cfg.NewTicker(tickEvery)
	}
	t := time.NewTicker(tickEvery)
	return t.C, t.Stop
}

// setup brings up the host drivers and the pins of the profile.
func (b *Board) setup() []Peripheral {
	var ps []Peripheral
	profile := b.cfg.Profile
	if profile == ProfileNone {
		ps = append(ps, Peripheral{Name: PeriphGPIO, State: Absent, Reason: "profile none"})
		for _, n := range []string{PeriphIR, PeriphStatusLED, PeriphErrorLED, PeriphIgnition} {
			ps = append(ps, Peripheral{Name: n, State: Absent, Reason: "profile none: no GPIO"})
		}
		return ps
	}
	byName := b.cfg.PinByName
	if byName == nil {
		hp, ok := b.initHost()
		ps = append(ps, hp...)
		if !ok {
			for _, n := range []string{PeriphIR, PeriphStatusLED, PeriphErrorLED, PeriphIgnition} {
				ps = append(ps, Peripheral{Name: n, State: Broken, Reason: "gpio host drivers failed"})
			}
			return ps
		}
		byName = func(name string) gpio.PinIO {
			if p := gpioreg.ByName(name); p != nil {
				return p
			}
			return nil
		}
	}
	if profile == ProfileAuto {
		model := DeviceModel(b.cfg.SysfsRoot)
		switch {
		case strings.Contains(model, "Raspberry Pi 5"):
			profile = ProfileRPi5
		case strings.Contains(model, "Raspberry Pi 4"):
			profile = ProfileRPi4
		default:
			why := "no pin map for this board"
			if model != "" {
				why += " (" + model + ")"
			}
			for _, n := range []string{PeriphIR, PeriphStatusLED, PeriphErrorLED, PeriphIgnition} {
				ps = append(ps, Peripheral{Name: n, State: Absent, Reason: why})
			}
			return ps
		}
		b.log.Info("board detected", "model", model, "profile", profile)
	}
	pins := b.pinMap()

	// IR illuminator.
	irP := Peripheral{Name: PeriphIR}
	if b.cfg.IRMode == IROff {
		irP.State, irP.Reason = Absent, "ir mode off"
	} else if o, p := b.output(byName, PeriphIR, pins.IR, b.cfg.IRActiveLow); o != nil {
		b.ir, irP = o, p
		irP.Reason = "mode " + b.cfg.IRMode + " on " + pins.IR
	} else {
		irP = p
	}
	ps = append(ps, irP)

	var p Peripheral
	b.statusLED, p = b.output(byName, PeriphStatusLED, pins.StatusLED, false)
	ps = append(ps, p)
	b.errorLED, p = b.output(byName, PeriphErrorLED, pins.ErrorLED, false)
	ps = append(ps, p)

	// Ignition sense.
	ig := Peripheral{Name: PeriphIgnition}
	switch {
	case !b.cfg.Ignition:
		ig.State, ig.Reason = Absent, "disabled in config"
	case pins.Ignition == NotFitted:
		ig.State, ig.Reason = Absent, "not fitted"
	default:
		pin := byName(pins.Ignition)
		if pin == nil {
			ig.State, ig.Reason = Broken, fmt.Sprintf("pin %s: %v", pins.Ignition, ErrPinNotFound)
			break
		}
		// Pull-down: a cut sense wire reads as ignition off, which on a
		// cruiser is the safe way to fail (a clean shutdown, not a flat battery).
		if err := pin.In(gpio.PullDown, gpio.NoEdge); err != nil {
			ig.State, ig.Reason = Broken, fmt.Sprintf("set %s input: %v", pins.Ignition, err)
			break
		}
		b.ignition = pin
		ig.State, ig.Reason = Loaded, fmt.Sprintf("%s, hold-off %s", pins.Ignition, b.cfg.IgnitionHoldOff)
	}
	ps = append(ps, ig)
	return ps
}

// initHost loads periph.io's host drivers and reports each. ok is false when
// host initialisation itself failed.
func (b *Board) initHost() (ps []Peripheral, ok bool) {
	st, err := host.Init()
	if err != nil {
		return []Peripheral{{Name: "host", State: Broken, Reason: err.Error()}}, false
	}
	for _, d := range st.Loaded {
		ps = append(ps, Peripheral{Name: d.String(), State: Loaded})
	}
	for _, d := range st.Skipped {
		ps = append(ps, Peripheral{Name: d.D.String(), State: Absent, Reason: d.Err.Error()})
	}
	for _, d := range st.Failed {
		ps = append(ps, Peripheral{Name: d.D.String(), State: Broken, Reason: d.Err.Error()})
	}
	return ps, true
}

// pinMap returns the profile's pins with the config's overrides.
func (b *Board) pinMap() Pins {
	m := RPiPins // rpi4 and rpi5 share the header numbering
	o := b.cfg.Pins
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&m.IR, o.IR}, {&m.StatusLED, o.StatusLED}, {&m.ErrorLED, o.ErrorLED}, {&m.Ignition, o.Ignition},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return m
}

// output finds and drives an output pin inactive, reporting how it went.
func (b *Board) output(byName func(string) gpio.PinIO, periph, name string, activeLow bool) (*outPin, Peripheral) {
	if name == NotFitted {
		return nil, Peripheral{Name: periph, State: Absent, Reason: "not fitted"}
	}
	pin := byName(name)
	if pin == nil {
		return nil, Peripheral{Name: periph, State: Broken, Reason: fmt.Sprintf("pin %s: %v", name, ErrPinNotFound)}
	}
	o := &outPin{p: pin, activeLow: activeLow}
	if err := o.set(false); err != nil {
		return nil, Peripheral{Name: periph, State: Broken, Reason: fmt.Sprintf("drive %s: %v", name, err)}
	}
	return o, Peripheral{Name: periph, State: Loaded, Reason: name}
}

// probeTemperature reports the watched thermal zone and takes a first reading.
func (b *Board) probeTemperature() Peripheral {
	p := Peripheral{Name: PeriphCPUTemp}
	c, zone, ok := b.readWatched()
	if !ok {
		p.State, p.Reason = Absent, "no readable thermal zone"
		if b.cfg.ThermalZone != "" {
			p.Reason = fmt.Sprintf("thermal zone %q not found", b.cfg.ThermalZone)
		}
		return p
	}
	b.updateThrottle(c)
	p.State, p.Reason = Loaded, fmt.Sprintf("%s, throttle above %g°C", zone, b.cfg.ThrottleAboveC)
	return p
}

// readWatched reads the configured zone, or the hottest one.
func (b *Board) readWatched() (celsius float64, zone string, ok bool) {
	for _, t := range ReadTemperatures(b.cfg.SysfsRoot) {
		if b.cfg.ThermalZone != "" {
			if t.Zone == b.cfg.ThermalZone {
				return t.Celsius, t.Zone, true
			}
			continue
		}
		if !ok || t.Celsius > celsius {
			celsius, zone, ok = t.Celsius, t.Zone, true
		}
	}
	return celsius, zone, ok
}

// updateThrottle applies the hysteresis: throttle above ThrottleAboveC,
// release below ThrottleAboveC - ThrottleHysteresisC.
func (b *Board) updateThrottle(c float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tempC, b.hasTemp = c, true
	was := b.throttled
	switch {
	case c > b.cfg.ThrottleAboveC:
		b.throttled = true
	case c < b.cfg.ThrottleAboveC-b.cfg.ThrottleHysteresisC:
		b.throttled = false
	}
	if b.throttled != was {
		b.log.Warn("cpu temperature throttling", "throttled", b.throttled, "celsius", c, "limit", b.cfg.ThrottleAboveC)
	}
}

// loop drives the LEDs, watches the ignition and polls the temperature, one
// tick at a time.
func (b *Board) loop(ctx context.Context, tick <-chan time.Time) {
	var (
		step     int
		gen      uint64
		lowSince time.Time
		lastTemp time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-tick:
			b.mu.Lock()
			st, g := b.status, b.statusGen
			b.mu.Unlock()
			if g != gen {
				gen, step = g, 0
			}
			pat := PatternFor(st).Steps
			_ = b.statusLED.set(pat[step%len(pat)] == '1')
			_ = b.errorLED.set(st.Err)
			step++

			if b.ignition != nil {
				if b.ignition.Read() == gpio.Low {
					if lowSince.IsZero() {
						lowSince = t
						b.log.Info("ignition off", "shutdown_in", b.cfg.IgnitionHoldOff)
					}
					if t.Sub(lowSince) >= b.cfg.IgnitionHoldOff {
						b.requestShutdown()
					}
				} else if !lowSince.IsZero() {
					lowSince = time.Time{}
					b.log.Info("ignition on")
				}
			}

			if lastTemp.IsZero() || t.Sub(lastTemp) >= b.cfg.TempPoll {
				lastTemp = t
				if c, _, ok := b.readWatched(); ok {
					b.updateThrottle(c)
				}
			}
			if b.cfg.AfterTick != nil {
				b.cfg.AfterTick(t)
			}
		}
	}
}

func (b *Board) requestShutdown() {
	b.shutdownOnce.Do(func() {
		b.log.Warn("ignition off for the hold-off: requesting shutdown", "hold_off", b.cfg.IgnitionHoldOff)
		close(b.shutdown)
	})
}

// ShutdownRequested is closed once the ignition has been off for the
// hold-off; the agent then shuts down gracefully. A bounce shorter than the
// hold-off does nothing. It is never closed without ignition sense.
func (b *Board) ShutdownRequested() <-chan struct{} { return b.shutdown }

// SetStatus sets what the status LED shows (see PatternFor). It takes effect
// at the next 100ms step; a changed status starts its pattern from the top.
func (b *Board) SetStatus(s Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s != b.status {
		b.status = s
		b.statusGen++
	}
}

// SetCapturing tells the board whether capture runs: in IR mode "on" the
// illuminator follows it; in "strobe" mode false also ends a pulse.
func (b *Board) SetCapturing(on bool) {
	b.irMu.Lock()
	defer b.irMu.Unlock()
	b.capturing = on
	if b.ir == nil {
		return
	}
	switch b.cfg.IRMode {
	case IROn:
		b.irSetLocked(on)
	case IRStrobe:
		if !on {
			b.strobeGen++
			b.irSetLocked(false)
		}
	}
}

// FrameStart pulses the illuminator for IRPulse in "strobe" mode (call it
// when the sensor starts exposing a frame); other modes ignore it. It never
// blocks: the pulse ends on a timer. A pulse started before the previous one
// ended extends it.
func (b *Board) FrameStart() {
	b.irMu.Lock()
	defer b.irMu.Unlock()
	if b.ir == nil || b.cfg.IRMode != IRStrobe {
		return
	}
	b.strobeGen++
	gen := b.strobeGen
	b.irSetLocked(true)
	if b.irTimer != nil {
		b.irTimer.Stop()
	}
	b.irTimer = time.AfterFunc(b.cfg.IRPulse, func() {
		b.irMu.Lock()
		defer b.irMu.Unlock()
		if b.strobeGen == gen {
			b.irSetLocked(false)
		}
	})
}

func (b *Board) irSetLocked(on bool) {
	if err := b.ir.set(on); err != nil {
		b.log.Warn("illuminator write failed", "err", err)
	}
}

// Throttle returns the suggested frame-rate multiplier: 1, or
// ThrottleFactor while the CPU is above ThrottleAboveC (until it cools below
// ThrottleAboveC - ThrottleHysteresisC).
func (b *Board) Throttle() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.throttled {
		return b.cfg.ThrottleFactor
	}
	return 1
}

// FrameInterval stretches the nominal frame interval by the throttle.
func (b *Board) FrameInterval(nominal time.Duration) time.Duration {
	return time.Duration(float64(nominal) / b.Throttle())
}

// CPUTemperature returns the last reading of the watched zone.
func (b *Board) CPUTemperature() (celsius float64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tempC, b.hasTemp
}

// Close stops the board loop, turns the illuminator and LEDs off and waits
// for the loop, at most until ctx is done. Idempotent.
func (b *Board) Close(ctx context.Context) error {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if already || cancel == nil {
		return nil
	}
	cancel()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close board: %w", ctx.Err())
	}
	b.irMu.Lock()
	b.strobeGen++
	if b.irTimer != nil {
		b.irTimer.Stop()
	}
	if b.ir != nil {
		b.irSetLocked(false)
	}
	b.irMu.Unlock()
	if err == nil { // the loop has exited: the LEDs are ours again
		err = errors.Join(b.statusLED.set(false), b.errorLED.set(false))
	}
	return err
}

// Peripherals returns the state of each peripheral as of Start.
func (b *Board) Peripherals() []Peripheral {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Peripheral(nil), b.peripherals...)
}

// Temperatures reads every thermal zone under SysfsRoot. Zones that cannot
// be read are skipped: a missing sensor is not an error for the caller.
func (b *Board) Temperatures() []Temperature {
	return ReadTemperatures(b.cfg.SysfsRoot)
}

// DeviceModel returns the device-tree model under root
// (firmware/devicetree/base/model, e.g. "Raspberry Pi 4 Model B Rev 1.4"),
// or "" when there is none (a PC).
func DeviceModel(root string) string {
	raw, err := os.ReadFile(filepath.Join(root, "firmware", "devicetree", "base", "model"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(raw), "\x00"))
}

// ReadTemperatures reads class/thermal/thermal_zone*/{type,temp} below root.
func ReadTemperatures(root string) []Temperature {
	zones, _ := filepath.Glob(filepath.Join(root, "class", "thermal", "thermal_zone*"))
	sort.Strings(zones)
	var out []Temperature
	for _, z := range zones {
		raw, err := os.ReadFile(filepath.Join(z, "temp"))
		if err != nil {
			continue
		}
		milli, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		if err != nil {
			continue
		}
		name := filepath.Base(z)
		if t, err := os.ReadFile(filepath.Join(z, "type")); err == nil {
			name = strings.TrimSpace(string(t))
		}
		out = append(out, Temperature{Zone: name, Celsius: milli / 1000})
	}
	return out
}
