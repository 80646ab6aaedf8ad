package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestSpool_FullPolicy(t *testing.T) {
	ctx := context.Background()
	rec := func(id string, lane Lane) Record {
		return Record{ID: id, Lane: lane, Payload: bytes.Repeat([]byte{'x'}, 300)}
	}
	// Each record costs 8 (key) + 1 + 8 + 1 + 2 (header) + 300 bytes = 320.
	const cap3 = 3*320 + 100

	t.Run("Refuse", func(t *testing.T) {
		for _, opt := range []Options{{MaxBytes: cap3}, {MaxBytes: cap3, FullPolicy: FullRefuse}} {
			s, _ := openTemp(t, opt)
			for _, id := range []string{"r1", "a1", "r2"} {
				lane := LaneRead
				if id[0] == 'a' {
					lane = LaneAlert
				}
				if err := s.Put(ctx, rec(id, lane)); err != nil {
					t.Fatal(err)
				}
			}
			for _, lane := range []Lane{LaneRead, LaneAlert} {
				err := s.Put(ctx, rec("new-"+lane.String(), lane))
				if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "max_bytes") {
					t.Fatalf("Put %s over cap = %v, want ErrFull naming max_bytes", lane, err)
				}
			}
			st := s.Stats()
			if !st.Full || st.Refused != 2 || st.Dropped != 0 || st.Records != 3 || !strings.Contains(st.FullCause, "max_bytes") {
				t.Fatalf("Stats = %+v", st)
			}
			for _, id := range []string{"r1", "a1", "r2"} {
				if _, err := s.Get(id); err != nil {
					t.Fatalf("older record %s: %v", id, err)
				}
			}
			if _, err := s.Ack("r1"); err != nil {
				t.Fatal(err)
			}
			if s.Stats().Full {
				t.Fatal("still Full after an Ack freed space")
			}
			if err := s.Put(ctx, rec("r3", LaneRead)); err != nil {
				t.Fatalf("Put after Ack: %v", err)
			}
		}
	})

	t.Run("DropOldest", func(t *testing.T) {
		s, path := openTemp(t, Options{MaxBytes: cap3, FullPolicy: FullDropOldest})
		for _, r := range []Record{rec("r1", LaneRead), rec("a1", LaneAlert), rec("r2", LaneRead)} {
			if err := s.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		// r1 is in flight: dropping it anyway is allowed, its receipt is
		// then a no-op.
		if got, _ := s.Lease(1, time.Minute); len(got) != 1 || got[0].ID != "a1" {
			t.Fatalf("Lease = %v", ids(got))
		}
		steps := []struct {
			put       Record
			wantErr   bool
			wantIDs   []string // lease order after the step
			wantDrops uint64
		}{
			{rec("r3", LaneRead), false, []string{"a1", "r2", "r3"}, 1},  // drops r1
			{rec("a2", LaneAlert), false, []string{"a1", "a2", "r3"}, 2}, // an alert makes room from reads: drops r2
			{rec("a3", LaneAlert), false, []string{"a1", "a2", "a3"}, 3}, // drops r3, the last read
			{rec("r4", LaneRead), true, []string{"a1", "a2", "a3"}, 3},   // only alerts left: refused
			{rec("a4", LaneAlert), true, []string{"a1", "a2", "a3"}, 3},  // alerts are never dropped
		}
		for i, st := range steps {
			err := s.Put(ctx, st.put)
			if st.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrFull)) {
				t.Fatalf("step %d: Put %s = %v, want error %v (ErrFull)", i, st.put.ID, err, st.wantErr)
			}
			s.Release("a1")
			got, err := s.Lease(10, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			s.Release(ids(got)...)
			if !equal(ids(got), st.wantIDs) {
				t.Fatalf("step %d: records = %v, want %v", i, ids(got), st.wantIDs)
			}
			if d := s.Stats().Dropped; d != st.wantDrops {
				t.Fatalf("step %d: Dropped = %d, want %d", i, d, st.wantDrops)
			}
		}
		st := s.Stats()
		if !st.Full || st.Refused != 2 || st.Bytes > cap3 || st.Count[LaneAlert] != 3 || st.Count[LaneRead] != 0 {
			t.Fatalf("Stats = %+v", st)
		}
		if n, _ := s.Ack("r1", "r2"); n != 0 {
			t.Fatalf("Ack of dropped records = %d, want 0", n)
		}
		// The counters agree with the file.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(path, Options{MaxBytes: cap3, FullPolicy: FullDropOldest})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if got := s2.Stats(); got.Bytes != st.Bytes || got.Records != 3 {
			t.Fatalf("reopened Bytes %d Records %d, want %d 3", got.Bytes, got.Records, st.Bytes)
		}
	})

	t.Run("DropOldestTooBig", func(t *testing.T) {
		// A record larger than the cap drops nothing.
		s, _ := openTemp(t, Options{MaxBytes: cap3, FullPolicy: FullDropOldest})
		if err := s.Put(ctx, rec("r1", LaneRead)); err != nil {
			t.Fatal(err)
		}
		err := s.Put(ctx, Record{ID: "huge", Lane: LaneAlert, Payload: make([]byte, cap3)})
		if !errors.Is(err, ErrFull) || s.Len() != 1 || s.Stats().Dropped != 0 {
			t.Fatalf("Put huge = %v, Len %d, Dropped %d", err, s.Len(), s.Stats().Dropped)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		_, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{FullPolicy: "drop_newest"})
		if err == nil || !strings.Contains(err.Error(), "drop_newest") {
			t.Fatalf("Open with a bad policy = %v", err)
		}
		if p, err := ParseFullPolicy(""); p != FullRefuse || err != nil {
			t.Fatalf("ParseFullPolicy(\"\") = %q, %v", p, err)
		}
	})
}

