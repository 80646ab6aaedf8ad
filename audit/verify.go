package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Report is the outcome of checking a log.
type Report struct {
	// Entries is the number of valid entries read before the first problem.
	Entries int
	// LastSeq and LastHash are those of the last valid entry.
	LastSeq  uint64
	LastHash string
	// Recoveries counts cut-short lines recorded by recovery entries.
	Recoveries int
	// Line is the 1-based line of the first problem (0: none); Offset is its
	// byte offset in the file; Problem says what is wrong there.
	Line    int
	Offset  int64
	Problem string
	// TruncatedTail is set when the problem is a last line cut short (a
	// power cut during a write) that no recovery entry records yet.
	TruncatedTail bool
	// MissingNewline is set when the last entry is whole but lacks its
	// newline (cut between the entry and its newline). Not a problem.
	MissingNewline bool
}

// OK reports whether the log verified without any problem.
func (r Report) OK() bool { return r.Line == 0 }

// Verify checks the whole log at path: every line an entry, sequence
// numbers consecutive from 1, each prev the hash of the entry before, each
// hash correct, cut-short lines only where a recovery entry records them.
// The error wraps ErrTampered or ErrTruncated and names the first bad line;
// the Report has the details.
func Verify(path string) (Report, error) { return VerifyKey(path, nil) }

// VerifyKey is Verify for a log written with Options.Key.
func VerifyKey(path string, key []byte) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	defer f.Close()
	rep, err := VerifyReader(f, key)
	if err != nil {
		return rep, fmt.Errorf("verify audit log %s: %w", path, err)
	}
	return rep, nil
}

// VerifyReader is Verify over the bytes of r.
func VerifyReader(r io.Reader, key []byte) (Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Report{}, fmt.Errorf("read: %w", err)
	}
	sc := newScanner(key, 0, false)
	rep := sc.scan(data)
	switch {
	case rep.TruncatedTail:
		return rep, fmt.Errorf("line %d: %s: %w", rep.Line, rep.Problem, ErrTruncated)
	case rep.Line != 0:
		return rep, fmt.Errorf("line %d: %s: %w", rep.Line, rep.Problem, ErrTampered)
	}
	return rep, nil
}

// scanner walks lines, checking the chain. In tail mode (baseline) the
// first entry is taken as the starting point instead of seq 1.
type scanner struct {
	key      []byte
	base     int64
	baseline bool
	prev     string
	next     uint64
	rep      Report

	// A run of lines that are not entries, waiting for a recovery entry.
	garbage     bool
	garbageLine int
	garbageOff  int64 // relative to data

	// Set with TruncatedTail: the bytes Open must record (for an
	// unterminated tail, the newline Open adds is included).
	tailOffset     int64
	tailBytes      []byte
	tailTerminated bool
}

func newScanner(key []byte, base int64, tail bool) *scanner {
	return &scanner{key: key, base: base, baseline: tail, prev: zeroHash, next: 1}
}

func (s *scanner) fail(line int, off int64, format string, args ...any) {
	s.rep.Line, s.rep.Offset = line, s.base+off
	s.rep.Problem = fmt.Sprintf("byte offset %d: ", s.base+off) + fmt.Sprintf(format, args...)
}

func (s *scanner) scan(data []byte) Report {
	s.rep.LastHash = s.prev
	line, off := 0, int64(0)
	for len(data[off:]) > 0 {
		line++
		rest := data[off:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			s.tail(data, line, off)
			return s.rep
		}
		if !s.line(data, line, off, rest[:i]) {
			return s.rep
		}
		off += int64(i + 1)
	}
	if s.garbage {
		// Terminated lines that are not entries, up to the end: a cut
		// during a write (or during Open's recovery).
		s.truncated(data, s.garbageLine, s.garbageOff, true)
	}
	return s.rep
}

