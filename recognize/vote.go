package recognize

import (
	"image"
	"sort"
	"strings"

	"gocv.io/x/gocv"
)

// Sources of candidates (candidate.src): the first pass, its focused
// pass, the rescue pass and its focused pass, then the variant crops
// numbered from srcVariant.
const (
	srcPass1       = 1
	srcPass2       = 2
	srcRescue      = 3
	srcRescueFocus = 4
	srcVariant     = 5
)

// Confirmation parameters (confirm). Measured on the three dataset
// folders, each split in two halves by a hash of the file name; see the
// package doc.
const (
	// confirmTexts is how many of the best place's leading texts have
	// their boxes read again.
	confirmTexts = 2
	// confirmStretch widens the variant crops: the model reads condensed
	// plate fonts better a little wider (W read as H, M, V or N is the
	// most common us error). Measured before the rescue pass and the
	// taller crop: 1.15, 1.25 and 1.4 read 109, 108 and 111 us plates
	// (of 157; tuning half 54, 54, 55), 1.4 one br plate fewer; widening
	// every crop instead of a variant reads fewer br plates (1.5: 5
	// fewer).
	confirmStretch = 1.25
	// confirmPadY is the extra height, a fraction of the box's, of the
	// second variant crop of each box: one more opinion, cut
	// differently. Measured per half (tuning / check): 0.12 reads us
	// 60/56, eu 36/29, br 45/36 against 60/55, 35/29, 45/36 without it;
	// 0.25 reads us 59/58 and eu one fewer.
	confirmPadY = 0.12
	// The best reading is uncertain when the runner-up text scores at
	// least uncertainRatio of it, or one of its characters is less
	// likely than uncertainMinProb, or it does not fit the region. With
	// these gates about half of us images, a fifth of eu and a tenth of
	// br pay for the variant reads, and accuracy is the same as reading
	// them for all (or with uncertainMinProb 0.6).
	uncertainRatio   = 0.9
	uncertainMinProb = 0.8
	// voteAltWeight is the weight of a source's vote for a text that is
	// not its own best (a look-alike swap of it, another join). 0.3 and
	// 0.8 read one plate fewer on us and on br.
	voteAltWeight = 0.5
)

// confirm looks again at the best plate when its reading is uncertain
// (see uncertain): the boxes of its leading readings are read again from
// crops stretched sideways by confirmStretch, as they are and
// confirmPadY taller, and every reading of that
// place votes (see vote). It returns the candidates to rank with
// platesRanked: cands, plus the variant readings when it read any, with
// fragments demoted; cands itself is not modified. Only uncertain plates
// pay for the extra reads.
func (r *Recognizer) confirm(bgr gocv.Mat, cands []candidate, t *Trace) ([]candidate, error) {
	ranked := append([]candidate(nil), cands...)
	demoteFragments(ranked)
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].score > ranked[j].score })
	if len(ranked) == 0 || ranked[0].score < minPlateConf {
		return ranked, nil
	}
	place := ranked[0].box
	lead := leadingReadings(ranked, place, confirmTexts)
	if !r.uncertain(lead) {
		return ranked, nil
	}
	var boxes []rotRect
	for _, c := range lead {
		if c.stacked || len(c.rs) == 0 {
			continue
		}
		b := coverRect(c.rs)
		dup := false
		for _, o := range boxes {
			if sameRect(o, b) {
				dup = true
				break
			}
		}
		if !dup {
			boxes = append(boxes, b)
		}
	}
	all := append([]candidate(nil), cands...)
	src := srcVariant
	for _, b := range boxes {
		for _, v := range []rotRect{b, b.grow(0, confirmPadY*b.H)} {
			probs, steps, err := r.recProbsStretched(bgr, v, confirmStretch)
			if err != nil {
				return nil, err
			}
			rd := []textRead{{R: v, Tokens: ctcDecode(probs, steps, r.cs)}}
			t.add(3, rd)
			all = append(all, candidatesFrom(rd, r.fm, src)...)
			src++
		}
	}
	demoteFragments(all)
	vote(all, place)
	return all, nil
}

