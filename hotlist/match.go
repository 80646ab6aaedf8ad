package hotlist

import (
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"time"
)

// Cost model of fuzzy matching. A read matches an entry when the cheapest
// edit script turning one normalised plate into the other costs at most
// MaxDistance:
//
//   - substituting a character for another of its confusable class costs
//     ConfusableCost (0.25);
//   - any other substitution, an insertion or a deletion costs EditCost (1);
//   - edits that are not confusable substitutions are only allowed when both
//     plates have at least MinEditLen characters (on short plates one edit
//     is most of the plate).
//
// The classes are the pairs OCR mixes up on plates: O 0 D Q, I 1 L, B 8,
// S 5, Z 2, G 6. So MaxDistance 0 is exact matching, 0.5 (the default)
// allows up to two confusable substitutions and nothing else, 1 allows one
// real edit or four confusables, and so on up to MaxMaxDistance.
const (
	ConfusableCost = 0.25
	EditCost       = 1.0
	// MinEditLen is the shortest plate on which a non-confusable edit is
	// allowed.
	MinEditLen = 5
	// MaxMaxDistance bounds MaxDistance: the fuzzy index grows with the
	// number of edits it must cover.
	MaxMaxDistance = 2.0
	// DefaultMaxDistance is exact plus up to two confusable substitutions.
	DefaultMaxDistance = 0.5
)

// Distances are computed in integer quarter units.
const (
	unitConf = 1
	unitEdit = 4
)

// ConfusableClasses lists the characters considered confusable with each
// other.
var ConfusableClasses = []string{"O0DQ", "I1L", "B8", "S5", "Z2", "G6"}

var foldTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for _, c := range ConfusableClasses {
		for i := 1; i < len(c); i++ {
			t[c[i]] = c[0]
		}
	}
	return t
}()

// fold maps each character to its confusable class's first member.
func fold(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldTable[c]
	}
	return string(b)
}

func subCost(a, b byte) int {
	switch {
	case a == b:
		return 0
	case foldTable[a] == foldTable[b]:
		return unitConf
	default:
		return unitEdit
	}
}

// distanceUnits is the weighted edit distance of two normalised plates in
// quarter units, or limit+1 when it exceeds limit.
func distanceUnits(a, b string, limit int) int {
	if len(a) > len(b) {
		a, b = b, a
	}
	if (len(b)-len(a))*unitEdit > limit {
		return limit + 1
	}
	if len(b) > 63 {
		return limit + 1
	}
	var prevRow, curRow [64]int
	prev, cur := prevRow[:len(b)+1], curRow[:len(b)+1]
	for j := range prev {
		prev[j] = j * unitEdit
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i * unitEdit
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			v := prev[j-1] + subCost(a[i-1], b[j-1])
			if d := prev[j] + unitEdit; d < v {
				v = d
			}
			if d := cur[j-1] + unitEdit; d < v {
				v = d
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit+1)
}

// Distance returns the weighted edit distance between two plates after
// normalisation, per the cost model above (without the MinEditLen rule).
func Distance(a, b string) float64 {
	return float64(distanceUnits(Normalize(a), Normalize(b), math.MaxInt32)) / unitEdit
}

// delKey is one deletion variant of an entry's folded plate.
type delKey struct {
	h   uint64
	idx int32
}

// List is an accepted hotlist, indexed for matching. It is immutable and
// safe for concurrent use.
//
// Exact and confusable-only matching is one map lookup on the folded plate.
// Fuzzy matching with k = floor(MaxDistance) real edits uses a symmetric
// deletion index: every variant of each folded plate with up to k characters
// deleted is hashed into a sorted array; a read's variants are looked up by
// binary search and the few candidates are checked with the weighted
// distance. Memory grows with k: about (1 + L) keys per entry for k = 1 and
// (1 + L + L(L-1)/2) for k = 2, at 16 bytes each, L the plate length.
type List struct {
	// Name, Seq and Issued come from the document; KeyID is the key that
	// signed it.
	Name   string
	Seq    uint64
	Issued time.Time
	KeyID  string

	entries []Entry
	norm    []string
	head    map[string]int32 // folded plate → first entry index
	next    []int32          // chain of entries with the same folded plate
	maxU    int
	k       int
	seed    maphash.Seed
	del     []delKey // sorted by h
}

// NewList indexes a parsed document for matching with the given maximum
// distance (0 ≤ maxDistance ≤ MaxMaxDistance; it is rounded down to a
// multiple of ConfusableCost).
func NewList(d *Document, maxDistance float64) (*List, error) {
	if err := checkMaxDistance(maxDistance); err != nil {
		return nil, err
	}
	l := &List{
		Name:    d.Name,
		Seq:     d.Seq,
		Issued:  d.Issued,
		entries: make([]Entry, len(d.Entries)),
		norm:    make([]string, len(d.Entries)),
		head:    make(map[string]int32, len(d.Entries)),
		next:    make([]int32, len(d.Entries)),
		maxU:    int(maxDistance*unitEdit + 1e-9),
		k:       int(maxDistance + 1e-9),
		seed:    maphash.MakeSeed(),
	}
	for i, e := range d.Entries {
		if e.List == "" {
			e.List = d.Name
		}
		l.entries[i] = e
		n := Normalize(e.Plate)
		l.norm[i] = n
		f := fold(n)
		l.next[i] = -1
		if h, ok := l.head[f]; ok {
			// Append at the chain's end so candidates come in document order.
			for l.next[h] >= 0 {
				h = l.next[h]
			}
			l.next[h] = int32(i)
		} else {
			l.head[f] = int32(i)
		}
	}
	if l.k > 0 {
		// Size the index once: the variant count bounds it (duplicates
		// within a plate are dropped).
		size := 0
		for _, n := range l.norm {
			if m := len(n); m >= MinEditLen {
				size += 1 + m
				if l.k >= 2 {
					size += m * (m - 1) / 2
				}
			}
		}
		l.del = make([]delKey, 0, size)
		var hs []uint64
		for i, n := range l.norm {
			if len(n) < MinEditLen {
				continue
			}
			hs = variantHashes(hs[:0], l.seed, fold(n), l.k)
			for _, h := range hs {
				l.del = append(l.del, delKey{h, int32(i)})
			}
		}
		slices.SortFunc(l.del, func(a, b delKey) int {
			switch {
			case a.h < b.h:
				return -1
			case a.h > b.h:
				return 1
			}
			return int(a.idx - b.idx)
		})
	}
	return l, nil
}

func checkMaxDistance(d float64) error {
	if !(d >= 0 && d <= MaxMaxDistance) {
		return fmt.Errorf("validate config: MaxDistance: %v, want 0 to %v: %w", d, MaxMaxDistance, ErrInvalidConfig)
	}
	return nil
}

// variantHashes appends the hashes of s and of every string made by
// deleting up to k (at most 2) of its characters, without duplicates. It
// builds each variant in a stack buffer: no allocation per variant.
func variantHashes(dst []uint64, seed maphash.Seed, s string, k int) []uint64 {
	var buf [MaxPlateLen + MaxMaxDistance + 1]byte
	n := len(s)
	if n > len(buf) {
		return dst
	}
	start := len(dst)
	dst = append(dst, maphash.Bytes(seed, append(buf[:0], s...)))
	if k >= 1 {
		for i := 0; i < n; i++ {
			b := append(append(buf[:0], s[:i]...), s[i+1:]...)
			dst = append(dst, maphash.Bytes(seed, b))
		}
	}
	if k >= 2 {
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				b := append(append(append(buf[:0], s[:i]...), s[i+1:j]...), s[j+1:]...)
				dst = append(dst, maphash.Bytes(seed, b))
			}
		}
	}
	tail := dst[start:]
	slices.Sort(tail)
	return dst[:start+len(slices.Compact(tail))]
}

