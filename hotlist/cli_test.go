package hotlist

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignVerifyFile(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "hotlist.key"), filepath.Join(dir, "hotlist.pub")
	id, err := WriteKeyPair(priv, pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKeyPair(priv, pub); err == nil {
		t.Fatal("WriteKeyPair overwrote an existing key")
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	doc := filepath.Join(dir, "list.json")
	if err := os.WriteFile(doc, []byte(`{"v":1,"name":"county","seq":3,"issued":"2026-11-27T10:00:00Z","entries":[{"plate":"YG9 X2G","reason":"stolen"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	msg, err := SignFile(KindHotlist, doc, priv)
	if err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "list.signed")
	if err := os.WriteFile(env, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	kind, kid, payload, err := VerifyFile(env, pub)
	if err != nil || kind != KindHotlist || kid != id || !strings.Contains(string(payload), "YG9 X2G") {
		t.Fatalf("VerifyFile = %q %q %q %v", kind, kid, payload, err)
	}
	// Signed as a config patch, the hotlist document is refused.
	if _, err := SignFile(KindConfig, doc, priv); !errors.Is(err, ErrMalformed) {
		t.Fatalf("SignFile(config, hotlist doc) = %v", err)
	}
	if _, err := SignFile("other", doc, priv); !errors.Is(err, ErrMalformed) {
		t.Fatalf("SignFile(other) = %v", err)
	}
	// Verified against another key, it fails.
	otherPriv, otherPub := filepath.Join(dir, "o.key"), filepath.Join(dir, "o.pub")
	if _, err := WriteKeyPair(otherPriv, otherPub); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := VerifyFile(env, otherPub); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("VerifyFile(other key) = %v", err)
	}
}
