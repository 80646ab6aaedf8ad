package audit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzVerify runs the verifier over arbitrary bytes, then Open on those it
// does not call tampered: the verifier must not panic and must return one
// of its sentinels; when Open accepts the bytes, the log it continues must
// verify after an append.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.log")
	l, err := Open(path, Options{Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if _, err := l.Append(KindHotlist, "seed", map[string]int{"i": i}); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(append(append([]byte{}, seed...), "{\"seq\":4}\n"...))
	f.Add([]byte("\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyReader(bytesReader(b), nil)
		if err != nil && !errors.Is(err, ErrTampered) && !errors.Is(err, ErrTruncated) {
			t.Fatalf("unexpected error %v", err)
		}
		if (err == nil) != rep.OK() {
			t.Fatalf("err %v but report %+v", err, rep)
		}
		if errors.Is(err, ErrTampered) {
			// Open scans with the same code and would refuse it too; skip
			// the file work so the fuzzer spends its time on the parser.
			return
		}
		// One file per worker process, rewritten each time: t.TempDir per
		// input slows the fuzzer down a lot.
		p := filepath.Join(dir, "f.log")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(p, Options{})
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer l.Close()
		if _, err := l.Append(KindConfig, "fuzz", nil); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(p); err != nil {
			t.Fatalf("Open accepted %q but after an append Verify = %+v, %v", b, rep, err)
		}
	})
}
