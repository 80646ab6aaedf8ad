package spool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// leaseModel is the naive reference for Lease: every stored record in
// lane order (alerts first, then put order), and who holds a lease until
// when. The spool skips the leased head of a lane without looking at it
// again; the model always looks at everything.
type leaseModel struct {
	order  [numLanes][]string
	leased map[string]time.Time
}

func (m *leaseModel) free(id string, now time.Time) bool {
	until, ok := m.leased[id]
	return !ok || !now.Before(until)
}

func (m *leaseModel) lease(max int, now time.Time, ttl time.Duration) []string {
	var out []string
	for _, lane := range m.order {
		for _, id := range lane {
			if len(out) == max {
				return out
			}
			if m.free(id, now) {
				out = append(out, id)
				m.leased[id] = now.Add(ttl)
			}
		}
	}
	return out
}

func (m *leaseModel) remove(id string) bool {
	delete(m.leased, id)
	for l := range m.order {
		if i := slices.Index(m.order[l], id); i >= 0 {
			m.order[l] = slices.Delete(m.order[l], i, i+1)
			return true
		}
	}
	return false
}

// TestSpool_LeaseMatchesModel drives Put, Lease (with two TTLs), Release,
// Ack (of leased, unleased, acked and unknown IDs) and a clock that jumps
// past leases at random, and checks every Lease against the model. Seeds
// are fixed so a failure replays.
func TestSpool_LeaseMatchesModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			clk := newFakeClock()
			s, _ := openTemp(t, Options{Now: clk.Now})
			m := &leaseModel{leased: map[string]time.Time{}}
			var all []string // every ID ever put, acked ones included
			next := 0
			pick := func() string {
				if len(all) == 0 || rng.IntN(10) == 0 {
					return "unknown"
				}
				return all[rng.IntN(len(all))]
			}
			for step := range 400 {
				switch op := rng.IntN(10); {
				case op < 3: // put a few
					for range 1 + rng.IntN(6) {
						lane := LaneRead
						if rng.IntN(5) == 0 {
							lane = LaneAlert
						}
						id := fmt.Sprintf("r%04d", next)
						next++
						put(t, s, id, lane)
						m.order[lane] = append(m.order[lane], id)
						all = append(all, id)
					}
				case op < 6: // lease
					max := 1 + rng.IntN(8)
					ttl := []time.Duration{10 * time.Second, 25 * time.Second}[rng.IntN(2)]
					got, err := s.Lease(max, ttl)
					if err != nil {
						t.Fatal(err)
					}
					want := m.lease(max, clk.Now(), ttl)
					if !slices.Equal(ids(got), want) {
						t.Fatalf("step %d: Lease(%d) = %v, model %v", step, max, ids(got), want)
					}
				case op < 7: // release some
					var rel []string
					for range 1 + rng.IntN(4) {
						rel = append(rel, pick())
					}
					s.Release(rel...)
					for _, id := range rel {
						delete(m.leased, id)
					}
				case op < 9: // ack some
					var ack []string
					for range 1 + rng.IntN(6) {
						ack = append(ack, pick())
					}
					n, err := s.Ack(ack...)
					if err != nil {
						t.Fatal(err)
					}
					want := 0
					for _, id := range ack {
						if m.remove(id) {
							want++
						}
					}
					if n != want {
						t.Fatalf("step %d: Ack(%v) = %d, model %d", step, ack, n, want)
					}
				default: // time passes, sometimes past every lease
					clk.Advance(time.Duration(rng.IntN(30)) * time.Second)
				}
				if got, want := s.Len(), len(m.order[0])+len(m.order[1]); got != want {
					t.Fatalf("step %d: Len = %d, model %d", step, got, want)
				}
				for lane := range Lane(numLanes) {
					if got, want := s.LaneLen(lane), len(m.order[lane]); got != want {
						t.Fatalf("step %d: LaneLen(%v) = %d, model %d", step, lane, got, want)
					}
				}
			}
		})
	}
}

// TestSpool_AckAfterExpiry: a record that expired while leased is gone;
// acking it later counts nothing and leaves the rest alone.
func TestSpool_AckAfterExpiry(t *testing.T) {
	clk := newFakeClock()
	s, _ := openTemp(t, Options{Now: clk.Now, MaxAge: time.Hour})
	put(t, s, "old", LaneRead)
	clk.Advance(50 * time.Minute)
	put(t, s, "young", LaneRead)
	got, err := s.Lease(10, time.Hour)
	if err != nil || !slices.Equal(ids(got), []string{"old", "young"}) {
		t.Fatalf("Lease = %v, %v", ids(got), err)
	}
	clk.Advance(20 * time.Minute)
	if n, err := s.Expire(); n != 1 || err != nil {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	if n, err := s.Ack("old"); n != 0 || err != nil {
		t.Fatalf("Ack of an expired record = %d, %v; want 0", n, err)
	}
	if n, err := s.Ack("young"); n != 1 || err != nil || s.Len() != 0 {
		t.Fatalf("Ack young = %d, %v, Len %d", n, err, s.Len())
	}
	if err := s.Put(context.Background(), Record{ID: "later", Lane: LaneRead, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lease(10, time.Hour); !slices.Equal(ids(got), []string{"later"}) {
		t.Fatalf("Lease after = %v", ids(got))
	}
}

// TestSpool_LeaseAppend: payloads land in the caller's buffer, which can
// be handed back and reused once the records are done with; each record
// keeps its own bytes however the buffer grew. Encrypted records (opened
// into their own memory) come out the same.
func TestSpool_LeaseAppend(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprint("encrypted=", enc), func(t *testing.T) {
			opt := Options{}
			if enc {
				opt.Key = testKey()
			}
			s, _ := openTemp(t, opt)
			want := map[string]string{}
			for i := range 40 {
				id := fmt.Sprintf("r%02d", i)
				p := strings.Repeat(string(rune('a'+i%26)), 1+i*7) // sizes differ: the buffer grows mid-lease
				if err := s.Put(context.Background(), Record{ID: id, Lane: LaneRead, Payload: []byte(p)}); err != nil {
					t.Fatal(err)
				}
				want[id] = p
			}
			var buf []byte
			for round := range 3 {
				recs, nb, err := s.LeaseAppend(buf[:0:cap(buf)], 40, time.Minute)
				if err != nil || len(recs) != 40 {
					t.Fatalf("round %d: LeaseAppend = %d records, %v", round, len(recs), err)
				}
				for _, r := range recs {
					if string(r.Payload) != want[r.ID] {
						t.Fatalf("round %d: payload of %s = %q, want %q", round, r.ID, r.Payload, want[r.ID])
					}
				}
				if !enc && len(nb) == 0 {
					t.Fatalf("round %d: nothing was appended to the buffer", round)
				}
				if enc && len(nb) != 0 {
					t.Fatalf("round %d: encrypted payloads went to the buffer (%d bytes)", round, len(nb))
				}
				s.Release(ids(recs)...)
				buf = nb
			}
		})
	}
}
