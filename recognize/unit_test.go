package recognize

import (
	"errors"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc 123", "ABC123"},
		{"RK-099AN", "RK099AN"},
		{"  ", ""},
		{"ÄBC·12", "BC12"},
		{"o0O", "O0O"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		got, want string
		ok        bool
	}{
		{"ABC1234", "ABC1234", true},
		{"abc-1234", "ABC1234", true},
		{"RKO99AN", "RK099AN", true}, // O and 0 are one character
		{"RK099AN", "RKO99AN", true},
		{"RK1OOAG", "RK100AG", true},
		{"ABC1234", "ABC1235", false},
		{"A8C1234", "ABC1234", false}, // B/8 is an error
		{"1BC", "IBC", false},         // I/1 is an error
		{"ABC123", "ABC1234", false},
		{"", "", false},
		{"---", "", false},
	}
	for _, tt := range tests {
		if got := Match(tt.got, tt.want); got != tt.ok {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.ok)
		}
	}
}

func ExampleMatch() {
	fmt.Println(Match("rk-o99an", "RK099AN"), Match("RK099AN", "RK099AM"))
	// Output: true false
}

// testCharset: blank, a, B, 1, 中, Ａ (full width), 0, space.
func testCharset() *charset {
	return newCharset([]string{"a", "B", "1", "中", "Ａ", "0"})
}

func frame(cs *charset, ps map[int]float32) []float32 {
	row := make([]float32, cs.columns)
	var sum float32
	for c, p := range ps {
		row[c] = p
		sum += p
	}
	row[0] += 1 - sum // rest is blank
	return row
}

func TestCTCDecode(t *testing.T) {
	cs := testCharset()
	if cs.columns != 8 || cs.space != 7 {
		t.Fatalf("charset columns=%d space=%d, want 8 and 7", cs.columns, cs.space)
	}
	var probs []float32
	for _, f := range []map[int]float32{
		{1: 0.3, 5: 0.3},   // a + Ａ fold into A: 0.6
		{1: 0.9},           // A again, no blank between: one A, prob 0.9
		{},                 // blank
		{1: 0.8},           // A after blank: a second A
		{3: 0.7, 6: 0.2},   // 1 (alt 0)
		{3: 0.6},           // repeat collapses
		{7: 0.9},           // space
		{4: 0.8, 2: 0.15},  // 中 is not a plate character: B wins over blank? no, blank 0.05
		{4: 0.5, 2: 0.45},  // B beats blank (0.05) with 中 ignored
		{6: 0.55, 3: 0.40}, // 0, alt 1
	} {
		probs = append(probs, frame(cs, f)...)
	}
	toks := ctcDecode(probs, len(probs)/cs.columns, cs)
	var text strings.Builder
	for _, tk := range toks {
		text.WriteByte(tk.Char)
	}
	if got, want := text.String(), "AA1 B0"; got != want {
		t.Fatalf("decoded %q, want %q", got, want)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if !near(toks[0].Prob, 0.9) {
		t.Errorf("first A prob %v, want 0.9 (best frame of its run)", toks[0].Prob)
	}
	if toks[2].Alt != '0' || !near(toks[2].AltProb, 0.2) {
		t.Errorf("1's runner-up = %q %v, want '0' 0.2", toks[2].Alt, toks[2].AltProb)
	}
	if toks[4].Char != 'B' || !near(toks[4].Prob, 0.45) {
		t.Errorf("B = %q %v, want B 0.45", toks[4].Char, toks[4].Prob)
	}
	if toks[5].Alt != '1' || !near(toks[5].AltProb, 0.4) {
		t.Errorf("0's runner-up = %q %v, want '1' 0.4", toks[5].Alt, toks[5].AltProb)
	}
}

func TestCharsetMissingClass(t *testing.T) {
	if err := testCharset().validate(); err == nil {
		t.Error("validate of a charset without most letters: nil error")
	}
}

func toksOf(s string, p float64) []token {
	out := make([]token, len(s))
	for i := range s {
		out[i] = token{Char: s[i], Prob: p}
	}
	return out
}

func TestFixRegion(t *testing.T) {
	tests := []struct {
		name, region, in, want string
	}{
		{"br old format", "br", "ABC1234", "ABC1234"},
		{"br letters read as digits", "br", "A8C1Z34", "ABC1Z34"},
		{"br digits read as letters", "br", "0BCIO34", "OBC1O34"},
		{"br digit block", "br", "ABC1DZS", "ABC1D25"},
		{"br mercosul", "br", "RI02B45", "RIO2B45"},
		{"br no look-alike stays", "br", "A7C1234", "A7C1234"},
		{"br wrong length untouched", "br", "A8C123", "A8C123"},
		{"us never fixed", "us", "A8C1Z34", "A8C1Z34"},
		{"generic never fixed", "", "0BCIO34", "0BCIO34"},
		{"eu slovak", "eu", "LM298A1", "LM298AI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := toksOf(tt.in, 0.9)
			out := fixRegion(in, tt.region)
			if got := textOf(out); got != tt.want {
				t.Errorf("fixRegion(%q, %q) = %q, want %q", tt.in, tt.region, got, tt.want)
			}
			if textOf(in) != tt.in {
				t.Errorf("input modified to %q", textOf(in))
			}
			// Never invents: same length, and every change is a listed
			// look-alike swap.
			if len(out) != len(in) {
				t.Fatalf("length %d, want %d", len(out), len(in))
			}
			for i := range out {
				a, b := in[i].Char, out[i].Char
				if a != b && toLetter[a] != b && toDigit[a] != b {
					t.Errorf("position %d: %q became %q, not a look-alike", i, a, b)
				}
			}
		})
	}
}

