package gnss

import (
	"math"
	"sort"
	"sync"
	"time"
)

const earthRadiusM = 6371008.8

// resyncAfter is how far a new fix's GNSS-vs-local offset may stray from the
// history's before the history is dropped and restarted (a receiver reset,
// a log replayed again, a week-rollover jump).
const resyncAfter = time.Minute

// Position is the answer of History.At: the fix values at a local time.
type Position struct {
	Fix                 // interpolated values; Fix.Time = GNSS time at t
	Age   time.Duration // age of the nearest real fix relative to t (>= 0)
	Stale bool          // Age > maxAge: the values are not to be trusted
}

type histEntry struct {
	fix      Fix
	received time.Time // local time with a monotonic reading
}

// History keeps recent fixes with the local monotonic time they arrived and
// answers "where were we at local time t". It is safe for concurrent use and
// never blocks on I/O.
//
// Local times passed to Add, At and WallTime should all come from time.Now()
// (they carry a monotonic reading, so a step of the system clock does not
// move them); durations between them are computed with Time.Sub.
type History struct {
	maxAge time.Duration
	keep   int

	mu      sync.RWMutex
	entries []histEntry // sorted by fix.Time, at most keep
}

// NewHistory returns a History that keeps the keep newest fixes and treats a
// position as stale when the nearest fix is more than maxAge from the asked
// time. maxAge <= 0 means 3s, keep < 2 means 2.
func NewHistory(maxAge time.Duration, keep int) *History {
	if maxAge <= 0 {
		maxAge = 3 * time.Second
	}
	if keep < 2 {
		keep = 2
	}
	return &History{maxAge: maxAge, keep: keep, entries: make([]histEntry, 0, keep)}
}

// MaxAge returns the stale limit.
func (h *History) MaxAge() time.Duration { return h.maxAge }

// Add records fix f received at local time received (time.Now() when the
// epoch's first sentence arrived). Fixes older than the newest one are
// inserted in order; a fix whose time goes back by more than maxAge or whose
// clock offset jumps by more than a minute restarts the history.
func (h *History) Add(f Fix, received time.Time) {
	if f.Mode < Mode2D || f.Time.IsZero() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.entries); n > 0 {
		newest := h.entries[n-1]
		anchor := h.anchorLocked(newest.received)
		cand := f.Time.Add(-received.Sub(newest.received))
		if f.Time.Before(newest.fix.Time.Add(-h.maxAge)) || absDur(cand.Sub(anchor)) > resyncAfter {
			h.entries = h.entries[:0]
		}
	}
	i := sort.Search(len(h.entries), func(i int) bool { return !h.entries[i].fix.Time.Before(f.Time) })
	if i < len(h.entries) && h.entries[i].fix.Time.Equal(f.Time) {
		h.entries[i] = histEntry{f, received}
		return
	}
	h.entries = append(h.entries, histEntry{})
	copy(h.entries[i+1:], h.entries[i:])
	h.entries[i] = histEntry{f, received}
	if len(h.entries) > h.keep {
		h.entries = append(h.entries[:0], h.entries[len(h.entries)-h.keep:]...)
	}
}

// Len returns the number of fixes kept.
func (h *History) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.entries)
}

// Latest returns the newest fix and its local receive time.
func (h *History) Latest() (Fix, time.Time, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.entries) == 0 {
		return Fix{}, time.Time{}, false
	}
	e := h.entries[len(h.entries)-1]
	return e.fix, e.received, true
}

// anchorLocked returns the GNSS time at local time ref: over the kept fixes,
// each fix gives ref's GNSS time as fix.Time + (ref - received), which is
// late by that fix's delivery latency; the latest estimate (least latency)
// wins.
func (h *History) anchorLocked(ref time.Time) time.Time {
	var best time.Time
	for i, e := range h.entries {
		cand := e.fix.Time.Add(ref.Sub(e.received))
		if i == 0 || cand.After(best) {
			best = cand
		}
	}
	return best
}

// WallTime maps local time t to UTC using the offset between GNSS time and
// receive times (the least-latency offset over the kept fixes). ok is false
// before any fix.
func (h *History) WallTime(t time.Time) (time.Time, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.entries) == 0 {
		return time.Time{}, false
	}
	return h.anchorLocked(t), true
}

// At returns the position at local time t (a frame's capture time).
//
// Between two fixes it interpolates lat/lon/alt/speed/track linearly; past the
// newest fix it extrapolates along speed and track, at most maxAge; before the
// oldest it holds the oldest fix. ok is false when there is no fix or when the
// nearest fix is more than maxAge from t; p is then still filled (Stale set)
// when a fix exists, for logging.
func (h *History) At(t time.Time) (p Position, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := len(h.entries)
	if n == 0 {
		return Position{}, false
	}
	g := h.anchorLocked(t) // GNSS time at t
	i := sort.Search(n, func(i int) bool { return h.entries[i].fix.Time.After(g) })
	switch {
	case i == 0: // before the oldest fix
		f := h.entries[0].fix
		p = Position{Fix: f, Age: f.Time.Sub(g)}
	case i == n: // after the newest: extrapolate
		f := h.entries[n-1].fix
		age := g.Sub(f.Time)
		p = Position{Fix: extrapolate(f, min(age, h.maxAge)), Age: age}
	default:
		a, b := h.entries[i-1].fix, h.entries[i].fix
		span := b.Time.Sub(a.Time)
		frac := float64(g.Sub(a.Time)) / float64(span)
		p = Position{Fix: interpolate(a, b, frac), Age: min(g.Sub(a.Time), b.Time.Sub(g))}
	}
	p.Time = g
	p.Stale = p.Age > h.maxAge
	return p, !p.Stale
}

func interpolate(a, b Fix, frac float64) Fix {
	lerp := func(x, y float64) float64 { return x + (y-x)*frac }
	f := Fix{
		Mode:     min(a.Mode, b.Mode),
		Lat:      lerp(a.Lat, b.Lat),
		Lon:      normLon(a.Lon + wrap180(b.Lon-a.Lon)*frac),
		SpeedMPS: lerp(a.SpeedMPS, b.SpeedMPS),
		TrackDeg: norm360(a.TrackDeg + wrap180(b.TrackDeg-a.TrackDeg)*frac),
		HDOP:     math.Max(a.HDOP, b.HDOP),
		Sats:     min(a.Sats, b.Sats),
	}
	if a.HasAlt && b.HasAlt {
		f.AltM, f.HasAlt = lerp(a.AltM, b.AltM), true
	}
	return f
}

// extrapolate moves f along its speed and track for d (flat earth: d is at
// most a few seconds).
func extrapolate(f Fix, d time.Duration) Fix {
	if d <= 0 || f.SpeedMPS == 0 {
		return f
	}
	dist := f.SpeedMPS * d.Seconds()
	tr := f.TrackDeg * math.Pi / 180
	dn, de := dist*math.Cos(tr), dist*math.Sin(tr)
	f.Lat += dn / earthRadiusM * 180 / math.Pi
	if c := math.Cos(f.Lat * math.Pi / 180); c > 1e-6 {
		f.Lon = normLon(f.Lon + de/(earthRadiusM*c)*180/math.Pi)
	}
	f.Lat = math.Max(-90, math.Min(90, f.Lat))
	return f
}

// wrap180 maps an angle difference to [-180, 180).
func wrap180(d float64) float64 {
	d = math.Mod(d+180, 360)
	if d < 0 {
		d += 360
	}
	return d - 180
}

func norm360(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	return a
}

func normLon(l float64) float64 { return wrap180(l) }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
