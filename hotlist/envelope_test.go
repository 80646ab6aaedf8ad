package hotlist

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeys_RoundTrip(t *testing.T) {
	pubPEM, privPEM, id, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := ParsePublicKeys(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ring[id]; !ok || len(ring) != 1 {
		t.Fatalf("keyring %v, want only %s", ring.IDs(), id)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(priv.Public().(ed25519.PublicKey)) != id {
		t.Fatal("private key does not match the public key's ID")
	}

	// A second key as a base64 line, with a comment, beside the PEM block.
	_, ring2 := newKey(t)
	var raw ed25519.PublicKey
	for _, k := range ring2 {
		raw = k
	}
	mixed := string(pubPEM) + "\n# rotation key\n" + base64.StdEncoding.EncodeToString(raw) + "\n"
	ring, err = ParsePublicKeys([]byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	if len(ring) != 2 {
		t.Fatalf("mixed file gave %d keys, want 2", len(ring))
	}
}

func TestKeys_Invalid(t *testing.T) {
	for name, in := range map[string]string{
		"Empty":       "# nothing\n\n",
		"ShortBase64": base64.StdEncoding.EncodeToString([]byte("short")),
		"NotBase64":   "not a key at all",
		"WrongPEM":    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"BrokenPEM":   "-----BEGIN PUBLIC KEY-----\n!!!\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePublicKeys([]byte(in)); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
		})
	}
	if _, err := ParsePrivateKey([]byte("nope")); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("private: err = %v, want ErrInvalidKey", err)
	}
}

// TestKeys_OpenSSL checks that keys made by openssl, the tool an operator
// will reach for, load. Without openssl it is skipped, except under CI=true.
func TestKeys_OpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not installed (CI=true: install the openssl package)")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", priv).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v: %s", err, out)
	}
	if out, err := exec.Command("openssl", "pkey", "-in", priv, "-pubout", "-out", pub).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey: %v: %s", err, out)
	}
	k, err := ReadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := ReadPublicKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Sign(KindHotlist, []byte(`{}`), k)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(msg, KindHotlist, ring, 0); err != nil {
		t.Fatalf("verify with openssl keys: %v", err)
	}
}

func TestVerify(t *testing.T) {
	priv, ring := newKey(t)
	other, _ := newKey(t)
	payload := []byte(`{"hello":"world"}`)
	good, err := Sign(KindHotlist, payload, priv)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(e *Envelope)) []byte {
		var e Envelope
		if err := json.Unmarshal(good, &e); err != nil {
			t.Fatal(err)
		}
		f(&e)
		b, _ := json.Marshal(e)
		return b
	}
	byOther, _ := Sign(KindHotlist, payload, other)
	otherAsOurs := edit(func(e *Envelope) {
		var o Envelope
		_ = json.Unmarshal(byOther, &o)
		e.Sig = o.Sig
	})
	flipped := edit(func(e *Envelope) {
		p := []byte(`{"hello":"World"}`)
		e.Payload = base64.StdEncoding.EncodeToString(p)
	})
	asConfig, _ := Sign(KindConfig, payload, priv)
	asConfigRelabelled := func() []byte {
		var e Envelope
		_ = json.Unmarshal(asConfig, &e)
		e.Kind = KindHotlist
		b, _ := json.Marshal(e)
		return b
	}()

	cases := []struct {
		name string
		msg  []byte
		max  int
		want error
		text string
	}{
		{"OK", good, 0, nil, ""},
		{"TooLarge", good, len(good) - 1, ErrTooLarge, "over the limit"},
		{"NotJSON", []byte("{nope"), 0, ErrMalformed, "decode envelope"},
		{"Trailing", append(append([]byte{}, good...), []byte(` {}`)...), 0, ErrMalformed, "trailing"},
		{"UnknownField", []byte(strings.Replace(string(good), `{"v":1,`, `{"v":1,"x":2,`, 1)), 0, ErrMalformed, "unknown field"},
		{"Version", edit(func(e *Envelope) { e.V = 2 }), 0, ErrMalformed, "version 2"},
		{"WrongKind", asConfig, 0, ErrMalformed, `kind "config"`},
		{"KindRelabelled", asConfigRelabelled, 0, ErrBadSignature, "signature"},
		{"Unsigned", edit(func(e *Envelope) { e.Sig = "" }), 0, ErrBadSignature, "unsigned"},
		{"UnknownKey", byOther, 0, ErrUnknownKey, "not in the keyring"},
		{"OtherKeysSig", otherAsOurs, 0, ErrBadSignature, "signature"},
		{"PayloadEdited", flipped, 0, ErrBadSignature, "signature"},
		{"SigNotBase64", edit(func(e *Envelope) { e.Sig = "%%%" }), 0, ErrBadSignature, "base64"},
		{"PayloadNotBase64", edit(func(e *Envelope) { e.Payload = "%%%" }), 0, ErrMalformed, "base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, id, err := Verify(c.msg, KindHotlist, ring, c.max)
			if c.want == nil {
				if err != nil || string(p) != string(payload) || ring[id] == nil {
					t.Fatalf("Verify = %q, %q, %v", p, id, err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.text)
			}
		})
	}
}

func TestSignHotlist_RefusesInvalid(t *testing.T) {
	priv, _ := newKey(t)
	if _, err := SignHotlist([]byte(`{"v":1,"name":"x","seq":1,"issued":"2026-11-27T10:00:00Z","entries":[{"plate":"A B"},{"plate":"ab"}]}`), priv); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("err = %v, want ErrInvalidEntry for a duplicate", err)
	}
	if _, err := SignConfig([]byte(`{"v":1,"seq":1,"issued":"2026-11-27T10:00:00Z","patch":[1]}`), priv); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed for a non-object patch", err)
	}
}

func TestInspect(t *testing.T) {
	priv, ring := newKey(t)
	msg, err := SignDocument(doc(3, Entry{Plate: "ABC123"}), priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "l.json"), msg, 0o600); err != nil {
		t.Fatal(err)
	}
	kind, id, payload, err := Inspect(msg, ring, DefaultMaxBytes)
	if err != nil || kind != KindHotlist || ring[id] == nil || !strings.Contains(string(payload), "ABC123") {
		t.Fatalf("Inspect = %q %q %q %v", kind, id, payload, err)
	}
	if _, _, _, err := Inspect([]byte(`{"kind":"other"}`), ring, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}
