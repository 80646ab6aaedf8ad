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

func TestDetSize(t *testing.T) {
	tests := []struct{ w, h, max, ww, wh int }{
		{1280, 720, 960, 960, 544},
		{461, 346, 960, 960, 736},
		{10000, 10, 960, 960, 32},
		{1, 1, 960, 960, 960},
	}
	for _, tt := range tests {
		if w, h := detSize(tt.w, tt.h, tt.max); w != tt.ww || h != tt.wh {
			t.Errorf("detSize(%d, %d, %d) = %d, %d, want %d, %d", tt.w, tt.h, tt.max, w, h, tt.ww, tt.wh)
		}
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
	if c.ModelDir != "/m" || c.LibPath != "/l/libonnxruntime.so.1" || c.Threads != 1 || c.DetMaxSide != 960 {
		t.Errorf("DefaultConfig() = %+v", c)
	}
}
