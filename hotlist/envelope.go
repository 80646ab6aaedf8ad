package hotlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// EnvelopeVersion is the version of the signed envelope.
const EnvelopeVersion = 1

// Kinds of signed documents. The kind is part of the signed bytes, so a
// signed hotlist cannot be replayed as a config patch or the reverse.
const (
	KindHotlist = "hotlist"
	KindConfig  = "config"
)

// signContext prefixes every signed message (domain separation).
const signContext = "alpr-agent signed document v1\x00"

// Envelope is the wire form of every signed document:
//
//	{"v":1,"kind":"hotlist","key_id":"3f2a…","payload":"<base64>","sig":"<base64>"}
//
// Payload is the exact JSON document as signed (standard base64 with
// padding), so signature checking never depends on re-encoding JSON. Sig is
// the Ed25519 signature over signContext + kind + "\x00" + payload bytes.
// KeyID is KeyID(public key): it selects the key, the signature proves it.
type Envelope struct {
	V       int    `json:"v"`
	Kind    string `json:"kind"`
	KeyID   string `json:"key_id"`
	Payload string `json:"payload"`
	Sig     string `json:"sig"`
}

func signedMessage(kind string, payload []byte) []byte {
	m := make([]byte, 0, len(signContext)+len(kind)+1+len(payload))
	m = append(m, signContext...)
	m = append(m, kind...)
	m = append(m, 0)
	return append(m, payload...)
}

// KeyID returns the identifier of a public key: the first 8 bytes of the
// SHA-256 of the raw 32-byte key, in hex (16 characters).
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Keyring holds the public keys a device trusts, by KeyID. Several keys
// allow a rotation: the new key is provisioned before lists are signed
// with it.
type Keyring map[string]ed25519.PublicKey

// IDs returns the key IDs, sorted.
func (k Keyring) IDs() []string {
	ids := make([]string, 0, len(k))
	for id := range k {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ParsePublicKeys parses a public key file. Two forms are accepted, and may
// be mixed:
//
//   - PEM blocks of type "PUBLIC KEY" holding a PKIX Ed25519 key, as written
//     by MarshalPublicKey or `openssl pkey -pubout` on an Ed25519 key;
//   - lines holding the raw 32-byte key in standard base64.
//
// Blank lines and lines starting with # are ignored. At least one key is
// required.
func ParsePublicKeys(data []byte) (Keyring, error) {
	ring := Keyring{}
	rest := data
	var text bytes.Buffer
	for {
		i := bytes.Index(rest, []byte("-----BEGIN "))
		if i < 0 {
			text.Write(rest)
			break
		}
		text.Write(rest[:i])
		block, after := pem.Decode(rest[i:])
		if block == nil {
			return nil, fmt.Errorf("parse public keys: broken PEM block: %w", ErrInvalidKey)
		}
		rest = after
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("parse public keys: PEM block %q, want PUBLIC KEY: %w", block.Type, ErrInvalidKey)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public keys: %w: %w", ErrInvalidKey, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("parse public keys: %T is not an Ed25519 key: %w", k, ErrInvalidKey)
		}
		ring[KeyID(pub)] = pub
	}
	for n, line := range strings.Split(text.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("parse public keys: line %d: want base64 of a %d-byte Ed25519 key or a PEM block: %w", n+1, ed25519.PublicKeySize, ErrInvalidKey)
		}
		pub := ed25519.PublicKey(raw)
		ring[KeyID(pub)] = pub
	}
	if len(ring) == 0 {
		return nil, fmt.Errorf("parse public keys: no key: %w", ErrInvalidKey)
	}
	return ring, nil
}

// ReadPublicKeys reads and parses a public key file (see ParsePublicKeys).
func ReadPublicKeys(path string) (Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key file: %w", err)
	}
	ring, err := ParsePublicKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ring, nil
}

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" block (PKIX).
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPrivateKey returns priv as a PEM "PRIVATE KEY" block (PKCS #8), the
// form `openssl genpkey -algorithm ed25519` writes.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey parses a PEM "PRIVATE KEY" (PKCS #8) Ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("parse private key: want a PEM PRIVATE KEY block: %w", ErrInvalidKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w: %w", ErrInvalidKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse private key: %T is not an Ed25519 key: %w", k, ErrInvalidKey)
	}
	return priv, nil
}

