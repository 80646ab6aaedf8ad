package gnss_test

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
)

// nmeaLines frames each body as a sentence; bodies starting with '#' or '!'
// or containing '*' are written as they are (comments, broken lines).
func nmeaLines(bodies ...string) string {
	var b strings.Builder
	for _, s := range bodies {
		if strings.HasPrefix(s, "#") || strings.ContainsAny(s, "*\x00") || strings.HasPrefix(s, "RAW:") {
			b.WriteString(strings.TrimPrefix(s, "RAW:"))
			b.WriteString("\r\n")
			continue
		}
		b.WriteString(gnsstest.Sentence(s))
	}
	return b.String()
}

func decodeAll(t *testing.T, r io.Reader) ([]gnss.Fix, gnss.DecoderStats) {
	t.Helper()
	d := gnss.NewDecoder(r)
	var fixes []gnss.Fix
	for {
		f, err := d.Next()
		if errors.Is(err, io.EOF) {
			return fixes, d.Stats()
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if f.Mode < gnss.Mode2D {
			t.Fatalf("Next returned mode %d", f.Mode)
		}
		fixes = append(fixes, f)
	}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecoder_Next(t *testing.T) {
	const (
		rmc  = "GPRMC,055230.00,A,4739.718800,N,12219.583400,W,25.270,270.00,050826,,,A"
		gga  = "GPGGA,055230.00,4739.718800,N,12219.583400,W,1,09,0.9,76.5,M,-21.6,M,,"
		gsa3 = "GPGSA,A,3,02,05,07,09,13,15,18,20,23,,,,1.4,0.9,1.2"
		vtg  = "GPVTG,270.00,T,,M,25.270,N,46.800,K,A"
	)
	lat, lon := 47.66198, -122.32639
	tests := []struct {
		name   string
		in     string
		want   []gnss.Fix // only Time, Mode, Lat, Lon, HasAlt checked unless full
		full   bool
		check  func(t *testing.T, st gnss.DecoderStats)
		nfixes int // when want is nil
	}{
		{
			name: "full epoch",
			in:   nmeaLines(rmc, gga, gsa3, vtg),
			full: true,
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 3, Lat: lat, Lon: lon, AltM: 76.5, HasAlt: true,
				SpeedMPS: 25.27 * 1852 / 3600, TrackDeg: 270, HDOP: 0.9, Sats: 9}},
		},
		{
			name: "GN talker with one GSA per constellation",
			in: nmeaLines(
				"GNRMC,055230.00,A,4739.718800,N,12219.583400,W,0.1,,050826,,,A",
				"GNGGA,055230.00,4739.718800,N,12219.583400,W,1,12,0.8,76.5,M,-21.6,M,,",
				"GNGSA,A,3,01,11,31,14,22,32,04,,,,,,1.56,0.91,1.27",
				"GNGSA,A,3,67,83,76,82,68,,,,,,,,1.56,0.91,1.27",
			),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 3, Lat: lat, Lon: lon, HasAlt: true}},
		},
		{
			name:   "GGA without any date is not emitted",
			in:     nmeaLines(gga, "GPGGA,055231.00,4739.718800,N,12219.583400,W,1,09,0.9,76.5,M,-21.6,M,,"),
			nfixes: 0,
			check: func(t *testing.T, st gnss.DecoderStats) {
				if st.NoDate != 2 {
					t.Errorf("NoDate = %d, want 2", st.NoDate)
				}
			},
		},
		{
			name: "date known from a later RMC",
			in: nmeaLines(gga,
				"GPGGA,055231.00,4739.718800,N,12219.583400,W,1,09,0.9,76.5,M,-21.6,M,,",
				"GPRMC,055231.00,A,4739.718800,N,12219.583400,W,0,0,050826,,,A"),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:31Z"), Mode: 3, Lat: lat, Lon: lon, HasAlt: true}},
		},
		{
			name: "date from ZDA",
			in:   nmeaLines("GPZDA,055230.00,05,08,2026,00,00", gga),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 3, Lat: lat, Lon: lon, HasAlt: true}},
		},
		{
			name: "midnight rollover carries the date forward",
			in: nmeaLines(
				"GPRMC,235959.50,A,4739.718800,N,12219.583400,W,0,0,311226,,,A",
				"GPGGA,000000.50,4739.718800,N,12219.583400,W,1,09,0.9,76.5,M,-21.6,M,,"),
			want: []gnss.Fix{
				{Time: utc("2026-12-31T23:59:59.5Z"), Mode: 2, Lat: lat, Lon: lon},
				{Time: utc("2027-01-01T00:00:00.5Z"), Mode: 3, Lat: lat, Lon: lon, HasAlt: true},
			},
		},
		{
			name:   "RMC status V means no fix",
			in:     nmeaLines(strings.Replace(rmc, ",A,", ",V,", 1), gga, gsa3),
			nfixes: 0,
		},
		{
			name:   "GSA fix type 1 wins over GGA quality",
			in:     nmeaLines(gga, "GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9", rmc),
			nfixes: 0,
		},
		{
			name: "GSA 2D",
			in:   nmeaLines(rmc, gga, "GPGSA,A,2,02,05,07,,,,,,,,,,2.0,1.5,1.2"),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 2, Lat: lat, Lon: lon}},
		},
		{
			name:   "GGA quality 0",
			in:     nmeaLines("GPGGA,055230.00,4739.718800,N,12219.583400,W,0,00,,,M,,M,,", "GPZDA,055230.00,05,08,2026,00,00"),
			nfixes: 0,
		},
		{
			name:   "GGA quality 8 is a simulator",
			in:     nmeaLines("GPGGA,055230,4739.718800,N,12219.583400,W,8,09,2.0,695.7,M,51.6,M,,", "GPZDA,055230.00,05,08,2026,00,00"),
			nfixes: 0,
		},
		{
			name:   "GGA fix from zero satellites without GSA",
			in:     nmeaLines("GPGGA,055230.00,4739.718800,N,12219.583400,W,1,00,3.3,10.8,M,,M,,", rmc),
			nfixes: 0,
		},
		{
			name: "GGA fix from zero satellites vouched for by GSA",
			in:   nmeaLines("GPGGA,055230.00,4739.718800,N,12219.583400,W,2,00,2.5,-9.1,M,43.9,M,,", rmc, "GPGSA,A,2,,,,,,,,,,,,,2.7,2.5,1.0"),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 2, Lat: lat, Lon: lon}},
		},
		{
			name: "RMC only, odd variation direction",
			in:   nmeaLines("GPRMC,212614.879,A,4839.9488,N,00214.8863,E,0.00,0.0,181207,0,N"),
			want: []gnss.Fix{{Time: utc("2007-12-18T21:26:14.879Z"), Mode: 2, Lat: 48.66581333333333, Lon: 2.248105}},
		},
		{
			name: "GNS and ZDA",
			in: nmeaLines("GPZDA,120213.000,31,07,2022,00,00",
				"GNGNS,120213.000,5957.0062,N,01100.6429,E,NDD,11,1.3,168.9,39.5,,,V"),
			want: []gnss.Fix{{Time: utc("2022-07-31T12:02:13Z"), Mode: 3, Lat: 59.95010333333333, Lon: 11.010715, HasAlt: true}},
		},
		{
			name:   "missing checksum is dropped",
			in:     "$" + rmc + "\r\n",
			nfixes: 0,
			check: func(t *testing.T, st gnss.DecoderStats) {
				if st.BadChecksum != 1 {
					t.Errorf("BadChecksum = %d, want 1", st.BadChecksum)
				}
			},
		},
		{
			name: "lower-case checksum and LF line ends",
			in:   lowerChecksumLF(gnsstest.Sentence(rmc)),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 2, Lat: lat, Lon: lon}},
		},
		{
			name: "comment lines and blank lines",
			in:   "# header\n\n" + nmeaLines(rmc) + "# $GPRMC in a comment is not a sentence\n",
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 2, Lat: lat, Lon: lon}},
			check: func(t *testing.T, st gnss.DecoderStats) {
				if st.Comments != 2 || st.Sentences != 1 {
					t.Errorf("Comments = %d Sentences = %d, want 2 and 1", st.Comments, st.Sentences)
				}
			},
		},
		{
			name: "repeated epoch time is emitted once",
			in:   nmeaLines(rmc, gga, "GPGSV,1,1,01,05,45,120,40", rmc),
			want: []gnss.Fix{{Time: utc("2026-08-05T05:52:30Z"), Mode: 3, Lat: lat, Lon: lon, HasAlt: true}},
		},
		{
			name:   "empty position",
			in:     nmeaLines("GPRMC,055230.00,A,,,,,0,0,050826,,,A"),
			nfixes: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st := decodeAll(t, strings.NewReader(tt.in))
			if tt.check != nil {
				tt.check(t, st)
			}
			if tt.want == nil {
				if len(got) != tt.nfixes {
					t.Fatalf("got %d fixes %+v, want %d", len(got), got, tt.nfixes)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d fixes %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if !g.Time.Equal(w.Time) || g.Mode != w.Mode || g.HasAlt != w.HasAlt ||
					math.Abs(g.Lat-w.Lat) > 1e-9 || math.Abs(g.Lon-w.Lon) > 1e-9 {
					t.Errorf("fix %d = %+v, want %+v", i, g, w)
				}
				if tt.full && (math.Abs(g.AltM-w.AltM) > 1e-9 || math.Abs(g.SpeedMPS-w.SpeedMPS) > 1e-9 ||
					g.TrackDeg != w.TrackDeg || g.HDOP != w.HDOP || g.Sats != w.Sats) {
					t.Errorf("fix %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// lowerChecksumLF turns "$...*4F\r\n" into "$...*4f\n".
func lowerChecksumLF(s string) string {
	s = strings.TrimSuffix(s, "\r\n")
	return s[:len(s)-2] + strings.ToLower(s[len(s)-2:]) + "\n"
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// TestDecoder_Junk decodes the committed fixture of binary frames, bad
// checksums and fragments.
func TestDecoder_Junk(t *testing.T) {
	got, st := decodeAll(t, strings.NewReader(string(readRepoFile(t, "testdata/nmea/junk.nmea"))))
	start := utc("2026-08-05T05:52:30Z")
	if len(got) != len(gnsstest.JunkExpectedEpochs) {
		t.Fatalf("got %d fixes, want %d: %+v", len(got), len(gnsstest.JunkExpectedEpochs), got)
	}
	for i, sec := range gnsstest.JunkExpectedEpochs {
		if want := start.Add(time.Duration(sec) * time.Second); !got[i].Time.Equal(want) {
			t.Errorf("fix %d at %s, want %s", i, got[i].Time, want)
		}
	}
	if st.BadChecksum != 3 {
		t.Errorf("BadChecksum = %d, want 3", st.BadChecksum)
	}
	if st.Comments != 2 || st.SkippedBytes == 0 || st.Ignored != 2 {
		t.Errorf("stats = %+v, want 2 comments, 2 ignored, skipped bytes", st)
	}
}

// TestDecoder_Demo checks the demo log against the route that generated it.
func TestDecoder_Demo(t *testing.T) {
	got, st := decodeAll(t, strings.NewReader(string(readRepoFile(t, "testdata/nmea/demo.nmea"))))
	want := gnsstest.DemoRoute().Fixes()
	if len(got) != len(want) || len(want) != 300 {
		t.Fatalf("got %d fixes, want %d (300)", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Mode != 3 || math.Abs(g.Lat-w.Lat) > 1e-7 || math.Abs(g.Lon-w.Lon) > 1e-7 ||
			math.Abs(g.SpeedMPS-w.SpeedMPS) > 1e-3 || math.Abs(g.AltM-w.AltM) > 0.05 {
			t.Fatalf("fix %d = %+v, want %+v", i, g, w)
		}
	}
	if st.BadChecksum != 0 || st.Unparsed != 0 || st.Comments != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// TestDecoder_LearnsCycleEnd checks that once the receiver's cycle is
// learned, an epoch's fix is returned when its last sentence arrives, without
// waiting for the next epoch.
func TestDecoder_LearnsCycleEnd(t *testing.T) {
	fixes := gnsstest.DemoRoute().Fixes()[:3]
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		// Write three epochs, then stall (no fourth epoch, no EOF) until
		// the test ends.
		_, _ = pw.Write(gnsstest.RenderNMEA(fixes))
	}()
	d := gnss.NewDecoder(pr)
	got := make(chan gnss.Fix)
	go func() {
		for {
			f, err := d.Next()
			if err != nil {
				close(got)
				return
			}
			got <- f
		}
	}()
	for i := range fixes {
		select {
		case f := <-got:
			if !f.Time.Equal(fixes[i].Time) {
				t.Fatalf("fix %d at %s, want %s", i, f.Time, fixes[i].Time)
			}
		case <-time.After(10 * time.Second): // deadlock guard only
			t.Fatalf("fix %d not returned before the next epoch began", i)
		}
	}
	pw.Close()
}

// TestDecoder_ReadError checks that a read error other than EOF is returned
// wrapped and sticks.
func TestDecoder_ReadError(t *testing.T) {
	boom := errors.New("boom")
	d := gnss.NewDecoder(io.MultiReader(strings.NewReader(nmeaLines("GPGSV,1,1,01,05,45,120,40")), errReader{boom}))
	for i := 0; i < 2; i++ {
		if _, err := d.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next #%d = %v, want wrapped boom", i, err)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestFix_MarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		fix  gnss.Fix
		want string
	}{
		{
			name: "3D",
			fix: gnss.Fix{Time: utc("2026-08-05T05:52:37.8Z"), Mode: 3, Lat: 47.66198, Lon: -122.32639,
				AltM: 76.5, HasAlt: true, SpeedMPS: 13.2, TrackDeg: 286.3, HDOP: 0.9, Sats: 9},
			want: `{"time":"2026-08-05T05:52:37.800Z","mode":3,"lat":47.66198,"lon":-122.32639,"alt_m":76.5,"speed_mps":13.2,"track_deg":286.3,"hdop":0.9}`,
		},
		{
			name: "2D without hdop, non-UTC time",
			fix:  gnss.Fix{Time: time.Date(2026, 8, 5, 7, 52, 37, 0, time.FixedZone("CEST", 7200)), Mode: 2, Lat: -1.5, Lon: 2},
			want: `{"time":"2026-08-05T05:52:37.000Z","mode":2,"lat":-1.5,"lon":2,"speed_mps":0,"track_deg":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.fix.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			var back gnss.Fix
			if err := back.UnmarshalJSON(b); err != nil {
				t.Fatal(err)
			}
			if !back.Time.Equal(tt.fix.Time) || back.Lat != tt.fix.Lat || back.HasAlt != tt.fix.HasAlt {
				t.Errorf("round trip = %+v, want %+v", back, tt.fix)
			}
		})
	}
}
