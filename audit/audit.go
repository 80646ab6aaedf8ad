package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Kinds of entries written by the agent.
const (
	KindHotlist    = "hotlist"     // a hotlist accepted or rejected
	KindConfig     = "config"      // a config patch accepted or rejected
	KindDiagAccess = "diag_access" // a diag request that returned plate data
	KindRecovery   = "recovery"    // written by Open after a cut-short line
)

// MaxDetailBytes bounds one entry's encoded detail.
const MaxDetailBytes = 64 << 10

// tailWindow is how much of the file Open reads to continue the chain.
const tailWindow = 1 << 20

// zeroHash is the prev of the first entry.
var zeroHash = strings.Repeat("0", 64)

// Entry is one audit record as stored.
type Entry struct {
	Seq    uint64          `json:"seq"`
	Time   time.Time       `json:"time"`
	Kind   string          `json:"kind"`
	Actor  string          `json:"actor"`
	Detail json.RawMessage `json:"detail"`
	Prev   string          `json:"prev"`
	Hash   string          `json:"hash"`
}

// body is Entry without Hash, in the order written.
type body struct {
	Seq    uint64          `json:"seq"`
	Time   time.Time       `json:"time"`
	Kind   string          `json:"kind"`
	Actor  string          `json:"actor"`
	Detail json.RawMessage `json:"detail"`
	Prev   string          `json:"prev"`

	hash string // the stored hash, set by parseLine
}

// recoveryDetail is the detail of a KindRecovery entry.
type recoveryDetail struct {
	PartialOffset int64  `json:"partial_offset"`
	PartialBytes  int    `json:"partial_bytes"`
	PartialSHA256 string `json:"partial_sha256"`
}

// Options configures a Log.
type Options struct {
	// Key, when set, makes the chain an HMAC-SHA256 chain under this key.
	// Verify needs the same key.
	Key []byte
	// Now is the clock for entry times (time.Now when nil).
	Now func() time.Time
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	path string
	opt  Options

	mu      sync.Mutex
	f       *os.File
	seq     uint64 // of the last entry
	head    string // hash of the last entry
	broken  error  // a failed write: reopen before the next append
	closed  bool
	recover *Recovery
}

// Recovery describes a cut-short last line found and recorded by Open.
type Recovery struct {
	Offset int64 // where the partial line starts
	Bytes  int
}

// Open opens (creating if needed) the log at path, verifies its tail and
// continues the chain. A cut-short last line is recorded by a recovery
// entry (see Recovered). Any other break in the tail is an error wrapping
// ErrTampered; nothing is written then.
func Open(path string, opt Options) (*Log, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &Log{path: path, opt: opt}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	fail := func(err error) error { f.Close(); return err }
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("open audit log: %w", err))
	}
	start := max(st.Size()-tailWindow, 0)
	buf := make([]byte, st.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return fail(fmt.Errorf("open audit log: read tail: %w", err))
	}
	if start > 0 {
		// Skip the line the window starts inside.
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return fail(fmt.Errorf("open audit log %s: no line end in the last %d bytes: %w", l.path, tailWindow, ErrTampered))
		}
		start += int64(i + 1)
		buf = buf[i+1:]
	}
	sc := newScanner(l.opt.Key, start, start > 0)
	rep := sc.scan(buf)
	l.f, l.seq, l.head = f, rep.LastSeq, rep.LastHash
	if rep.Line == 0 && sc.baseline {
		// Empty file (or empty window).
		l.head = zeroHash
	}
	switch {
	case rep.Line != 0 && !rep.TruncatedTail:
		return fail(fmt.Errorf("open audit log %s: %s: %w", l.path, rep.Problem, ErrTampered))
	case rep.TruncatedTail:
		// Terminate the partial line and record it, chained from the last
		// good entry, so the loss is in the log instead of a broken chain.
		if !sc.tailTerminated {
			if _, err := f.Write([]byte("\n")); err != nil {
				return fail(fmt.Errorf("open audit log: terminate partial line: %w", err))
			}
		}
		d := recoveryDetail{PartialOffset: sc.tailOffset, PartialBytes: len(sc.tailBytes), PartialSHA256: sha256Hex(sc.tailBytes)}
		if _, err := l.appendLocked(KindRecovery, "audit", d); err != nil {
			return fail(fmt.Errorf("open audit log: record partial line: %w", err))
		}
		l.recover = &Recovery{Offset: sc.tailOffset, Bytes: len(sc.tailBytes)}
	case rep.MissingNewline:
		// The last entry is whole but its newline was cut.
		if _, err := f.Write([]byte("\n")); err != nil {
			return fail(fmt.Errorf("open audit log: terminate last line: %w", err))
		}
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("open audit log: sync: %w", err))
		}
	}
	return nil
}

// Recovered returns the cut-short line Open found and recorded, nil if the
// log was clean.
func (l *Log) Recovered() *Recovery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recover
}

// Head returns the sequence number and hash of the last entry (0 and 64
// zeros for an empty log). Publishing it elsewhere anchors the chain.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.head
}

// Append writes one entry (detail is encoded as JSON; nil becomes {}) and
// fsyncs it before returning. After a failed write the next Append reopens
// the file, which records a cut-short line if there is one.
func (l *Log) Append(kind, actor string, detail any) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Entry{}, fmt.Errorf("append audit entry: %w", ErrClosed)
	}
	if l.broken != nil {
		if l.f != nil {
			l.f.Close()
			l.f = nil
		}
		if err := l.open(); err != nil {
			return Entry{}, fmt.Errorf("append audit entry: reopen after %v: %w", l.broken, err)
		}
		l.broken = nil
	}
	return l.appendLocked(kind, actor, detail)
}

func (l *Log) appendLocked(kind, actor string, detail any) (Entry, error) {
	if kind == "" {
		return Entry{}, fmt.Errorf("append audit entry: empty kind")
	}
	if detail == nil {
		detail = struct{}{}
	}
	d, err := json.Marshal(detail)
	if err != nil {
		return Entry{}, fmt.Errorf("append audit entry: encode detail: %w", err)
	}
	if len(d) > MaxDetailBytes {
		return Entry{}, fmt.Errorf("append audit entry: detail of %d bytes over %d: %w", len(d), MaxDetailBytes, ErrTooLarge)
	}
	b := body{Seq: l.seq + 1, Time: l.opt.Now().UTC(), Kind: kind, Actor: actor, Detail: d, Prev: l.head}
	bb, err := json.Marshal(b)
	if err != nil {
		return Entry{}, fmt.Errorf("append audit entry: encode: %w", err)
	}
	h := chainHash(l.opt.Key, l.head, bb)
	line := make([]byte, 0, len(bb)+len(h)+12)
	line = append(line, bb[:len(bb)-1]...)
	line = append(line, `,"hash":"`...)
	line = append(line, h...)
	line = append(line, "\"}\n"...)
	if _, err := l.f.Write(line); err != nil {
		l.broken = err
		return Entry{}, fmt.Errorf("append audit entry: write: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		l.broken = err
		return Entry{}, fmt.Errorf("append audit entry: sync: %w", err)
	}
	l.seq, l.head = b.Seq, h
	return Entry{Seq: b.Seq, Time: b.Time, Kind: kind, Actor: actor, Detail: d, Prev: b.Prev, Hash: h}, nil
}

// Close closes the file. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

func chainHash(key []byte, prev string, body []byte) string {
	if key != nil {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(prev))
		m.Write([]byte("\n"))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	s := sha256.New()
	s.Write([]byte(prev))
	s.Write([]byte("\n"))
	s.Write(body)
	return hex.EncodeToString(s.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
