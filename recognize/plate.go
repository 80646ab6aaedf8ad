package recognize

import (
	"image"
	"math"
	"sort"
	"strings"
)

// Normalize upper-cases s and keeps only A-Z and 0-9. It keeps the letter O
// and the digit 0 apart (a read should say what the plate says); Match
// folds them.
func Normalize(s string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Match is the benchmark's strict top-1 rule: both sides normalised, the
// letter O and the digit 0 counted as the same, every other character
// exact. An empty read never matches.
func Match(got, want string) bool {
	g := strings.ReplaceAll(Normalize(got), "O", "0")
	w := strings.ReplaceAll(Normalize(want), "O", "0")
	return g != "" && g == w
}

// Plate ranking parameters.
const (
	minPlateConf   = 0.10 // plates scoring below are not returned
	maxCandidates  = 5
	altMinRatio    = 0.25 // runner-up char kept as an alternative if >= this x the best
	maxJoin        = 3    // boxes joined on one line
	sameBoxOverlap = 0.3  // candidates overlapping this much describe one plate
	trimPenalty    = 0.92 // score factor of a reading with an end character dropped
	// maxFragmentExtra is how many more characters a reading may have
	// than a fragment of it that it demotes (demoteFragments).
	maxFragmentExtra = 2
)

// piece is the alphanumeric reading of one text box.
type piece struct {
	toks []token // A-Z0-9 only
	box  image.Rectangle
	r    rotRect
}

// candidate is a plate text with the boxes it came from.
type candidate struct {
	toks  []token
	box   image.Rectangle
	score float64
	text  string
	textH float64 // tallest text box's height, image pixels
	// trimmed marks an end-trim or inner-drop variant: already
	// penalised for the character it drops.
	trimmed bool
	// rs are the text boxes the reading came from, in reading order;
	// stacked says they are lines of a two-line plate.
	rs      []rotRect
	stacked bool
	// src names the reading of the image the candidate came from (a
	// pass, or a variant crop of one box): votes count once per src.
	src int
}

func pieceOf(tr textRead) piece {
	p := piece{r: tr.R, box: tr.R.bounds()}
	for _, t := range tr.Tokens {
		if t.Char != ' ' {
			p.toks = append(p.toks, t)
		}
	}
	return p
}

// sameLine reports whether b continues a's line to the right: similar
// height, centres level, a small gap.
func sameLine(a, b piece) bool {
	ha, hb := a.r.H, b.r.H
	if ha <= 0 || hb <= 0 || ha/hb > 1.6 || hb/ha > 1.6 {
		return false
	}
	h := math.Max(ha, hb)
	if math.Abs(a.r.C.Y-b.r.C.Y) > 0.5*h {
		return false
	}
	gap := float64(b.box.Min.X - a.box.Max.X)
	return gap >= -0.3*h && gap <= 1.5*h && b.r.C.X > a.r.C.X
}

// stacked reports whether b is the line right below a on the same plate.
func stacked(a, b piece) bool {
	ov := min(a.box.Max.X, b.box.Max.X) - max(a.box.Min.X, b.box.Min.X)
	if float64(ov) < 0.5*float64(min(a.box.Dx(), b.box.Dx())) {
		return false
	}
	h := math.Max(a.r.H, b.r.H)
	gap := float64(b.box.Min.Y - a.box.Max.Y)
	return gap >= -0.3*h && gap <= 0.8*h && b.r.C.Y > a.r.C.Y
}

// joins returns every piece alone, runs of up to maxJoin pieces on one line
// and pairs of stacked lines.
func joins(ps []piece) []candidate {
	var out []candidate
	addJoin := func(stack bool, idx ...int) {
		c := candidate{box: ps[idx[0]].box, stacked: stack}
		for _, i := range idx {
			c.toks = append(c.toks, ps[i].toks...)
			c.box = c.box.Union(ps[i].box)
			c.textH = math.Max(c.textH, ps[i].r.H)
			c.rs = append(c.rs, ps[i].r)
		}
		if len(c.toks) > 0 {
			out = append(out, c)
		}
	}
	add := func(idx ...int) { addJoin(false, idx...) }
	for i := range ps {
		add(i)
	}
	// Lines: left to right chains of sameLine neighbours.
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return ps[order[a]].box.Min.X < ps[order[b]].box.Min.X })
	var chain func(run []int)
	chain = func(run []int) {
		if len(run) > 1 {
			add(run...)
		}
		if len(run) == maxJoin {
			return
		}
		last := ps[run[len(run)-1]]
		for _, j := range order {
			if sameLine(last, ps[j]) && !contains(run, j) {
				chain(append(append([]int(nil), run...), j))
			}
		}
	}
	for _, i := range order {
		chain([]int{i})
	}
	for i := range ps {
		for j := range ps {
			if i != j && stacked(ps[i], ps[j]) {
				addJoin(true, i, j)
			}
		}
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func textOf(toks []token) string {
	b := make([]byte, len(toks))
	for i, t := range toks {
		b[i] = t.Char
	}
	return string(b)
}

func meanProb(toks []token) float64 {
	if len(toks) == 0 {
		return 0
	}
	var s float64
	for _, t := range toks {
		s += t.Prob
	}
	return s / float64(len(toks))
}

// variants returns c's region fix and its single-character alternatives,
// each scored.
func variants(c candidate, f formats) []candidate {
	base := c
	base.toks = f.fix(c.toks)
	out := []candidate{base}
	if textOf(base.toks) != textOf(c.toks) {
		out = append(out, c) // the unfixed reading stays a candidate
	}
	// Runner-up characters where the recogniser hesitated.
	for i, t := range base.toks {
		if t.Alt == 0 || t.AltProb < altMinRatio*t.Prob {
			continue
		}
		v := base
		v.toks = append([]token(nil), base.toks...)
		v.toks[i] = token{Char: t.Alt, Prob: t.AltProb, Alt: t.Char, AltProb: t.Prob}
		out = append(out, v)
	}
	for i := range out {
		out[i].text = textOf(out[i].toks)
		out[i].score = meanProb(out[i].toks) * f.plausibility(out[i].text)
	}
	// dropped is c read without a character: region-fixed and scored at
	// trimPenalty.
	dropped := func(toks []token) candidate {
		t := c
		t.toks = f.fix(toks)
		t.text = textOf(t.toks)
		t.trimmed = true
		t.score = trimPenalty * meanProb(t.toks) * f.plausibility(t.text)
		return t
	}
	// A stray mark at either end (a bolt, the border, a sticker) often
	// reads as an extra character: offer the reading without it, at a
	// small penalty so a confident end character wins.
	if n := len(c.toks); n >= 6 {
		out = append(out, dropped(c.toks[1:]), dropped(c.toks[:n-1]))
	}
	// A mark between the character groups (a registration sticker, a
	// coat of arms) often reads as one more character inside the plate:
	// where the reading fits none of the region's formats, offer it
	// without one inner character when that makes it fit one, at the
	// end trims' penalty.
	if n := len(c.toks); n >= 4 && f.hasPatterns() && !f.fitsPattern(textOf(base.toks)) {
		for i := 1; i < n-1; i++ {
			if t := dropped(append(append([]token(nil), c.toks[:i]...), c.toks[i+1:]...)); f.fitsPattern(t.text) {
				out = append(out, t)
			}
		}
	}
	return out
}

// platesFrom turns the readings of one image into plates, best first.
func platesFrom(reads []textRead, region string) []Plate {
	return platesOf(candidatesOf(reads, formats{region: region}))
}

// candidatesOf is every scored reading of one pass's text boxes: each box,
// boxes joined on a line or stacked, and their variants.
func candidatesOf(reads []textRead, f formats) []candidate {
	return candidatesFrom(reads, f, 0)
}

// candidatesFrom is candidatesOf with every candidate marked as coming
// from reading src.
func candidatesFrom(reads []textRead, f formats, src int) []candidate {
	ps := make([]piece, 0, len(reads))
	for _, tr := range reads {
		if p := pieceOf(tr); len(p.toks) > 0 {
			ps = append(ps, p)
		}
	}
	var all []candidate
	for _, c := range joins(ps) {
		c.src = src
		all = append(all, variants(c, f)...)
	}
	return all
}

// demoteFragments lowers, by trimPenalty, a candidate whose text is part
// of a competing reading of the same place with up to maxFragmentExtra
// more characters, read about as surely as the fragment's own
// (trimPenalty times their mean probability): "YX8803" where another crop
// read "AYX8803". It is the counterpart of the end-trim variants: dropping a
// character the recogniser saw costs the same either way. The longer
// reading competes when its score is at least trimPenalty times the
// fragment's, so a long junk join ("TEXASCHW2245") demotes nothing.
func demoteFragments(all []candidate) {
	demote := make([]bool, len(all))
	for i, c := range all {
		if c.trimmed {
			continue
		}
		for _, d := range all {
			extra := len(d.toks) - len(c.toks)
			if extra < 1 || extra > maxFragmentExtra || d.score < trimPenalty*c.score || rectOverlap(c.box, d.box) <= sameBoxOverlap {
				continue
			}
			k := strings.Index(d.text, c.text)
			if k < 0 || c.text == "" {
				continue
			}
			ex := append(append([]token(nil), d.toks[:k]...), d.toks[k+len(c.toks):]...)
			if meanProb(ex) >= trimPenalty*meanProb(c.toks) {
				demote[i] = true
				break
			}
		}
	}
	for i := range all {
		if demote[i] {
			all[i].score *= trimPenalty
		}
	}
}

// platesOf groups candidates by box into plates, best first.
func platesOf(all []candidate) []Plate {
	demoteFragments(all)
	return platesRanked(all)
}

// platesRanked is platesOf for candidates whose fragments were demoted.
func platesRanked(all []candidate) []Plate {
	sort.SliceStable(all, func(i, j int) bool { return all[i].score > all[j].score })
	var plates []Plate
	for _, c := range all {
		if c.score <= 0 {
			break
		}
		k := -1
		for i, p := range plates {
			if rectOverlap(p.Box, c.box) > sameBoxOverlap {
				k = i
				break
			}
		}
		if k < 0 {
			if c.score < minPlateConf {
				continue
			}
			plates = append(plates, Plate{
				Text: c.text, Confidence: c.score, Box: c.box,
				Candidates: []Candidate{{Text: c.text, Confidence: c.score}},
			})
			continue
		}
		p := &plates[k]
		if len(p.Candidates) >= maxCandidates || hasCandidate(p.Candidates, c.text) {
			continue
		}
		p.Candidates = append(p.Candidates, Candidate{Text: c.text, Confidence: c.score})
	}
	return plates
}

func hasCandidate(cs []Candidate, text string) bool {
	for _, c := range cs {
		if c.Text == text {
			return true
		}
	}
	return false
}
