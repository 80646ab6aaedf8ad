package recognize

import (
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"sort"
)

// Plate formats per region: a pattern is L (letter), D (digit) or * (either)
// per position. For "br" they are the only formats (Mercosul and the older
// grey plates); for "eu" they are common national formats (Slovakia,
// Croatia, Czechia, Austria/Germany-like, Poland) that rank above other
// letter-and-digit mixes and guide look-alike fixes. "us" and "" rank by
// length and character mix only: US formats vary by state and year.
var regionFormats = map[string][]string{
	"":   nil,
	"us": nil,
	"eu": {"LLDDDLL", "LLDDDDLL", "LLDDDDL", "DLDDDDD", "DLLDDDD", "LLLDDDD", "LLDDDDD", "LLLDDLL"},
	"br": {"LLLDLDD", "LLLDDDD"},
}

// Look-alike pairs a region fix may swap, and nothing else.
var (
	toLetter = map[byte]byte{'0': 'O', '1': 'I', '8': 'B', '5': 'S', '2': 'Z', '6': 'G'}
	toDigit  = map[byte]byte{'O': '0', 'I': '1', 'B': '8', 'S': '5', 'Z': '2', 'G': '6'}
)

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' }

// fits reports whether s matches pattern exactly.
func fits(s, pattern string) bool {
	if len(s) != len(pattern) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch pattern[i] {
		case 'L':
			if !isLetter(s[i]) {
				return false
			}
		case 'D':
			if !isDigit(s[i]) {
				return false
			}
		}
	}
	return true
}

// fixRegion swaps look-alike characters where a region pattern of the same
// length demands the other kind, choosing the pattern needing the fewest
// swaps. It never adds, drops or invents a character: a position whose
// character has no look-alike stays as read, and the result may still not
// fit. toks is not modified.
func fixRegion(toks []token, region string) []token {
	var best []token
	bestSwaps := -1
	for _, pat := range regionFormats[region] {
		if len(pat) != len(toks) {
			continue
		}
		out := append([]token(nil), toks...)
		swaps, ok := 0, true
		for i := range out {
			c := out[i].Char
			var m map[byte]byte
			switch {
			case pat[i] == 'L' && !isLetter(c):
				m = toLetter
			case pat[i] == 'D' && !isDigit(c):
				m = toDigit
			default:
				continue
			}
			r, has := m[c]
			if !has {
				ok = false
				break
			}
			out[i].Char = r
			swaps++
		}
		if ok && (bestSwaps < 0 || swaps < bestSwaps) {
			best, bestSwaps = out, swaps
		}
	}
	if best == nil {
		return toks
	}
	return best
}

// plausibility is how much s (A-Z0-9) looks like a plate of region, 0..1.
func plausibility(s, region string) float64 {
	n := len(s)
	var digits, letters int
	for i := 0; i < n; i++ {
		if isDigit(s[i]) {
			digits++
		} else {
			letters++
		}
	}
	if n < 3 || n > 9 || (n == 4 && digits == 4) {
		return 0.02 // words, phone numbers, years
	}
	switch region {
	case "br":
		for _, p := range regionFormats["br"] {
			if fits(s, p) {
				return 1
			}
		}
		if n == 7 && digits > 0 && letters > 0 {
			return 0.5
		}
		return 0.1
	case "eu":
		for _, p := range regionFormats["eu"] {
			if fits(s, p) {
				return 1
			}
		}
		switch {
		case digits == 0 && n >= 5 && n <= 8:
			// Personalised plates (Slovakia, Czechia, Croatia...) are
			// all letters: ranked below any letter-and-digit plate, but
			// still read when nothing else is.
			return 0.3
		case digits == 0:
			return 0.05
		case n >= 5 && n <= 8 && letters > 0:
			return 0.85
		case n >= 5 && n <= 8:
			return 0.4
		case n == 4:
			return 0.3
		}
		return 0.1
	case "us":
		switch {
		case n >= 6 && n <= 7 && digits > 0 && letters > 0:
			return 1
		case n >= 5 && n <= 8 && digits > 0 && letters > 0:
			return 0.85 // legal, but most plates have 6 or 7
		case n == 8 && letters == 0:
			// Eight digits is a date or a serial number (camera
			// timestamps), not a US plate: ranked with the words.
			return 0.3
		case n >= 5 && n <= 8 && digits > 0:
			return 0.7
		case n >= 5 && n <= 8:
			return 0.3 // vanity plates exist, but words are far more common
		case n == 4 && digits > 0:
			return 0.4
		}
		return 0.1
	}
	switch {
	case n >= 4 && n <= 8 && digits > 0:
		return 1
	case n >= 4 && n <= 8:
		return 0.3
	}
	return 0.1
}

