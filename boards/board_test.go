package boards_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/alpr-agent/alpr-agent/boards"
	"github.com/alpr-agent/alpr-agent/boards/boardstest"
)

func peripheral(t *testing.T, b *boards.Board, name string) boards.Peripheral {
	t.Helper()
	for _, p := range b.Peripherals() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no peripheral %s in %+v", name, b.Peripherals())
	return boards.Peripheral{}
}

func TestBoard_Peripherals(t *testing.T) {
	tests := []struct {
		name string
		cfg  boards.Config
		pins func(*boardstest.Pins) func(string) gpio.PinIO // nil: all RPi pins present
		temp bool
		want map[string]boards.State
	}{
		{
			name: "RPi4AllLoaded",
			cfg:  boards.Config{Profile: boards.ProfileRPi4, Ignition: true},
			temp: true,
			want: map[string]boards.State{
				boards.PeriphIR: boards.Loaded, boards.PeriphStatusLED: boards.Loaded, boards.PeriphErrorLED: boards.Loaded,
				boards.PeriphIgnition: boards.Loaded, boards.PeriphCPUTemp: boards.Loaded,
			},
		},
		{
			name: "RPi5PoleUnit",
			cfg:  boards.Config{Profile: boards.ProfileRPi5, IRMode: boards.IROff, Pins: boards.Pins{ErrorLED: boards.NotFitted}},
			want: map[string]boards.State{
				boards.PeriphIR: boards.Absent, boards.PeriphStatusLED: boards.Loaded, boards.PeriphErrorLED: boards.Absent,
				boards.PeriphIgnition: boards.Absent, boards.PeriphCPUTemp: boards.Absent,
			},
		},
		{
			name: "MissingPinsAreBroken",
			cfg:  boards.Config{Profile: boards.ProfileRPi4, Ignition: true, Pins: boards.Pins{IR: "GPIO99"}},
			pins: func(p *boardstest.Pins) func(string) gpio.PinIO {
				return func(name string) gpio.PinIO {
					if name == "GPIO17" || name == "GPIO99" {
						return nil
					}
					return p.ByName(name)
				}
			},
			want: map[string]boards.State{
				boards.PeriphIR: boards.Broken, boards.PeriphStatusLED: boards.Loaded,
				boards.PeriphIgnition: boards.Broken,
			},
		},
		{
			name: "AutoOnAPCWithoutDeviceTree",
			cfg:  boards.Config{Profile: boards.ProfileAuto},
			pins: func(p *boardstest.Pins) func(string) gpio.PinIO { return p.ByName },
			want: map[string]boards.State{boards.PeriphIR: boards.Absent, boards.PeriphStatusLED: boards.Absent},
		},
		{
			name: "None",
			cfg:  boards.Config{Profile: boards.ProfileNone},
			temp: true,
			want: map[string]boards.State{
				"gpio": boards.Absent, boards.PeriphIR: boards.Absent, boards.PeriphIgnition: boards.Absent,
				boards.PeriphCPUTemp: boards.Loaded,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := boardstest.NewSysfs(t)
			if tt.temp {
				sys.SetTemp(0, "cpu-thermal", 45)
			}
			cfg := tt.cfg
			cfg.SysfsRoot = sys.Root
			if tt.pins != nil {
				names := boardstest.NewPins("GPIO18", "GPIO23", "GPIO24", "GPIO17")
				cfg.PinByName = tt.pins(names)
			}
			b, _ := boardstest.New(t, cfg)
			for name, want := range tt.want {
				p := peripheral(t, b, name)
				if p.State != want {
					t.Errorf("%s = %+v, want %s", name, p, want)
				}
				if p.State != boards.Loaded && p.Reason == "" {
					t.Errorf("%s is %s without a reason", name, p.State)
				}
				if p.State == boards.Broken && !strings.Contains(p.Reason, boards.ErrPinNotFound.Error()) {
					t.Errorf("%s reason %q", name, p.Reason)
				}
			}
		})
	}
}

