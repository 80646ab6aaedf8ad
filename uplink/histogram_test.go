package uplink

import (
	"testing"
	"time"
)

func TestHistogram_Cumulative(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 2 * time.Second, 10 * time.Minute} {
		h.observe(d)
	}
	// Buckets: 0.005 gets 1, 0.05 gets 2, 2.5 gets 3, 300 still 3 (10 min is above every bound).
	want := map[float64]uint64{0.005: 1, 0.01: 1, 0.05: 2, 1: 2, 2.5: 3, 300: 3}
	for i, le := range LatencyBuckets {
		if w, ok := want[le]; ok && h.Counts[i] != w {
			t.Errorf("bucket le=%v: %d, want %d", le, h.Counts[i], w)
		}
	}
	if h.Count != 4 || h.Sum < 602 || h.Sum > 602.1 {
		t.Errorf("count %d sum %v", h.Count, h.Sum)
	}
	c := h.clone()
	c.Counts[0] = 99
	if h.Counts[0] == 99 {
		t.Error("clone shares its buckets")
	}
}
