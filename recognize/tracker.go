package recognize

import (
	"image"
	"math"
	"sort"
	"time"
)

// TrackerConfig sets when a vehicle pass starts and ends.
type TrackerConfig struct {
	// MaxGap ends a pass when its plate has not been seen for this long
	// (the plate left the view, or stayed unreadable).
	MaxGap time.Duration
	// MaxDuration emits a pass that is still in view after this long, so a
	// car parked in front of the camera still produces a read.
	MaxDuration time.Duration
	// MinFrames drops passes seen on fewer frames: a single-frame read of
	// a sign or a reflection rarely repeats.
	MinFrames int
	// MinOverlap is the intersection-over-union of the predicted box and a
	// new sighting above which the sighting joins the pass whatever its text.
	MinOverlap float64
	// MinTextSimilarity lets a sighting join a pass on text alone (a fast
	// car moves far between frames) when its box is within MaxJump.
	MinTextSimilarity float64
	// MaxJump is how far, in multiples of the box width, a plate may move
	// between sightings and still join on text similarity.
	MaxJump float64
}

// DefaultTrackerConfig suits 5 to 30 frames per second.
func DefaultTrackerConfig() TrackerConfig {
	return TrackerConfig{
		MaxGap:            1500 * time.Millisecond,
		MaxDuration:       20 * time.Second,
		MinFrames:         2,
		MinOverlap:        0.2,
		MinTextSimilarity: 0.5,
		MaxJump:           6,
	}
}

// Sighting is one plate seen on one frame.
type Sighting struct {
	Plate Plate
	// Crop, if set, encodes the plate's crop (JPEG). Observe calls it only
	// when the sighting becomes its pass's best, and before returning, so
	// the frame it reads must stay open until Observe returns; most
	// sightings are never encoded.
	Crop func() []byte
	// Frame, if set, encodes the whole frame (JPEG), called like Crop. Only
	// set when the device is configured to keep full frames.
	Frame func() []byte
}

// Pass is one vehicle pass: the voted read over every frame that saw it.
type Pass struct {
	// Plate is the voted plate; its Box is the best sighting's box.
	Plate Plate
	// Frames is how many frames saw the plate.
	Frames int
	// First and Last are the capture times of the first and last sighting;
	// Best is the capture time of the most confident one.
	First, Last, Best time.Time
	// BestSeq is the frame sequence number of the best sighting.
	BestSeq uint64
	// Crop is the JPEG crop of the best sighting (nil if none was taken).
	Crop []byte
	// Frame is the JPEG of the best sighting's whole frame (nil unless
	// Sighting.Frame was set).
	Frame []byte
}

type sighting struct {
	text string
	conf float64
	box  image.Rectangle
	at   time.Time
}

type track struct {
	sightings []sighting
	best      int
	bestSeq   uint64
	crop      []byte
	frame     []byte
	vx, vy    float64 // box-centre velocity, pixels per second
}

// Tracker groups the plates of consecutive frames of one camera into vehicle
// passes. It is not safe for concurrent use: one camera, one goroutine.
type Tracker struct {
	cfg    TrackerConfig
	active []*track
}

// NewTracker returns an empty tracker.
func NewTracker(cfg TrackerConfig) *Tracker { return &Tracker{cfg: cfg} }

// Observe adds the plates read on one frame captured at `at` and returns the
// passes that ended by that time, oldest first. Call it for every frame the
// recognizer ran on, also when it found nothing, so passes end on time.
func (t *Tracker) Observe(at time.Time, seq uint64, seen []Sighting) []Pass {
	// Greedy association, best score first: each sighting joins at most one
	// track and each track takes at most one sighting per frame.
	type pair struct {
		s, tr int
		score float64
	}
	var pairs []pair
	for i, s := range seen {
		text := Normalize(s.Plate.Text)
		for j, tr := range t.active {
			if sc, ok := t.match(tr, text, s.Plate.Box, at); ok {
				pairs = append(pairs, pair{i, j, sc})
			}
		}
	}
	sort.Slice(pairs, func(a, b int) bool { return pairs[a].score > pairs[b].score })
	usedS := make([]bool, len(seen))
	usedT := make([]bool, len(t.active))
	for _, p := range pairs {
		if usedS[p.s] || usedT[p.tr] {
			continue
		}
		usedS[p.s], usedT[p.tr] = true, true
		t.active[p.tr].add(seen[p.s], seq, at)
	}
	for i, s := range seen {
		if !usedS[i] && Normalize(s.Plate.Text) != "" {
			tr := &track{}
			tr.add(s, seq, at)
			t.active = append(t.active, tr)
		}
	}
	return t.collect(func(tr *track) bool {
		last := tr.sightings[len(tr.sightings)-1].at
		first := tr.sightings[0].at
		return at.Sub(last) > t.cfg.MaxGap || at.Sub(first) >= t.cfg.MaxDuration
	})
}

// Flush ends every open pass (end of a clip, shutdown) and returns them.
func (t *Tracker) Flush() []Pass {
	return t.collect(func(*track) bool { return true })
}

// Active is the number of passes still open.
func (t *Tracker) Active() int { return len(t.active) }

func (t *Tracker) collect(done func(*track) bool) []Pass {
	var out []Pass
	keep := t.active[:0]
	for _, tr := range t.active {
		if !done(tr) {
			keep = append(keep, tr)
			continue
		}
		if len(tr.sightings) >= t.cfg.MinFrames {
			out = append(out, tr.pass())
		}
	}
	for i := len(keep); i < len(t.active); i++ {
		t.active[i] = nil
	}
	t.active = keep
	sort.Slice(out, func(a, b int) bool { return out[a].First.Before(out[b].First) })
	return out
}

