package hotlist

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func signConf(t *testing.T, priv []byte, body string) []byte {
	t.Helper()
	msg, err := Sign(KindConfig, []byte(body), priv)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestConfigStore(t *testing.T) {
	priv, ring := newKey(t)
	other, _ := newKey(t)
	path := filepath.Join(t.TempDir(), "remote-config.json")
	var logBuf bytes.Buffer
	cfg := RemoteConfig{Device: "unit-7", Path: path, Now: func() time.Time { return t0 }}
	s, err := OpenConfigStore(cfg, ring, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	good := signConf(t, priv, `{"v":1,"seq":5,"issued":"2026-11-27T09:00:00Z","devices":["unit-7","unit-8"],"patch":{"hotlist":{"max_distance":1}}}`)
	p, changed, err := s.Apply(good)
	if err != nil || !changed || p.Seq != 5 || string(p.Patch) != `{"hotlist":{"max_distance":1}}` {
		t.Fatalf("Apply = %+v, %v, %v", p, changed, err)
	}
	if _, changed, err := s.Apply(good); err != nil || changed {
		t.Fatalf("retained again: changed=%v err=%v", changed, err)
	}
	hotlistMsg := signDoc(t, priv, doc(6))
	for name, c := range map[string]struct {
		msg  []byte
		want error
	}{
		"Unsigned":    {[]byte(strings.Replace(string(good), `"sig":"`, `"sig":"A`, 1)), ErrBadSignature},
		"UnknownKey":  {signConf(t, other, `{"v":1,"seq":6,"issued":"2026-11-27T09:00:00Z","patch":{}}`), ErrUnknownKey},
		"Huge":        {bytes.Repeat([]byte(" "), DefaultConfigMaxBytes+1), ErrTooLarge},
		"Malformed":   {signConf(t, priv, `{"v":1,"seq":6,"issued":"2026-11-27T09:00:00Z","patch":"x"}`), ErrMalformed},
		"NoPatch":     {signConf(t, priv, `{"v":1,"seq":6,"issued":"2026-11-27T09:00:00Z"}`), ErrMalformed},
		"OtherDevice": {signConf(t, priv, `{"v":1,"seq":6,"issued":"2026-11-27T09:00:00Z","devices":["unit-9"],"patch":{}}`), ErrWrongDevice},
		"Replay":      {signConf(t, priv, `{"v":1,"seq":4,"issued":"2026-11-27T09:00:00Z","patch":{}}`), ErrReplay},
		"Future":      {signConf(t, priv, `{"v":1,"seq":6,"issued":"2026-11-28T09:00:00Z","patch":{}}`), ErrFuture},
		"HotlistKind": {hotlistMsg, ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			logBuf.Reset()
			if _, _, err := s.Apply(c.msg); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(logBuf.String(), "config patch rejected") {
				t.Fatalf("no logged reason: %s", logBuf.String())
			}
			if cur, ok := s.Current(); !ok || cur.Seq != 5 {
				t.Fatalf("current patch disturbed: %+v", cur)
			}
		})
	}
	s2, err := OpenConfigStore(cfg, ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur, ok := s2.Current(); !ok || cur.Seq != 5 || cur.SHA256 != p.SHA256 {
		t.Fatalf("persisted patch after reopen = %+v, %v", cur, ok)
	}
}
