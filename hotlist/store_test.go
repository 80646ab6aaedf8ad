package hotlist

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStore_Apply(t *testing.T) {
	priv, ring := newKey(t)
	other, _ := newKey(t)
	dir := t.TempDir()
	var logBuf bytes.Buffer
	s, err := Open(testConfig(dir), ring, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Match("ABC123", t0); ok || s.List() != nil {
		t.Fatal("empty store matched")
	}
	good := signDoc(t, priv, doc(10, Entry{Plate: "ABC 123", Reason: "stolen"}, Entry{Plate: "XYZ-9", List: "amber"}))
	u, err := s.Apply(good)
	if err != nil {
		t.Fatal(err)
	}
	if u.Seq != 10 || u.Entries != 2 || u.Unchanged || u.PrevSeq != 0 || u.KeyID == "" || len(u.SHA256) != 64 {
		t.Fatalf("update = %+v", u)
	}
	inUse := func(t *testing.T) {
		t.Helper()
		e, ok := s.Match("abc123", t0)
		if !ok || e.Reason != "stolen" || e.List != "test" {
			t.Fatalf("list in use lost: Match = %+v, %v", e, ok)
		}
	}
	inUse(t)

	huge := append([]byte(`{"v":1,"kind":"hotlist","payload":"`), bytes.Repeat([]byte("A"), DefaultMaxBytes)...)
	bad := []struct {
		name string
		msg  []byte
		want error
		log  string
	}{
		{"TooLarge", huge, ErrTooLarge, "over the limit"},
		{"Garbage", []byte("\x00\xff not json"), ErrMalformed, "decode envelope"},
		{"SigCorrupt", []byte(strings.Replace(string(good), `"sig":"`, `"sig":"`+"x", 1)), ErrBadSignature, "sig is not base64"},
		{"Unsigned", []byte(regexp.MustCompile(`"sig":"[^"]*"`).ReplaceAllString(string(good), `"sig":""`)), ErrBadSignature, "unsigned"},
		{"UnknownKey", signDoc(t, other, doc(11)), ErrUnknownKey, "key_id"},
		{"Replay", signDoc(t, priv, doc(9, Entry{Plate: "OLD1"})), ErrReplay, "seq 9, in use 10"},
		{"SameSeqOtherContent", signDoc(t, priv, doc(10, Entry{Plate: "OTHER1"})), ErrReplay, "seq 10"},
		{"Future", signDoc(t, priv, func() *Document { d := doc(11); d.Issued = t0.Add(time.Hour); return d }()), ErrFuture, "issued 2026-11-27T11:00:00Z"},
		{"Duplicate", signDoc(t, priv, doc(11, Entry{Plate: "AB 12"}, Entry{Plate: "ab-12"})), ErrInvalidEntry, "duplicates entries[0]"},
		{"EmptyPlate", signDoc(t, priv, doc(11, Entry{Plate: "--"})), ErrInvalidEntry, "normalises to 0"},
		{"BadChar", signDoc(t, priv, doc(11, Entry{Plate: "AB\x0012"})), ErrInvalidEntry, "entries[0]"},
		{"LongPlate", signDoc(t, priv, doc(11, Entry{Plate: "ABCDEFGHIJKLM"})), ErrInvalidEntry, "13 characters"},
		{"NoName", signDoc(t, priv, func() *Document { d := doc(11); d.Name = ""; return d }()), ErrMalformed, "name"},
		{"NoSeq", signDoc(t, priv, doc(0)), ErrMalformed, "seq"},
		{"NoEntries", signDoc(t, priv, &Document{V: 1, Name: "x", Seq: 11, Issued: t0}), ErrMalformed, "entries"},
		{"Version", signDoc(t, priv, func() *Document { d := doc(11); d.V = 2; return d }()), ErrMalformed, "version 2"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			logBuf.Reset()
			_, err := s.Apply(c.msg)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.log) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.log)
			}
			if !strings.Contains(logBuf.String(), "hotlist rejected") || !strings.Contains(logBuf.String(), c.log) {
				t.Fatalf("log does not give the reason: %s", logBuf.String())
			}
			inUse(t)
		})
	}

	t.Run("RetainedAgain", func(t *testing.T) {
		u, err := s.Apply(good)
		if err != nil || !u.Unchanged || u.Seq != 10 {
			t.Fatalf("Apply(same) = %+v, %v; want unchanged", u, err)
		}
	})
	t.Run("Newer", func(t *testing.T) {
		u, err := s.Apply(signDoc(t, priv, doc(11, Entry{Plate: "NEW 1"})))
		if err != nil || u.PrevSeq != 10 || u.Seq != 11 {
			t.Fatalf("Apply(newer) = %+v, %v", u, err)
		}
		if _, ok := s.Match("ABC123", t0); ok {
			t.Fatal("old entry still matches after a replacement")
		}
		if _, ok := s.Match("NEW1", t0); !ok {
			t.Fatal("new entry does not match")
		}
	})
	t.Run("PersistedAcrossOpen", func(t *testing.T) {
		s2, err := Open(testConfig(dir), ring, nil)
		if err != nil {
			t.Fatal(err)
		}
		if l := s2.List(); l == nil || l.Seq != 11 {
			t.Fatalf("reopened list = %+v, want seq 11", l)
		}
		if _, err := s2.Apply(signDoc(t, priv, doc(10))); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay after reopen: err = %v", err)
		}
		// Leftover temp files would show a non-atomic write.
		m, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
		if len(m) != 0 {
			t.Fatalf("temp files left: %v", m)
		}
	})
}

