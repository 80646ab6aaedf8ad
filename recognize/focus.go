package recognize

import (
	"image"
	"math"
	"sort"

	"gocv.io/x/gocv"
)

// Focused pass parameters. Measured on the three dataset folders (see
// the package doc and issue 3's note); none is tuned to an image.
const (
	// focusRegionsMax is how many first-pass plate candidates are looked
	// at again, best first. Measured: 2 reads the same plates as 1 on all
	// three folders (us 103, eu 62, br 80 of 157/69/82) and costs more.
	focusRegionsMax = 1
	// focusMinScore is the least score a first-pass candidate needs to
	// be looked at again.
	focusMinScore = 0.05
	// focusBoxPx is the height, in detector pixels, the candidate's text
	// box is scaled to: about 30 px characters. At 16-24 px the detector
	// cuts end characters off close-up crops; 48 and 64 read alike.
	focusBoxPx = 48
	// focusMarginX and focusMarginY widen the candidate's box by these
	// multiples of its text height on each side: room for a character
	// the first pass missed and for a second line.
	focusMarginX = 1.0
	focusMarginY = 0.8
	// focusMinSide is the least detector input side: the detector needs
	// some context around the text.
	focusMinSide = 160
	// focusMaxSide caps the focused detector input's long side.
	focusMaxSide = 640
)

// Rescue pass: when neither pass found a candidate scoring rescueMinScore,
// the whole image is detected again at rescueSide (the first pass's pixel
// cap rule applies) and its best candidate focused on. It reads 6 more us
// plates (of 157) and 1 more br; about 10% of us images pay for it. A
// rescueMinScore of 0.6 reads the same on the tuning half and one more
// plate on the other, for more rescue passes; rescueSide 1024 reads
// two fewer us plates, 1536 one more at ~100 MB more peak memory.
const (
	rescueSide     = 1280
	rescueMinScore = 0.4
)

// recognizeFocused is ModeFocused. A whole-image pass at DetMaxSide finds
// and reads text boxes. The neighbourhood of the best plate candidate is
// then detected again at a scale that makes its text focusBoxPx high, and
// read again: the first pass's boxes are coarse at its low resolution, the
// focused pass's are tight. Candidates of both passes are ranked together.
func (r *Recognizer) recognizeFocused(bgr gocv.Mat, t *Trace) ([]Plate, error) {
	w, h := bgr.Cols(), bgr.Rows()
	dw, dh := firstPassSize(w, h, r.cfg.DetMaxSide)
	cands, err := r.passAndFocus(bgr, dw, dh, srcPass1, srcPass2, t)
	if err != nil {
		return nil, err
	}
	if rw, rh := firstPassSize(w, h, rescueSide); (rw > dw || rh > dh) && bestScore(cands) < rescueMinScore {
		// Nothing plate-like at the first pass's scale: the plate may
		// be too small or too faint for it. Look once more, finer, and
		// focus on what that finds.
		found, err := r.passAndFocus(bgr, rw, rh, srcRescue, srcRescueFocus, t)
		if err != nil {
			return nil, err
		}
		cands = append(cands, found...)
	}
	all, err := r.confirm(bgr, cands, t)
	if err != nil {
		return nil, err
	}
	return platesRanked(all), nil
}

// passAndFocus reads the whole image detected at dw x dh (candidates of
// source src), then the neighbourhood of its best candidate (focusSrc),
// and returns both passes' candidates. The focused pass keeps the whole
// pass's candidates: where it cuts a character off, the first reading
// still competes (measured with two focused regions: keeping them reads 3
// more us and 2 more br plates than replacing them).
func (r *Recognizer) passAndFocus(bgr gocv.Mat, dw, dh, src, focusSrc int, t *Trace) ([]candidate, error) {
	cands, err := r.wholePass(bgr, dw, dh, src, t)
	if err != nil {
		return nil, err
	}
	more, err := r.focusPass(bgr, cands, focusSrc, t)
	if err != nil {
		return nil, err
	}
	return append(cands, more...), nil
}

// wholePass detects text in the whole image at dw x dh and reads the
// largest boxes: the candidates, marked as from src.
func (r *Recognizer) wholePass(bgr gocv.Mat, dw, dh, src int, t *Trace) ([]candidate, error) {
	boxes, err := r.detect(bgr, image.Rect(0, 0, bgr.Cols(), bgr.Rows()), dw, dh, ourDB)
	if err != nil {
		return nil, err
	}
	if len(boxes) > maxCropsImage {
		boxes = boxes[:maxCropsImage]
	}
	reads, err := r.read(bgr, boxes)
	if err != nil {
		return nil, err
	}
	t.add(1, reads)
	return candidatesFrom(reads, r.fm, src), nil
}

