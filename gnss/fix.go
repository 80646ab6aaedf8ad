package gnss

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Fix is one navigation solution of the receiver (one epoch).
type Fix struct {
	Time     time.Time // UTC time of the epoch from the receiver
	Mode     int       // 2 = 2D, 3 = 3D (no Fix is produced for mode<2)
	Lat, Lon float64   // degrees
	AltM     float64   // altitude MSL, metres (valid when HasAlt)
	HasAlt   bool
	SpeedMPS float64 // over ground
	TrackDeg float64 // true course
	HDOP     float64 // 0 when unknown
	Sats     int     // satellites used, 0 when unknown
}

// Fix modes, as gpsd numbers them.
const (
	ModeNoFix = 1
	Mode2D    = 2
	Mode3D    = 3
)

// jsonTimeLayout is RFC 3339 in UTC with exactly millisecond precision, the
// CLI line format (and gpsd's).
const jsonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes the CLI line format:
//
//	{"time":"2026-08-05T05:52:37.800Z","mode":3,"lat":47.66198,"lon":-122.32639,"alt_m":76.5,"speed_mps":13,"track_deg":270,"hdop":0.9}
//
// alt_m is omitted when !HasAlt and hdop when it is 0. Sats is not part of
// the line format.
func (f Fix) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 160)
	b = append(b, `{"time":`...)
	b = strconv.AppendQuote(b, f.Time.UTC().Format(jsonTimeLayout))
	b = append(b, `,"mode":`...)
	b = strconv.AppendInt(b, int64(f.Mode), 10)
	b = appendFloat(b, `,"lat":`, f.Lat, 9)
	b = appendFloat(b, `,"lon":`, f.Lon, 9)
	if f.HasAlt {
		b = appendFloat(b, `,"alt_m":`, f.AltM, 3)
	}
	b = appendFloat(b, `,"speed_mps":`, f.SpeedMPS, 3)
	b = appendFloat(b, `,"track_deg":`, f.TrackDeg, 3)
	if f.HDOP != 0 {
		b = appendFloat(b, `,"hdop":`, f.HDOP, 2)
	}
	b = append(b, '}')
	return b, nil
}

// appendFloat writes v rounded to the given decimals (9 for degrees, a
// millimetre's worth, as gpsd prints them: the NMEA minutes-to-degrees
// conversion otherwise shows as 47.66197999999999), without trailing
// zeros. NaN and Inf (never produced by the decoder) are written as 0 so
// the line stays JSON.
func appendFloat(b []byte, key string, v float64, decimals int) []byte {
	b = append(b, key...)
	if v != v || v > 1e308 || v < -1e308 {
		v = 0
	}
	p := math.Pow10(decimals)
	return strconv.AppendFloat(b, math.Round(v*p)/p, 'f', -1, 64)
}

// fixJSON is the decoding side of the line format.
type fixJSON struct {
	Time     time.Time `json:"time"`
	Mode     int       `json:"mode"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	AltM     *float64  `json:"alt_m"`
	SpeedMPS float64   `json:"speed_mps"`
	TrackDeg float64   `json:"track_deg"`
	HDOP     float64   `json:"hdop"`
}

// UnmarshalJSON reads the CLI line format written by MarshalJSON.
func (f *Fix) UnmarshalJSON(data []byte) error {
	var j fixJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*f = Fix{Time: j.Time.UTC(), Mode: j.Mode, Lat: j.Lat, Lon: j.Lon,
		SpeedMPS: j.SpeedMPS, TrackDeg: j.TrackDeg, HDOP: j.HDOP}
	if j.AltM != nil {
		f.AltM, f.HasAlt = *j.AltM, true
	}
	return nil
}