func TestBoard_AutoPicksRPiPinMap(t *testing.T) {
	sys := boardstest.NewSysfs(t)
	sys.SetModel("Raspberry Pi 5 Model B Rev 1.0")
	b, f := boardstest.New(t, boards.Config{Profile: boards.ProfileAuto, SysfsRoot: sys.Root})
	if p := peripheral(t, b, boards.PeriphStatusLED); p.State != boards.Loaded || p.Reason != "GPIO23" {
		t.Fatalf("status led = %+v", p)
	}
	f.Clock.Tick()
	if l := f.Pin(t, "GPIO23").Level(); l != gpio.High { // no fix: slow blink starts lit
		t.Errorf("status LED after first tick = %v", l)
	}
}

func TestBoard_StatusLEDPatterns(t *testing.T) {
	b, f := boardstest.New(t, boards.Config{})
	led, errLED := f.Pin(t, "GPIO23"), f.Pin(t, "GPIO24")

	tests := []struct {
		name   string
		status boards.Status
		want   string // levels for 20 ticks
		err    bool
	}{
		{"NoFix", boards.Status{UplinkUp: true}, "11111000001111100000", false},
		{"UplinkDown", boards.Status{Fix: true}, "10100000001010000000", false},
		{"OK", boards.Status{Fix: true, UplinkUp: true}, "11111111111111111111", false},
		{"Error", boards.Status{Fix: true, UplinkUp: true, Err: true}, "10101010101010101010", true},
		{"ErrorWinsOverNoFix", boards.Status{Err: true}, "10101010101010101010", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.SetStatus(tt.status)
			if got := boards.PatternFor(tt.status).Steps; !strings.HasPrefix(tt.want, got[:min(len(got), len(tt.want))]) {
				t.Errorf("PatternFor = %q", got)
			}
			led.Drain()
			errLED.Drain()
			var got strings.Builder
			for i := 0; i < len(tt.want); i++ {
				f.Clock.Tick()
				got.WriteByte("01"[b2i(led.Next(t) == gpio.High)])
				if e := errLED.Next(t) == gpio.High; e != tt.err {
					t.Fatalf("tick %d: error LED %v, want %v", i, e, tt.err)
				}
			}
			if got.String() != tt.want {
				t.Errorf("status LED %s, want %s", got.String(), tt.want)
			}
		})
	}
}

func TestBoard_SetStatusRestartsPattern(t *testing.T) {
	b, f := boardstest.New(t, boards.Config{})
	led := f.Pin(t, "GPIO23")
	b.SetStatus(boards.Status{Fix: true}) // uplink down: 1010000000
	f.Clock.Ticks(5)
	b.SetStatus(boards.Status{Fix: true}) // unchanged: the pattern goes on
	led.Drain()
	f.Clock.Tick()
	if l := led.Next(t); l != gpio.Low { // step 5 of 1010000000
		t.Errorf("unchanged status restarted the pattern")
	}
	b.SetStatus(boards.Status{}) // no fix: 1111100000 from the top
	led.Drain()
	f.Clock.Tick()
	if l := led.Next(t); l != gpio.High {
		t.Errorf("new status did not start at its first step")
	}
}

