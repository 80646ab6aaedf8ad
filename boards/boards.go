package boards

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/host/v3"
)

// Config selects the board profile and where to read hardware state.
type Config struct {
	// Profile is "none" (no GPIO: a PC, a test machine) or "auto" (load
	// periph.io host drivers and report what loaded).
	Profile string
	// SysfsRoot is the sysfs mount, configurable so tests point at fixtures.
	SysfsRoot string
}

// DefaultConfig returns the profile for a machine with no GPIO.
func DefaultConfig() Config { return Config{Profile: "none", SysfsRoot: "/sys"} }

// Validate reports a bad field by name.
func (c Config) Validate() error {
	switch c.Profile {
	case "none", "auto":
	default:
		return fmt.Errorf("boards.profile %q: %w (want none or auto)", c.Profile, ErrUnknownProfile)
	}
	if c.SysfsRoot == "" {
		return fmt.Errorf("boards.sysfs_root: must not be empty")
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

// Board is the running board profile.
type Board struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	peripherals []Peripheral
}

// New returns a board for cfg; nothing touches hardware until Start.
func New(cfg Config, logger *slog.Logger) *Board {
	return &Board{cfg: cfg, log: logger.With("subsystem", "boards")}
}

// Start loads the profile's drivers. A driver that fails is reported as
// broken, never returned as an error: the agent runs on with what it has.
func (b *Board) Start(ctx context.Context) error {
	var ps []Peripheral
	switch b.cfg.Profile {
	case "none":
		ps = append(ps, Peripheral{Name: "gpio", State: Absent, Reason: "profile none"})
	case "auto":
		st, err := host.Init()
		if err != nil {
			ps = append(ps, Peripheral{Name: "host", State: Broken, Reason: err.Error()})
			break
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
	}
	for _, p := range ps {
		if p.State == Broken {
			b.log.Warn("peripheral broken", "name", p.Name, "reason", p.Reason)
		}
	}
	b.mu.Lock()
	b.peripherals = ps
	b.mu.Unlock()
	return ctx.Err()
}

// Close releases the board. Idempotent.
func (b *Board) Close(context.Context) error { return nil }

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
