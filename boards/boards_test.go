package boards

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func writeZone(t *testing.T, root, zone, typ, temp string) {
	t.Helper()
	dir := filepath.Join(root, "class", "thermal", zone)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if typ != "" {
		if err := os.WriteFile(filepath.Join(dir, "type"), []byte(typ+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "temp"), []byte(temp+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadTemperatures(t *testing.T) {
	root := t.TempDir()
	writeZone(t, root, "thermal_zone0", "cpu-thermal", "48312")
	writeZone(t, root, "thermal_zone1", "", "51000")
	writeZone(t, root, "thermal_zone2", "broken", "not-a-number")
	got := ReadTemperatures(root)
	want := []Temperature{{"cpu-thermal", 48.312}, {"thermal_zone1", 51}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("zone %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if got := ReadTemperatures(filepath.Join(root, "nowhere")); len(got) != 0 {
		t.Errorf("missing sysfs: got %v, want none", got)
	}
}

func TestConfig_Validate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	err := Config{Profile: "rpi9", SysfsRoot: "/sys"}.Validate()
	if !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("got %v, want ErrUnknownProfile", err)
	}
}

func TestBoard_NoneProfileReportsAbsentGPIO(t *testing.T) {
	b := New(DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ps := b.Peripherals()
	if len(ps) == 0 || ps[0].Name != "gpio" || ps[0].State != Absent {
		t.Fatalf("got %+v, want an absent gpio first", ps)
	}
	for _, p := range ps {
		if p.State == Loaded && p.Name != PeriphCPUTemp {
			t.Errorf("profile none loaded %+v", p)
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