// Len returns the number of entries.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.entries)
}

// Entries returns a copy of the entries, each with List filled in.
func (l *List) Entries() []Entry {
	if l == nil {
		return nil
	}
	return slices.Clone(l.entries)
}

// Match returns the entry a read plate matches at time now: the unexpired
// entry at the lowest distance within the list's maximum (ties go to the
// earlier entry). An empty plate never matches.
func (l *List) Match(plate string, now time.Time) (Entry, bool) {
	e, _, ok := l.MatchDistance(plate, now)
	return e, ok
}

// MatchDistance is Match that also returns the distance of the match.
func (l *List) MatchDistance(plate string, now time.Time) (Entry, float64, bool) {
	if l == nil {
		return Entry{}, 0, false
	}
	q := Normalize(plate)
	if q == "" || len(q) > MaxPlateLen+l.k {
		return Entry{}, 0, false
	}
	fq := fold(q)
	best, bestU := int32(-1), l.maxU+1
	consider := func(i int32, u int) {
		if u > l.maxU || u > bestU || (u == bestU && i > best) {
			return
		}
		if exp := l.entries[i].Expires; !exp.IsZero() && !now.Before(exp) {
			return
		}
		best, bestU = i, u
	}
	if h, ok := l.head[fq]; ok {
		for i := h; i >= 0; i = l.next[i] {
			// Same folded plate, same length: every difference is a
			// confusable substitution.
			n, u := l.norm[i], 0
			for j := 0; j < len(n); j++ {
				if n[j] != q[j] {
					u += unitConf
				}
			}
			consider(i, u)
		}
	}
	if l.k > 0 && len(q) >= MinEditLen && bestU > 0 {
		var stack [128]uint64 // 1 + n + n(n-1)/2 for n = 14, k = 2 is 106
		for _, h := range variantHashes(stack[:0], l.seed, fq, l.k) {
			j, _ := slices.BinarySearchFunc(l.del, h, func(d delKey, h uint64) int {
				switch {
				case d.h < h:
					return -1
				case d.h > h:
					return 1
				}
				return 0
			})
			for ; j < len(l.del) && l.del[j].h == h; j++ {
				i := l.del[j].idx
				consider(i, distanceUnits(q, l.norm[i], min(bestU, l.maxU)))
			}
		}
	}
	if best < 0 {
		return Entry{}, 0, false
	}
	return l.entries[best], float64(bestU) / unitEdit, true
}