func TestPlausibility(t *testing.T) {
	tests := []struct {
		region, s string
		good      bool // >= 0.85
	}{
		{"us", "7ABC123", true},
		{"us", "CALIFORNIA", false},
		{"us", "DMV", false},
		{"us", "TEXAS", false},
		{"us", "20191231", false},
		{"br", "ABC1D23", true},
		{"br", "ABC1234", true},
		{"br", "AB12345", false},
		{"eu", "RK099AN", true},
		{"eu", "AUTOHAUS", false},
		{"", "AB123", true},
		{"", "HELLO", false},
	}
	for _, tt := range tests {
		if p := plausibility(tt.s, tt.region); (p >= 0.85) != tt.good {
			t.Errorf("plausibility(%q, %q) = %v, want good=%v", tt.s, tt.region, p, tt.good)
		}
	}
	// A camera's date stamp ranks below a word, an all-digit plate above.
	if d, w, n := plausibility("20140508", "us"), plausibility("NOTICE", "us"), plausibility("1365847", "us"); d > w || n <= w {
		t.Errorf("us: date %v, word %v, all-digit plate %v; want date <= word < plate", d, w, n)
	}
}

func TestVariants_InnerDrop(t *testing.T) {
	texts := func(cs []candidate) map[string]candidate {
		m := map[string]candidate{}
		for _, c := range cs {
			if o, ok := m[c.text]; !ok || c.score > o.score {
				m[c.text] = c
			}
		}
		return m
	}
	// A sticker between the groups read as a doubtful 8: the reading
	// without it fits DLDDDDD and wins among the drops.
	toks := toksOf("4B389376", 0.95)
	toks[3].Prob = 0.5
	c := candidate{toks: toks, box: image.Rect(0, 0, 100, 30), textH: 30}
	got := texts(variants(c, formats{region: "eu"}))
	drop, ok := got["4B39376"]
	if !ok || !drop.trimmed {
		t.Fatalf("eu variants of 4B389376 = %v, want the trimmed 4B39376", got)
	}
	for text, o := range got {
		if o.trimmed && len(text) == 7 && text != "4B39376" && o.score >= drop.score {
			t.Errorf("inner drop %s scores %v >= 4B39376's %v", text, o.score, drop.score)
		}
	}
	if want := trimPenalty * meanProb(drop.toks); math.Abs(drop.score-want) > 1e-9 {
		t.Errorf("inner drop score %v, want trimPenalty x mean probability = %v", drop.score, want)
	}
	// A reading that fits a format is not cut, and regions without
	// formats never drop inner characters.
	for _, tc := range []struct{ region, text string }{{"eu", "RK099AN"}, {"us", "4B389376"}, {"", "4B389376"}} {
		for _, v := range variants(candidate{toks: toksOf(tc.text, 0.9)}, formats{region: tc.region}) {
			if v.trimmed && v.text != tc.text[1:] && v.text != tc.text[:len(tc.text)-1] {
				t.Errorf("%s %s: unexpected inner drop %s", tc.region, tc.text, v.text)
			}
		}
	}
}

