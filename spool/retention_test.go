package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSpool_Retention: no record older than MaxAge survives, sent or not,
// leased or not, across a reopen, with an injected clock; and no record
// past MaxAge is handed out in the window before Expire runs.
func TestSpool_Retention(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("enc=%v", enc), func(t *testing.T) {
			clk := newFakeClock()
			opt := Options{Now: clk.Now, MaxAge: time.Hour, ExpireEvery: -1}
			if enc {
				opt.Key = testKey()
				opt.KeyPeriod = 15 * time.Minute
			}
			path := filepath.Join(t.TempDir(), "spool.db")
			s, err := Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			put(t, s, "leased", LaneRead)   // t0, in flight at expiry
			put(t, s, "waiting", LaneAlert) // t0, never sent
			clk.Advance(40 * time.Minute)
			put(t, s, "young", LaneRead) // t0+40m
			if got, _ := s.Lease(1, 2*time.Hour); len(got) != 1 || got[0].ID != "waiting" {
				t.Fatalf("Lease = %v", ids(got))
			}
			if got, _ := s.Lease(1, 2*time.Hour); len(got) != 1 || got[0].ID != "leased" {
				t.Fatalf("Lease = %v", ids(got))
			}
			s.Release("waiting")

			// t0+61m: the t0 records are past retention. Before Expire
			// runs they are already invisible.
			clk.Advance(21 * time.Minute)
			s.Release("leased")
			if got, _ := s.Lease(10, time.Minute); !equal(ids(got), []string{"young"}) {
				t.Fatalf("Lease past retention = %v, want [young]", ids(got))
			}
			s.Release("young")
			for _, id := range []string{"leased", "waiting"} {
				if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get %s past retention = %v", id, err)
				}
			}
			if n, err := s.Expire(); n != 2 || err != nil {
				t.Fatalf("Expire = %d, %v; want 2", n, err)
			}
			// The uplink's receipt for the expired in-flight record is a
			// harmless no-op.
			if n, err := s.Ack("leased"); n != 0 || err != nil {
				t.Fatalf("Ack of an expired record = %d, %v", n, err)
			}
			st := s.Stats()
			if st.Records != 1 || st.Expired != 2 {
				t.Fatalf("Stats = %+v", st)
			}
			if enc && (st.Keys != 1 || st.Shredded != 1) {
				t.Fatalf("keys after retention: %+v", st)
			}
			// Closed at t0+61m, reopened at t0+101m: young (t0+40m) is
			// past retention and goes on Open.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			clk.Advance(40 * time.Minute)
			s, err = Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Records != 0 || st.Bytes != 0 || st.Expired != 1 || (enc && st.Keys != 0) {
				t.Fatalf("after reopen: %+v", st)
			}
		})
	}
}

// TestSpool_ExpireBackground: the spool applies retention by itself every
// ExpireEvery, without the agent calling Expire.
func TestSpool_ExpireBackground(t *testing.T) {
	clk := newFakeClock()
	s, _ := openTemp(t, Options{Now: clk.Now, MaxAge: time.Hour, ExpireEvery: 5 * time.Millisecond, Key: testKey()})
	for i := range 10 {
		put(t, s, fmt.Sprint(i), Lane(i%2))
	}
	clk.Advance(2 * time.Hour)
	put(t, s, "new", LaneRead)
	deadline := time.Now().Add(30 * time.Second)
	for s.Len() != 1 || s.Stats().Keys != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("background expiry did not run: %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := s.Stats()
	if st.Expired != 10 || st.Shredded != 1 || st.LastError != "" {
		t.Fatalf("Stats = %+v", st)
	}
	if _, err := s.Get("new"); err != nil {
		t.Fatal(err)
	}
}

// TestSpool_PutPastRetention: a record older than MaxAge when put is not
// stored; a record that ages out while waiting to be committed neither.
func TestSpool_PutPastRetention(t *testing.T) {
	clk := newFakeClock()
	s, _ := openTemp(t, Options{Now: clk.Now, MaxAge: time.Hour, Key: testKey()})
	err := s.Put(context.Background(), Record{ID: "old", Lane: LaneRead, Created: clk.Now().Add(-61 * time.Minute), Payload: []byte("x")})
	if err != nil || s.Len() != 0 || s.Stats().Expired != 1 || s.Stats().Keys != 0 {
		t.Fatalf("Put past retention = %v, %+v", err, s.Stats())
	}
}

// TestSpool_PurgeMovedAside: a damaged spool moved aside still holds reads
// (and, encrypted, the keys to them); once retention has ended for
// everything in it, it is deleted with its key store. A file within
// retention is kept.
func TestSpool_PurgeMovedAside(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprint("encrypted=", enc), func(t *testing.T) {
			// The file times are the machine's, so the spool's clock starts
			// at the machine's time.
			clk := &fakeClock{t: time.Now()}
			opt := Options{MaxAge: time.Hour, Now: clk.Now}
			if enc {
				opt.Key = testKey()
			}
			path := filepath.Join(t.TempDir(), "spool.db")
			s, err := Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			put(t, s, "r1", LaneRead)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 4096); err != nil {
				t.Fatal(err)
			}
			s, err = Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			aside := s.Stats().MovedAside
			if aside == "" {
				t.Fatal("the damaged file was not moved aside")
			}
			// Last written now, on the spool's clock.
			if err := os.Chtimes(aside, clk.Now(), clk.Now()); err != nil {
				t.Fatal(err)
			}
			exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
			if enc && !exists(aside+".keys") {
				t.Fatal("the key store was not moved aside with it")
			}
			clk.Advance(59 * time.Minute)
			if _, err := s.Expire(); err != nil {
				t.Fatal(err)
			}
			if !exists(aside) || len(s.Stats().PurgedAside) != 0 {
				t.Fatalf("purged within retention: %v", s.Stats().PurgedAside)
			}
			clk.Advance(2 * time.Minute)
			if _, err := s.Expire(); err != nil {
				t.Fatal(err)
			}
			if exists(aside) || exists(aside+".keys") {
				t.Fatal("moved-aside spool (or its key store) survived its retention")
			}
			if got := s.Stats().PurgedAside; len(got) != 1 || got[0] != aside {
				t.Fatalf("PurgedAside = %v, want [%s]", got, aside)
			}
			if !exists(path) {
				t.Fatal("the live spool was deleted")
			}
		})
	}
}
