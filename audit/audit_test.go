package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// writeLog makes a log of n entries and returns its path.
func writeLog(t *testing.T, n int, opt Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	if opt.Now == nil {
		opt.Now = clock()
	}
	l, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(KindHotlist, "mqtt", map[string]any{"seq": i + 1, "entries": 100 * i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")
}

func writeLines(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(ls, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLog_AppendReopenVerify(t *testing.T) {
	path := writeLog(t, 5, Options{})
	l, err := Open(path, Options{Now: clock()})
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 5 {
		t.Fatalf("head after reopen = %d, want 5", seq)
	}
	if l.Recovered() != nil {
		t.Fatal("clean log reported a recovery")
	}
	e, err := l.Append(KindDiagAccess, "http:127.0.0.1:4242", map[string]string{"path": "/reads"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 6 || len(e.Hash) != 64 || e.Prev == e.Hash {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := l.Append(KindConfig, "mqtt", nil); err != nil {
		t.Fatal(err)
	}
	_, head := l.Head()
	l.Close()
	if _, err := l.Append(KindConfig, "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	rep, err := Verify(path)
	if err != nil || !rep.OK() || rep.Entries != 7 || rep.LastSeq != 7 || rep.LastHash != head {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if ls := lines(t, path); !strings.HasPrefix(ls[0], `{"seq":1,"time":"2026-11-27T10:00:01Z","kind":"hotlist","actor":"mqtt","detail":{"entries":0,"seq":1},"prev":"0000`) {
		t.Fatalf("first line = %s", ls[0])
	}
}

func TestVerify_Tampering(t *testing.T) {
	cases := []struct {
		name   string
		change func(ls []string) []string
		line   int
		text   string
	}{
		{"EditDetail", func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `"entries":300`, `"entries":301`, 1)
			return ls
		}, 4, "hash mismatch"},
		{"EditKind", func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `"kind":"hotlist"`, `"kind":"hotlisT"`, 1)
			return ls
		}, 4, "hash mismatch"},
		{"EditHash", func(ls []string) []string {
			b := []byte(ls[3])
			b[len(b)-5] ^= 1 // a hex digit of the hash becomes another
			ls[3] = string(b)
			return ls
		}, 4, ""},
		{"BreakJSON", func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `"actor"`, `"act"or"`, 1)
			return ls
		}, 4, "not an audit entry"},
		{"DeleteLine", func(ls []string) []string {
			return append(ls[:3:3], ls[4:]...)
		}, 4, "entry missing"},
		{"DeleteFirst", func(ls []string) []string { return ls[1:] }, 1, "seq 2, want 1"},
		{"Reorder", func(ls []string) []string {
			ls[3], ls[4] = ls[4], ls[3]
			return ls
		}, 4, "out of order"},
		{"Duplicate", func(ls []string) []string {
			return append(ls[:5:5], ls[4:]...)
		}, 6, "repeated"},
		{"InsertForeign", func(ls []string) []string {
			return append(ls[:2:2], append([]string{"{\"hello\":1}\n"}, ls[2:]...)...)
		}, 3, "not an audit entry"},
		{"BlankLine", func(ls []string) []string {
			return append(ls[:2:2], append([]string{"\n"}, ls[2:]...)...)
		}, 3, "not an audit entry"},
		{"ChainFromOtherLog", func(ls []string) []string {
			other := lines(t, writeLog(t, 8, Options{Now: func() time.Time { return time.Unix(0, 0) }}))
			ls[5] = other[5]
			return ls
		}, 6, "prev hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeLog(t, 8, Options{})
			writeLines(t, path, c.change(lines(t, path)))
			rep, err := Verify(path)
			if !errors.Is(err, ErrTampered) || rep.Line != c.line || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", c.line)) || !strings.Contains(rep.Problem, c.text) {
				t.Fatalf("Verify = %+v, %v; want ErrTampered at line %d about %q", rep, err, c.line, c.text)
			}
			if rep.Entries != c.line-1 {
				t.Fatalf("entries before the problem = %d, want %d", rep.Entries, c.line-1)
			}
			// Open refuses to continue a log whose tail is broken.
			if _, err := Open(path, Options{}); !errors.Is(err, ErrTampered) {
				t.Fatalf("Open = %v, want ErrTampered", err)
			}
		})
	}
}

// TestLog_PowerCut cuts the last entry at every byte and checks that Verify
// reports it, Open records it, and the chain then verifies with the loss
// recorded.
func TestLog_PowerCut(t *testing.T) {
	path := writeLog(t, 4, Options{})
	full, _ := os.ReadFile(path)
	ls := lines(t, path)
	lastStart := len(full) - len(ls[3])
	for cut := lastStart; cut < len(full); cut++ {
		p := filepath.Join(t.TempDir(), "cut.log")
		if err := os.WriteFile(p, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(p)
		switch {
		case cut == lastStart: // the cut fell between entries: nothing lost
			if err != nil || rep.Entries != 3 {
				t.Fatalf("cut %d: Verify = %+v, %v", cut, rep, err)
			}
		case cut == len(full)-1: // only the newline is missing
			if err != nil || !rep.MissingNewline || rep.Entries != 4 {
				t.Fatalf("cut %d: Verify = %+v, %v; want 4 entries, missing newline", cut, rep, err)
			}
		default:
			if !errors.Is(err, ErrTruncated) || !rep.TruncatedTail || rep.Line != 4 || !strings.Contains(err.Error(), "line 4:") {
				t.Fatalf("cut %d: Verify = %+v, %v; want ErrTruncated at line 4", cut, rep, err)
			}
		}
		l, err := Open(p, Options{Now: clock()})
		if err != nil {
			t.Fatalf("cut %d: Open: %v", cut, err)
		}
		recovered := l.Recovered() != nil
		if want := cut != lastStart && cut != len(full)-1; recovered != want {
			t.Fatalf("cut %d: recovered = %v, want %v", cut, recovered, want)
		}
		if _, err := l.Append(KindConfig, "after", nil); err != nil {
			t.Fatal(err)
		}
		l.Close()
		rep, err = Verify(p)
		if err != nil {
			t.Fatalf("cut %d: Verify after recovery: %v", cut, err)
		}
		if recovered && rep.Recoveries != 1 {
			t.Fatalf("cut %d: Recoveries = %d, want 1", cut, rep.Recoveries)
		}
	}
}

func TestLog_PowerCutDuringRecovery(t *testing.T) {
	path := writeLog(t, 3, Options{})
	full, _ := os.ReadFile(path)
	// Entry 3 cut short, its newline written by a recovering Open, then the
	// recovery entry cut short too.
	cut := append(append([]byte{}, full[:len(full)-20]...), '\n')
	cut = append(cut, []byte(`{"seq":3,"time":"2026-11-27T10:00:09Z","kind":"recov`)...)
	if err := os.WriteFile(path, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Verify = %v, want ErrTruncated", err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(KindHotlist, "x", nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep, err := Verify(path)
	if err != nil || rep.Recoveries != 1 || rep.LastSeq != 4 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestLog_RecoveryEntryMustMatch(t *testing.T) {
	path := writeLog(t, 3, Options{})
	full, _ := os.ReadFile(path)
	if err := os.WriteFile(path, full[:len(full)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Swap the recorded partial line for other bytes of the same length.
	ls := lines(t, path)
	ls[2] = strings.Replace(ls[2], `"kind":"hotlist"`, `"kind":"HOTLIST"`, 1)
	writeLines(t, path, ls)
	rep, err := Verify(path)
	if !errors.Is(err, ErrTampered) || rep.Line != 3 || !strings.Contains(rep.Problem, "does not record") {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestLog_HMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	path := writeLog(t, 4, Options{Key: key})
	if rep, err := VerifyKey(path, key); err != nil || rep.Entries != 4 {
		t.Fatalf("VerifyKey = %+v, %v", rep, err)
	}
	for name, k := range map[string][]byte{"NoKey": nil, "WrongKey": []byte("other")} {
		if _, err := VerifyKey(path, k); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "line 1:") {
			t.Fatalf("%s: err = %v, want ErrTampered at line 1", name, err)
		}
	}
	if _, err := Open(path, Options{Key: []byte("other")}); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open with the wrong key: %v", err)
	}
}

// TestLog_LongLog checks that Open continues a log longer than the tail it
// reads, and that tampering inside that tail is still caught at Open.
func TestLog_LongLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 20<<10)
	for i := range 80 { // about 1.6 MiB
		if _, err := l.Append(KindDiagAccess, "http", map[string]any{"i": i, "pad": pad}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if l, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 80 {
		t.Fatalf("head = %d, want 80", seq)
	}
	if _, err := l.Append(KindConfig, "x", nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := Verify(path); err != nil || rep.Entries != 81 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	ls := lines(t, path)
	ls[78] = strings.Replace(ls[78], `"i":78`, `"i":77`, 1)
	writeLines(t, path, ls)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open of a tampered tail = %v", err)
	}
}

func TestLog_ConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				if _, err := l.Append(KindDiagAccess, fmt.Sprint("g", g), map[string]int{"i": i}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	if rep, err := Verify(path); err != nil || rep.Entries != 40 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestLog_AppendLimits(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "a.log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(KindConfig, "x", strings.Repeat("a", MaxDetailBytes)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := l.Append("", "x", nil); err == nil {
		t.Fatal("empty kind accepted")
	}
	if _, err := l.Append(KindConfig, "x", func() {}); err == nil {
		t.Fatal("unencodable detail accepted")
	}
	// Characters JSON escapes must not break the chain.
	if _, err := l.Append(KindConfig, "<a&b>\n\"q\"", map[string]string{"v": "\u2028\x00é"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(l.path); err != nil || rep.Entries != 1 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if !bytes.Contains([]byte(lines(t, l.path)[0]), []byte(`"actor":"\u003ca\u0026b\u003e\n\"q\""`)) {
		t.Fatalf("line = %s", lines(t, l.path)[0])
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