// match scores how well a sighting continues a track.
func (t *Tracker) match(tr *track, text string, box image.Rectangle, at time.Time) (float64, bool) {
	last := tr.sightings[len(tr.sightings)-1]
	if !at.After(last.at) {
		return 0, false // one sighting per track per frame
	}
	dt := at.Sub(last.at).Seconds()
	pred := last.box.Add(image.Pt(int(tr.vx*dt), int(tr.vy*dt)))
	iou := overlap(pred, box)
	sim := similarity(text, last.text)
	if iou >= t.cfg.MinOverlap {
		return 1 + iou + sim, true
	}
	w := float64(max(last.box.Dx(), 1))
	jump := dist(center(pred), center(box)) / w
	if sim >= t.cfg.MinTextSimilarity && jump <= t.cfg.MaxJump {
		return sim - jump/(10*t.cfg.MaxJump), true
	}
	return 0, false
}

func (tr *track) add(s Sighting, seq uint64, at time.Time) {
	n := sighting{text: Normalize(s.Plate.Text), conf: s.Plate.Confidence, box: s.Plate.Box, at: at}
	if k := len(tr.sightings); k > 0 {
		prev := tr.sightings[k-1]
		if dt := at.Sub(prev.at).Seconds(); dt > 0 {
			c0, c1 := center(prev.box), center(n.box)
			// Smooth the velocity: single boxes jitter by a few pixels.
			tr.vx = 0.5*tr.vx + 0.5*(c1.X-c0.X)/dt
			tr.vy = 0.5*tr.vy + 0.5*(c1.Y-c0.Y)/dt
		}
	}
	tr.sightings = append(tr.sightings, n)
	if len(tr.sightings) == 1 || n.conf > tr.sightings[tr.best].conf {
		tr.best = len(tr.sightings) - 1
		tr.bestSeq = seq
		tr.crop, tr.frame = nil, nil
		if s.Crop != nil {
			tr.crop = s.Crop()
		}
		if s.Frame != nil {
			tr.frame = s.Frame()
		}
	}
}

// pass votes the text: first the length, weighted by confidence, then each
// character position among the sightings of that length. A sighting of
// another length still counts through its own candidate text when the vote
// is tied, so no character is invented that no frame read.
func (tr *track) pass() Pass {
	lenVotes := map[int]float64{}
	for _, s := range tr.sightings {
		lenVotes[len(s.text)] += s.conf
	}
	bestLen, bestW := 0, -1.0
	for l, w := range lenVotes {
		if w > bestW || (w == bestW && l > bestLen) {
			bestLen, bestW = l, w
		}
	}
	chars := make([]byte, bestLen)
	var confSum float64
	for i := 0; i < bestLen; i++ {
		votes := map[byte]float64{}
		var total float64
		for _, s := range tr.sightings {
			if len(s.text) == bestLen {
				votes[s.text[i]] += s.conf
				total += s.conf
			}
		}
		var c byte
		var w float64 = -1
		for ch, v := range votes {
			if v > w || (v == w && ch < c) {
				c, w = ch, v
			}
		}
		chars[i] = c
		if total > 0 {
			confSum += w / total
		}
	}
	text := string(chars)
	agree := 1.0
	if bestLen > 0 {
		agree = confSum / float64(bestLen)
	}

	// Candidates: every distinct text seen, by summed confidence.
	textVotes := map[string]float64{}
	var all float64
	for _, s := range tr.sightings {
		textVotes[s.text] += s.conf
		all += s.conf
	}
	best := tr.sightings[tr.best]
	conf := best.conf * agree
	if conf > 1 {
		conf = 1
	}
	cands := []Candidate{{Text: text, Confidence: conf}}
	var others []Candidate
	for s, v := range textVotes {
		if s != text && all > 0 {
			others = append(others, Candidate{Text: s, Confidence: v / all * conf})
		}
	}
	sort.Slice(others, func(a, b int) bool {
		if others[a].Confidence != others[b].Confidence {
			return others[a].Confidence > others[b].Confidence
		}
		return others[a].Text < others[b].Text
	})
	cands = append(cands, others...)
	if len(cands) > 5 {
		cands = cands[:5]
	}
	return Pass{
		Plate:   Plate{Text: text, Confidence: conf, Box: best.box, Candidates: cands},
		Frames:  len(tr.sightings),
		First:   tr.sightings[0].at,
		Last:    tr.sightings[len(tr.sightings)-1].at,
		Best:    best.at,
		BestSeq: tr.bestSeq,
		Crop:    tr.crop,
		Frame:   tr.frame,
	}
}

type point struct{ X, Y float64 }

func center(r image.Rectangle) point {
	return point{float64(r.Min.X+r.Max.X) / 2, float64(r.Min.Y+r.Max.Y) / 2}
}

func dist(a, b point) float64 {
	dx, dy := a.X-b.X, a.Y-b.Y
	return math.Hypot(dx, dy)
}

func overlap(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	u := float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia
	if u <= 0 {
		return 0
	}
	return ia / u
}

// similarity is 1 - normalised Levenshtein distance.
func similarity(a, b string) float64 {
	if a == b {
		return 1
	}
	n := max(len(a), len(b))
	if n == 0 {
		return 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return 1 - float64(prev[len(b)])/float64(n)
}