// leadingReadings is the best candidate of each of the k best texts read
// at place, best first; all is sorted by score. Trims count only as the
// best: every long reading has trims just below it (trimPenalty), which
// would make every plate look contested.
func leadingReadings(all []candidate, place image.Rectangle, k int) []candidate {
	var out []candidate
	seen := map[string]bool{}
	for _, c := range all {
		if len(out) >= k {
			break
		}
		if rectOverlap(place, c.box) <= sameBoxOverlap || seen[c.text] || (len(out) > 0 && c.trimmed) {
			continue
		}
		seen[c.text] = true
		out = append(out, c)
	}
	return out
}

// uncertain reports whether the leading readings of a place leave doubt:
// the runner-up scores close to the best, a character of the best is
// unsure, or the best does not fit the region.
func (r *Recognizer) uncertain(lead []candidate) bool {
	if len(lead) == 0 {
		return false
	}
	b := lead[0]
	if len(lead) > 1 && lead[1].score >= uncertainRatio*b.score {
		return true
	}
	if minProb(b.toks) < uncertainMinProb {
		return true
	}
	return r.fm.plausibility(b.text) < 1
}

func minProb(toks []token) float64 {
	m := 1.0
	for _, t := range toks {
		m = min(m, t.Prob)
	}
	return m
}

// vote rescores the candidates at place. Every source (a pass, a
// variant crop) votes for each text it read there with its best score
// for it: in full for its own best text, voteAltWeight of it for the
// others (look-alike swaps, other joins of its boxes). An end or inner
// trim votes only as a source's own best: every long reading offers its
// trims, so they would otherwise outvote the readings they come from.
// The texts then keep the place's best score for the text with the most
// votes and proportionally less for the others, so the place's rank among
// plates does not change. Texts that differ only in O and 0 are one.
func vote(all []candidate, place image.Rectangle) {
	type key struct {
		text string
		src  int
	}
	best := map[key]float64{}
	srcTop := map[int]candidate{}
	trimmedOnly := map[key]bool{}
	top := 0.0
	for _, c := range all {
		if rectOverlap(place, c.box) <= sameBoxOverlap {
			continue
		}
		k := key{voteKey(c.text), c.src}
		if _, seen := best[k]; !seen {
			trimmedOnly[k] = c.trimmed
		} else if !c.trimmed {
			trimmedOnly[k] = false
		}
		best[k] = max(best[k], c.score)
		if t, ok := srcTop[c.src]; !ok || c.score > t.score {
			srcTop[c.src] = c
		}
		top = max(top, c.score)
	}
	// Summed in a fixed order, so that equal votes always break alike.
	keys := make([]key, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].text != keys[j].text {
			return keys[i].text < keys[j].text
		}
		return keys[i].src < keys[j].src
	})
	agg := map[string]float64{}
	maxAgg := 0.0
	for _, k := range keys {
		s := best[k]
		if voteKey(srcTop[k.src].text) != k.text {
			if trimmedOnly[k] {
				continue
			}
			s *= voteAltWeight
		}
		agg[k.text] += s
		maxAgg = max(maxAgg, agg[k.text])
	}
	if maxAgg <= 0 {
		return
	}
	for i := range all {
		c := &all[i]
		if rectOverlap(place, c.box) <= sameBoxOverlap {
			continue
		}
		c.score = top * agg[voteKey(c.text)] / maxAgg
	}
}

// coverRect is the rotated rectangle around the boxes of one line.
func coverRect(rs []rotRect) rotRect {
	if len(rs) == 1 {
		return rs[0]
	}
	var pts []vec
	for _, r := range rs {
		cs := r.corners()
		pts = append(pts, cs[:]...)
	}
	return minAreaRect(pts)
}

// sameRect reports whether a and b are the same box within a tenth of its
// height.
func sameRect(a, b rotRect) bool {
	tol := 0.1 * max(a.H, b.H)
	return a.C.sub(b.C).norm() < tol && abs(a.W-b.W) < tol && abs(a.H-b.H) < tol
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// voteKey is what a vote counts for: readings that differ only in O and 0
// are one reading, the region fix deciding which of the two it shows.
func voteKey(text string) string {
	return strings.ReplaceAll(text, "O", "0")
}
