package gnss_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alpr-agent/alpr-agent/gnss"
)

func ExampleDecoder() {
	log := "# captured 2026-08-05\n" +
		"$GPRMC,055230.00,A,4739.718800,N,12219.583400,W,25.270,270.00,050826,,,A*4F\r\n" +
		"$GPGGA,055230.00,4739.718800,N,12219.583400,W,1,09,0.9,76.5,M,-21.6,M,,*6F\r\n" +
		"\xb5\x62\x01\x07 binary frames are skipped\r\n" +
		"$GPGSA,A,3,02,05,07,09,13,15,18,20,23,,,,1.4,0.9,1.2*38\r\n"
	d := gnss.NewDecoder(strings.NewReader(log))
	for {
		f, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s mode=%d %.5f,%.5f alt=%.1f\n", f.Time.Format(time.RFC3339), f.Mode, f.Lat, f.Lon, f.AltM)
	}
	st := d.Stats()
	fmt.Println("sentences:", st.Sentences, "comments:", st.Comments)
	// Output:
	// 2026-08-05T05:52:30Z mode=3 47.66198,-122.32639 alt=76.5
	// sentences: 3 comments: 1
}

func ExampleFix_MarshalJSON() {
	f := gnss.Fix{Time: time.Date(2026, 8, 5, 5, 52, 37, 800e6, time.UTC), Mode: 3,
		Lat: 47.66198, Lon: -122.32639, AltM: 76.5, HasAlt: true, SpeedMPS: 13, TrackDeg: 270, HDOP: 0.9}
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output:
	// {"time":"2026-08-05T05:52:37.800Z","mode":3,"lat":47.66198,"lon":-122.32639,"alt_m":76.5,"speed_mps":13,"track_deg":270,"hdop":0.9}
}

func ExampleReplay() {
	f, err := os.Open("../testdata/nmea/demo.nmea")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	n := 0
	err = gnss.Replay(context.Background(), f, func(fix gnss.Fix) error {
		n++
		return nil
	})
	fmt.Println(n, err)
	// Output:
	// 300 <nil>
}

func ExampleHistory_At() {
	h := gnss.NewHistory(3*time.Second, 64)
	t0 := time.Date(2026, 8, 5, 5, 52, 30, 0, time.UTC)
	local := time.Now()
	// Two fixes one second apart, each received 100 ms after its epoch.
	h.Add(gnss.Fix{Time: t0, Mode: 3, Lat: 47.66198, Lon: -122.32639}, local.Add(100*time.Millisecond))
	h.Add(gnss.Fix{Time: t0.Add(time.Second), Mode: 3, Lat: 47.66198, Lon: -122.32659}, local.Add(1100*time.Millisecond))
	// A frame captured at local+600ms was taken at GNSS time t0+500ms.
	p, ok := h.At(local.Add(600 * time.Millisecond))
	fmt.Println(ok, p.Time.Format("15:04:05.000"), fmt.Sprintf("%.5f", p.Lon), p.Age)
	// Output:
	// true 05:52:30.500 -122.32649 500ms
}
