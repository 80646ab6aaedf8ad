package gnsstest

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
)

const earthRadiusM = 6371008.8

// Curve turns the route at DegPerSec (positive = clockwise, to the right)
// between From and To after the route's start.
type Curve struct {
	From, To  time.Duration
	DegPerSec float64
}

// Route describes a synthetic drive: from a start time and position, at a
// constant speed, along TrackDeg, turning along Curves. Fixes renders it as
// one gnss.Fix per epoch.
type Route struct {
	Start    time.Time     // UTC time of the first epoch
	Lat, Lon float64       // start position, degrees
	AltM     float64       // constant altitude MSL
	SpeedMPS float64       // constant speed over ground
	TrackDeg float64       // initial true course
	Curves   []Curve       // turns; straight elsewhere
	Interval time.Duration // epoch interval, default 1s
	Duration time.Duration // length of the drive; epochs at 0, Interval, ... < Duration
	HDOP     float64       // default 0.9
	Sats     int           // default 9
}

// Fixes returns the route's epochs as 3D fixes.
func (r Route) Fixes() []gnss.Fix {
	if r.Interval <= 0 {
		r.Interval = time.Second
	}
	if r.HDOP == 0 {
		r.HDOP = 0.9
	}
	if r.Sats == 0 {
		r.Sats = 9
	}
	const step = 10 * time.Millisecond // integration step
	lat, lon, track := r.Lat, r.Lon, r.TrackDeg
	var fixes []gnss.Fix
	var el time.Duration
	for next := time.Duration(0); next < r.Duration; next += r.Interval {
		for ; el < next; el += step {
			dt := step.Seconds()
			tr := track * math.Pi / 180
			dist := r.SpeedMPS * dt
			lat += dist * math.Cos(tr) / earthRadiusM * 180 / math.Pi
			lon += dist * math.Sin(tr) / (earthRadiusM * math.Cos(lat*math.Pi/180)) * 180 / math.Pi
			for _, c := range r.Curves {
				if el >= c.From && el < c.To {
					track += c.DegPerSec * dt
				}
			}
			track = math.Mod(track+360, 360)
		}
		fixes = append(fixes, gnss.Fix{
			Time:     r.Start.Add(next).UTC(),
			Mode:     gnss.Mode3D,
			Lat:      lat,
			Lon:      lon,
			AltM:     r.AltM,
			HasAlt:   true,
			SpeedMPS: r.SpeedMPS,
			TrackDeg: track,
			HDOP:     r.HDOP,
			Sats:     r.Sats,
		})
	}
	return fixes
}

// RenderNMEA writes each fix as one epoch of GP-talker RMC, GGA, GSA and VTG
// sentences (CRLF). Positions carry 6 decimals of minutes (~2 mm), times 2
// decimals of seconds.
func RenderNMEA(fixes []gnss.Fix) []byte {
	var b strings.Builder
	for _, f := range fixes {
		for _, s := range EpochSentences(f) {
			b.WriteString(Sentence(s))
		}
	}
	return []byte(b.String())
}

// EpochSentences returns the bodies (no '$', no checksum) of the RMC, GGA,
// GSA and VTG sentences of one fix.
func EpochSentences(f gnss.Fix) []string {
	t := f.Time.UTC()
	hms := fmt.Sprintf("%02d%02d%02d.%02d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)
	dmy := fmt.Sprintf("%02d%02d%02d", t.Day(), int(t.Month()), t.Year()%100)
	lat, ns := nmeaCoord(f.Lat, 2, "N", "S")
	lon, ew := nmeaCoord(f.Lon, 3, "E", "W")
	knots := f.SpeedMPS * 3600 / 1852
	track := math.Mod(math.Round(f.TrackDeg*100)/100, 360)
	status, quality, fixType := "A", "1", "3"
	switch {
	case f.Mode < gnss.Mode2D:
		status, quality, fixType = "V", "0", "1"
	case f.Mode == gnss.Mode2D:
		fixType = "2"
	}
	alt := ""
	if f.HasAlt && f.Mode >= gnss.Mode3D {
		alt = fmt.Sprintf("%.1f", f.AltM)
	}
	prns := make([]string, 12)
	for i := 0; i < f.Sats && i < 12; i++ {
		prns[i] = fmt.Sprintf("%02d", []int{2, 5, 7, 9, 13, 15, 18, 20, 23, 26, 29, 30}[i])
	}
	return []string{
		fmt.Sprintf("GPRMC,%s,%s,%s,%s,%s,%s,%.3f,%.2f,%s,,,A", hms, status, lat, ns, lon, ew, knots, track, dmy),
		fmt.Sprintf("GPGGA,%s,%s,%s,%s,%s,%s,%02d,%.1f,%s,M,-21.6,M,,", hms, lat, ns, lon, ew, quality, f.Sats, f.HDOP, alt),
		fmt.Sprintf("GPGSA,A,%s,%s,%.1f,%.1f,%.1f", fixType, strings.Join(prns, ","), f.HDOP*1.6, f.HDOP, f.HDOP*1.3),
		fmt.Sprintf("GPVTG,%.2f,T,,M,%.3f,N,%.3f,K,A", track, knots, f.SpeedMPS*3.6),
	}
}

// nmeaCoord formats degrees as NMEA (d)ddmm.mmmmmm plus hemisphere.
func nmeaCoord(v float64, degDigits int, pos, neg string) (string, string) {
	h := pos
	if v < 0 {
		h, v = neg, -v
	}
	deg := math.Floor(v)
	minutes := (v - deg) * 60
	if math.Round(minutes*1e6) >= 60e6 { // rounding would print 60.000000
		deg, minutes = deg+1, 0
	}
	return fmt.Sprintf("%0*d%09.6f", degDigits, int(deg), minutes), h
}
