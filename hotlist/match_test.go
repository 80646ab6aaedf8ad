package hotlist

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func mustList(t testing.TB, maxDist float64, entries ...Entry) *List {
	t.Helper()
	d := doc(1, entries...)
	if _, err := ParseDocument(mustJSON(t, d)); err != nil {
		t.Fatal(err)
	}
	l, err := NewList(d, maxDist)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustJSON(t testing.TB, d *Document) []byte {
	b, err := jsonMarshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{
		{"ABC123", "abc-123", 0},
		{"ABC123", "A8C123", 0.25}, // B/8
		{"OIL", "01L", 0.5},        // O/0, I/1
		{"D0Q0", "OOOO", 1},        // D, 0, Q, 0: four in O's class
		{"ABC123", "ABC124", 1},    // 3/4 are not confusable
		{"ABC123", "ABC1234", 1},   // insertion
		{"ABC123", "BC123", 1},     // deletion
		{"SZG", "526", 0.75},       // S/5 Z/2 G/6
		{"ABC123", "XYZ789", 6},    // all different
		{"ABCDEF", "ABDCEF", 2},    // a transposition is two edits
		{"", "ABC", 3},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %v, want %v (not symmetric)", c.b, c.a, got, c.want)
		}
	}
}

func TestList_Match(t *testing.T) {
	entries := []Entry{
		{Plate: "ABC 123", Reason: "stolen"},
		{Plate: "OB8 5ZG", Reason: "confusable-heavy"},
		{Plate: "XYZ789", Reason: "expired", Expires: t0.Add(-time.Minute)},
		{Plate: "XYZ78Q", Reason: "near the expired one"},
		{Plate: "KL12", Reason: "short"},
		{Plate: "EXPIRE5", Reason: "expires at t0", Expires: t0},
		{Plate: "LATER1", Reason: "expires later", Expires: t0.Add(time.Minute), List: "amber"},
	}
	type want struct {
		reason string
		dist   float64
	}
	none := want{}
	cases := []struct {
		name  string
		plate string
		byMax map[float64]want
	}{
		{"Exact", "abc-123", map[float64]want{0: {"stolen", 0}, 0.5: {"stolen", 0}, 1: {"stolen", 0}, 2: {"stolen", 0}}},
		{"OneConfusable", "A8C123", map[float64]want{0: none, 0.5: {"stolen", 0.25}, 1: {"stolen", 0.25}}},
		{"ThreeConfusables", "0B8S2G", map[float64]want{0: none, 0.5: none, 0.75: {"confusable-heavy", 0.75}, 1: {"confusable-heavy", 0.75}}},
		{"OneEdit", "ABC124", map[float64]want{0.5: none, 0.75: none, 1: {"stolen", 1}, 2: {"stolen", 1}}},
		{"EditPlusConfusable", "A8C12", map[float64]want{1: none, 1.25: {"stolen", 1.25}, 2: {"stolen", 1.25}}},
		{"TwoEdits", "ABX12", map[float64]want{1: none, 1.75: none, 2: {"stolen", 2}}},
		{"Insertion", "ABC1234", map[float64]want{0.5: none, 1: {"stolen", 1}}},
		{"ExpiredExact", "XYZ789", map[float64]want{0: none, 0.5: none, 1: {"near the expired one", 1}}},
		{"ExpiresAtReadTime", "EXPIRE5", map[float64]want{0: none, 2: none}},
		{"NotYetExpired", "LATER1", map[float64]want{0: {"expires later", 0}}},
		{"ShortPlateNoEdits", "KL13", map[float64]want{2: none}},
		{"ShortPlateConfusable", "K112", map[float64]want{0.25: {"short", 0.25}, 2: {"short", 0.25}}},
		{"Empty", "--", map[float64]want{0: none, 2: none}},
		{"TooLong", "ABCDEFGHIJKLMNOPQ", map[float64]want{2: none}},
		{"Miss", "QQQ999", map[float64]want{2: none}},
	}
	for _, c := range cases {
		for maxDist, w := range c.byMax {
			t.Run(fmt.Sprintf("%s/max%v", c.name, maxDist), func(t *testing.T) {
				l := mustList(t, maxDist, entries...)
				e, d, ok := l.MatchDistance(c.plate, t0)
				if ok != (w.reason != "") || e.Reason != w.reason || d != w.dist {
					t.Fatalf("MatchDistance(%q) = %+v, %v, %v; want %q at %v", c.plate, e, d, ok, w.reason, w.dist)
				}
				if ok && e.List == "" {
					t.Fatal("entry without its list name")
				}
			})
		}
	}
}

func TestList_MatchPrefersCloserThenEarlier(t *testing.T) {
	l := mustList(t, 2, Entry{Plate: "ABC124", Reason: "edit"}, Entry{Plate: "A8C123", Reason: "confusable"}, Entry{Plate: "A8C12Z", Reason: "later tie"})
	if e, ok := l.Match("ABC123", t0); !ok || e.Reason != "confusable" {
		t.Fatalf("Match = %+v, want the confusable (0.25) over the edit (1)", e)
	}
	l = mustList(t, 2, Entry{Plate: "ABC124", Reason: "first"}, Entry{Plate: "ABC125", Reason: "second"})
	if e, ok := l.Match("ABC123", t0); !ok || e.Reason != "first" {
		t.Fatalf("Match = %+v, want the earlier of two at distance 1", e)
	}
	var nilList *List
	if _, ok := nilList.Match("ABC123", t0); ok {
		t.Fatal("nil list matched")
	}
}

