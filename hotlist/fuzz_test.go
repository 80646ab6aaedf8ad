package hotlist

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// fuzzKey is fixed so that corpus entries signed with it stay valid.
var fuzzKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// FuzzParse feeds network bytes to every parser of this package: the
// envelope verifier (with the raw bytes and with them signed, so the
// document parsers see arbitrary payloads past the signature), the hotlist
// and config documents, and Store.Apply. Nothing may panic, a rejection
// must wrap a sentinel, and an accepted hotlist must match its own plates.
func FuzzParse(f *testing.F) {
	pub := fuzzKey.Public().(ed25519.PublicKey)
	ring := Keyring{KeyID(pub): pub}
	for _, s := range []string{
		`{"v":1,"name":"n","seq":1,"issued":"2026-11-27T10:00:00Z","entries":[{"plate":"ABC 123","reason":"r","list":"l","expires":"2027-01-01T00:00:00Z"}]}`,
		`{"v":1,"name":"n","seq":2,"issued":"2026-11-27T10:00:00Z","entries":[]}`,
		`{"v":1,"seq":3,"issued":"2026-11-27T10:00:00Z","devices":["d"],"patch":{"a":1}}`,
		`{"v":1,"kind":"hotlist","key_id":"x","payload":"e30=","sig":""}`,
		`{"v":1,"name":"n","seq":1,"issued":"2026-11-27T10:00:00Z","entries":[{"plate":"A"},{"plate":"a"}]}`,
		`null`, `[]`, `{"v":1e400}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	sentinels := []error{ErrTooLarge, ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrReplay, ErrFuture, ErrInvalidEntry, ErrWrongDevice}
	wraps := func(err error) bool {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := Verify(b, KindHotlist, ring, 1<<20); err != nil && !wraps(err) {
			t.Fatalf("Verify: unwrapped error %v", err)
		}
		if _, err := ParseConfigDocument(b, "d"); err != nil && !wraps(err) {
			t.Fatalf("ParseConfigDocument: unwrapped error %v", err)
		}
		signed, err := Sign(KindHotlist, b, fuzzKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.MaxDistance = 1
		cfg.Now = func() time.Time { return now }
		s, err := Open(cfg, ring, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(b); err != nil && !wraps(err) {
			t.Fatalf("Apply(raw): unwrapped error %v", err)
		}
		_, err = s.Apply(signed)
		if err != nil {
			if !wraps(err) {
				t.Fatalf("Apply(signed): unwrapped error %v", err)
			}
			return
		}
		for _, e := range s.List().Entries() {
			if !e.Expires.IsZero() && !now.Before(e.Expires) {
				continue
			}
			if _, ok := s.Match(e.Plate, now); !ok {
				t.Fatalf("accepted entry %q does not match itself", e.Plate)
			}
		}
	})
}
