package uplink

import "time"

// LatencyBuckets are the upper bounds, in seconds, of Histogram's buckets:
// from a loopback round trip to a central side that is minutes behind.
var LatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// Histogram counts durations in LatencyBuckets, Prometheus style: Counts[i]
// is the number of observations <= LatencyBuckets[i] (cumulative); Count
// and Sum cover every observation, including those above the last bound.
type Histogram struct {
	Counts []uint64 `json:"counts"`
	Count  uint64   `json:"count"`
	Sum    float64  `json:"sum_seconds"`
}

func (h *Histogram) observe(d time.Duration) {
	if h.Counts == nil {
		h.Counts = make([]uint64, len(LatencyBuckets))
	}
	s := d.Seconds()
	for i, le := range LatencyBuckets {
		if s <= le {
			h.Counts[i]++
		}
	}
	h.Count++
	h.Sum += s
}

func (h Histogram) clone() Histogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}
