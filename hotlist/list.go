package hotlist

import (
	"fmt"
	"time"
)

// DocumentVersion is the version of the hotlist document.
const DocumentVersion = 1

// Field limits of a hotlist document.
const (
	// MaxPlateLen is the longest normalised plate.
	MaxPlateLen = 12
	maxRawPlate = 32
	maxNameLen  = 64
	maxReason   = 256
)

// Document is a hotlist, the payload of a KindHotlist envelope:
//
//	{"v":1,"name":"county-stolen","seq":42,"issued":"2026-11-27T10:00:00Z",
//	 "entries":[{"plate":"YG9 X2G","reason":"stolen 2026-11-20","list":"stolen",
//	             "expires":"2026-12-27T00:00:00Z"}]}
//
// Seq orders documents: a device accepts only a Seq higher than the one it
// holds (the same Seq with the same bytes is the retained message coming
// again and is ignored). One document replaces the whole list; an entry's
// List names the list it comes from (the document's Name when empty).
type Document struct {
	V       int       `json:"v"`
	Name    string    `json:"name"`
	Seq     uint64    `json:"seq"`
	Issued  time.Time `json:"issued"`
	Entries []Entry   `json:"entries"`
}

// Entry is one plate of a hotlist. Expires is optional; an entry whose
// Expires is not after the read's time does not match.
type Entry struct {
	Plate   string    `json:"plate"`
	Reason  string    `json:"reason,omitempty"`
	List    string    `json:"list,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Normalize returns the plate in upper case with every character but A-Z and
// 0-9 removed ("yg9-x2g" → "YG9X2G"). It folds nothing: O and 0 stay
// apart, as in recognize.Normalize.
func Normalize(plate string) string {
	b := make([]byte, 0, len(plate))
	for i := 0; i < len(plate); i++ {
		c := plate[i]
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		}
	}
	return string(b)
}

// validRawPlate allows letters, digits and the separators plates are
// written with; anything else (control bytes, non-ASCII) is refused rather
// than silently dropped, so the list means what its issuer typed.
func validRawPlate(p string) bool {
	if len(p) == 0 || len(p) > maxRawPlate {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ' ', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func validText(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

// ParseDocument decodes and checks a hotlist document: version, name,
// sequence, issue time, and every entry (plate valid and unique after
// normalisation, bounded text fields). It does not check signatures,
// replay or clock skew. Errors wrap ErrMalformed or ErrInvalidEntry.
func ParseDocument(payload []byte) (*Document, error) {
	var d Document
	if err := decodeStrict(payload, &d); err != nil {
		return nil, fmt.Errorf("parse hotlist: %w: %w", ErrMalformed, err)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return &d, nil
}

func (d *Document) check() error {
	switch {
	case d.V != DocumentVersion:
		return fmt.Errorf("parse hotlist: version %d, want %d: %w", d.V, DocumentVersion, ErrMalformed)
	case d.Name == "" || !validText(d.Name, maxNameLen):
		return fmt.Errorf("parse hotlist: name empty, longer than %d or with control characters: %w", maxNameLen, ErrMalformed)
	case d.Seq == 0:
		return fmt.Errorf("parse hotlist: seq missing or 0: %w", ErrMalformed)
	case d.Issued.IsZero():
		return fmt.Errorf("parse hotlist: issued missing: %w", ErrMalformed)
	case d.Entries == nil:
		return fmt.Errorf("parse hotlist: entries missing (an empty list is []): %w", ErrMalformed)
	}
	seen := make(map[string]int, len(d.Entries))
	for i, e := range d.Entries {
		if !validRawPlate(e.Plate) {
			return fmt.Errorf("parse hotlist: entries[%d]: plate %q: want 1-%d letters, digits, spaces, '-' or '.': %w", i, truncate(e.Plate, 40), maxRawPlate, ErrInvalidEntry)
		}
		n := Normalize(e.Plate)
		if n == "" || len(n) > MaxPlateLen {
			return fmt.Errorf("parse hotlist: entries[%d]: plate %q normalises to %d characters, want 1-%d: %w", i, e.Plate, len(n), MaxPlateLen, ErrInvalidEntry)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("parse hotlist: entries[%d]: plate %q duplicates entries[%d] (%q): %w", i, e.Plate, j, d.Entries[j].Plate, ErrInvalidEntry)
		}
		seen[n] = i
		if !validText(e.Reason, maxReason) {
			return fmt.Errorf("parse hotlist: entries[%d]: reason longer than %d or with control characters: %w", i, maxReason, ErrInvalidEntry)
		}
		if !validText(e.List, maxNameLen) {
			return fmt.Errorf("parse hotlist: entries[%d]: list longer than %d or with control characters: %w", i, maxNameLen, ErrInvalidEntry)
		}
	}
	return nil
}
