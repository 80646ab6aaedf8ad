package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = dispatch(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func TestRead_JSONAndBadFiles(t *testing.T) {
	needModels(t)
	dir := needDataset(t, "plates/us")
	labels, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	if len(labels) == 0 {
		t.Fatal("no labels")
	}
	good := strings.TrimSuffix(labels[0], ".txt") + ".jpg"
	notImage := filepath.Join(t.TempDir(), "notes.jpg")
	os.WriteFile(notImage, []byte("this is not a JPEG"), 0o644)
	missing := filepath.Join(t.TempDir(), "missing.jpg")

	stdout, stderr, err := run(t, "read", "--json", missing, good, notImage)
	if !errors.Is(err, errSilent) {
		t.Fatalf("err = %v, want exit 1 after reading the good file", err)
	}
	if !strings.Contains(stderr, "missing.jpg") || !strings.Contains(stderr, "notes.jpg") {
		t.Errorf("stderr does not name both bad files:\n%s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line for the one good image, got %q", stdout)
	}
	var r readJSON
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatalf("bad JSON %q: %v", lines[0], err)
	}
	if r.File != good || r.MS <= 0 {
		t.Errorf("got %+v", r)
	}
	for i := 1; i < len(r.Plates); i++ {
		if r.Plates[i].Confidence > r.Plates[i-1].Confidence {
			t.Errorf("plates not sorted by confidence: %+v", r.Plates)
		}
	}
	for _, p := range r.Plates {
		if p.Plate == "" || len(p.Candidates) == 0 || p.Candidates[0].Text != p.Plate || p.Box[2] <= 0 {
			t.Errorf("malformed plate %+v", p)
		}
	}
}

var benchLast = regexp.MustCompile(`^accuracy=(0\.\d{4}|1\.0000) correct=(\d+) n=(\d+) median_ms=\d+\.\d p95_ms=\d+\.\d$`)

func TestBench_LastLine(t *testing.T) {
	needModels(t)
	src := needDataset(t, "plates/eu")
	// A small folder in the same layout: three labelled images.
	dir := t.TempDir()
	labels, _ := filepath.Glob(filepath.Join(src, "*.txt"))
	for _, l := range labels[:3] {
		raw, _ := os.ReadFile(l)
		name := strings.Split(string(raw), "\t")[0]
		img, _ := os.ReadFile(filepath.Join(src, name))
		os.WriteFile(filepath.Join(dir, name), img, 0o644)
		os.WriteFile(filepath.Join(dir, filepath.Base(l)), raw, 0o644)
	}
	stdout, stderr, err := run(t, "bench", "--region", "eu", dir)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 3 image lines and a summary, got:\n%s", stdout)
	}
	m := benchLast.FindStringSubmatch(lines[3])
	if m == nil || m[3] != "3" {
		t.Fatalf("last line %q does not match the required format", lines[3])
	}
}

func TestUsage(t *testing.T) {
	if _, _, err := run(t); !errors.Is(err, errUsage) {
		t.Fatalf("no args: %v", err)
	}
	if _, stderr, err := run(t, "frobnicate"); !errors.Is(err, errUsage) || !strings.Contains(stderr, "frobnicate") {
		t.Fatalf("unknown command: %v %q", err, stderr)
	}
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "alpr-agent ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 3, 2, 4}
	if got := percentile(xs, 0.5); got != 3 {
		t.Errorf("median = %v", got)
	}
	if got := percentile([]float64{1, 2, 3, 4}, 0.5); got != 2.5 {
		t.Errorf("even median = %v", got)
	}
	if got := percentile(xs, 0.95); got != 5 {
		t.Errorf("p95 = %v", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("empty = %v", got)
	}
}

func TestGNSSReplay_PrintsFixLines(t *testing.T) {
	stdout, stderr, err := run(t, "gnss", "replay", filepath.Join("..", "..", "testdata", "nmea", "demo.nmea"))
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 300 {
		t.Errorf("got %d fixes, want 300 (60 s at 5 Hz)", len(lines))
	}
	want := regexp.MustCompile(`^\{"time":"2026-08-05T05:52:30\.000Z","mode":3,"lat":47\.66198,"lon":-122\.32639,"alt_m":76\.5,"speed_mps":13(\.0+)?,"track_deg":270(\.0+)?,"hdop":0\.9\}$`)
	if !want.MatchString(lines[0]) {
		t.Errorf("first fix line %q is not in the documented format", lines[0])
	}
	if _, _, err := run(t, "gnss", "replay", filepath.Join(t.TempDir(), "none.nmea")); err == nil || !strings.Contains(err.Error(), "none.nmea") {
		t.Errorf("missing log: got %v, want an error naming it", err)
	}
}
