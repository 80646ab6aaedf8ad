package gnss_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/alpr-agent/alpr-agent/gnss"
	"github.com/alpr-agent/alpr-agent/gnss/gnsstest"
)

// FuzzDecoder feeds arbitrary bytes to the Decoder: it must never panic or
// hang, must end with io.EOF, and must only return plausible fixes. The seed
// corpus lives in testdata/fuzz/FuzzDecoder.
func FuzzDecoder(f *testing.F) {
	f.Add(gnsstest.RenderNMEA(gnsstest.DemoRoute().Fixes()[:3]))
	f.Add([]byte("$GPGGA,,,,,,0,,,,M,,M,,*66\r\n$GPZDA,193913.00,07,09,2018,00,00*63\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := gnss.NewDecoder(bytes.NewReader(data))
		// Every fix needs at least one sentence of a dozen bytes, so more
		// calls than that means the decoder is not consuming input.
		for i := 0; i <= len(data)/12+2; i++ {
			fix, err := d.Next()
			if errors.Is(err, io.EOF) {
				st := d.Stats()
				if st.Fixes != uint64(i) {
					t.Fatalf("Stats().Fixes = %d after %d fixes", st.Fixes, i)
				}
				return
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if fix.Mode < gnss.Mode2D || fix.Mode > gnss.Mode3D {
				t.Fatalf("fix with mode %d", fix.Mode)
			}
			if math.IsNaN(fix.Lat) || math.IsNaN(fix.Lon) || math.Abs(fix.Lat) > 90 || math.Abs(fix.Lon) > 180 {
				t.Fatalf("fix with position %v,%v", fix.Lat, fix.Lon)
			}
			if fix.Time.IsZero() {
				t.Fatal("fix without time")
			}
			if _, err := fix.MarshalJSON(); err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
		}
		t.Fatalf("decoder returned more fixes than %d bytes can hold", len(data))
	})
}
