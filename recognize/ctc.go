package recognize

import (
	"fmt"
	"strings"
	"unicode"
)

// alnum is the recogniser's output alphabet; a class is an index into it.
const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

const (
	clsBlank = -1
	clsSpace = len(alnum)
)

// charset maps the model's output columns onto the alnum classes. Column 0
// is the CTC blank, columns 1..n are the keys file's lines and column n+1 is
// a space. Lower-case and full-width forms of a letter or digit fold into its
// class; every other column (CJK, punctuation) is ignored, which restricts
// the argmax to plate characters.
type charset struct {
	columns int
	space   int
	groups  [len(alnum)][]int
	keys    []string // column i+1 is keys[i]; for the unrestricted decode
}

func newCharset(keys []string) *charset {
	cs := &charset{columns: len(keys) + 2, space: len(keys) + 1, keys: keys}
	for i, k := range keys {
		r := []rune(k)
		if len(r) != 1 {
			continue
		}
		c := r[0]
		if c >= 0xFF01 && c <= 0xFF5E { // full-width ASCII
			c -= 0xFEE0
		}
		c = unicode.ToUpper(c)
		if j := strings.IndexRune(alnum, c); j >= 0 && c < 128 {
			cs.groups[j] = append(cs.groups[j], i+1)
		}
	}
	return cs
}

func parseKeys(data []byte) []string {
	s := strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	return strings.Split(s, "\n")
}

func (cs *charset) validate() error {
	for i, g := range cs.groups {
		if len(g) == 0 {
			return fmt.Errorf("check keys: no class for %q", alnum[i])
		}
	}
	return nil
}

// token is one decoded character, or a space (Char == ' ').
type token struct {
	Char byte
	Prob float64 // probability of Char at its most confident frame
	// Alt is the runner-up character at that frame (0 if none) and AltProb
	// its probability: the candidates a look-alike swap may use.
	Alt     byte
	AltProb float64
}

// ctcDecode is greedy CTC decoding of one sequence: probs holds steps rows
// of cs.columns probabilities. Repeats collapse unless a blank separates
// them; each character keeps the best probability over its run.
func ctcDecode(probs []float32, steps int, cs *charset) []token {
	var out []token
	prev := clsBlank
	C := cs.columns
	for t := 0; t < steps; t++ {
		row := probs[t*C : (t+1)*C]
		best, bestP := clsBlank, float64(row[0])
		if p := float64(row[cs.space]); p > bestP {
			best, bestP = clsSpace, p
		}
		alt, altP := -1, 0.0
		for g, cols := range cs.groups {
			var p float64
			for _, c := range cols {
				p += float64(row[c])
			}
			if p > bestP {
				if best >= 0 && best < clsSpace {
					alt, altP = best, bestP
				}
				best, bestP = g, p
			} else if p > altP {
				alt, altP = g, p
			}
		}
		if best == clsBlank {
			prev = best
			continue
		}
		if best == prev && len(out) > 0 {
			last := &out[len(out)-1]
			if bestP > last.Prob {
				last.Prob = bestP
				last.Alt, last.AltProb = altChar(alt, best), altP
			}
			continue
		}
		prev = best
		if best == clsSpace {
			out = append(out, token{Char: ' ', Prob: bestP})
			continue
		}
		out = append(out, token{Char: alnum[best], Prob: bestP, Alt: altChar(alt, best), AltProb: altP})
	}
	return out
}

func altChar(alt, best int) byte {
	if alt < 0 || alt == best || alt >= clsSpace {
		return 0
	}
	return alnum[alt]
}

// ctcDecodeAll is plain greedy CTC decoding over every column of the
// model (CJK, punctuation and all), as PaddleOCR does: the text and its
// mean character probability. ModePlain uses it; it is the reference the
// restricted decoding is measured against.
func ctcDecodeAll(probs []float32, steps int, cs *charset) (string, float64) {
	var b strings.Builder
	var sum float64
	n := 0
	prev := 0
	C := cs.columns
	for t := 0; t < steps; t++ {
		row := probs[t*C : (t+1)*C]
		best, bestP := 0, row[0]
		for c := 1; c < C; c++ {
			if row[c] > bestP {
				best, bestP = c, row[c]
			}
		}
		if best != 0 && best != prev {
			switch {
			case best == cs.space:
				b.WriteByte(' ')
			case best-1 < len(cs.keys):
				b.WriteString(cs.keys[best-1])
			}
			sum += float64(bestP)
			n++
		}
		prev = best
	}
	if n == 0 {
		return "", 0
	}
	return b.String(), sum / float64(n)
}