func TestBoard_Illuminator(t *testing.T) {
	t.Run("On", func(t *testing.T) {
		b, f := boardstest.New(t, boards.Config{IRMode: boards.IROn})
		ir := f.Pin(t, "GPIO18")
		b.FrameStart() // ignored in mode on
		if ir.Level() != gpio.Low {
			t.Fatal("lit before capture")
		}
		b.SetCapturing(true)
		if ir.Level() != gpio.High {
			t.Fatal("not lit while capturing")
		}
		b.SetCapturing(false)
		if ir.Level() != gpio.Low {
			t.Fatal("lit after capture")
		}
	})
	t.Run("ActiveLow", func(t *testing.T) {
		b, f := boardstest.New(t, boards.Config{IRMode: boards.IROn, IRActiveLow: true})
		ir := f.Pin(t, "GPIO18")
		if ir.Level() != gpio.High {
			t.Fatal("active-low illuminator lit at start")
		}
		b.SetCapturing(true)
		if ir.Level() != gpio.Low {
			t.Fatal("active-low illuminator not lit while capturing")
		}
	})
	t.Run("Strobe", func(t *testing.T) {
		b, f := boardstest.New(t, boards.Config{IRMode: boards.IRStrobe, IRPulse: time.Millisecond})
		ir := f.Pin(t, "GPIO18")
		ir.Drain()
		b.SetCapturing(true)
		for i := 0; i < 3; i++ {
			b.FrameStart()
			if l := ir.Next(t); l != gpio.High {
				t.Fatalf("frame %d: pulse starts %v", i, l)
			}
			if l := ir.Next(t); l != gpio.Low { // the pulse ends on its own
				t.Fatalf("frame %d: pulse ends %v", i, l)
			}
		}
	})
	t.Run("StrobeEndsOnStop", func(t *testing.T) {
		b, f := boardstest.New(t, boards.Config{IRMode: boards.IRStrobe, IRPulse: time.Hour})
		ir := f.Pin(t, "GPIO18")
		b.FrameStart()
		if ir.Level() != gpio.High {
			t.Fatal("no pulse")
		}
		b.SetCapturing(false)
		if ir.Level() != gpio.Low {
			t.Fatal("pulse outlived capture")
		}
	})
	t.Run("OffNeverDrives", func(t *testing.T) {
		b, f := boardstest.New(t, boards.Config{IRMode: boards.IROff})
		ir := f.Pin(t, "GPIO18")
		b.SetCapturing(true)
		b.FrameStart()
		if ir.Level() != gpio.Low || len(ir.Writes) != 0 {
			t.Fatalf("mode off drove the pin (%d writes)", len(ir.Writes))
		}
	})
	t.Run("NoneProfileIgnoresCalls", func(t *testing.T) {
		b := boards.New(boards.Config{Profile: boards.ProfileNone, IRMode: boards.IRStrobe}, nil)
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		b.SetCapturing(true)
		b.FrameStart()
		b.SetStatus(boards.Status{Err: true})
	})
}

func TestBoard_Ignition(t *testing.T) {
	holdOff := 3 * time.Second
	tests := []struct {
		name     string
		lowTicks []int // runs of ticks with ignition off, separated by one tick on
		want     bool
	}{
		{"StaysOn", nil, false},
		{"BounceShorterThanHoldOff", []int{29}, false}, // 2.9s off, then on
		{"RepeatedBounces", []int{20, 20, 20, 29}, false},
		{"OffForHoldOff", []int{31}, true}, // first low tick starts the hold-off
		{"BounceThenOff", []int{10, 31}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, f := boardstest.New(t, boards.Config{Ignition: true, IgnitionHoldOff: holdOff})
			ign := f.Pin(t, "GPIO17")
			ign.Set(gpio.High)
			f.Clock.Ticks(3)
			for _, n := range tt.lowTicks {
				ign.Set(gpio.Low)
				f.Clock.Ticks(n)
				if n < 31 {
					ign.Set(gpio.High)
					f.Clock.Tick()
				}
			}
			select {
			case <-b.ShutdownRequested():
				if !tt.want {
					t.Fatal("shutdown requested")
				}
			default:
				if tt.want {
					t.Fatal("no shutdown after the hold-off")
				}
			}
		})
	}
	t.Run("ClockJump", func(t *testing.T) {
		// The hold-off is measured on the tick times: a long stall of the
		// loop counts as time off.
		b, f := boardstest.New(t, boards.Config{Ignition: true, IgnitionHoldOff: time.Minute})
		f.Pin(t, "GPIO17").Set(gpio.Low)
		f.Clock.Tick()
		f.Clock.Advance(time.Minute)
		f.Clock.Tick()
		select {
		case <-b.ShutdownRequested():
		default:
			t.Fatal("no shutdown")
		}
	})
	t.Run("DisabledNeverFires", func(t *testing.T) {
		b, f := boardstest.New(t, boards.Config{})
		f.Pin(t, "GPIO17").Set(gpio.Low)
		f.Clock.Tick()
		f.Clock.Advance(time.Hour)
		f.Clock.Tick()
		select {
		case <-b.ShutdownRequested():
			t.Fatal("shutdown without ignition sense")
		default:
		}
	})
}