// ReadPrivateKey reads and parses a private key file (see ParsePrivateKey).
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key file: %w", err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// GenerateKey makes a signing key pair and returns it PEM-encoded, with the
// public key's ID. r is the randomness source (crypto/rand when nil).
func GenerateKey(r io.Reader) (pubPEM, privPEM []byte, keyID string, err error) {
	if r == nil {
		r = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate key: %w", err)
	}
	if pubPEM, err = MarshalPublicKey(pub); err != nil {
		return nil, nil, "", err
	}
	if privPEM, err = MarshalPrivateKey(priv); err != nil {
		return nil, nil, "", err
	}
	return pubPEM, privPEM, KeyID(pub), nil
}

// Sign wraps payload in a signed envelope of the given kind. It does not
// check the payload; SignHotlist and SignConfig do.
func Sign(kind string, payload []byte, priv ed25519.PrivateKey) ([]byte, error) {
	if kind != KindHotlist && kind != KindConfig {
		return nil, fmt.Errorf("sign: kind %q: %w", kind, ErrMalformed)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign: private key of %d bytes: %w", len(priv), ErrInvalidKey)
	}
	pub := priv.Public().(ed25519.PublicKey)
	env := Envelope{
		V:       EnvelopeVersion,
		Kind:    kind,
		KeyID:   KeyID(pub),
		Payload: base64.StdEncoding.EncodeToString(payload),
		Sig:     base64.StdEncoding.EncodeToString(ed25519.Sign(priv, signedMessage(kind, payload))),
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return b, nil
}

// Verify checks a signed envelope of the given kind against keys and
// returns the payload bytes and the signing key's ID. maxBytes bounds msg
// and is checked before parsing. Errors wrap ErrTooLarge, ErrMalformed,
// ErrUnknownKey or ErrBadSignature.
func Verify(msg []byte, kind string, keys Keyring, maxBytes int) (payload []byte, keyID string, err error) {
	if maxBytes > 0 && len(msg) > maxBytes {
		return nil, "", fmt.Errorf("verify %s: %d bytes over the limit of %d: %w", kind, len(msg), maxBytes, ErrTooLarge)
	}
	var env Envelope
	if err := decodeStrict(msg, &env); err != nil {
		return nil, "", fmt.Errorf("verify %s: decode envelope: %w: %w", kind, ErrMalformed, err)
	}
	switch {
	case env.V != EnvelopeVersion:
		return nil, "", fmt.Errorf("verify %s: envelope version %d, want %d: %w", kind, env.V, EnvelopeVersion, ErrMalformed)
	case env.Kind != kind:
		return nil, "", fmt.Errorf("verify %s: envelope kind %q: %w", kind, env.Kind, ErrMalformed)
	case env.Sig == "":
		return nil, "", fmt.Errorf("verify %s: unsigned (no sig): %w", kind, ErrBadSignature)
	}
	pub, ok := keys[env.KeyID]
	if !ok {
		return nil, "", fmt.Errorf("verify %s: key_id %q not in the keyring %v: %w", kind, truncate(env.KeyID, 32), keys.IDs(), ErrUnknownKey)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, "", fmt.Errorf("verify %s: sig is not base64 of %d bytes: %w", kind, ed25519.SignatureSize, ErrBadSignature)
	}
	payload, err = base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, "", fmt.Errorf("verify %s: payload is not base64: %w", kind, ErrMalformed)
	}
	if !ed25519.Verify(pub, signedMessage(kind, payload), sig) {
		return nil, "", fmt.Errorf("verify %s: signature with key %s: %w", kind, env.KeyID, ErrBadSignature)
	}
	return payload, env.KeyID, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