// TestList_MatchAgreesWithScan checks the indexes against a linear scan with
// Distance on random lists and reads, for every supported max distance.
func TestList_MatchAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	randPlate := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			// Confusable-rich alphabet half the time, to exercise the classes.
			if rng.IntN(2) == 0 {
				b[i] = "O0DQI1LB8S5Z2G6"[rng.IntN(15)]
			} else {
				b[i] = alpha[rng.IntN(len(alpha))]
			}
		}
		return string(b)
	}
	mutate := func(p string) string {
		b := []byte(p)
		for range 1 + rng.IntN(3) {
			switch i := rng.IntN(len(b)); rng.IntN(4) {
			case 0:
				b[i] = alpha[rng.IntN(len(alpha))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{alpha[rng.IntN(len(alpha))]}, b[i:]...)...)
			case 3:
				for _, c := range ConfusableClasses {
					for j := 0; j < len(c); j++ {
						if c[j] == b[i] {
							b[i] = c[rng.IntN(len(c))]
						}
					}
				}
			}
			if len(b) == 0 {
				b = []byte("A")
			}
		}
		return string(b)
	}
	seen := map[string]bool{}
	var entries []Entry
	for len(entries) < 400 {
		p := randPlate(3 + rng.IntN(6))
		if seen[p] {
			continue
		}
		seen[p] = true
		e := Entry{Plate: p, Reason: fmt.Sprint(len(entries))}
		if rng.IntN(5) == 0 {
			e.Expires = t0
		}
		entries = append(entries, e)
	}
	for _, maxDist := range []float64{0, 0.25, 0.5, 1, 1.5, 2} {
		l := mustList(t, maxDist, entries...)
		hits := 0
		for range 1500 {
			q := mutate(entries[rng.IntN(len(entries))].Plate)
			// Reference: linear scan with the same rules.
			wantI, wantD := -1, maxDist+1
			nq := Normalize(q)
			for i, e := range entries {
				if !e.Expires.IsZero() && !t0.Before(e.Expires) {
					continue
				}
				d := Distance(q, e.Plate)
				if d >= 1 && Distance(fold(nq), fold(Normalize(e.Plate))) > 0 && (len(nq) < MinEditLen || len(Normalize(e.Plate)) < MinEditLen) {
					continue
				}
				if d <= maxDist && d < wantD {
					wantI, wantD = i, d
				}
			}
			e, d, ok := l.MatchDistance(q, t0)
			if ok != (wantI >= 0) || (ok && (e.Reason != entries[wantI].Reason || d != wantD)) {
				t.Fatalf("max %v: MatchDistance(%q) = %q %v %v; scan found entry %d at %v", maxDist, q, e.Plate, d, ok, wantI, wantD)
			}
			if ok {
				hits++
			}
		}
		t.Logf("max distance %v: %d of 1500 mutated reads matched", maxDist, hits)
	}
}

// benchList makes n distinct random 7-character plates.
func benchList(b testing.TB, n int) []Entry {
	rng := rand.New(rand.NewPCG(7, 7))
	const alpha = "ABCDEFGHJKMNPRTUVWXY0123456789ILOSZGBDQ"
	seen := make(map[string]bool, n)
	entries := make([]Entry, 0, n)
	for len(entries) < n {
		p := make([]byte, 7)
		for i := range p {
			p[i] = alpha[rng.IntN(len(alpha))]
		}
		if f := fold(string(p)); !seen[f] {
			seen[f] = true
			entries = append(entries, Entry{Plate: string(p), Reason: "bench", Expires: t0.Add(time.Hour)})
		}
	}
	return entries
}

// BenchmarkMatch matches reads against a 100,000-entry list: a third exact
// hits, a third with one confusable or one real edit, a third misses.
func BenchmarkMatch(b *testing.B) {
	entries := benchList(b, 100_000)
	rng := rand.New(rand.NewPCG(9, 9))
	queries := make([]string, 3000)
	for i := range queries {
		p := []byte(entries[rng.IntN(len(entries))].Plate)
		switch i % 3 {
		case 1:
			j := rng.IntN(len(p))
			if i%2 == 0 {
				p[j] = "0O8B5S2Z6G1I"[rng.IntN(12)]
			} else {
				p[j] = 'X'
			}
		case 2:
			for j := range p {
				p[j] = "ACEFHKMNPRTUVWXY"[rng.IntN(16)]
			}
		}
		queries[i] = string(p)
	}
	for _, maxDist := range []float64{0, 0.5, 1, 2} {
		b.Run(fmt.Sprintf("100k/max%v", maxDist), func(b *testing.B) {
			l, err := NewList(&Document{V: 1, Name: "b", Seq: 1, Issued: t0, Entries: entries}, maxDist)
			if err != nil {
				b.Fatal(err)
			}
			hits := 0
			for i := 0; b.Loop(); i++ {
				if _, ok := l.Match(queries[i%len(queries)], t0); ok {
					hits++
				}
			}
			b.ReportMetric(float64(hits)/float64(b.N), "hit_ratio")
			b.ReportMetric(float64(len(l.del)), "index_keys")
		})
	}
}

// BenchmarkNewList is the cost of accepting a 100,000-entry list.
func BenchmarkNewList(b *testing.B) {
	d := &Document{V: 1, Name: "b", Seq: 1, Issued: t0, Entries: benchList(b, 100_000)}
	for _, maxDist := range []float64{0.5, 1, 2} {
		b.Run(fmt.Sprintf("100k/max%v", maxDist), func(b *testing.B) {
			var l *List
			for b.Loop() {
				var err error
				if l, err = NewList(d, maxDist); err != nil {
					b.Fatal(err)
				}
			}
			// What a list in use costs: heap held by one list.
			l = nil
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			l, _ = NewList(d, maxDist)
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB_held")
			runtime.KeepAlive(l)
		})
	}
}
