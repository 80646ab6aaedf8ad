package recognize

import (
	"image"
	"math"
	"testing"
	"time"
)

func sight(text string, conf float64, x, y int) Sighting {
	return Sighting{Plate: Plate{Text: text, Confidence: conf, Box: image.Rect(x, y, x+100, y+30)}}
}

func TestTracker_OnePassPerCarWithVote(t *testing.T) {
	tr := NewTracker(DefaultTrackerConfig())
	t0 := time.Now()
	frame := 100 * time.Millisecond
	// Car A moves right 20 px per frame; frame 3 misreads one character and
	// frame 4 is unreadable (nothing seen). Car B appears later, lower.
	reads := [][]Sighting{
		{sight("YG9X2G", 0.9, 0, 100)},
		{sight("YG9X2G", 0.8, 20, 100)},
		{sight("YG9XZG", 0.95, 40, 100)},
		{},
		{sight("YG9X2G", 0.85, 80, 100)},
		{sight("YG9X2G", 0.7, 100, 100), sight("7ABC123", 0.9, 0, 250)},
		{sight("7ABC123", 0.9, 30, 250)},
		{sight("7A8C123", 0.6, 60, 250)},
	}
	var passes []Pass
	for i, r := range reads {
		passes = append(passes, tr.Observe(t0.Add(time.Duration(i)*frame), uint64(i+1), r)...)
	}
	// Nothing for 2 s: both passes end by gap.
	passes = append(passes, tr.Observe(t0.Add(3*time.Second), 99, nil)...)
	if tr.Active() != 0 {
		t.Fatalf("active = %d, want 0", tr.Active())
	}
	if len(passes) != 2 {
		t.Fatalf("got %d passes, want 2: %+v", len(passes), passes)
	}
	if got := passes[0].Plate.Text; got != "YG9X2G" {
		t.Errorf("car A voted %q, want YG9X2G (the single most confident frame read YG9XZG)", got)
	}
	if passes[0].Frames != 5 {
		t.Errorf("car A frames = %d, want 5", passes[0].Frames)
	}
	if passes[0].BestSeq != 3 {
		t.Errorf("car A best seq = %d, want 3 (its most confident sighting)", passes[0].BestSeq)
	}
	if got := passes[1].Plate.Text; got != "7ABC123" {
		t.Errorf("car B voted %q, want 7ABC123", got)
	}
	if len(passes[0].Plate.Candidates) < 2 || passes[0].Plate.Candidates[1].Text != "YG9XZG" {
		t.Errorf("car A candidates = %+v, want the misread as second", passes[0].Plate.Candidates)
	}
}

func TestTracker_SingleFrameSightingDropped(t *testing.T) {
	tr := NewTracker(DefaultTrackerConfig())
	t0 := time.Now()
	tr.Observe(t0, 1, []Sighting{sight("STOP12", 0.9, 10, 10)})
	if got := tr.Observe(t0.Add(5*time.Second), 2, nil); len(got) != 0 {
		t.Fatalf("got %+v, want nothing for a one-frame sighting", got)
	}
}

func TestTracker_MaxDurationEmitsParkedCar(t *testing.T) {
	cfg := DefaultTrackerConfig()
	cfg.MaxDuration = time.Second
	tr := NewTracker(cfg)
	t0 := time.Now()
	var got []Pass
	for i := 0; i < 15; i++ {
		got = append(got, tr.Observe(t0.Add(time.Duration(i)*100*time.Millisecond), uint64(i), []Sighting{sight("PARK01", 0.9, 50, 50)})...)
	}
	if len(got) != 1 || got[0].Plate.Text != "PARK01" {
		t.Fatalf("got %+v, want one PARK01 pass emitted while still in view", got)
	}
}

func TestTracker_FlushEndsOpenPasses(t *testing.T) {
	tr := NewTracker(DefaultTrackerConfig())
	t0 := time.Now()
	tr.Observe(t0, 1, []Sighting{sight("ABC123", 0.9, 0, 0)})
	tr.Observe(t0.Add(100*time.Millisecond), 2, []Sighting{sight("ABC123", 0.9, 10, 0)})
	if got := tr.Flush(); len(got) != 1 || got[0].Plate.Text != "ABC123" {
		t.Fatalf("flush = %+v", got)
	}
}

func TestSimilarity(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{{"ABC", "ABC", 1}, {"ABC", "ABD", 2.0 / 3}, {"", "", 1}, {"ABCD", "", 0}} {
		if got := similarity(c.a, c.b); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("similarity(%q,%q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestTracker_CropsOnlyNewBest(t *testing.T) {
	tr := NewTracker(DefaultTrackerConfig())
	t0 := time.Now()
	encoded := 0
	withCrop := func(s Sighting, tag string) Sighting {
		s.Crop = func() []byte { encoded++; return []byte(tag) }
		return s
	}
	tr.Observe(t0, 1, []Sighting{withCrop(sight("ABC123", 0.8, 0, 0), "first")})
	tr.Observe(t0.Add(100*time.Millisecond), 2, []Sighting{withCrop(sight("ABC123", 0.6, 10, 0), "worse")})
	tr.Observe(t0.Add(200*time.Millisecond), 3, []Sighting{withCrop(sight("ABC123", 0.9, 20, 0), "best")})
	tr.Observe(t0.Add(300*time.Millisecond), 4, []Sighting{withCrop(sight("ABC123", 0.7, 30, 0), "worse")})
	got := tr.Flush()
	if len(got) != 1 || string(got[0].Crop) != "best" {
		t.Fatalf("passes %+v, want one with the best sighting's crop", got)
	}
	if encoded != 2 {
		t.Errorf("encoded %d crops, want 2 (only sightings that became the best)", encoded)
	}
}
