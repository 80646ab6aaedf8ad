package recognize

import (
	"image"

	"gocv.io/x/gocv"
)

// The plain pipeline's fixed detector input (issue 3: "detect text at one
// scale 960x544").
const (
	plainDetW = 960
	plainDetH = 544
)

// recognizePlain is ModePlain: detect at 960x544 whatever the image's
// aspect, read every box with the full alphabet, keep the longest 4-8
// character alphanumeric string with a digit (the more confident of equal
// lengths). It returns at most one plate.
func (r *Recognizer) recognizePlain(bgr gocv.Mat, t *Trace) ([]Plate, error) {
	boxes, err := r.detect(bgr, image.Rect(0, 0, bgr.Cols(), bgr.Rows()), plainDetW, plainDetH, plainDB)
	if err != nil {
		return nil, err
	}
	var best *Plate
	for _, b := range boxes {
		probs, steps, err := r.recProbs(bgr, b)
		if err != nil {
			return nil, err
		}
		raw, conf := ctcDecodeAll(probs, steps, r.cs)
		text := Normalize(raw)
		if t != nil {
			t.add(1, []textRead{{R: b, Tokens: tokensOf(text, conf)}})
		}
		if len(text) < 4 || len(text) > 8 || !hasDigit(text) {
			continue
		}
		if best != nil && (len(text) < len(best.Text) || len(text) == len(best.Text) && conf <= best.Confidence) {
			continue
		}
		best = &Plate{Text: text, Confidence: conf, Box: b.bounds(), Candidates: []Candidate{{Text: text, Confidence: conf}}}
	}
	if best == nil {
		return nil, nil
	}
	return []Plate{*best}, nil
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			return true
		}
	}
	return false
}

// tokensOf makes tokens of text, each with probability p (for Trace).
func tokensOf(text string, p float64) []token {
	out := make([]token, len(text))
	for i := 0; i < len(text); i++ {
		out[i] = token{Char: text[i], Prob: p}
	}
	return out
}
