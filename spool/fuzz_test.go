package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzKey is a fixed period key so fuzzed values reach the decrypt path.
func fuzzKey(tb testing.TB) *periodKey {
	a, err := newAEAD(bytes.Repeat([]byte{0x42}, KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return &periodKey{start: 0, end: int64(time.Hour), aead: a}
}

// FuzzDecodeValue feeds arbitrary bytes to the on-disk value and index
// decoders: they return a record or an error, never panic, and a value that
// decodes re-encodes to the same bytes.
func FuzzDecodeValue(f *testing.F) {
	k := fuzzKey(f)
	created := time.Unix(0, 1234567890)
	f.Add(encodePlain(Record{ID: "0192f0c8-7d1e-7000-8000-000000000001", Created: created, Payload: []byte(`{"v":1}`)}), byte(1))
	f.Add(encodeEncrypted(k, Record{ID: "a", Lane: LaneAlert, Created: created, Payload: []byte("plate")}), byte(0))
	f.Add(encodeEncrypted(k, Record{ID: "b", Lane: LaneRead, Created: created}), byte(1))
	f.Add([]byte{formatEncrypted, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, byte(0))
	f.Add([]byte{}, byte(7))
	f.Fuzz(func(t *testing.T, v []byte, lane byte) {
		l := Lane(lane % numLanes)
		h, herr := decodeHeader(v)
		r, err := decodeValue(v, l, func(int64) *periodKey { return k })
		if herr != nil && err == nil {
			t.Fatalf("header error %v but value decoded", herr)
		}
		if err == nil {
			if r.ID != string(h.id) || !r.Created.Equal(h.created) || r.Lane != l {
				t.Fatalf("record %+v disagrees with header %+v", r, h)
			}
			if h.format == formatPlain {
				// Re-encoding may differ (a non-minimal length varint
				// decodes), but must decode to the same record.
				r2, err := decodeValue(encodePlain(r), l, nil)
				if err != nil || r2.ID != r.ID || !r2.Created.Equal(r.Created) || !bytes.Equal(r2.Payload, r.Payload) {
					t.Fatalf("re-encoded %+v decodes to %+v, %v", r, r2, err)
				}
			}
		}
		_, _, _ = decodeIndex(v)
	})
}

// FuzzParseKeyStore: the key store parser never panics or over-allocates,
// and what it accepts marshals back to the same bytes.
func FuzzParseKeyStore(f *testing.F) {
	good := keyStoreFile{check: make([]byte, keyCheckLen), entries: []keyEntry{
		{start: 0, end: int64(time.Hour), wrapped: make([]byte, keyEntryLen-16)},
		{start: int64(time.Hour), end: 2 * int64(time.Hour), wrapped: bytes.Repeat([]byte{1}, keyEntryLen-16)},
	}}.marshal()
	f.Add(good)
	f.Add(keyStoreFile{check: make([]byte, keyCheckLen)}.marshal())
	f.Add([]byte(keyStoreMagic))
	f.Add(good[:len(good)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := parseKeyStore(b)
		if err != nil {
			return
		}
		if !bytes.Equal(ks.marshal(), b) {
			t.Fatal("accepted key store does not marshal back to its bytes")
		}
	})
}

// FuzzOpen opens arbitrary bytes as a spool file: Open either returns a
// working spool (moving a damaged file aside) or an error; it never panics
// or faults. Seeds: a real spool, and copies with bytes changed.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	s, err := Open(path, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		put(f, s, id, LaneRead)
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, off := range []int{16, 4096 + 16, 2*4096 + 8, 3*4096 + 20, len(seed) - 100} {
		b := bytes.Clone(seed)
		b[off] ^= 0xff
		f.Add(b)
	}
	f.Add(seed[:8192])
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "spool.db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, Options{ExpireEvery: -1})
		if err != nil {
			return
		}
		defer s.Close()
		if _, err := s.Lease(10, time.Minute); err != nil {
			t.Fatalf("Lease on an opened spool: %v", err)
		}
		if err := s.Put(t.Context(), Record{ID: "fuzz", Payload: []byte("x")}); err != nil {
			t.Fatalf("Put on an opened spool: %v", err)
		}
	})
}
