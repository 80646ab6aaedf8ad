package gnss_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
)

// histFix is a fix at GNSS time t0+d moving east at 10 m/s.
func histFix(t0 time.Time, d time.Duration, lon float64) gnss.Fix {
	return gnss.Fix{Time: t0.Add(d), Mode: 3, Lat: 47.6, Lon: lon, AltM: 70 + d.Seconds(), HasAlt: true,
		SpeedMPS: 10, TrackDeg: 90, HDOP: 1, Sats: 8}
}

func TestHistory_At(t *testing.T) {
	t0 := time.Date(2026, 8, 5, 5, 52, 30, 0, time.UTC)
	local := time.Now() // carries a monotonic reading; only differences matter
	h := gnss.NewHistory(3*time.Second, 16)
	if _, ok := h.At(local); ok {
		t.Fatal("At with no fix: ok")
	}
	if _, ok := h.WallTime(local); ok {
		t.Fatal("WallTime with no fix: ok")
	}
	// Fixes each second, delivered 150 ms after their epoch except one
	// delivered after only 100 ms: that one sets the clock offset.
	for i := 0; i < 4; i++ {
		latency := 300 * time.Millisecond
		if i == 2 {
			latency = 100 * time.Millisecond
		}
		d := time.Duration(i) * time.Second
		h.Add(histFix(t0, d, -122+float64(i)*0.0001), local.Add(d+latency))
	}
	tests := []struct {
		name    string
		at      time.Duration // local time after `local`
		wantOK  bool
		wantLon float64
		wantAge time.Duration
		wantGT  time.Duration // GNSS time after t0
	}{
		{"on a fix", 1100 * time.Millisecond, true, -122 + 0.0001, 0, time.Second},
		{"between fixes", 1600 * time.Millisecond, true, -122 + 0.00015, 500 * time.Millisecond, 1500 * time.Millisecond},
		{"before the oldest", -900 * time.Millisecond, true, -122, time.Second, -time.Second},
		{"extrapolated", 4100 * time.Millisecond, true, 0, time.Second, 4 * time.Second},
		{"stale", 6200 * time.Millisecond, false, 0, 3100 * time.Millisecond, 6100 * time.Millisecond},
		{"stale before oldest", -4 * time.Second, false, -122, 4100 * time.Millisecond, -4100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := h.At(local.Add(tt.at))
			if ok != tt.wantOK || p.Stale == tt.wantOK {
				t.Fatalf("ok = %v stale = %v, want ok %v", ok, p.Stale, tt.wantOK)
			}
			if got := p.Time.Sub(t0); absD(got-tt.wantGT) > time.Microsecond {
				t.Errorf("GNSS time t0%+v, want t0%+v", got, tt.wantGT)
			}
			if absD(p.Age-tt.wantAge) > time.Microsecond {
				t.Errorf("Age = %v, want %v", p.Age, tt.wantAge)
			}
			if tt.wantLon != 0 && math.Abs(p.Lon-tt.wantLon) > 1e-9 {
				t.Errorf("Lon = %.9f, want %.9f", p.Lon, tt.wantLon)
			}
		})
	}
	// Extrapolation: 1 s at 10 m/s east from the newest fix.
	p, _ := h.At(local.Add(4100 * time.Millisecond))
	wantLon := -122 + 0.0003 + 10/(6371008.8*math.Cos(47.6*math.Pi/180))*180/math.Pi
	if math.Abs(p.Lon-wantLon) > 1e-8 || math.Abs(p.Lat-47.6) > 1e-9 {
		t.Errorf("extrapolated to %.9f,%.9f, want 47.6,%.9f", p.Lat, p.Lon, wantLon)
	}
	// Interpolated altitude.
	p, _ = h.At(local.Add(1600 * time.Millisecond))
	if !p.HasAlt || math.Abs(p.AltM-71.5) > 1e-9 {
		t.Errorf("AltM = %v (HasAlt %v), want 71.5", p.AltM, p.HasAlt)
	}
}

