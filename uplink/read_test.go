package uplink

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func validRead() Read {
	alt, hdop := 76.5, 0.9
	return Read{
		V: 1, ID: NewID(), Device: "unit-0042", Camera: "front",
		Plate: "YG9X2G", Confidence: 0.97, Region: "us",
		Candidates: []Candidate{{"YG9X2G", 0.97}, {"YG9XZG", 0.41}},
		Time:       time.Date(2026, 11, 27, 10, 4, 5, 123456789, time.UTC),
		TimeSource: TimeSourceGNSS,
		Position: &Position{Lat: 47.66198, Lon: -122.32639, AltM: &alt, SpeedMPS: 13.2,
			HeadingDeg: 286.3, HDOP: &hdop, Fix: Fix3D, FixAgeMS: 180},
		Box: [4]int{930, 365, 114, 45}, Frames: 7, CropJPEG: []byte{0xff, 0xd8, 0xff, 0xd9},
		Hotlist: Hotlist{Hit: false},
	}
}

type schemaNode struct {
	Required   []string              `json:"required"`
	Properties map[string]schemaNode `json:"properties"`
	Items      *schemaNode           `json:"items"`
	OneOf      []schemaNode          `json:"oneOf"`
	Type       any                   `json:"type"`
	AddProps   *bool                 `json:"additionalProperties"`
}

// checkAgainst checks required keys and, where additionalProperties is
// false, unknown keys, recursively. It is not a full JSON Schema validator:
// it checks the structure the schema promises.
func checkAgainst(t *testing.T, path string, s schemaNode, v any) {
	t.Helper()
	if len(s.OneOf) > 0 {
		if v == nil {
			return // the null branch
		}
		for _, alt := range s.OneOf {
			if alt.Type == "object" {
				checkAgainst(t, path, alt, v)
			}
		}
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range s.Required {
			if _, ok := x[k]; !ok {
				t.Errorf("%s: required key %q missing", path, k)
			}
		}
		for k, sub := range x {
			ps, ok := s.Properties[k]
			if !ok {
				if s.AddProps != nil && !*s.AddProps {
					t.Errorf("%s: key %q not in schema", path, k)
				}
				continue
			}
			checkAgainst(t, path+"."+k, ps, sub)
		}
	case []any:
		if s.Items != nil {
			for _, e := range x {
				checkAgainst(t, path+"[]", *s.Items, e)
			}
		}
	}
}