// focusPass detects text again around the best of cands (see
// focusGeometry) and reads it: the candidates found there, marked as from
// src.
func (r *Recognizer) focusPass(bgr gocv.Mat, cands []candidate, src int, t *Trace) ([]candidate, error) {
	var out []candidate
	for _, reg := range focusRegions(cands, focusRegionsMax) {
		roi, fw, fh := focusGeometry(reg, bgr.Cols(), bgr.Rows())
		if roi.Empty() {
			continue
		}
		boxes, err := r.detect(bgr, roi, fw, fh, ourDB)
		if err != nil {
			return nil, err
		}
		if len(boxes) > maxCropsImage {
			boxes = boxes[:maxCropsImage]
		}
		reads, err := r.read(bgr, boxes)
		if err != nil {
			return nil, err
		}
		t.add(2, reads)
		out = append(out, candidatesFrom(reads, r.fm, src)...)
	}
	return out, nil
}

// focusRegion is a plate candidate of the first pass: its box and the
// height of its tallest text box, in image pixels.
type focusRegion struct {
	box   image.Rectangle
	textH float64
}

// focusRegions picks up to k candidates to look at again, best first, one
// per place in the image.
func focusRegions(cands []candidate, k int) []focusRegion {
	sorted := append([]candidate(nil), cands...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].score > sorted[j].score })
	var out []focusRegion
	for _, c := range sorted {
		if len(out) >= k || c.score < focusMinScore {
			break
		}
		dup := false
		for _, o := range out {
			if rectOverlap(o.box, c.box) > sameBoxOverlap {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, focusRegion{box: c.box, textH: c.textH})
		}
	}
	return out
}

// focusGeometry is the part of a w x h image to detect again around reg,
// and the detector input size for it; an empty rectangle when too little
// of it lies in the image.
func focusGeometry(reg focusRegion, w, h int) (image.Rectangle, int, int) {
	th := math.Max(reg.textH, minTextPx)
	mx := int(math.Ceil(focusMarginX * th))
	my := int(math.Ceil(focusMarginY * th))
	roi := image.Rect(reg.box.Min.X-mx, reg.box.Min.Y-my, reg.box.Max.X+mx, reg.box.Max.Y+my)
	s := focusBoxPx / th
	if d := int(math.Ceil(focusMinSide/s)) - roi.Dx(); d > 0 {
		roi.Min.X -= d / 2
		roi.Max.X += d - d/2
	}
	if d := int(math.Ceil(focusMinSide/s)) - roi.Dy(); d > 0 {
		roi.Min.Y -= d / 2
		roi.Max.Y += d - d/2
	}
	roi = roi.Intersect(image.Rect(0, 0, w, h))
	if roi.Dx() < minImageIn || roi.Dy() < minImageIn {
		return image.Rectangle{}, 0, 0
	}
	if l := s * float64(max(roi.Dx(), roi.Dy())); l > focusMaxSide {
		s *= focusMaxSide / l
	}
	fw := max(32, int(math.Round(float64(roi.Dx())*s/32))*32)
	fh := max(32, int(math.Round(float64(roi.Dy())*s/32))*32)
	return roi, fw, fh
}

// firstPassSize is the detector input for the whole image: at most maxSide
// on the long side and maxSide*maxSide*9/16 pixels (a 16:9 frame's worth),
// keeping the aspect ratio; both sides multiples of 32. The pixel cap keeps
// the cost of a 4:3 frame that of a 16:9 one.
func firstPassSize(w, h, maxSide int) (int, int) {
	m := float64(maxSide)
	s := math.Min(m/float64(max(w, h)), math.Sqrt(m*m*9/16/(float64(w)*float64(h))))
	dw := max(32, int(math.Round(float64(w)*s/32))*32)
	dh := max(32, int(math.Round(float64(h)*s/32))*32)
	return dw, dh
}

// bestScore is the highest score among cands, 0 for none.
func bestScore(cands []candidate) float64 {
	b := 0.0
	for _, c := range cands {
		b = max(b, c.score)
	}
	return b
}