func TestVote(t *testing.T) {
	place := image.Rect(100, 100, 200, 130)
	cand := func(text string, score float64, src int, trimmed bool) candidate {
		return candidate{toks: toksOf(text, score), text: text, score: score, box: place, src: src, trimmed: trimmed}
	}
	tests := []struct {
		name string
		in   []candidate
		want string
	}{
		{"two sources outvote one surer", []candidate{
			cand("INP222", 0.98, srcPass2, false),
			cand("TNP222", 0.94, srcPass1, false),
			cand("TNP222", 0.93, srcVariant, false),
		}, "TNP222"},
		{"trims do not outvote their readings", []candidate{
			cand("6WAW786", 0.99, srcPass2, false), cand("WAW786", 0.91, srcPass2, true),
			cand("6WAW786", 0.96, srcVariant, false), cand("WAW786", 0.88, srcVariant, true),
			cand("WAW786", 0.98, srcPass1, false),
			cand("WAW786", 0.97, srcVariant+1, false),
		}, "6WAW786"},
		{"O and 0 are one reading", []candidate{
			cand("ZA834CO", 0.90, srcPass2, false), cand("ZA834C0", 0.89, srcPass2, false),
			cand("ZA834C0", 0.90, srcVariant, false),
			cand("ZA83400", 0.97, srcPass1, false),
		}, "ZA834CO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := append([]candidate(nil), tt.in...)
			top := 0.0
			for _, c := range all {
				top = max(top, c.score)
			}
			// A plate elsewhere keeps its score.
			other := candidate{toks: toksOf("XYZ789", 0.5), text: "XYZ789", score: 0.5, box: image.Rect(600, 100, 700, 130), src: srcPass1}
			all = append(all, other)
			demoteFragments(all) // as confirm does
			vote(all, place)
			ps := platesRanked(all)
			if len(ps) == 0 || ps[0].Text != tt.want {
				t.Fatalf("plates %+v, want %s first", ps, tt.want)
			}
			if ps[0].Confidence != top {
				t.Errorf("voted plate confidence %v, want the place's best score %v", ps[0].Confidence, top)
			}
			if len(ps) < 2 || ps[1].Text != "XYZ789" || ps[1].Confidence != 0.5 {
				t.Errorf("plate elsewhere changed: %+v", ps)
			}
		})
	}
}

func TestLeadingReadings(t *testing.T) {
	place := image.Rect(100, 100, 200, 130)
	all := []candidate{
		{text: "ABC1234", score: 0.95, box: place},
		{text: "BC1234", score: 0.90, box: place, trimmed: true},
		{text: "ABC1234", score: 0.90, box: place},
		{text: "XYZ789", score: 0.85, box: image.Rect(600, 100, 700, 130)},
		{text: "A8C1234", score: 0.70, box: place},
	}
	got := leadingReadings(all, place, 2)
	if len(got) != 2 || got[0].text != "ABC1234" || got[1].text != "A8C1234" {
		t.Errorf("leadingReadings = %+v, want ABC1234 then A8C1234 (no trim, nothing elsewhere)", got)
	}
}

func TestCoverRect(t *testing.T) {
	a, b := textBox(100, 50, 60, 30), textBox(170, 50, 80, 30)
	c := coverRect([]rotRect{a, b})
	if math.Abs(c.W-150) > 1e-6 || math.Abs(c.H-30) > 1e-6 || math.Abs(c.C.X-175) > 1e-6 || math.Abs(c.C.Y-65) > 1e-6 {
		t.Errorf("coverRect = %+v, want 150x30 centred at (175,65)", c)
	}
	if !sameRect(a, coverRect([]rotRect{a})) || sameRect(a, b) {
		t.Error("sameRect: a box must be itself and not its neighbour")
	}
}

// textBox is a horizontal text box with its top-left corner at x, y.
func textBox(x, y, w, h float64) rotRect {
	return rotRect{C: vec{x + w/2, y + h/2}, U: vec{1, 0}, W: w, H: h}
}