func TestBoard_Throttle(t *testing.T) {
	sys := boardstest.NewSysfs(t)
	sys.SetTemp(0, "cpu-thermal", 60)
	sys.SetTemp(1, "gpu-thermal", 90) // not the watched zone
	b, f := boardstest.New(t, boards.Config{
		SysfsRoot: sys.Root, ThermalZone: "cpu-thermal",
		ThrottleAboveC: 80, ThrottleHysteresisC: 5, ThrottleFactor: 0.5, TempPoll: time.Second,
	})
	steps := []struct {
		celsius float64
		want    float64
	}{
		{60, 1}, {80, 1}, {80.5, 0.5}, {78, 0.5}, {75.5, 0.5}, {74.9, 1}, {79, 1}, {85, 0.5},
	}
	for i, s := range steps {
		sys.SetTemp(0, "cpu-thermal", s.celsius)
		f.Clock.Advance(time.Second) // the next tick polls
		f.Clock.Tick()
		if got := b.Throttle(); got != s.want {
			t.Errorf("step %d at %g°C: Throttle = %g, want %g", i, s.celsius, got, s.want)
		}
		if c, ok := b.CPUTemperature(); !ok || c != s.celsius {
			t.Errorf("step %d: CPUTemperature = %g %v", i, c, ok)
		}
	}
	if got := b.FrameInterval(100 * time.Millisecond); got != 200*time.Millisecond {
		t.Errorf("FrameInterval while throttled = %v", got)
	}
	// A zone that vanishes keeps the last decision.
	sys2 := boardstest.NewSysfs(t)
	b2, f2 := boardstest.New(t, boards.Config{SysfsRoot: sys2.Root})
	f2.Clock.Tick()
	if b2.Throttle() != 1 {
		t.Error("throttled without a sensor")
	}
	if p := peripheral(t, b2, boards.PeriphCPUTemp); p.State != boards.Absent {
		t.Errorf("cpu temperature without zones = %+v", p)
	}
}

func TestBoard_Lifecycle(t *testing.T) {
	sys := boardstest.NewSysfs(t)
	pins := boardstest.NewPins("GPIO18", "GPIO23", "GPIO24", "GPIO17")
	clk := boardstest.NewClock(t, time.Now())
	b := boards.New(boards.Config{
		Profile: boards.ProfileRPi4, SysfsRoot: sys.Root, PinByName: pins.ByName,
		NewTicker: clk.NewTicker, AfterTick: clk.AfterTick,
	}, nil)
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); !errors.Is(err, boards.ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	b.SetStatus(boards.Status{Fix: true, UplinkUp: true})
	b.SetCapturing(true)
	clk.Tick()
	if pins.Get("GPIO23").Level() != gpio.High || pins.Get("GPIO18").Level() != gpio.High {
		t.Fatal("LED or illuminator not lit")
	}
	for i := 0; i < 2; i++ {
		if err := b.Close(ctx); err != nil {
			t.Fatalf("Close #%d: %v", i, err)
		}
	}
	if pins.Get("GPIO23").Level() != gpio.Low || pins.Get("GPIO18").Level() != gpio.Low {
		t.Error("LED or illuminator left lit after Close")
	}
	if err := b.Start(ctx); !errors.Is(err, boards.ErrClosed) {
		t.Errorf("Start after Close = %v", err)
	}
	if err := (boards.Config{Profile: "rpi4", SysfsRoot: "/sys", IRMode: "disco"}).Validate(); !errors.Is(err, boards.ErrInvalidConfig) {
		t.Errorf("Validate(IRMode disco) = %v", err)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