// maxFixPositions bounds the look-alike positions fixCustom tries to swap
// (2^n variants): plates are short.
const maxFixPositions = 10

// formats is how candidates are ranked and fixed: a region preset, or a
// custom list of regular expressions (Config.Formats) that replaces the
// preset's patterns.
type formats struct {
	region string
	custom []*regexp.Regexp
}

// compileFormats anchors and compiles Config.Formats; field names the
// config field in errors.
func compileFormats(exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	var errs []error
	for i, e := range exprs {
		re, err := regexp.Compile(`^(?:` + e + `)$`)
		if err != nil {
			errs = append(errs, fmt.Errorf("recognize: Formats[%d]: %w", i, err))
			continue
		}
		out = append(out, re)
	}
	return out, errors.Join(errs...)
}

// fix swaps look-alike characters where a format demands the other kind.
// For custom formats it tries the fewest swaps first and keeps the first
// text that matches a format; toks is returned as read when none does.
// Either way no character is added, dropped or invented.
func (f formats) fix(toks []token) []token {
	if len(f.custom) == 0 {
		return fixRegion(toks, f.region)
	}
	if f.fits(textOf(toks)) {
		return toks
	}
	var pos []int
	for i, t := range toks {
		if _, ok := toLetter[t.Char]; ok {
			pos = append(pos, i)
		} else if _, ok := toDigit[t.Char]; ok {
			pos = append(pos, i)
		}
	}
	if len(pos) > maxFixPositions {
		pos = pos[:maxFixPositions]
	}
	// Subsets of pos by increasing size: the fewest swaps win.
	masks := make([]int, 0, 1<<len(pos))
	for m := 1; m < 1<<len(pos); m++ {
		masks = append(masks, m)
	}
	sort.SliceStable(masks, func(i, j int) bool { return bits.OnesCount(uint(masks[i])) < bits.OnesCount(uint(masks[j])) })
	for _, m := range masks {
		out := append([]token(nil), toks...)
		for k, p := range pos {
			if m&(1<<k) == 0 {
				continue
			}
			c := out[p].Char
			if r, ok := toLetter[c]; ok {
				out[p].Char = r
			} else {
				out[p].Char = toDigit[c]
			}
		}
		if f.fits(textOf(out)) {
			return out
		}
	}
	return toks
}

// fits reports whether s matches one of the custom formats.
func (f formats) fits(s string) bool {
	for _, re := range f.custom {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// plausibility is plausibility(s, f.region), or for custom formats 1 when
// s matches one and half the region's score otherwise: a format list
// ranks, it does not forbid.
func (f formats) plausibility(s string) float64 {
	if len(f.custom) == 0 {
		return plausibility(s, f.region)
	}
	if f.fits(s) {
		return 1
	}
	return plausibility(s, f.region) / 2
}

// hasPatterns reports whether f has formats to fit: custom ones, or the
// region preset's patterns.
func (f formats) hasPatterns() bool {
	return len(f.custom) > 0 || len(regionFormats[f.region]) > 0
}

// fitsPattern reports whether s matches one of f's formats (custom, else
// the region preset's patterns).
func (f formats) fitsPattern(s string) bool {
	if len(f.custom) > 0 {
		return f.fits(s)
	}
	for _, p := range regionFormats[f.region] {
		if fits(s, p) {
			return true
		}
	}
	return false
}