func TestJoins(t *testing.T) {
	tests := []struct {
		name  string
		boxes []rotRect
		texts []string
		want  []string // must appear among the joined texts
		not   []string // must not
	}{
		{
			name:  "split line",
			boxes: []rotRect{textBox(100, 50, 60, 30), textBox(175, 52, 80, 30)},
			texts: []string{"ABC", "1234"},
			want:  []string{"ABC", "1234", "ABC1234"},
			not:   []string{"1234ABC"},
		},
		{
			name:  "three pieces",
			boxes: []rotRect{textBox(0, 0, 40, 30), textBox(50, 0, 70, 30), textBox(130, 0, 40, 30)},
			texts: []string{"RK", "099", "AN"},
			want:  []string{"RK099AN", "RK099", "099AN"},
		},
		{
			name:  "stacked lines",
			boxes: []rotRect{textBox(100, 50, 80, 20), textBox(95, 75, 90, 28)},
			texts: []string{"ABC", "1234"},
			want:  []string{"ABC1234"},
			not:   []string{"1234ABC"},
		},
		{
			name:  "far apart",
			boxes: []rotRect{textBox(0, 0, 60, 30), textBox(400, 0, 60, 30)},
			texts: []string{"ABC", "1234"},
			not:   []string{"ABC1234", "1234ABC"},
		},
		{
			name:  "different heights",
			boxes: []rotRect{textBox(0, 0, 60, 30), textBox(65, 10, 30, 10)},
			texts: []string{"ABC123", "CA"},
			not:   []string{"ABC123CA"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []piece
			for i, b := range tt.boxes {
				ps = append(ps, pieceOf(textRead{R: b, Tokens: toksOf(tt.texts[i], 0.9)}))
			}
			got := map[string]bool{}
			for _, c := range joins(ps) {
				got[textOf(c.toks)] = true
			}
			for _, w := range tt.want {
				if !got[w] {
					t.Errorf("missing %q in %v", w, got)
				}
			}
			for _, n := range tt.not {
				if got[n] {
					t.Errorf("unexpected %q in %v", n, got)
				}
			}
		})
	}
}

func TestPlatesFrom(t *testing.T) {
	reads := []textRead{
		{R: textBox(100, 50, 60, 30), Tokens: toksOf("ABC", 0.95)},
		{R: textBox(175, 50, 80, 30), Tokens: toksOf("1234", 0.9)},
		{R: textBox(90, 10, 200, 20), Tokens: toksOf("CALIFORNIA", 0.99)},
		{R: textBox(600, 400, 80, 20), Tokens: toksOf("2019", 0.99)},
		{R: textBox(600, 10, 100, 30), Tokens: toksOf("XY 987", 0.9)},
	}
	plates := platesFrom(reads, "us")
	if len(plates) == 0 {
		t.Fatal("no plates")
	}
	if plates[0].Text != "ABC1234" {
		t.Errorf("best plate %q, want ABC1234 (all: %+v)", plates[0].Text, plates)
	}
	want := image.Rect(100, 50, 255, 80)
	if plates[0].Box != want {
		t.Errorf("box %v, want %v", plates[0].Box, want)
	}
	for i, p := range plates {
		if len(p.Candidates) == 0 || p.Candidates[0].Text != p.Text || p.Candidates[0].Confidence != p.Confidence {
			t.Errorf("plate %d: first candidate %+v is not the plate %q", i, p.Candidates, p.Text)
		}
		if p.Confidence <= 0 || p.Confidence > 1 {
			t.Errorf("plate %d: confidence %v outside (0,1]", i, p.Confidence)
		}
		if i > 0 && p.Confidence > plates[i-1].Confidence {
			t.Errorf("plates not sorted by confidence: %v", plates)
		}
		for _, c := range p.Candidates {
			if c.Text == "CALIFORNIA" || c.Text == "2019" {
				t.Errorf("plate %d has non-plate text %q", i, c.Text)
			}
		}
	}
	var sawXY bool
	for _, p := range plates {
		sawXY = sawXY || p.Text == "XY987"
	}
	if !sawXY {
		t.Errorf("second plate XY987 (words of one box) missing: %+v", plates)
	}
	if got := platesFrom(nil, "us"); len(got) != 0 {
		t.Errorf("platesFrom(nil) = %v", got)
	}
}

