package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// makeSpool writes n records of 2 kB to a new spool at path and closes it.
func makeSpool(t *testing.T, path string, n int, opt Options) {
	t.Helper()
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("rec-%04d", i)
		if err := s.Put(context.Background(), Record{ID: id, Lane: Lane(i % 2), Payload: crashPayload(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// corruptLeafPage overwrites the header of an in-use leaf page near the
// middle of the file: the page type and element count become garbage, as
// a torn or bit-rotted write would leave them.
func corruptLeafPage(t *testing.T, path string) {
	t.Helper()
	leaves, pageSize := pagesOfType(t, path, "leaf")
	if len(leaves) < 3 {
		t.Fatalf("find leaf pages: %d found, want at least 3", len(leaves))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id := leaves[len(leaves)/2]
	if _, err := f.WriteAt([]byte{0xa5, 0x5a, 0xff, 0x7f, 0x13, 0x37, 0x00, 0x01}, int64(id*pageSize)+8); err != nil {
		t.Fatal(err)
	}
}

// pagesOfType lists the in-use pages of a bbolt file with the given type
// ("branch", "leaf", "freelist") and returns the page size.
func pagesOfType(t *testing.T, path, typ string) ([]int, int) {
	t.Helper()
	// Read-only: a writable bbolt would rewrite the file (it syncs a
	// freelist the spool does not keep).
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []int
	ps := db.Info().PageSize
	err = db.View(func(tx *bbolt.Tx) error {
		for id := 2; id < int(tx.Size())/ps; id++ {
			if p, err := tx.Page(id); err == nil && p != nil && p.Type == typ {
				out = append(out, id)
			}
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("no %s page: %v", typ, err)
	}
	return out, ps
}

// syncFreelist opens path with bbolt's defaults, which write the freelist
// into the file, as a bbolt without Options.NoFreelistSync does.
func syncFreelist(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestSpool_OpenCorrupt(t *testing.T) {
	tests := []struct {
		name   string
		opt    Options
		damage func(t *testing.T, path string)
		reason string // part of MovedAsideReason
	}{
		{"Truncated", Options{}, func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"TruncatedToOnePage", Options{}, func(t *testing.T, path string) {
			if err := os.Truncate(path, 4096); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"Empty", Options{}, func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "empty"},
		{"Garbage", Options{}, func(t *testing.T, path string) {
			b := make([]byte, 256<<10)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "meta page"},
		{"CorruptPage", Options{}, corruptLeafPage, "page"},
		{"CorruptPageUnclean", Options{}, func(t *testing.T, path string) {
			removeCleanMarker(t, path)
			corruptLeafPage(t, path)
		}, "page"},
		{"CorruptPageEncrypted", Options{Key: testKey()}, corruptLeafPage, "page"},
		{"PageCycle", Options{}, func(t *testing.T, path string) {
			// A branch page whose first child is itself: bbolt's cursor
			// would loop forever.
			branches, ps := pagesOfType(t, path, "branch")
			id := branches[len(branches)-1]
			b := make([]byte, 8)
			binary.LittleEndian.PutUint64(b, uint64(id))
			writeAt(t, path, int64(id*ps)+16+8, b)
		}, "reached twice"},
		{"FreelistNamesPageInUse", Options{}, func(t *testing.T, path string) {
			// The spool keeps no freelist in the file; a file last
			// written by a bbolt that does (an older agent) has one.
			syncFreelist(t, path)
			leaves, ps := pagesOfType(t, path, "leaf")
			fl, _ := pagesOfType(t, path, "freelist")
			b := make([]byte, 8)
			binary.LittleEndian.PutUint64(b, uint64(leaves[0]))
			writeAt(t, path, int64(fl[0]*ps)+16, b)
		}, "in use"},
		{"KeysOutOfOrder", Options{}, func(t *testing.T, path string) {
			// bbolt.Open rebuilds the freelist by checking the whole tree
			// and panics, beyond recovery, at keys out of order.
			leaves, ps := pagesOfType(t, path, "leaf")
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, id := range leaves {
				hdr := make([]byte, 16+16)
				if _, err := f.ReadAt(hdr, int64(id*ps)); err != nil {
					t.Fatal(err)
				}
				le := binary.LittleEndian
				count, pos, ksize := le.Uint16(hdr[10:]), le.Uint32(hdr[20:]), le.Uint32(hdr[24:])
				if count < 2 || ksize != 8 { // a page of lane records
					continue
				}
				writeAt(t, path, int64(id*ps)+16+int64(pos), bytes.Repeat([]byte{0xff}, 8))
				return
			}
			t.Fatal("no leaf page of lane records")
		}, "out of order"},
		{"MetaHeader", Options{}, func(t *testing.T, path string) {
			writeAt(t, path, 0, []byte{0xde, 0xad})
		}, "meta page 0"},
		{"KeyStoreMissing", Options{Key: testKey()}, func(t *testing.T, path string) {
			if err := os.Remove(keyStorePath(path)); err != nil {
				t.Fatal(err)
			}
		}, "key store"},
		{"KeyStoreGarbage", Options{Key: testKey()}, func(t *testing.T, path string) {
			b, err := os.ReadFile(keyStorePath(path))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(keyStorePath(path), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "spool.db")
			makeSpool(t, path, 300, tt.opt)
			tt.damage(t, path)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			origKeys, _ := os.ReadFile(keyStorePath(path))

			// NoRecover reports and leaves the file alone.
			_, err = Open(path, Options{NoRecover: true, Key: tt.opt.Key})
			if !errors.Is(err, ErrCorruptFile) {
				t.Fatalf("Open with NoRecover = %v, want ErrCorruptFile", err)
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
				t.Fatal("Open with NoRecover changed the file")
			}

			s, err := Open(path, tt.opt)
			if err != nil {
				t.Fatalf("Open of a damaged spool: %v", err)
			}
			defer s.Close()
			st := s.Stats()
			if st.MovedAside == "" || !strings.Contains(st.MovedAsideReason, tt.reason) {
				t.Fatalf("MovedAside %q reason %q, want a reason with %q", st.MovedAside, st.MovedAsideReason, tt.reason)
			}
			if !strings.HasPrefix(filepath.Base(st.MovedAside), "spool.db.corrupt-") {
				t.Fatalf("moved to %s", st.MovedAside)
			}
			t.Logf("moved aside to %s: %s", filepath.Base(st.MovedAside), st.MovedAsideReason)
			aside, err := os.ReadFile(st.MovedAside)
			if err != nil || !bytes.Equal(aside, orig) {
				t.Fatalf("moved-aside file differs from the damaged file (%v)", err)
			}
			if origKeys != nil {
				keys, err := os.ReadFile(keyStorePath(st.MovedAside))
				if err != nil || !bytes.Equal(keys, origKeys) {
					t.Fatalf("key store not moved aside with its spool intact (%v)", err)
				}
			}
			// A fresh spool that works.
			if st.Records != 0 || st.Encrypted != (tt.opt.Key != nil) {
				t.Fatalf("fresh spool Stats = %+v", st)
			}
			put(t, s, "after", LaneRead)
			if r, err := s.Get("after"); err != nil || string(r.Payload) != "payload-after" {
				t.Fatalf("Get on the fresh spool = %+v, %v", r, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(path, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.MovedAside != "" || st.Records != 1 {
				t.Fatalf("reopened fresh spool: %+v", st)
			}
		})
	}
}

// TestSpool_OpenCorruptTwice: a second damaged file in the same second
// does not overwrite the first one moved aside.
func TestSpool_OpenCorruptTwice(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "spool.db")
	var moved []string
	for i := range 2 {
		if err := os.WriteFile(path, []byte(fmt.Sprintf("garbage %d", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		moved = append(moved, s.Stats().MovedAside)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if moved[0] == moved[1] || moved[0] == "" {
		t.Fatalf("moved to %v", moved)
	}
	for i, m := range moved {
		if b, err := os.ReadFile(m); err != nil || string(b) != fmt.Sprintf("garbage %d", i) {
			t.Fatalf("%s = %q, %v", m, b, err)
		}
	}
	if !strings.HasSuffix(moved[0], ".corrupt-20261127T100000Z") {
		t.Fatalf("name %s, want the UTC time of the clock", moved[0])
	}
}

// TestSpool_CorruptValue: a record whose stored bytes no longer decode is
// set aside and counted; the others are still leased, the lease loop gets
// no error.
func TestSpool_CorruptValue(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("enc=%v", enc), func(t *testing.T) {
			clk := newFakeClock()
			opt := Options{Now: clk.Now, MaxAge: time.Hour}
			if enc {
				opt.Key = testKey()
			}
			path := filepath.Join(t.TempDir(), "spool.db")
			makeSpool(t, path, 6, opt)
			// rec-0001 (read lane): break the format byte, or for an
			// encrypted spool a ciphertext byte. rec-0002 (alert lane):
			// move its value into the read lane.
			rawUpdate(t, path, func(tx *bbolt.Tx) error {
				reads, alerts := tx.Bucket(laneBuckets[LaneRead]), tx.Bucket(laneBuckets[LaneAlert])
				k, v := reads.Cursor().First() // rec-0001
				v = bytes.Clone(v)
				if enc {
					v[len(v)-20] ^= 1
				} else {
					v[0] = 0x7f
				}
				if err := reads.Put(k, v); err != nil {
					return err
				}
				ak, av := alerts.Cursor().Last() // rec-0004
				av = bytes.Clone(av)
				if err := alerts.Delete(ak); err != nil {
					return err
				}
				return reads.Put([]byte{0xff, 0, 0, 0, 0, 0, 0, 0}, av)
			})
			s, err := Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := s.Lease(100, time.Minute)
			if err != nil {
				t.Fatalf("Lease with a damaged record: %v", err)
			}
			// With encryption the alert value moved into the read lane
			// fails to open; without, nothing binds a value to its lane.
			want := []string{"rec-0000", "rec-0002", "rec-0003", "rec-0005"}
			if !enc {
				want = append(want, "rec-0004")
			}
			if !equal(ids(got), want) {
				t.Fatalf("Lease = %v, want %v", ids(got), want)
			}
			st := s.Stats()
			wantAside := map[bool]int{false: 1, true: 2}[enc]
			if st.SetAside != wantAside || st.Records != len(want) {
				t.Fatalf("Stats = %+v, want %d set aside", st, wantAside)
			}
			// Set-aside records leave with retention.
			clk.Advance(2 * time.Hour)
			if _, err := s.Expire(); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.SetAside != 0 || st.Records != 0 || st.Bytes != 0 {
				t.Fatalf("after retention: %+v", st)
			}
		})
	}
}

// rawUpdate edits a closed spool file with bbolt directly, as damage or
// an attacker would, behind the spool's back.
func rawUpdate(tb testing.TB, path string, fn func(*bbolt.Tx) error) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
}
