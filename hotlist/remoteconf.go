package hotlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// ConfigDocumentVersion is the version of the remote config document.
const ConfigDocumentVersion = 1

// DefaultConfigMaxBytes bounds a remote config message.
const DefaultConfigMaxBytes = 256 << 10

// ConfigDocument is the payload of a KindConfig envelope, published retained
// on alpr/v1/{device}/config:
//
//	{"v":1,"seq":7,"issued":"2026-11-27T10:00:00Z","devices":["unit-0042"],
//	 "patch":{"hotlist":{"max_distance":1}}}
//
// Patch is a JSON object (valid YAML too) for the agent to merge into its
// config; which keys may change remotely is the agent's decision, not this
// package's. Devices, when present, lists the device IDs the patch is for,
// so a patch signed for one unit cannot be replayed to another.
type ConfigDocument struct {
	V       int             `json:"v"`
	Seq     uint64          `json:"seq"`
	Issued  time.Time       `json:"issued"`
	Devices []string        `json:"devices,omitempty"`
	Patch   json.RawMessage `json:"patch"`
}

// ConfigPatch is an accepted config document.
type ConfigPatch struct {
	Seq    uint64
	Issued time.Time
	KeyID  string
	Patch  []byte // a JSON object
	SHA256 string // hex digest of the envelope
}

// ParseConfigDocument decodes and checks a config document for device
// (any device when empty). Errors wrap ErrMalformed or ErrWrongDevice.
func ParseConfigDocument(payload []byte, device string) (*ConfigDocument, error) {
	var d ConfigDocument
	if err := decodeStrict(payload, &d); err != nil {
		return nil, fmt.Errorf("parse config patch: %w: %w", ErrMalformed, err)
	}
	switch {
	case d.V != ConfigDocumentVersion:
		return nil, fmt.Errorf("parse config patch: version %d, want %d: %w", d.V, ConfigDocumentVersion, ErrMalformed)
	case d.Seq == 0:
		return nil, fmt.Errorf("parse config patch: seq missing or 0: %w", ErrMalformed)
	case d.Issued.IsZero():
		return nil, fmt.Errorf("parse config patch: issued missing: %w", ErrMalformed)
	}
	p := bytes.TrimSpace(d.Patch)
	if len(p) == 0 || p[0] != '{' {
		return nil, fmt.Errorf("parse config patch: patch is not a JSON object: %w", ErrMalformed)
	}
	d.Patch = p
	if device != "" && len(d.Devices) > 0 && !slices.Contains(d.Devices, device) {
		return nil, fmt.Errorf("parse config patch: for devices %q, this is %q: %w", truncate(fmt.Sprint(d.Devices), 80), device, ErrWrongDevice)
	}
	return &d, nil
}

// RemoteConfig configures a ConfigStore.
type RemoteConfig struct {
	// Device is this device's ID, checked against a document's Devices.
	Device string
	// Path keeps the last accepted envelope (atomic write), so the patch is
	// applied again at boot before the broker is reachable. Empty: memory
	// only.
	Path string
	// MaxBytes is the largest message accepted (DefaultConfigMaxBytes when 0).
	MaxBytes int
	// ClockSkew is how far in the future Issued may be (DefaultClockSkew
	// when 0).
	ClockSkew time.Duration
	// Now is the wall clock (time.Now when nil).
	Now func() time.Time
}

// ConfigStore verifies signed config patches and keeps the last accepted
// one, with the same envelope, key and rules as the hotlist: unsigned,
// unknown key, too large, malformed, replayed or future patches are
// rejected and the current patch stays.
type ConfigStore struct {
	cfg  RemoteConfig
	keys Keyring
	log  *slog.Logger

	mu      sync.Mutex
	cur     *ConfigPatch
	curHash [32]byte
}

// OpenConfigStore returns a ConfigStore holding the patch persisted at
// cfg.Path, if it still verifies; one that does not is moved aside and
// logged.
func OpenConfigStore(cfg RemoteConfig, keys Keyring, logger *slog.Logger) (*ConfigStore, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("open config store: empty keyring: %w", ErrInvalidKey)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultConfigMaxBytes
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("validate config: MaxBytes: %d, want > 0: %w", cfg.MaxBytes, ErrInvalidConfig)
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &ConfigStore{cfg: cfg, keys: keys, log: logger.With("subsystem", "remoteconf")}
	if cfg.Path == "" {
		return s, nil
	}
	p, b, aside, err := loadPersisted(cfg.Path, s.parse)
	switch {
	case err != nil:
		s.log.Error("persisted config patch rejected", "path", cfg.Path, "moved_to", aside, "err", err)
	case p != nil:
		s.cur, s.curHash = p, sha256.Sum256(b)
	}
	return s, nil
}

