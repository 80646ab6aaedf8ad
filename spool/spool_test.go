package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for leases and retention.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openTemp(t testing.TB, opt Options) (*Spool, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func put(t testing.TB, s *Spool, id string, lane Lane) {
	t.Helper()
	if err := s.Put(context.Background(), Record{ID: id, Lane: lane, Payload: []byte("payload-" + id)}); err != nil {
		t.Fatalf("Put %s: %v", id, err)
	}
}

func ids(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSpool_Lease(t *testing.T) {
	tests := []struct {
		name  string
		puts  []Record
		max   int
		want  []string
		twice []string // second Lease right after the first
	}{
		{
			name: "OK",
			puts: []Record{{ID: "a", Lane: LaneRead}, {ID: "b", Lane: LaneRead}, {ID: "c", Lane: LaneRead}},
			max:  10, want: []string{"a", "b", "c"}, twice: nil,
		},
		{
			name: "AlertsFirst",
			puts: []Record{{ID: "r1", Lane: LaneRead}, {ID: "r2", Lane: LaneRead}, {ID: "a1", Lane: LaneAlert}, {ID: "r3", Lane: LaneRead}, {ID: "a2", Lane: LaneAlert}},
			max:  10, want: []string{"a1", "a2", "r1", "r2", "r3"}, twice: nil,
		},
		{
			name: "Max",
			puts: []Record{{ID: "r1", Lane: LaneRead}, {ID: "a1", Lane: LaneAlert}, {ID: "r2", Lane: LaneRead}},
			max:  2, want: []string{"a1", "r1"}, twice: []string{"r2"},
		},
		{
			name: "Empty",
			max:  5, want: nil, twice: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t, Options{})
			for _, r := range tt.puts {
				put(t, s, r.ID, r.Lane)
			}
			got, err := s.Lease(tt.max, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !equal(ids(got), tt.want) {
				t.Fatalf("Lease = %v, want %v", ids(got), tt.want)
			}
			for _, r := range got {
				if string(r.Payload) != "payload-"+r.ID {
					t.Errorf("payload of %s = %q", r.ID, r.Payload)
				}
			}
			got, err = s.Lease(tt.max, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !equal(ids(got), tt.twice) {
				t.Fatalf("second Lease = %v, want %v", ids(got), tt.twice)
			}
		})
	}
}

func TestSpool_LeaseExpiryAndRelease(t *testing.T) {
	clk := newFakeClock()
	s, _ := openTemp(t, Options{Now: clk.Now})
	for _, id := range []string{"a", "b", "c"} {
		put(t, s, id, LaneRead)
	}
	got, _ := s.Lease(2, 10*time.Second)
	if !equal(ids(got), []string{"a", "b"}) {
		t.Fatalf("Lease = %v", ids(got))
	}
	if st := s.Stats(); st.Leased != 2 {
		t.Fatalf("Leased = %d, want 2", st.Leased)
	}
	s.Release("b")
	got, _ = s.Lease(10, 10*time.Second)
	if !equal(ids(got), []string{"b", "c"}) {
		t.Fatalf("after Release, Lease = %v", ids(got))
	}
	clk.Advance(11 * time.Second)
	got, _ = s.Lease(10, 10*time.Second)
	if !equal(ids(got), []string{"a", "b", "c"}) {
		t.Fatalf("after expiry, Lease = %v, want all in order", ids(got))
	}
}

func TestSpool_Ack(t *testing.T) {
	s, _ := openTemp(t, Options{})
	for _, id := range []string{"a", "b", "c"} {
		put(t, s, id, LaneRead)
	}
	put(t, s, "x", LaneAlert)
	n, err := s.Ack("b", "x", "unknown", "b")
	if err != nil || n != 2 {
		t.Fatalf("Ack = %d, %v; want 2, nil", n, err)
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	st := s.Stats()
	if st.Count[LaneAlert] != 0 || st.Count[LaneRead] != 2 {
		t.Fatalf("Count = %v", st.Count)
	}
	if _, err := s.Get("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get acked: %v, want ErrNotFound", err)
	}
	got, _ := s.Lease(10, time.Minute)
	if !equal(ids(got), []string{"a", "c"}) {
		t.Fatalf("Lease = %v", ids(got))
	}
	if n, err := s.Ack(); n != 0 || err != nil {
		t.Fatalf("empty Ack = %d, %v", n, err)
	}
	if n, _ := s.Ack("a", "c"); n != 2 || s.Len() != 0 || s.Stats().Bytes != 0 {
		t.Fatalf("Ack all = %d, Len %d, Bytes %d", n, s.Len(), s.Stats().Bytes)
	}
}

func TestSpool_Duplicate(t *testing.T) {
	s, _ := openTemp(t, Options{})
	put(t, s, "a", LaneRead)
	before := s.Stats().Bytes
	if err := s.Put(context.Background(), Record{ID: "a", Lane: LaneAlert, Payload: []byte("other")}); err != nil {
		t.Fatalf("duplicate Put: %v", err)
	}
	if s.Len() != 1 || s.Stats().Bytes != before {
		t.Fatalf("duplicate changed the spool: Len %d", s.Len())
	}
	r, err := s.Get("a")
	if err != nil || r.Lane != LaneRead || string(r.Payload) != "payload-a" {
		t.Fatalf("Get = %+v, %v; first record must win", r, err)
	}
}

func TestSpool_PutInvalid(t *testing.T) {
	s, _ := openTemp(t, Options{})
	long := string(make([]byte, MaxIDLen+1))
	for _, r := range []Record{{ID: ""}, {ID: long}, {ID: "x", Lane: 7}} {
		if err := s.Put(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Put(%q, lane %d) = %v, want ErrInvalidRecord", r.ID[:min(len(r.ID), 8)], r.Lane, err)
		}
	}
}

func TestSpool_Reopen(t *testing.T) {
	clk := newFakeClock()
	opt := Options{Now: clk.Now}
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "r1", LaneRead)
	put(t, s, "a1", LaneAlert)
	put(t, s, "r2", LaneRead)
	if got, _ := s.Lease(10, time.Hour); len(got) != 3 {
		t.Fatalf("Lease = %v", ids(got))
	}
	bytes := s.Stats().Bytes
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Put(context.Background(), Record{ID: "z"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Lease(1, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lease after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Ack("r1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close = %v, want ErrClosed", err)
	}

	s, err = Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 3 || s.Stats().Bytes != bytes {
		t.Fatalf("reopened Len %d Bytes %d, want 3 %d", s.Len(), s.Stats().Bytes, bytes)
	}
	// Leases are in memory: after reopen every record is free, in order.
	got, _ := s.Lease(10, time.Hour)
	if !equal(ids(got), []string{"a1", "r1", "r2"}) {
		t.Fatalf("Lease after reopen = %v", ids(got))
	}
	if !got[1].Created.Equal(clk.Now()) {
		t.Fatalf("Created = %v, want %v", got[1].Created, clk.Now())
	}
	// Sequence continues after reopen, so order stays put order.
	put(t, s, "r3", LaneRead)
	s.Release(ids(got)...)
	got, _ = s.Lease(10, time.Hour)
	if !equal(ids(got), []string{"a1", "r1", "r2", "r3"}) {
		t.Fatalf("Lease = %v", ids(got))
	}
}

func TestSpool_ConcurrentPut(t *testing.T) {
	s, _ := openTemp(t, Options{})
	const producers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, producers*each)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				lane := LaneRead
				if i%5 == 0 {
					lane = LaneAlert
				}
				r := Record{ID: fmt.Sprintf("p%02d-%03d", p, i), Lane: lane, Payload: make([]byte, 100)}
				if err := s.Put(context.Background(), r); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.Len() != producers*each {
		t.Fatalf("Len = %d, want %d", s.Len(), producers*each)
	}
	got, err := s.Lease(producers*each+1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	lastIdx := map[int]int{}
	alertsDone := false
	for _, r := range got {
		seen[r.ID] = true
		if r.Lane == LaneRead {
			alertsDone = true
		} else if alertsDone {
			t.Fatalf("alert %s after a read", r.ID)
		}
		var p, i int
		if _, err := fmt.Sscanf(r.ID, "p%d-%d", &p, &i); err != nil {
			t.Fatal(err)
		}
		// Within a lane, one producer's records keep its put order.
		key := p*10 + int(r.Lane)
		if prev, ok := lastIdx[key]; ok && prev > i {
			t.Fatalf("producer %d out of order: %d after %d", p, i, prev)
		}
		lastIdx[key] = i
	}
	for p := range producers {
		for i := range each {
			if id := fmt.Sprintf("p%02d-%03d", p, i); !seen[id] {
				t.Fatalf("missing %s", id)
			}
		}
	}
}

func TestSpool_Expire(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "spool.db")
	opt := Options{Now: clk.Now, MaxAge: time.Hour}
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "old", LaneRead)
	put(t, s, "oldalert", LaneAlert)
	clk.Advance(30 * time.Minute)
	put(t, s, "mid", LaneRead)
	// A record whose created time is already past retention (clock
	// jumped) is accepted but not stored: retention would delete it.
	if err := s.Put(context.Background(), Record{ID: "jumped", Lane: LaneRead, Created: clk.Now().Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 3 || st.Expired != 1 {
		t.Fatalf("after a put past retention: Records %d Expired %d, want 3 1", st.Records, st.Expired)
	}
	if _, err := s.Get("jumped"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get jumped = %v, want ErrNotFound", err)
	}
	if _, err := s.Lease(10, time.Hour); err != nil {
		t.Fatal(err)
	}
	n, err := s.Expire()
	if err != nil || n != 0 {
		t.Fatalf("Expire = %d, %v; want 0", n, err)
	}
	clk.Advance(31 * time.Minute)
	n, err = s.Expire()
	if err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2", n, err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
	if st := s.Stats(); st.Leased != 1 {
		t.Fatalf("Leased = %d", st.Leased)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Expire runs on Open too.
	clk.Advance(time.Hour)
	s, err = Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 0 {
		t.Fatalf("Len after Open = %d, want 0", s.Len())
	}
}

func TestSpool_Full(t *testing.T) {
	s, _ := openTemp(t, Options{MaxBytes: 1000})
	rec := func(id string) Record { return Record{ID: id, Lane: LaneRead, Payload: make([]byte, 300)} }
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Put(context.Background(), rec(id)); err != nil {
			t.Fatalf("Put %s: %v", id, err)
		}
	}
	err := s.Put(context.Background(), rec("d"))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Put over cap = %v, want ErrFull", err)
	}
	if st := s.Stats(); !st.Full || st.Refused != 1 || st.Records != 3 || st.Bytes > 1000 {
		t.Fatalf("Stats = %+v", st)
	}
	// A duplicate of a stored record is still a no-op, not ErrFull.
	if err := s.Put(context.Background(), rec("a")); err != nil {
		t.Fatalf("duplicate when full: %v", err)
	}
	if _, err := s.Ack("a"); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Full {
		t.Fatal("Full still set after Ack freed space")
	}
	if err := s.Put(context.Background(), rec("d")); err != nil {
		t.Fatalf("Put after Ack: %v", err)
	}
}

func TestSpool_Notify(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ch := s.Notify()
	select {
	case <-ch:
		t.Fatal("notified before Put")
	default:
	}
	put(t, s, "a", LaneRead)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("not notified after Put")
	}
	if s.Notify() == ch {
		t.Fatal("Notify channel not replaced")
	}
}

func TestSpool_PutContextCanceled(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either outcome is allowed (the commit goroutine may be ready), but a
	// canceled context must not hang and must not corrupt anything.
	err := s.Put(ctx, Record{ID: "a", Payload: []byte("x")})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v", err)
	}
}

func TestSpool_OpenLocked(t *testing.T) {
	_, path := openTemp(t, Options{})
	// bbolt's flock is per open file description, so a second Open of the
	// same file in this process must time out rather than hang.
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
}