func (s *scanner) truncated(data []byte, line int, off int64, terminated bool) {
	s.fail(line, off, "last line cut short (%d bytes; power cut during a write?)", int64(len(data))-off)
	s.rep.TruncatedTail = true
	s.tailOffset = s.base + off
	s.tailBytes = append([]byte(nil), data[off:]...)
	if !terminated {
		s.tailBytes = append(s.tailBytes, '\n')
	}
	s.tailTerminated = terminated
}

// tail handles an unterminated last segment: a whole entry that lost its
// newline, or a line cut short.
func (s *scanner) tail(data []byte, line int, off int64) {
	if _, _, ok := parseLine(data[off:]); ok {
		if s.line(data, line, off, data[off:]) {
			s.rep.MissingNewline = true
		}
		return
	}
	if s.garbage {
		s.truncated(data, s.garbageLine, s.garbageOff, false)
		return
	}
	s.truncated(data, line, off, false)
}

// line checks one terminated line; false stops the scan.
func (s *scanner) line(data []byte, line int, off int64, b []byte) bool {
	e, body, ok := parseLine(b)
	if !ok {
		if !s.garbage {
			s.garbage, s.garbageLine, s.garbageOff = true, line, off
		}
		return true
	}
	if s.garbage {
		if e.Kind != KindRecovery {
			s.fail(s.garbageLine, s.garbageOff, "not an audit entry (edited, or inserted)")
			return false
		}
		var d recoveryDetail
		region := data[s.garbageOff:off]
		if json.Unmarshal(e.Detail, &d) != nil || d.PartialOffset != s.base+s.garbageOff ||
			d.PartialBytes != len(region) || d.PartialSHA256 != sha256Hex(region) {
			s.fail(s.garbageLine, s.garbageOff, "not an audit entry, and the recovery entry on line %d does not record these bytes", line)
			return false
		}
		s.garbage = false
		s.rep.Recoveries++
	}
	return s.check(line, off, e, body)
}

// check verifies a parsed entry against the chain.
func (s *scanner) check(line int, off int64, e body, bodyBytes []byte) bool {
	h := e.hash
	if s.baseline {
		s.baseline = false
		if e.Prev == "" {
			s.fail(line, off, "no prev hash")
			return false
		}
		s.prev, s.next = e.Prev, e.Seq
	}
	switch {
	case e.Seq > s.next:
		s.fail(line, off, "seq %d, want %d: entry missing or out of order", e.Seq, s.next)
		return false
	case e.Seq < s.next:
		s.fail(line, off, "seq %d, want %d: entry repeated or out of order", e.Seq, s.next)
		return false
	case e.Prev != s.prev:
		s.fail(line, off, "seq %d: prev hash is not the hash of seq %d: entry missing, reordered or edited", e.Seq, e.Seq-1)
		return false
	case chainHash(s.key, s.prev, bodyBytes) != h:
		s.fail(line, off, "seq %d: hash mismatch: entry edited (or the log's HMAC key is wrong)", e.Seq)
		return false
	}
	s.prev, s.next = h, e.Seq+1
	s.rep.Entries++
	s.rep.LastSeq, s.rep.LastHash = e.Seq, h
	return true
}

// parseLine splits a line into its body (the bytes hashed) and hash and
// decodes the body strictly. ok is false for anything that is not an entry.
func parseLine(b []byte) (e body, bodyBytes []byte, ok bool) {
	const key = `,"hash":"`
	if len(b) < 2 || b[0] != '{' || !bytes.HasSuffix(b, []byte(`"}`)) {
		return body{}, nil, false
	}
	i := bytes.LastIndex(b, []byte(key))
	if i < 0 || i+len(key) > len(b)-2 {
		return body{}, nil, false
	}
	h := b[i+len(key) : len(b)-2]
	if len(h) != 64 || !isLowerHex(h) {
		return body{}, nil, false
	}
	bodyBytes = append(append(make([]byte, 0, i+1), b[:i]...), '}')
	dec := json.NewDecoder(bytes.NewReader(bodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		return body{}, nil, false
	}
	if e.Kind == "" || e.Seq == 0 || len(e.Prev) != 64 {
		return body{}, nil, false
	}
	e.hash = string(h)
	return e, bodyBytes, true
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