func TestHistory_WallTime(t *testing.T) {
	t0 := time.Date(2026, 8, 5, 5, 52, 30, 0, time.UTC)
	local := time.Now()
	h := gnss.NewHistory(3*time.Second, 4)
	// Latencies 250, 80, 400, 120 ms: the least (80 ms) sets the offset.
	for i, lat := range []time.Duration{250, 80, 400, 120} {
		d := time.Duration(i) * 200 * time.Millisecond
		h.Add(histFix(t0, d, -122), local.Add(d+lat*time.Millisecond))
	}
	got, ok := h.WallTime(local.Add(10 * time.Second))
	if want := t0.Add(10*time.Second - 80*time.Millisecond); !ok || !got.Equal(want) {
		t.Errorf("WallTime = %v %v, want %v", got, ok, want)
	}
	// Old fixes leave the history (keep=4): the 80 ms one is dropped.
	for _, d := range []time.Duration{800 * time.Millisecond, time.Second} {
		h.Add(histFix(t0, d, -122), local.Add(d+300*time.Millisecond))
	}
	got, _ = h.WallTime(local.Add(10 * time.Second))
	if want := t0.Add(10*time.Second - 120*time.Millisecond); !got.Equal(want) {
		t.Errorf("WallTime after the best fix aged out = %v, want %v", got, want)
	}
}

func TestHistory_Resync(t *testing.T) {
	t0 := time.Date(2026, 8, 5, 5, 52, 30, 0, time.UTC)
	local := time.Now()
	h := gnss.NewHistory(3*time.Second, 8)
	h.Add(histFix(t0, 0, -122), local)
	h.Add(histFix(t0, time.Second, -122), local.Add(time.Second))
	// The receiver restarts with a time an hour earlier (replayed log, reset).
	h.Add(histFix(t0, -time.Hour, -121), local.Add(2*time.Second))
	if h.Len() != 1 {
		t.Fatalf("Len = %d after a time jump, want 1", h.Len())
	}
	got, _ := h.WallTime(local.Add(2 * time.Second))
	if want := t0.Add(-time.Hour); !got.Equal(want) {
		t.Errorf("WallTime = %v, want %v", got, want)
	}
	// Mode < 2 is never stored.
	h.Add(gnss.Fix{Time: t0, Mode: 1}, local)
	if h.Len() != 1 {
		t.Errorf("no-fix was stored")
	}
}

func TestHistory_InterpolatesAcrossWraps(t *testing.T) {
	t0 := time.Date(2026, 8, 5, 5, 52, 30, 0, time.UTC)
	local := time.Now()
	h := gnss.NewHistory(3*time.Second, 8)
	h.Add(gnss.Fix{Time: t0, Mode: 3, Lat: 0, Lon: 179.9999, TrackDeg: 350}, local)
	h.Add(gnss.Fix{Time: t0.Add(time.Second), Mode: 2, Lat: 0, Lon: -179.9999, TrackDeg: 10}, local.Add(time.Second))
	p, ok := h.At(local.Add(500 * time.Millisecond))
	if !ok {
		t.Fatal("not ok")
	}
	if math.Abs(math.Abs(p.Lon)-180) > 1e-9 || math.Abs(p.TrackDeg) > 1e-9 && math.Abs(p.TrackDeg-360) > 1e-9 {
		t.Errorf("midpoint lon %.9f track %.9f, want ±180 and 0", p.Lon, p.TrackDeg)
	}
	if p.Mode != 2 || p.HasAlt {
		t.Errorf("mode %d HasAlt %v, want 2 false", p.Mode, p.HasAlt)
	}
}

func TestHistory_Concurrent(t *testing.T) {
	t0 := time.Date(2026, 8, 5, 5, 52, 30, 0, time.UTC)
	local := time.Now()
	h := gnss.NewHistory(3*time.Second, 8)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			d := time.Duration(i) * 100 * time.Millisecond
			h.Add(histFix(t0, d, -122), local.Add(d))
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			h.At(local.Add(time.Duration(i) * 100 * time.Millisecond))
			h.WallTime(local)
		}
	}()
	wg.Wait()
}

func absD(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