func TestStore_OpenTamperedFile(t *testing.T) {
	priv, ring := newKey(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	s, _ := Open(cfg, ring, nil)
	if _, err := s.Apply(signDoc(t, priv, doc(1, Entry{Plate: "ABC123"}))); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg.Path)
	// Change one payload character: the signature no longer verifies.
	i := bytes.Index(b, []byte(`"payload":"`)) + len(`"payload":"`) + 10
	b[i] ^= 1
	if err := os.WriteFile(cfg.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	s, err := Open(cfg, ring, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if s.List() != nil {
		t.Fatal("tampered persisted list loaded")
	}
	if !strings.Contains(logBuf.String(), "persisted hotlist rejected") {
		t.Fatalf("no log line: %s", logBuf.String())
	}
	if m, _ := filepath.Glob(cfg.Path + ".rejected-*"); len(m) != 1 {
		t.Fatalf("tampered file not moved aside: %v", m)
	}
	// A fresh list is accepted (seq 1 again: nothing is in use).
	if _, err := s.Apply(signDoc(t, priv, doc(1, Entry{Plate: "ABC123"}))); err != nil {
		t.Fatal(err)
	}
}

func TestStore_PersistFailureKeepsList(t *testing.T) {
	priv, ring := newKey(t)
	cfg := testConfig("")
	cfg.Path = filepath.Join(t.TempDir(), "missing-dir", "hotlist.json")
	s, err := Open(cfg, ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(signDoc(t, priv, doc(1, Entry{Plate: "ABC123"})))
	if !errors.Is(err, ErrPersist) {
		t.Fatalf("err = %v, want ErrPersist", err)
	}
	if _, ok := s.Match("ABC123", t0); !ok {
		t.Fatal("list not in use after a persist failure")
	}
}

func TestConfig_Validate(t *testing.T) {
	for name, f := range map[string]func(*Config){
		"MaxBytes":    func(c *Config) { c.MaxBytes = 0 },
		"ClockSkew":   func(c *Config) { c.ClockSkew = -1 },
		"MaxDistance": func(c *Config) { c.MaxDistance = 2.5 },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			f(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(DefaultConfig(), Keyring{}, nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("empty keyring: err = %v", err)
	}
}
