package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/capture/capturetest"
	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/uplink"
	"github.com/alpr-agent/alpr-agent/uplink/mqtttest"
)

// TestEndToEnd plays the synthetic clip and the NMEA log through the whole
// chain (file camera → ONNX reader → tracker → pty GNSS → bbolt spool → real
// mosquitto → reference receiver) and stops the broker for part of the run.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run takes the clip's length")
	}
	needModels(t)
	work := t.TempDir()
	spec := capturetest.DefaultClip()
	if err := capturetest.WriteClip(filepath.Join(work, "clip.avi"), spec); err != nil {
		t.Fatal(err)
	}
	nmeaPath := filepath.Join("..", "..", "testdata", "nmea", "demo.nmea")
	fixes := replayFixes(t, nmeaPath)

	broker := mqtttest.Start(t)
	var mu sync.Mutex
	var got []uplink.Read
	first := make(chan struct{})
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// Outage: once the first read is in, the broker goes away for 3 s; the
	// reads made meanwhile wait in the spool and arrive after it returns.
	outage := make(chan struct{})
	go func() {
		defer close(outage)
		select {
		case <-first:
		case <-time.After(2 * time.Minute):
			return
		}
		broker.Stop()
		time.Sleep(3 * time.Second)
		broker.Restart()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := runDemo(ctx, demoOptions{
		Sample: work, NMEA: nmeaPath, Work: work, Broker: broker.URL(), Out: &out, Log: logger,
		OnRead: func(r uplink.Read) {
			mu.Lock()
			defer mu.Unlock()
			if len(got) == 0 {
				close(first)
			}
			got = append(got, r)
		},
	})
	if err != nil {
		t.Fatalf("demo run: %v", err)
	}
	<-outage

	mu.Lock()
	defer mu.Unlock()
	var want, plates []string
	for _, c := range spec.Cars {
		want = append(want, c.Plate)
	}
	for _, r := range got {
		plates = append(plates, r.Plate)
	}
	sort.Strings(want)
	sort.Strings(plates)
	if len(plates) != len(want) {
		t.Fatalf("got %d reads %v, want one per car %v", len(plates), plates, want)
	}
	for i := range want {
		if plates[i] != want[i] {
			t.Errorf("reads %v, want %v", plates, want)
			break
		}
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != len(got) {
		t.Errorf("printed %d lines for %d reads", n, len(got))
	}
	for _, r := range got {
		if err := r.Validate(); err != nil {
			t.Errorf("read %s invalid: %v", r.ID, err)
		}
		if !bytes.HasPrefix(r.CropJPEG, []byte{0xFF, 0xD8}) {
			t.Errorf("read %s: crop is not a JPEG (%d bytes)", r.Plate, len(r.CropJPEG))
		}
		if r.FrameJPEG != nil {
			t.Errorf("read %s: carries a full frame (%d bytes) though privacy.full_frames is off", r.Plate, len(r.FrameJPEG))
		}
		if r.TimeSource != "gnss" || r.Position == nil {
			t.Errorf("read %s: time_source=%s position=%v, want a GNSS stamp", r.Plate, r.TimeSource, r.Position)
			continue
		}
		lat, lon, ok := interpolate(fixes, r.Time)
		if !ok {
			t.Errorf("read %s at %s is outside the NMEA log", r.Plate, r.Time)
			continue
		}
		// 1e-5 degrees is about a metre: the track moves 13 m/s.
		if math.Abs(lat-r.Position.Lat) > 1e-5 || math.Abs(lon-r.Position.Lon) > 1e-5 {
			t.Errorf("read %s at %s: position %.7f,%.7f, log says %.7f,%.7f", r.Plate, r.Time.Format(time.RFC3339Nano), r.Position.Lat, r.Position.Lon, lat, lon)
		}
	}
}

func replayFixes(t *testing.T, path string) []gnss.Fix {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fixes []gnss.Fix
	if err := gnss.Replay(context.Background(), f, func(x gnss.Fix) error { fixes = append(fixes, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(fixes) < 10 {
		t.Fatalf("only %d fixes in %s", len(fixes), path)
	}
	return fixes
}

// interpolate is the log's position at time at, linear between epochs.
func interpolate(fixes []gnss.Fix, at time.Time) (lat, lon float64, ok bool) {
	for i := 1; i < len(fixes); i++ {
		a, b := fixes[i-1], fixes[i]
		if at.Before(a.Time) || at.After(b.Time) {
			continue
		}
		span := b.Time.Sub(a.Time).Seconds()
		k := 0.0
		if span > 0 {
			k = at.Sub(a.Time).Seconds() / span
		}
		return a.Lat + k*(b.Lat-a.Lat), a.Lon + k*(b.Lon-a.Lon), true
	}
	return 0, 0, false
}

// testWriter sends logs to t.Log so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

var _ io.Writer = testWriter{}