func TestFormats_Custom(t *testing.T) {
	custom, err := compileFormats([]string{`[A-Z]{3}[0-9]{4}`, `[0-9]{2}[A-Z]{2}[0-9]{2}`})
	if err != nil {
		t.Fatalf("compileFormats: %v", err)
	}
	f := formats{region: "us", custom: custom}
	tests := []struct{ in, want string }{
		{"A8C1234", "ABC1234"}, // 8 where a letter must be
		{"ABCI234", "ABC1234"}, // I where a digit must be
		{"0BC1Z34", "OBC1234"}, // two swaps
		{"ABC1234", "ABC1234"}, // fits as read
		{"ABC12X4", "ABC12X4"}, // X has no look-alike: left as read
		{"ABC123", "ABC123"},   // too short: nothing is invented
		{"12AB34", "12AB34"},
		{"I2A834", "12AB34"},
	}
	for _, tt := range tests {
		got := textOf(f.fix(toksOf(tt.in, 0.9)))
		if got != tt.want {
			t.Errorf("fix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if p := f.plausibility("ABC1234"); p != 1 {
		t.Errorf("plausibility of a matching text = %v, want 1", p)
	}
	if p, q := f.plausibility("AB12345"), plausibility("AB12345", "us"); p != q/2 {
		t.Errorf("plausibility of a text matching no format = %v, want half the region's %v", p, q)
	}
	// A matching reading outranks a more confident one that matches none.
	reads := []textRead{
		{R: textBox(100, 50, 120, 30), Tokens: toksOf("ABC1234", 0.8)},
		{R: textBox(400, 50, 120, 30), Tokens: toksOf("34567XY", 0.95)},
	}
	if ps := platesOf(candidatesOf(reads, f)); len(ps) == 0 || ps[0].Text != "ABC1234" {
		t.Errorf("plates %+v, want ABC1234 first", ps)
	}
	if _, err := compileFormats([]string{"[A-"}); err == nil || !strings.Contains(err.Error(), "Formats[0]") {
		t.Errorf("bad expression: %v, want an error naming Formats[0]", err)
	}
}

func TestDemoteFragments(t *testing.T) {
	cand := func(text string, p, score float64, x int) candidate {
		return candidate{toks: toksOf(text, p), text: text, score: score, box: image.Rect(x, 100, x+100, 130)}
	}
	tests := []struct {
		name string
		in   []candidate
		want string
	}{
		{"a crop cut the first character off", []candidate{
			cand("YX8803", 0.998, 0.998, 100), cand("AYX8803", 0.996, 0.996, 95),
		}, "AYX8803"},
		{"the extra character is doubtful", []candidate{
			cand("7FR971", 1.0, 1.0, 100),
			{toks: append(toksOf("A", 0.54), toksOf("7FR971", 1)...), text: "A7FR971", score: 0.93, box: image.Rect(95, 90, 200, 130)},
		}, "7FR971"},
		{"the longer reading scores far lower", []candidate{
			cand("CHW2245", 0.9, 0.9, 100), cand("XXCHW2245", 0.95, 0.02, 100), cand("CWW2245", 0.85, 0.85, 100),
		}, "CHW2245"},
		{"elsewhere in the image", []candidate{
			cand("YX8803", 0.998, 0.998, 100), cand("AYX8803", 0.996, 0.996, 600),
		}, "YX8803"},
		{"end-trim variants are penalised once", []candidate{
			{toks: toksOf("ABC123", 0.95), text: "ABC123", score: 0.95, box: image.Rect(100, 100, 200, 130), trimmed: true},
			cand("ABC1234", 0.95, 0.90, 100),
		}, "ABC123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := platesOf(tt.in)
			if len(ps) == 0 || ps[0].Text != tt.want {
				t.Errorf("best plate %+v, want %s", ps, tt.want)
			}
		})
	}
}

func TestMinAreaRect(t *testing.T) {
	// A 40x10 rectangle turned by 30 degrees.
	a := 30 * math.Pi / 180
	u := vec{math.Cos(a), math.Sin(a)}
	v := u.perp()
	c := vec{100, 80}
	var pts []vec
	for _, s := range [][2]float64{{-20, -5}, {20, -5}, {20, 5}, {-20, 5}, {0, 0}, {10, 2}} {
		pts = append(pts, c.add(u.scale(s[0])).add(v.scale(s[1])))
	}
	r := minAreaRect(pts)
	if math.Abs(r.W-40) > 1e-6 || math.Abs(r.H-10) > 1e-6 {
		t.Errorf("size %vx%v, want 40x10", r.W, r.H)
	}
	if r.C.sub(c).norm() > 1e-6 {
		t.Errorf("centre %v, want %v", r.C, c)
	}
	if math.Abs(r.U.dot(u)) < 1-1e-9 || r.U.X <= 0 {
		t.Errorf("axis %v, want ±%v pointing right", r.U, u)
	}
	// A tall box stays tall: W is along the more horizontal side.
	tall := minAreaRect([]vec{{0, 0}, {10, 0}, {10, 50}, {0, 50}})
	if tall.W != 10 || tall.H != 50 {
		t.Errorf("tall box %vx%v, want 10x50", tall.W, tall.H)
	}
	if got := minAreaRect(nil); got.W != 0 || got.H != 0 {
		t.Errorf("empty input: %+v", got)
	}
}

func TestFirstPassSize(t *testing.T) {
	tests := []struct{ w, h, max, ww, wh int }{
		{1280, 720, 768, 768, 448},  // 16:9: the long side binds
		{1280, 960, 768, 672, 512},  // 4:3: the pixel cap binds
		{461, 346, 768, 672, 512},   // small images are enlarged alike
		{1280, 720, 960, 960, 544},  // the plain pipeline's size
		{10000, 10, 768, 768, 32},   // never below 32
		{720, 1280, 768, 448, 768},  // portrait
		{1000, 1000, 768, 576, 576}, // square
	}
	for _, tt := range tests {
		w, h := firstPassSize(tt.w, tt.h, tt.max)
		if w != tt.ww || h != tt.wh {
			t.Errorf("firstPassSize(%d, %d, %d) = %d, %d, want %d, %d", tt.w, tt.h, tt.max, w, h, tt.ww, tt.wh)
		}
		if w%32 != 0 || h%32 != 0 {
			t.Errorf("firstPassSize(%d, %d, %d) = %d, %d: not multiples of 32", tt.w, tt.h, tt.max, w, h)
		}
	}
}

func TestDetSize(t *testing.T) {
	tests := []struct{ w, h, max, ww, wh int }{
		{1280, 720, 960, 960, 544},
		{461, 346, 960, 960, 736},
		{10000, 10, 960, 960, 32},
	}
	for _, tt := range tests {
		if w, h := detSize(tt.w, tt.h, tt.max); w != tt.ww || h != tt.wh {
			t.Errorf("detSize(%d, %d, %d) = %d, %d, want %d, %d", tt.w, tt.h, tt.max, w, h, tt.ww, tt.wh)
		}
	}
}

func TestFocusGeometry(t *testing.T) {
	// A 100x30 candidate whose text is 24 px high in a 1280x720 image.
	reg := focusRegion{box: image.Rect(600, 300, 700, 330), textH: 24}
	roi, fw, fh := focusGeometry(reg, 1280, 720)
	// Widened by 1.0 text height across and 0.8 up and down (70 px),
	// then to focusMinSide/2 = 80 px high for the detector's context.
	want := image.Rect(600-24, 300-20-5, 700+24, 330+20+5)
	if !roi.Eq(want) {
		t.Errorf("roi %v, want %v", roi, want)
	}
	// Text scaled to focusBoxPx (x2 here), sides rounded to 32, at least
	// focusMinSide.
	if fw != 288 || fh != 160 {
		t.Errorf("detector input %dx%d, want 288x160", fw, fh)
	}
	// Near a corner the region is clipped to the image.
	roi, _, _ = focusGeometry(focusRegion{box: image.Rect(-5, -5, 40, 10), textH: 12}, 1280, 720)
	if roi.Min != (image.Point{}) || !roi.In(image.Rect(0, 0, 1280, 720)) {
		t.Errorf("corner roi %v not clipped to the image", roi)
	}
	// A huge candidate is capped at focusMaxSide.
	_, fw, fh = focusGeometry(focusRegion{box: image.Rect(0, 0, 1200, 400), textH: 300}, 1280, 720)
	if max(fw, fh) > focusMaxSide+16 {
		t.Errorf("large region's input %dx%d over %d", fw, fh, focusMaxSide)
	}
	// Outside the image: nothing to do.
	if roi, _, _ := focusGeometry(focusRegion{box: image.Rect(2000, 2000, 2100, 2030), textH: 20}, 1280, 720); !roi.Empty() {
		t.Errorf("region outside the image: %v", roi)
	}
}

func TestFocusRegions(t *testing.T) {
	cands := []candidate{
		{text: "ABC123", score: 0.9, box: image.Rect(100, 100, 200, 130), textH: 30},
		{text: "ABC12", score: 0.8, box: image.Rect(105, 100, 190, 130), textH: 30}, // same place
		{text: "XYZ789", score: 0.7, box: image.Rect(500, 100, 600, 130), textH: 28},
		{text: "QQQ111", score: 0.6, box: image.Rect(800, 100, 900, 130), textH: 28}, // beyond k
		{text: "NOISE", score: 0.01, box: image.Rect(0, 0, 10, 10), textH: 8},
	}
	got := focusRegions(cands, 2)
	if len(got) != 2 || got[0].box != cands[0].box || got[1].box != cands[2].box {
		t.Errorf("focusRegions = %+v, want ABC123's and XYZ789's boxes", got)
	}
	if got := focusRegions(cands[4:], 2); len(got) != 0 {
		t.Errorf("a candidate below focusMinScore was picked: %+v", got)
	}
}

func TestCTCDecodeAll(t *testing.T) {
	cs := testCharset()
	var probs []float32
	for _, f := range []map[int]float32{
		{1: 0.9},          // a (lower case kept: Normalize upper-cases later)
		{1: 0.8},          // repeat collapses
		{4: 0.7},          // 中: the full alphabet keeps it
		{},                // blank
		{7: 0.9},          // space
		{3: 0.5, 6: 0.45}, // 1
	} {
		probs = append(probs, frame(cs, f)...)
	}
	text, conf := ctcDecodeAll(probs, len(probs)/cs.columns, cs)
	if text != "a中 1" {
		t.Errorf("decoded %q, want %q", text, "a中 1")
	}
	if want := (0.9 + 0.7 + 0.9 + 0.5) / 4; math.Abs(conf-want) > 1e-6 {
		t.Errorf("confidence %v, want %v", conf, want)
	}
	if text, conf := ctcDecodeAll(frame(cs, nil), 1, cs); text != "" || conf != 0 {
		t.Errorf("all blank: %q %v", text, conf)
	}
}

func TestPlatesFrom_LettersOnly(t *testing.T) {
	// A personalised plate with no digit is read when it is the only
	// text, and ranks below a letter-and-digit plate when there is one.
	alone := []textRead{{R: textBox(100, 50, 140, 30), Tokens: toksOf("BIMMIAN", 0.99)}}
	if ps := platesFrom(alone, "eu"); len(ps) == 0 || ps[0].Text != "BIMMIAN" {
		t.Errorf("letters-only plate alone: %+v", ps)
	}
	both := append(alone, textRead{R: textBox(400, 300, 120, 30), Tokens: toksOf("RK099AN", 0.9)})
	if ps := platesFrom(both, "eu"); len(ps) < 2 || ps[0].Text != "RK099AN" {
		t.Errorf("letters-only plate beside a regular one: %+v", ps)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.ModelDir = dir
	c.LibPath = filepath.Join(dir, "libonnxruntime.so.1")
	err := c.Validate()
	if !errors.Is(err, ErrMissingFile) {
		t.Fatalf("Validate with empty dirs = %v, want ErrMissingFile", err)
	}
	for _, s := range []string{DetModelFile, RecModelFile, KeysFile, "libonnxruntime.so.1", "make setup"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	bad := []func(*Config){
		func(c *Config) { c.Threads = -1 },
		func(c *Config) { c.Region = "mars" },
		func(c *Config) { c.DetMaxSide = 10 },
		func(c *Config) { c.Mode = "fast" },
		func(c *Config) { c.Formats = []string{"[A-Z"} },
	}
	for i, mod := range bad {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d: nil error", i)
		}
	}
	if _, err := New(Config{ModelDir: dir, LibPath: c.LibPath}); !errors.Is(err, ErrMissingFile) {
		t.Errorf("New with missing files = %v, want ErrMissingFile", err)
	}
}

func TestDefaultConfigEnv(t *testing.T) {
	t.Setenv("ALPR_MODEL_DIR", "/m")
	t.Setenv("ALPR_ORT_LIB", "/l/libonnxruntime.so.1")
	c := DefaultConfig()
	if c.ModelDir != "/m" || c.LibPath != "/l/libonnxruntime.so.1" || c.Threads != 1 || c.DetMaxSide != DefaultDetMaxSide || c.Mode != ModeFocused {
		t.Errorf("DefaultConfig() = %+v", c)
	}
}
