package uplink

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
)

// ReadVersion is the payload version this package writes and accepts.
const ReadVersion = 1

// ReadSchemaV1 is the JSON Schema (draft 2020-12) of a version 1 Read.
//
//go:embed schema/read.v1.schema.json
var ReadSchemaV1 []byte

// ReadExampleV1 is an example version 1 Read that validates against
// ReadSchemaV1.
//
//go:embed schema/read.v1.example.json
var ReadExampleV1 []byte

// Time sources of Read.TimeSource.
const (
	TimeSourceGNSS   = "gnss"
	TimeSourceSystem = "system"
)

// Fix kinds of Position.Fix.
const (
	Fix2D = "2d"
	Fix3D = "3d"
)

// timeLayout is UTC with millisecond precision: "2026-11-27T10:04:05.123Z".
const timeLayout = "2006-01-02T15:04:05.000Z"

// Read is one licence-plate read as published on the wire (payload v1).
type Read struct {
	V          int         `json:"v"`
	ID         string      `json:"id"`
	Device     string      `json:"device"`
	Camera     string      `json:"camera"`
	Plate      string      `json:"plate"`
	Confidence float64     `json:"confidence"`
	Region     string      `json:"region,omitempty"`
	Candidates []Candidate `json:"candidates"`
	Time       time.Time   `json:"time"` // marshalled UTC with ms precision
	TimeSource string      `json:"time_source"`
	Position   *Position   `json:"position"` // null when there is no fix
	Box        [4]int      `json:"box"`      // x, y, width, height in pixels
	Frames     int         `json:"frames"`
	CropJPEG   []byte      `json:"crop_jpeg,omitempty"` // base64 in JSON
	// FrameJPEG is the whole best frame; only when privacy.full_frames is
	// on (off by default: crops only).
	FrameJPEG []byte  `json:"frame_jpeg,omitempty"`
	Hotlist   Hotlist `json:"hotlist"`
}

// Candidate is an alternative reading of the plate.
type Candidate struct {
	Plate      string  `json:"plate"`
	Confidence float64 `json:"confidence"`
}

// Position is the GNSS fix at frame time. A read without a fix has a nil
// Position, never a zero one.
type Position struct {
	Lat        float64  `json:"lat"`
	Lon        float64  `json:"lon"`
	AltM       *float64 `json:"alt_m,omitempty"`
	SpeedMPS   float64  `json:"speed_mps"`
	HeadingDeg float64  `json:"heading_deg"`
	HDOP       *float64 `json:"hdop,omitempty"`
	Fix        string   `json:"fix"` // "2d" or "3d"
	FixAgeMS   int64    `json:"fix_age_ms"`
	Stale      bool     `json:"stale,omitempty"`
}

