package hotlist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxBytes  = 8 << 20
	DefaultClockSkew = 5 * time.Minute
)

// Config configures a Store. Start from DefaultConfig.
type Config struct {
	// Path is where the last accepted envelope is kept (written atomically),
	// so a device offline at boot still has its list. Empty: memory only.
	Path string
	// MaxBytes is the largest message accepted, checked before parsing.
	MaxBytes int
	// ClockSkew is how far in the future a document's issue time may be.
	ClockSkew time.Duration
	// MaxDistance is the fuzzy matching budget (see the cost model in
	// match.go): 0 exact, DefaultMaxDistance exact plus confusables.
	MaxDistance float64
	// Now is the wall clock used for the issue-time check. Boards without an
	// RTC should pass the GNSS-corrected clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with an 8 MiB limit, 5 minutes of clock
// skew and DefaultMaxDistance.
func DefaultConfig() Config {
	return Config{MaxBytes: DefaultMaxBytes, ClockSkew: DefaultClockSkew, MaxDistance: DefaultMaxDistance}
}

// Validate returns an error wrapping ErrInvalidConfig naming the bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes < 1:
		return fmt.Errorf("validate config: MaxBytes: %d, want at least 1: %w", c.MaxBytes, ErrInvalidConfig)
	case c.ClockSkew < 0:
		return fmt.Errorf("validate config: ClockSkew: %v, want >= 0: %w", c.ClockSkew, ErrInvalidConfig)
	}
	return checkMaxDistance(c.MaxDistance)
}

// Update describes the outcome of an accepted Apply.
type Update struct {
	Name      string
	Seq       uint64
	PrevSeq   uint64 // 0 when there was no list
	Entries   int
	KeyID     string
	Issued    time.Time
	SHA256    string // hex digest of the envelope bytes
	Unchanged bool   // the same document again (a retained message redelivered)
}

// Store holds the hotlist in use and replaces it with each valid signed
// document. Match may be called concurrently with Apply; a rejected
// document never disturbs the list in use.
type Store struct {
	cfg  Config
	keys Keyring
	log  *slog.Logger

	mu      sync.Mutex // serialises Apply
	cur     atomic.Pointer[List]
	curHash [32]byte
}

// Open returns a Store with the list persisted at cfg.Path, if any. The
// persisted envelope is verified again (signature and format, not clock
// or sequence); one that fails is moved aside to Path.rejected-<time>
// with a logged reason, and the store starts empty. Only a bad config or
// an empty keyring is an error.
func Open(cfg Config, keys Keyring, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("open hotlist: empty keyring: %w", ErrInvalidKey)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, keys: keys, log: logger.With("subsystem", "hotlist")}
	if cfg.Path == "" {
		return s, nil
	}
	l, b, aside, err := loadPersisted(cfg.Path, s.parse)
	switch {
	case err != nil:
		s.log.Error("persisted hotlist rejected; starting without a list", "path", cfg.Path, "moved_to", aside, "err", err)
	case l != nil:
		s.cur.Store(l)
		s.curHash = sha256.Sum256(b)
		s.log.Info("hotlist loaded", "path", cfg.Path, "name", l.Name, "seq", l.Seq, "entries", l.Len(), "key_id", l.KeyID)
	}
	return s, nil
}

// loadPersisted reads the envelope kept at path and checks it with parse.
// A missing file is no document and no error. A file that no longer
// verifies (a key rotated away, damage) is renamed <path>.rejected-<UTC
// time> (aside; "" if the rename failed) and its error returned, so the
// caller starts without it and says why.
func loadPersisted[T any](path string, parse func([]byte) (T, error)) (doc T, raw []byte, aside string, err error) {
	raw, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil, "", nil
	}
	if err == nil {
		if doc, err = parse(raw); err == nil {
			return doc, raw, "", nil
		}
	}
	aside = fmt.Sprintf("%s.rejected-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, aside); rerr != nil {
		aside = ""
	}
	return doc, nil, aside, err
}

// parse verifies an envelope and builds its list, without replay or clock
// checks.
func (s *Store) parse(msg []byte) (*List, error) {
	payload, keyID, err := Verify(msg, KindHotlist, s.keys, s.cfg.MaxBytes)
	if err != nil {
		return nil, err
	}
	d, err := ParseDocument(payload)
	if err != nil {
		return nil, err
	}
	l, err := NewList(d, s.cfg.MaxDistance)
	if err != nil {
		return nil, err
	}
	l.KeyID = keyID
	return l, nil
}

// Apply checks a message from the hotlist topic and, if it is valid,
// persists it and makes it the list in use. A rejected message is logged
// with its reason and leaves the list in use untouched; the error wraps
// ErrTooLarge, ErrMalformed, ErrUnknownKey, ErrBadSignature,
// ErrInvalidEntry, ErrReplay or ErrFuture. With ErrPersist the list is in
// use but not on disk.
func (s *Store) Apply(msg []byte) (Update, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.apply(msg)
	if err != nil && !errors.Is(err, ErrPersist) {
		s.log.Warn("hotlist rejected", "reason", err, "bytes", len(msg))
		return u, err
	}
	if err != nil {
		s.log.Error("hotlist in use but not persisted", "err", err)
	}
	if !u.Unchanged {
		s.log.Info("hotlist accepted", "name", u.Name, "seq", u.Seq, "prev_seq", u.PrevSeq, "entries", u.Entries, "key_id", u.KeyID)
	}
	return u, err
}

func (s *Store) apply(msg []byte) (Update, error) {
	sum := sha256.Sum256(msg)
	cur := s.cur.Load()
	if cur != nil && sum == s.curHash {
		return s.update(cur, cur.Seq, sum, true), nil
	}
	l, err := s.parse(msg)
	if err != nil {
		return Update{}, fmt.Errorf("apply hotlist: %w", err)
	}
	if cur != nil && l.Seq <= cur.Seq {
		return Update{}, fmt.Errorf("apply hotlist: seq %d, in use %d: %w", l.Seq, cur.Seq, ErrReplay)
	}
	if now := s.cfg.Now(); l.Issued.After(now.Add(s.cfg.ClockSkew)) {
		return Update{}, fmt.Errorf("apply hotlist: issued %s, now %s plus skew %v: %w",
			l.Issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), s.cfg.ClockSkew, ErrFuture)
	}
	var prev uint64
	if cur != nil {
		prev = cur.Seq
	}
	s.cur.Store(l)
	s.curHash = sum
	u := s.update(l, prev, sum, false)
	if s.cfg.Path != "" {
		if err := writeFileAtomic(s.cfg.Path, msg); err != nil {
			return u, fmt.Errorf("apply hotlist: %w: %w", ErrPersist, err)
		}
	}
	return u, nil
}

func (s *Store) update(l *List, prev uint64, sum [32]byte, unchanged bool) Update {
	return Update{
		Name: l.Name, Seq: l.Seq, PrevSeq: prev, Entries: l.Len(), KeyID: l.KeyID,
		Issued: l.Issued, SHA256: hex.EncodeToString(sum[:]), Unchanged: unchanged,
	}
}

// List returns the list in use, nil when there is none.
func (s *Store) List() *List { return s.cur.Load() }

// Match matches plate against the list in use (see List.Match).
func (s *Store) Match(plate string, now time.Time) (Entry, bool) {
	return s.cur.Load().Match(plate, now)
}

// writeFileAtomic writes b to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the directory, so path holds either the
// old or the new content after a power cut.
func writeFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
