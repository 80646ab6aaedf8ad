package gnss

import (
	nmea "github.com/adrianmo/go-nmea"
)

// go-nmea's built-in constructors reject a whole sentence for one malformed
// field we do not need (a magnetic variation direction of "N", a missing DGPS
// station field, GGA quality 7/8, a short GSA). Receivers in the field do all
// of these. The lenient constructors below, registered as go-nmea custom
// parsers, keep go-nmea's field parsing but only fail on the fields a fix
// needs (time, status, position); every optional field is parsed on its own so
// that its error does not spread.

// lenientParsers overrides go-nmea's constructors for the types we use.
func lenientParsers() map[string]nmea.ParserFunc {
	return map[string]nmea.ParserFunc{
		nmea.TypeRMC: lenientRMC,
		nmea.TypeGGA: lenientGGA,
		nmea.TypeGNS: lenientGNS,
		nmea.TypeGLL: lenientGLL,
		nmea.TypeGSA: lenientGSA,
		nmea.TypeVTG: lenientVTG,
	}
}

// optFloat parses field i when present; a malformed or missing field gives 0.
func optFloat(s nmea.BaseSentence, i int) float64 {
	if i >= len(s.Fields) || s.Fields[i] == "" {
		return 0
	}
	p := nmea.NewParser(s)
	v := p.Float64(i, "")
	if p.Err() != nil {
		return 0
	}
	return v
}

func optInt(s nmea.BaseSentence, i int) int64 {
	if i >= len(s.Fields) || s.Fields[i] == "" {
		return 0
	}
	p := nmea.NewParser(s)
	v := p.Int64(i, "")
	if p.Err() != nil {
		return 0
	}
	return v
}

func optString(s nmea.BaseSentence, i int) string {
	if i >= len(s.Fields) {
		return ""
	}
	return s.Fields[i]
}

// latLon parses a position pair only when both fields are set: an empty
// position is not an error, it is "no position" (checked by the caller).
func latLon(p *nmea.Parser, s nmea.BaseSentence, i int) (lat, lon float64) {
	if !fieldSet(s.Fields, i) || !fieldSet(s.Fields, i+2) {
		return 0, 0
	}
	return p.LatLong(i, i+1, "latitude"), p.LatLong(i+2, i+3, "longitude")
}

func lenientRMC(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	m := nmea.RMC{BaseSentence: s}
	m.Time = p.Time(0, "time")
	m.Validity = p.EnumString(1, "validity", nmea.ValidRMC, nmea.InvalidRMC)
	m.Latitude, m.Longitude = latLon(p, s, 2)
	m.Speed = optFloat(s, 6)
	m.Course = optFloat(s, 7)
	if fieldSet(s.Fields, 8) {
		dp := nmea.NewParser(s)
		if d := dp.Date(8, "date"); dp.Err() == nil {
			m.Date = d
		}
	}
	m.Variation = optFloat(s, 9)
	if optString(s, 10) == nmea.West {
		m.Variation = -m.Variation
	}
	m.FFAMode = optString(s, 11)
	m.NavStatus = optString(s, 12)
	return m, p.Err()
}

func lenientGGA(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	m := nmea.GGA{BaseSentence: s}
	m.Time = p.Time(0, "time")
	m.Latitude, m.Longitude = latLon(p, s, 1)
	m.FixQuality = p.EnumString(5, "fix quality", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	m.NumSatellites = optInt(s, 6)
	m.HDOP = optFloat(s, 7)
	m.Altitude = optFloat(s, 8)
	m.Separation = optFloat(s, 10)
	m.DGPSAge = optString(s, 12)
	m.DGPSId = optString(s, 13)
	return m, p.Err()
}

func lenientGNS(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	m := nmea.GNS{BaseSentence: s}
	m.Time = p.Time(0, "time")
	m.Latitude, m.Longitude = latLon(p, s, 1)
	for _, c := range p.String(5, "mode") {
		m.Mode = append(m.Mode, string(c))
	}
	m.SVs = optInt(s, 6)
	m.HDOP = optFloat(s, 7)
	m.Altitude = optFloat(s, 8)
	m.Separation = optFloat(s, 9)
	m.NavStatus = optString(s, 12)
	return m, p.Err()
}

func lenientGLL(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	m := nmea.GLL{BaseSentence: s}
	m.Latitude, m.Longitude = latLon(p, s, 0)
	if fieldSet(s.Fields, 4) {
		m.Time = p.Time(4, "time")
	}
	m.Validity = optString(s, 5)
	m.FFAMode = optString(s, 6)
	return m, p.Err()
}

func lenientGSA(s nmea.BaseSentence) (nmea.Sentence, error) {
	p := nmea.NewParser(s)
	m := nmea.GSA{BaseSentence: s}
	m.Mode = optString(s, 0)
	m.FixType = p.EnumString(1, "fix type", nmea.FixNone, nmea.Fix2D, nmea.Fix3D)
	for i := 2; i < 14 && i < len(s.Fields); i++ {
		if v := s.Fields[i]; v != "" {
			m.SV = append(m.SV, v)
		}
	}
	m.PDOP = optFloat(s, 14)
	m.HDOP = optFloat(s, 15)
	m.VDOP = optFloat(s, 16)
	m.SystemID = optInt(s, 17)
	return m, p.Err()
}

func lenientVTG(s nmea.BaseSentence) (nmea.Sentence, error) {
	m := nmea.VTG{BaseSentence: s}
	m.TrueTrack = optFloat(s, 0)
	m.MagneticTrack = optFloat(s, 2)
	m.GroundSpeedKnots = optFloat(s, 4)
	m.GroundSpeedKPH = optFloat(s, 6)
	m.FFAMode = optString(s, 8)
	return m, nil
}