func TestRead_SchemaExample(t *testing.T) {
	var schema schemaNode
	if err := json.Unmarshal(ReadSchemaV1, &schema); err != nil {
		t.Fatalf("schema: %v", err)
	}
	var example map[string]any
	if err := json.Unmarshal(ReadExampleV1, &example); err != nil {
		t.Fatalf("example: %v", err)
	}
	checkAgainst(t, "example", schema, example)

	// Round trip: example -> Read -> JSON equals the example.
	r, err := ParseRead(ReadExampleV1)
	if err != nil {
		t.Fatalf("ParseRead(example): %v", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, example) {
		t.Fatalf("round trip differs:\n got %s\nwant %s", b, ReadExampleV1)
	}

	// A fully populated Read marshals to keys the schema knows, and a
	// minimal one to all the required keys.
	for _, r := range []Read{validRead(), {V: 1}} {
		b, _ := json.Marshal(r)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		checkAgainst(t, "marshalled", schema, m)
	}
	if !slices.Contains(schema.Required, "position") {
		t.Error("position must be required (null when there is no fix)")
	}
}

func TestRead_MarshalJSON(t *testing.T) {
	r := validRead()
	r.Time = time.Date(2026, 11, 27, 11, 4, 5, 123999999, time.FixedZone("CET", 3600))
	r.Candidates = nil
	r.Position = nil
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"time":"2026-11-27T10:04:05.123Z"`, `"candidates":[]`, `"position":null`, `"hotlist":{"hit":false}`, `"crop_jpeg":"/9j/2Q=="`, `"v":1`} {
		if !strings.Contains(s, want) {
			t.Errorf("marshal lacks %s: %s", want, s)
		}
	}
	if strings.Count(s, `"time"`) != 1 {
		t.Errorf("time marshalled twice: %s", s)
	}
	// Through a pointer too.
	b2, _ := json.Marshal(&r)
	if string(b2) != s {
		t.Errorf("pointer marshal differs: %s", b2)
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(), NewID()
	if a == b {
		t.Fatal("NewID repeated")
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 {
		t.Fatalf("NewID %q: version %v, err %v", a, u.Version(), err)
	}
	if !(a < b) {
		t.Errorf("UUIDv7 not time-ordered: %s !< %s", a, b)
	}
}

func TestRead_Validate(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Read)
		field string // "" = valid
	}{
		{"OK", func(*Read) {}, ""},
		{"NoFix", func(r *Read) { r.Position = nil }, ""},
		{"NoCandidates", func(r *Read) { r.Candidates = []Candidate{} }, ""},
		{"Hit", func(r *Read) {
			r.Hotlist = Hotlist{Hit: true, List: "stolen", Entry: "YG9X2G", Match: "exact", Reason: "reported 2026-11-20"}
		}, ""},
		{"Version", func(r *Read) { r.V = 2 }, "v"},
		{"EmptyID", func(r *Read) { r.ID = "" }, "id"},
		{"BadID", func(r *Read) { r.ID = "not-a-uuid" }, "id"},
		{"Device", func(r *Read) { r.Device = "" }, "device"},
		{"Camera", func(r *Read) { r.Camera = "" }, "camera"},
		{"Plate", func(r *Read) { r.Plate = "" }, "plate"},
		{"ConfidenceHigh", func(r *Read) { r.Confidence = 1.01 }, "confidence"},
		{"ConfidenceNaN", func(r *Read) { r.Confidence = math.NaN() }, "confidence"},
		{"CandidatesNil", func(r *Read) { r.Candidates = nil }, "candidates"},
		{"CandidateConfidence", func(r *Read) { r.Candidates[1].Confidence = -0.1 }, "candidates[1].confidence"},
		{"Time", func(r *Read) { r.Time = time.Time{} }, "time"},
		{"TimeSource", func(r *Read) { r.TimeSource = "rtc" }, "time_source"},
		{"Lat", func(r *Read) { r.Position.Lat = 91 }, "position.lat"},
		{"Lon", func(r *Read) { r.Position.Lon = math.NaN() }, "position.lon"},
		{"Heading", func(r *Read) { r.Position.HeadingDeg = 360 }, "position.heading_deg"},
		{"Speed", func(r *Read) { r.Position.SpeedMPS = -1 }, "position.speed_mps"},
		{"Fix", func(r *Read) { r.Position.Fix = "none" }, "position.fix"},
		{"FixAge", func(r *Read) { r.Position.FixAgeMS = -5 }, "position.fix_age_ms"},
		{"Box", func(r *Read) { r.Box[2] = -1 }, "box"},
		{"Frames", func(r *Read) { r.Frames = 0 }, "frames"},
		{"HitWithoutList", func(r *Read) { r.Hotlist.Hit = true }, "hotlist.list"},
		{"HitWithoutEntry", func(r *Read) { r.Hotlist.Hit, r.Hotlist.List = true, "stolen" }, "hotlist.entry"},
		{"HitMatchKind", func(r *Read) { r.Hotlist = Hotlist{Hit: true, List: "l", Entry: "E", Match: "near"} }, "hotlist.match"},
		{"HitDistance", func(r *Read) { r.Hotlist = Hotlist{Hit: true, List: "l", Entry: "E", Distance: -1} }, "hotlist.distance"},
		{"FrameTooBig", func(r *Read) { r.FrameJPEG = make([]byte, 9<<20) }, "frame_jpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRead()
			tt.mod(&r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRead) {
				t.Fatalf("Validate = %v, want ErrInvalidRead", err)
			}
			if !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

// TestRead_WireMirrorsRead guards MarshalJSON's mirror struct: every field of
// Read must appear in the output under its tag.
func TestRead_WireMirrorsRead(t *testing.T) {
	r := validRead()
	r.Hotlist = Hotlist{Hit: true, List: "l", Entry: "YG9XZG", Reason: "x", Match: "fuzzy", Distance: 0.25}
	r.FrameJPEG = []byte{0xFF, 0xD8, 0xFF, 0xD9}
	b, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	rt := reflect.TypeOf(r)
	for i := range rt.NumField() {
		tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if _, ok := m[tag]; !ok {
			t.Errorf("field %s (%q) missing from MarshalJSON output", rt.Field(i).Name, tag)
		}
	}
	var back Read
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r.Time = r.Time.Truncate(time.Millisecond)
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
	}
}