func (s *ConfigStore) parse(msg []byte) (*ConfigPatch, error) {
	payload, keyID, err := Verify(msg, KindConfig, s.keys, s.cfg.MaxBytes)
	if err != nil {
		return nil, err
	}
	d, err := ParseConfigDocument(payload, s.cfg.Device)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(msg)
	return &ConfigPatch{Seq: d.Seq, Issued: d.Issued, KeyID: keyID, Patch: d.Patch, SHA256: hex.EncodeToString(sum[:])}, nil
}

// Apply checks a message from the config topic. It returns the accepted
// patch and changed=true for a new one; the same envelope again (a retained
// message redelivered) returns the current patch and changed=false. A
// rejected message is logged with its reason; the error wraps the package's
// sentinels as Store.Apply does (ErrWrongDevice too). With ErrPersist the
// patch is accepted but not on disk.
func (s *ConfigStore) Apply(msg []byte) (p ConfigPatch, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256(msg)
	if s.cur != nil && sum == s.curHash {
		return *s.cur, false, nil
	}
	np, err := s.parse(msg)
	if err == nil && s.cur != nil && np.Seq <= s.cur.Seq {
		err = fmt.Errorf("seq %d, in use %d: %w", np.Seq, s.cur.Seq, ErrReplay)
	}
	if now := s.cfg.Now(); err == nil && np.Issued.After(now.Add(s.cfg.ClockSkew)) {
		err = fmt.Errorf("issued %s, now %s plus skew %v: %w",
			np.Issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), s.cfg.ClockSkew, ErrFuture)
	}
	if err != nil {
		err = fmt.Errorf("apply config patch: %w", err)
		s.log.Warn("config patch rejected", "reason", err, "bytes", len(msg))
		return ConfigPatch{}, false, err
	}
	s.cur, s.curHash = np, sum
	s.log.Info("config patch accepted", "seq", np.Seq, "key_id", np.KeyID, "bytes", len(np.Patch))
	if s.cfg.Path != "" {
		if werr := writeFileAtomic(s.cfg.Path, msg); werr != nil {
			err = fmt.Errorf("apply config patch: %w: %w", ErrPersist, werr)
			s.log.Error("config patch in use but not persisted", "err", err)
		}
	}
	return *np, true, err
}

// Current returns the accepted patch, if any.
func (s *ConfigStore) Current() (ConfigPatch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ConfigPatch{}, false
	}
	return *s.cur, true
}

// SignConfig checks a config document (for any device) and signs it.
func SignConfig(payload []byte, priv ed25519.PrivateKey) ([]byte, error) {
	if _, err := ParseConfigDocument(payload, ""); err != nil {
		return nil, fmt.Errorf("sign config: %w", err)
	}
	return Sign(KindConfig, payload, priv)
}

// SignHotlist checks a hotlist document and signs it.
func SignHotlist(payload []byte, priv ed25519.PrivateKey) ([]byte, error) {
	if _, err := ParseDocument(payload); err != nil {
		return nil, fmt.Errorf("sign hotlist: %w", err)
	}
	return Sign(KindHotlist, payload, priv)
}

// SignDocument marshals d and signs it as a hotlist.
func SignDocument(d *Document, priv ed25519.PrivateKey) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("sign hotlist: %w", err)
	}
	return SignHotlist(b, priv)
}

// Inspect verifies any signed envelope against keys (no replay or clock
// check) and returns its kind, key ID and payload, for `hotlist verify`.
// The payload is checked as a document of its kind.
func Inspect(msg []byte, keys Keyring, maxBytes int) (kind, keyID string, payload []byte, err error) {
	var env struct {
		Kind string `json:"kind"`
	}
	if maxBytes > 0 && len(msg) > maxBytes {
		return "", "", nil, fmt.Errorf("inspect: %d bytes over the limit of %d: %w", len(msg), maxBytes, ErrTooLarge)
	}
	if err := json.Unmarshal(msg, &env); err != nil {
		return "", "", nil, fmt.Errorf("inspect: %w: %w", ErrMalformed, err)
	}
	payload, keyID, err = Verify(msg, env.Kind, keys, maxBytes)
	if err != nil {
		return "", "", nil, err
	}
	switch env.Kind {
	case KindHotlist:
		_, err = ParseDocument(payload)
	case KindConfig:
		_, err = ParseConfigDocument(payload, "")
	}
	if err != nil {
		return "", "", nil, err
	}
	return env.Kind, keyID, payload, nil
}