// mountSmallFS mounts a tmpfs of size bytes in a temp dir and unmounts it in
// Cleanup. Without root or mount permission it skips, except under CI=true.
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs (need root): %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillFS writes a file that leaves about leave bytes free on the
// filesystem of dir, and returns its path.
func fillFS(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	if free > leave {
		if err := os.WriteFile(path, make([]byte, free-leave), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestSpool_DiskFull fills a real 2 MB tmpfs: Puts fail with ErrFull
// wrapping ENOSPC, Stats say so, every acknowledged record survives (also a
// reopen while the disk is still full, and bbolt's check passes), Ack frees
// room, and Puts work again once space returns.
func TestSpool_DiskFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"Refuse", Options{}},
		{"RefuseEncrypted", Options{Key: testKey()}},
		{"DropOldest", Options{FullPolicy: FullDropOldest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mountSmallFS(t, "2m")
			path := filepath.Join(dir, "spool.db")
			ctx := context.Background()
			payload := func(id string) []byte {
				return bytes.Repeat([]byte(id+"|"), 8<<10/(len(id)+1))
			}
			s, err := Open(path, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			filler := fillFS(t, dir, 700<<10)

			var stored []string
			var full error
			for i := range 1000 {
				id := fmt.Sprintf("r%04d", i)
				lane := LaneRead
				if i%10 == 0 {
					lane = LaneAlert
				}
				err := s.Put(ctx, Record{ID: id, Lane: lane, Payload: payload(id)})
				if err != nil {
					full = err
					break
				}
				stored = append(stored, id)
			}
			if tc.opt.FullPolicy == FullDropOldest {
				// Dropping makes room: the disk never refuses while reads
				// are left, and alerts all survive.
				if full != nil && s.Stats().Count[LaneRead] > 0 {
					t.Fatalf("drop_oldest refused with reads left: %v (%+v)", full, s.Stats())
				}
				st := s.Stats()
				if st.Dropped == 0 {
					t.Fatalf("no read dropped on a full disk: %+v", st)
				}
				for _, id := range stored {
					r, err := s.Get(id)
					isAlert := id[len(id)-1] == '0'
					if isAlert && err != nil {
						t.Fatalf("alert %s lost: %v", id, err)
					}
					if err == nil && !bytes.Equal(r.Payload, payload(id)) {
						t.Fatalf("record %s damaged", id)
					}
				}
				if full != nil && !errors.Is(full, ErrFull) {
					t.Fatalf("refusal = %v, want ErrFull", full)
				}
				t.Logf("drop_oldest on a full 2 MB tmpfs: %d puts stored, %d reads dropped, %d records kept (%d alerts), last error %v", len(stored), st.Dropped, st.Records, st.Count[LaneAlert], full)
				// Space returns: a put that was refused now succeeds
				// without dropping, and the file is sound.
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
				dropped := s.Stats().Dropped
				for i := range 3 {
					id := fmt.Sprintf("back-%d", i)
					if err := s.Put(ctx, Record{ID: id, Lane: LaneAlert, Payload: payload(id)}); err != nil {
						t.Fatalf("Put after space returned: %v", err)
					}
				}
				if st := s.Stats(); st.Full || st.Dropped > dropped+1 {
					t.Fatalf("after space returned: %+v", st)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s, err = Open(path, tc.opt)
				if err != nil {
					t.Fatal(err)
				}
				var kept []string
				for _, id := range append(stored, "back-0", "back-1", "back-2") {
					if _, err := s.Get(id); err == nil {
						kept = append(kept, id)
					}
				}
				checkStored(t, s, kept, payload)
				return
			}
			if full == nil {
				t.Fatalf("1000 puts of 8 kB fit in 700 kB")
			}
			if !errors.Is(full, ErrFull) || !errors.Is(full, syscall.ENOSPC) {
				t.Fatalf("Put on a full disk = %v, want ErrFull wrapping ENOSPC", full)
			}
			st := s.Stats()
			if !st.Full || st.Refused == 0 || !strings.Contains(st.FullCause, "no space") {
				t.Fatalf("Stats on a full disk = %+v", st)
			}
			if st.Records != len(stored) {
				t.Fatalf("Records = %d, want %d", st.Records, len(stored))
			}
			// A second refusal while still full.
			if err := s.Put(ctx, Record{ID: "again", Lane: LaneRead, Payload: payload("again")}); !errors.Is(err, ErrFull) {
				t.Fatalf("second Put on a full disk = %v", err)
			}
			t.Logf("full after %d puts of 8 kB: %v", len(stored), full)

			// Reopen while the disk is still full.
			if err := s.Close(); err != nil {
				t.Fatalf("Close on a full disk: %v", err)
			}
			s, err = Open(path, tc.opt)
			if err != nil {
				t.Fatalf("reopen on a full disk: %v", err)
			}
			checkStored(t, s, stored, payload)

			// Acks free pages inside the file, which later puts reuse.
			half := stored[:len(stored)/2]
			if n, err := s.Ack(half...); err != nil || n != len(half) {
				t.Fatalf("Ack on a full disk = %d, %v", n, err)
			}
			stored = stored[len(half):]
			for i := range 3 {
				id := fmt.Sprintf("after-ack-%d", i)
				if err := s.Put(ctx, Record{ID: id, Lane: LaneRead, Payload: payload(id)}); err != nil {
					t.Fatalf("Put after Ack freed space: %v", err)
				}
				stored = append(stored, id)
			}
			if s.Stats().Full {
				t.Fatal("Full after a successful put")
			}

			// Fill again, then free disk space.
			for i := 0; ; i++ {
				id := fmt.Sprintf("refill-%04d", i)
				err := s.Put(ctx, Record{ID: id, Lane: LaneRead, Payload: payload(id)})
				if errors.Is(err, ErrFull) {
					break
				}
				if err != nil || i > 1000 {
					t.Fatalf("refill: %v after %d", err, i)
				}
				stored = append(stored, id)
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, Record{ID: "space-back", Lane: LaneRead, Payload: payload("space-back")}); err != nil {
				t.Fatalf("Put after space returned: %v", err)
			}
			stored = append(stored, "space-back")
			if st := s.Stats(); st.Full {
				t.Fatalf("still Full after space returned: %+v", st)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(path, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			checkStored(t, s, stored, payload)
		})
	}
}

// checkStored checks that s holds exactly ids, intact, and passes bbolt's
// consistency check.
func checkStored(t *testing.T, s *Spool, ids []string, payload func(string) []byte) {
	t.Helper()
	if s.Len() != len(ids) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(ids))
	}
	for _, id := range ids {
		r, err := s.Get(id)
		if err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
		if !bytes.Equal(r.Payload, payload(id)) {
			t.Fatalf("record %s damaged", id)
		}
	}
	if err := boltCheck(s.db); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}

// boltCheck runs bbolt's consistency check and returns its first error,
// draining the channel so the check goroutine ends with the transaction.
func boltCheck(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}
