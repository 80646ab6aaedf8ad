package capture

import (
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

func TestFourCC(t *testing.T) {
	tests := []struct {
		in   string
		code uint32
	}{
		{"MJPG", 0x47504a4d},
		{"YUYV", 0x56595559},
		{"Y16 ", 0x20363159},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.in), func(t *testing.T) {
			code, err := fourcc(tt.in)
			if err != nil || code != tt.code {
				t.Fatalf("fourcc(%q) = %#x, %v; want %#x", tt.in, code, err, tt.code)
			}
			if s := fourccString(code); s != tt.in {
				t.Errorf("fourccString(%#x) = %q, want %q", code, s, tt.in)
			}
		})
	}
	for _, bad := range []string{"", "MJP", "MJPEG1", "MJ\x00G"} {
		if _, err := fourcc(bad); err == nil {
			t.Errorf("fourcc(%q) succeeded", bad)
		}
	}
	if s := fourccString(0); s != "????" {
		t.Errorf("fourccString(0) = %q", s)
	}
}

func TestParsePixelFormat_Aliases(t *testing.T) {
	for in, want := range map[string]string{"mjpeg": "MJPG", "MJPEG": "MJPG", "MJPG": "MJPG", "yuy2": "YUYV", "YUYV": "YUYV", "GREY": "GREY"} {
		if name, _, err := parsePixelFormat(in); err != nil || name != want {
			t.Errorf("parsePixelFormat(%q) = %q, %v; want %q", in, name, err, want)
		}
	}
}

// fakeDriver stores what is set, except the properties it refuses (kept
// at their old value) and those it rounds.
type fakeDriver struct {
	props  map[gocv.VideoCaptureProperties]float64
	refuse map[gocv.VideoCaptureProperties]bool
	round  map[gocv.VideoCaptureProperties]float64 // set always yields this
	sets   []gocv.VideoCaptureProperties
}

func (d *fakeDriver) Set(p gocv.VideoCaptureProperties, v float64) {
	d.sets = append(d.sets, p)
	switch {
	case d.refuse[p]:
	case d.round[p] != 0:
		d.props[p] = d.round[p]
	default:
		d.props[p] = v
	}
}

func (d *fakeDriver) Get(p gocv.VideoCaptureProperties) float64 { return d.props[p] }

func newFakeDriver() *fakeDriver {
	yuyv, _ := fourcc("YUYV")
	return &fakeDriver{
		props: map[gocv.VideoCaptureProperties]float64{
			gocv.VideoCaptureFOURCC:       float64(yuyv),
			gocv.VideoCaptureFrameWidth:   640,
			gocv.VideoCaptureFrameHeight:  480,
			gocv.VideoCaptureFPS:          30,
			gocv.VideoCaptureAutoExposure: 3,
		},
		refuse: map[gocv.VideoCaptureProperties]bool{},
		round:  map[gocv.VideoCaptureProperties]float64{},
	}
}

func TestApplyV4L2(t *testing.T) {
	cfg := Config{Kind: KindV4L2, Path: "/dev/video7", PixelFormat: "MJPEG", Width: 1920, Height: 1080, FPS: 25, ExposureUS: 2000, V4L2Gain: 40}

	t.Run("AllTaken", func(t *testing.T) {
		d := newFakeDriver()
		if warns := applyV4L2(d, cfg); len(warns) != 0 {
			t.Fatalf("warnings %v, want none", warns)
		}
		mjpg, _ := fourcc("MJPG")
		want := map[gocv.VideoCaptureProperties]float64{
			gocv.VideoCaptureFOURCC:       float64(mjpg),
			gocv.VideoCaptureFrameWidth:   1920,
			gocv.VideoCaptureFrameHeight:  1080,
			gocv.VideoCaptureFPS:          25,
			gocv.VideoCaptureAutoExposure: v4l2ExposureManual,
			gocv.VideoCaptureExposure:     20, // 100 µs units
			gocv.VideoCaptureGain:         40,
			gocv.VideoCaptureBufferSize:   2,
		}
		for p, v := range want {
			if d.props[p] != v {
				t.Errorf("property %d = %g, want %g", p, d.props[p], v)
			}
		}
		// The format decides which sizes exist, so it is set first.
		if d.sets[0] != gocv.VideoCaptureFOURCC {
			t.Errorf("first property set is %d, want FOURCC", d.sets[0])
		}
	})

	t.Run("Refused", func(t *testing.T) {
		d := newFakeDriver()
		d.refuse[gocv.VideoCaptureFOURCC] = true
		d.refuse[gocv.VideoCaptureGain] = true
		d.refuse[gocv.VideoCaptureAutoExposure] = true
		d.round[gocv.VideoCaptureFrameWidth] = 1280
		d.round[gocv.VideoCaptureFrameHeight] = 720
		d.round[gocv.VideoCaptureExposure] = 39
		warns := applyV4L2(d, cfg)
		var msgs []string
		for _, w := range warns {
			msgs = append(msgs, w.Error())
		}
		all := strings.Join(msgs, "\n")
		for _, want := range []string{
			`pixel format: asked MJPG, driver uses "YUYV"`,
			"size: asked 1920x1080, driver gives 1280x720",
			"auto exposure",
			"exposure: asked 2000 µs, driver reports 3900 µs",
			"gain: asked 40, driver reports 0",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("warnings lack %q:\n%s", want, all)
			}
		}
		for _, m := range msgs {
			if !strings.HasPrefix(m, "v4l2 device /dev/video7: ") {
				t.Errorf("warning %q does not name the device", m)
			}
		}
		if len(warns) != 5 {
			t.Errorf("%d warnings, want 5 (fps was taken):\n%s", len(warns), all)
		}
	})

	t.Run("NothingAsked", func(t *testing.T) {
		d := newFakeDriver()
		if warns := applyV4L2(d, Config{Kind: KindV4L2, Path: "/dev/video0"}); len(warns) != 0 {
			t.Errorf("warnings %v", warns)
		}
		if len(d.sets) != 1 || d.sets[0] != gocv.VideoCaptureBufferSize {
			t.Errorf("set %v, want only the buffer size", d.sets)
		}
	})
}