// Hotlist tells whether the plate matched a hotlist. On a hit it carries
// the matched list entry: the list, the entry's plate as listed (which can
// differ from the read's plate on a fuzzy match), why it is listed, and how
// it matched.
type Hotlist struct {
	Hit      bool    `json:"hit"`
	List     string  `json:"list,omitempty"`
	Entry    string  `json:"entry,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Match    string  `json:"match,omitempty"`    // "exact" or "fuzzy"
	Distance float64 `json:"distance,omitempty"` // edit cost of a fuzzy match (a confusable swap costs 0.25)
}

// NewID returns a new read ID: a UUIDv7, time-ordered and unique across the
// fleet. It falls back to a random UUIDv4 if the v7 generator fails.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// MarshalJSON writes Time in UTC with millisecond precision and Candidates as
// [] rather than null, keeping the field order of the documented example.
func (r Read) MarshalJSON() ([]byte, error) {
	if r.Candidates == nil {
		r.Candidates = []Candidate{}
	}
	// readWire mirrors Read field for field; only Time differs.
	type readWire struct {
		V          int         `json:"v"`
		ID         string      `json:"id"`
		Device     string      `json:"device"`
		Camera     string      `json:"camera"`
		Plate      string      `json:"plate"`
		Confidence float64     `json:"confidence"`
		Region     string      `json:"region,omitempty"`
		Candidates []Candidate `json:"candidates"`
		Time       string      `json:"time"`
		TimeSource string      `json:"time_source"`
		Position   *Position   `json:"position"`
		Box        [4]int      `json:"box"`
		Frames     int         `json:"frames"`
		CropJPEG   []byte      `json:"crop_jpeg,omitempty"`
		FrameJPEG  []byte      `json:"frame_jpeg,omitempty"`
		Hotlist    Hotlist     `json:"hotlist"`
	}
	return json.Marshal(readWire{
		V: r.V, ID: r.ID, Device: r.Device, Camera: r.Camera, Plate: r.Plate,
		Confidence: r.Confidence, Region: r.Region, Candidates: r.Candidates,
		Time: r.Time.UTC().Format(timeLayout), TimeSource: r.TimeSource,
		Position: r.Position, Box: r.Box, Frames: r.Frames, CropJPEG: r.CropJPEG,
		FrameJPEG: r.FrameJPEG, Hotlist: r.Hotlist,
	})
}

// Limits enforced by Validate.
const (
	maxIDLen         = 64
	maxFieldLen      = 64
	maxCandidates    = 32
	maxCropJPEGSize  = 512 << 10
	maxFrameJPEGSize = 8 << 20
)

// Validate checks what a receiver relies on: version, IDs, required fields
// and value ranges. Errors wrap ErrInvalidRead and name the JSON field.
func (r Read) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("validate read: %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidRead)
	}
	switch {
	case r.V != ReadVersion:
		return bad("v", "version %d, want %d", r.V, ReadVersion)
	case r.ID == "":
		return bad("id", "empty")
	case len(r.ID) > maxIDLen:
		return bad("id", "longer than %d", maxIDLen)
	}
	if _, err := uuid.Parse(r.ID); err != nil {
		return bad("id", "not a UUID")
	}
	for _, f := range []struct{ name, v string }{{"device", r.Device}, {"camera", r.Camera}, {"plate", r.Plate}} {
		if f.v == "" {
			return bad(f.name, "empty")
		}
		if len(f.v) > maxFieldLen {
			return bad(f.name, "longer than %d", maxFieldLen)
		}
	}
	if len(r.Region) > maxFieldLen {
		return bad("region", "longer than %d", maxFieldLen)
	}
	if !unit(r.Confidence) {
		return bad("confidence", "%v not in [0,1]", r.Confidence)
	}
	if r.Candidates == nil {
		return bad("candidates", "missing")
	}
	if len(r.Candidates) > maxCandidates {
		return bad("candidates", "more than %d", maxCandidates)
	}
	for i, c := range r.Candidates {
		if c.Plate == "" || len(c.Plate) > maxFieldLen {
			return bad(fmt.Sprintf("candidates[%d].plate", i), "empty or longer than %d", maxFieldLen)
		}
		if !unit(c.Confidence) {
			return bad(fmt.Sprintf("candidates[%d].confidence", i), "%v not in [0,1]", c.Confidence)
		}
	}
	if r.Time.IsZero() {
		return bad("time", "missing")
	}
	if r.TimeSource != TimeSourceGNSS && r.TimeSource != TimeSourceSystem {
		return bad("time_source", "%q, want %q or %q", r.TimeSource, TimeSourceGNSS, TimeSourceSystem)
	}
	if p := r.Position; p != nil {
		switch {
		case !(p.Lat >= -90 && p.Lat <= 90):
			return bad("position.lat", "%v out of range", p.Lat)
		case !(p.Lon >= -180 && p.Lon <= 180):
			return bad("position.lon", "%v out of range", p.Lon)
		case !(p.SpeedMPS >= 0) || math.IsInf(p.SpeedMPS, 0):
			return bad("position.speed_mps", "%v negative or not finite", p.SpeedMPS)
		case !(p.HeadingDeg >= 0 && p.HeadingDeg < 360):
			return bad("position.heading_deg", "%v not in [0,360)", p.HeadingDeg)
		case p.HDOP != nil && !(*p.HDOP >= 0):
			return bad("position.hdop", "%v negative", *p.HDOP)
		case p.AltM != nil && (math.IsNaN(*p.AltM) || math.IsInf(*p.AltM, 0)):
			return bad("position.alt_m", "not finite")
		case p.Fix != Fix2D && p.Fix != Fix3D:
			return bad("position.fix", "%q, want %q or %q", p.Fix, Fix2D, Fix3D)
		case p.FixAgeMS < 0:
			return bad("position.fix_age_ms", "%d negative", p.FixAgeMS)
		}
	}
	if r.Box[2] < 0 || r.Box[3] < 0 {
		return bad("box", "negative width or height")
	}
	if r.Frames < 1 {
		return bad("frames", "%d, want at least 1", r.Frames)
	}
	if len(r.CropJPEG) > maxCropJPEGSize {
		return bad("crop_jpeg", "larger than %d bytes", maxCropJPEGSize)
	}
	if len(r.FrameJPEG) > maxFrameJPEGSize {
		return bad("frame_jpeg", "larger than %d bytes", maxFrameJPEGSize)
	}
	if r.Hotlist.Hit && r.Hotlist.List == "" {
		return bad("hotlist.list", "empty on a hit")
	}
	if r.Hotlist.Hit && r.Hotlist.Entry == "" {
		return bad("hotlist.entry", "empty on a hit")
	}
	if r.Hotlist.Match != "" && r.Hotlist.Match != "exact" && r.Hotlist.Match != "fuzzy" {
		return bad("hotlist.match", "%q, want exact or fuzzy", r.Hotlist.Match)
	}
	if !(r.Hotlist.Distance >= 0) || math.IsInf(r.Hotlist.Distance, 0) {
		return bad("hotlist.distance", "%v, want a finite number >= 0", r.Hotlist.Distance)
	}
	return nil
}

func unit(v float64) bool { return v >= 0 && v <= 1 }

// ParseRead decodes and validates a read payload.
func ParseRead(b []byte) (Read, error) {
	var r Read
	if err := json.Unmarshal(b, &r); err != nil {
		return Read{}, fmt.Errorf("decode read: %w: %w", ErrInvalidRead, err)
	}
	if err := r.Validate(); err != nil {
		return Read{}, err
	}
	return r, nil
}
