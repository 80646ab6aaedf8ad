package capture_test

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

// carW is the width of a capturetest car at Scale 1 (CarSpec: "a 240x150
// car").
const carW = 240.0

// carInView is the span during which any part of car is inside a frame of
// width w: from Enter until its trailing edge leaves the far side.
func carInView(car capturetest.CarSpec, w int) (from, to time.Duration) {
	s := car.Scale
	if s <= 0 {
		s = 1
	}
	cross := (float64(w) + carW*s) / math.Abs(car.Speed)
	return car.Enter, car.Enter + time.Duration(cross*float64(time.Second))
}

// anyCarInView reports whether frame i shows (part of) a car, its view
// span widened by pad on both sides (the car's shadow overhangs its body
// a little) and by after at the end (the gate's hold-over).
func anyCarInView(spec capturetest.ClipSpec, i int, pad, after time.Duration) bool {
	t := time.Duration(float64(time.Second) * float64(i) / spec.FPS)
	for _, c := range spec.Cars {
		if from, to := carInView(c, spec.Width); t >= from-pad && t <= to+pad+after {
			return true
		}
	}
	return false
}

// gateRun is what a gate did on each frame of a clip.
type gateRun struct {
	pass   []bool
	why    []string // "motion", "held", "keepalive", "first" or ""
	scores []float64
	stats  capture.MotionStats
}

// renderClip renders every frame of spec; the Mats are closed when the test
// ends.
func renderClip(t testing.TB, spec capturetest.ClipSpec) []gocv.Mat {
	t.Helper()
	frames := make([]gocv.Mat, spec.Frames())
	for i := range frames {
		m, err := spec.FrameMat(i)
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = m
		t.Cleanup(func() { m.Close() })
	}
	return frames
}

// runGate plays spec through a new gate with cfg, in order, stamped as a
// file source stamps a clip. frames, if not nil, are spec's frames
// rendered already.
func runGate(t testing.TB, spec capturetest.ClipSpec, frames []gocv.Mat, cfg capture.MotionConfig) gateRun {
	t.Helper()
	g, err := capture.NewMotionGate(cfg)
	if err != nil {
		t.Fatalf("NewMotionGate: %v", err)
	}
	defer g.Close()
	t0 := time.Now()
	var run gateRun
	for i := range spec.Frames() {
		var m gocv.Mat
		if frames != nil {
			m = frames[i]
		} else if m, err = spec.FrameMat(i); err != nil {
			t.Fatal(err)
		}
		f := capture.Frame{Img: m, Seq: uint64(i + 1), Time: t0.Add(time.Duration(float64(time.Second) * float64(i) / spec.FPS))}
		before := g.Stats()
		pass, score := g.Check(f)
		if frames == nil {
			f.Close()
		}
		after := g.Stats()
		why := ""
		switch {
		case after.Motion > before.Motion:
			why = "motion"
		case after.Held > before.Held:
			why = "held"
		case after.KeepAlive > before.KeepAlive:
			why = "keepalive"
		case pass:
			why = "first"
		}
		run.pass = append(run.pass, pass)
		run.why = append(run.why, why)
		run.scores = append(run.scores, score)
	}
	run.stats = g.Stats()
	if s := run.stats; s.Checked != uint64(spec.Frames()) || s.Passed+s.Skipped != s.Checked {
		t.Errorf("stats %+v do not add up over %d frames", s, spec.Frames())
	}
	return run
}

// plateFrames are the frames where the ground truth shows a plate whole.
func plateFrames(spec capturetest.ClipSpec) map[int]string {
	out := map[int]string{}
	for _, p := range spec.GroundTruth().Plates {
		for _, f := range p.Frames {
			out[f.Frame] = p.Plate
		}
	}
	return out
}

// spacedClip is DefaultClip's camera (blur, heavy-blur frames, noise,
// brightness jitter) with two cars and empty road before, between and
// after them.
func spacedClip() capturetest.ClipSpec {
	spec := capturetest.DefaultClip()
	spec.Duration = 20 * time.Second
	spec.Cars = []capturetest.CarSpec{
		{Plate: "7KMR415", Enter: 2 * time.Second, Speed: -150, Lane: 348},
		{Plate: "CZH5830", Enter: 12 * time.Second, Speed: 160, Lane: 176, Scale: 0.9},
	}
	return spec
}

func TestMotionGate_Clip(t *testing.T) {
	checkLeaks(t)
	spec := spacedClip()
	run := runGate(t, spec, nil, capture.MotionConfig{})
	plates := plateFrames(spec)
	if len(plates) < 40 {
		t.Fatalf("only %d frames show a plate: the clip does not exercise the gate", len(plates))
	}
	for i, p := range plates {
		if !run.pass[i] {
			t.Errorf("frame %d shows plate %s but the gate skipped it (score %.4f)", i, p, run.scores[i])
		}
	}
	pad := 200 * time.Millisecond
	empty, emptySkipped := 0, 0
	for i := range run.pass {
		if anyCarInView(spec, i, pad, 0) {
			continue
		}
		if run.why[i] == "motion" {
			t.Errorf("frame %d: no car in view, but motion (score %.4f)", i, run.scores[i])
		}
		// Past the hold-over after a car, only keep-alives may pass.
		if i > 0 && !anyCarInView(spec, i, pad, capture.DefaultMotionHold) {
			empty++
			if !run.pass[i] {
				emptySkipped++
			} else if run.why[i] != "keepalive" {
				t.Errorf("frame %d: empty road passed as %q", i, run.why[i])
			}
		}
	}
	// 2 s keep-alive at 10 fps: at most one frame in 20 passes.
	if empty < 50 || emptySkipped < empty*19/20-2 {
		t.Errorf("empty road: %d of %d frames skipped, want all but the keep-alives", emptySkipped, empty)
	}
	s := run.stats
	t.Logf("spaced clip (%d frames, %d with a plate, %d empty past the hold): passed %d (motion %d, held %d, keep-alive %d), skipped %d",
		s.Checked, len(plates), empty, s.Passed, s.Motion, s.Held, s.KeepAlive, s.Skipped)
}

func TestMotionGate_DefaultClip(t *testing.T) {
	// The demo clip has a car in view almost all the time: the gate must
	// pass every plate frame; what it saves is reported.
	spec := capturetest.DefaultClip()
	run := runGate(t, spec, nil, capture.MotionConfig{})
	for i, p := range plateFrames(spec) {
		if !run.pass[i] {
			t.Errorf("frame %d shows plate %s but the gate skipped it (score %.4f)", i, p, run.scores[i])
		}
	}
	for i := range run.pass {
		if run.why[i] == "motion" && !anyCarInView(spec, i, 200*time.Millisecond, 0) {
			t.Errorf("frame %d: no car in view, but motion (score %.4f)", i, run.scores[i])
		}
	}
	s := run.stats
	t.Logf("DefaultClip: %d frames, passed %d (motion %d, held %d, keep-alive %d), skipped %d",
		s.Checked, s.Passed, s.Motion, s.Held, s.KeepAlive, s.Skipped)
}

func TestMotionGate_StaticSceneOnlyKeepAlives(t *testing.T) {
	checkLeaks(t)
	// The empty road for 10 s: every frame has fresh sensor noise, its own
	// brightness jitter (±8%) and some are heavily blurred.
	spec := capturetest.DefaultClip()
	spec.Cars = nil
	spec.Duration = 10 * time.Second
	frames := renderClip(t, spec)
	run := runGate(t, spec, frames, capture.MotionConfig{})
	s := run.stats
	// Frame 0 passes (nothing to compare with), then one keep-alive per
	// 2 s: frames 20, 40, 60 and 80.
	if s.Motion != 0 || s.Held != 0 || s.KeepAlive != 4 || s.Passed != 5 {
		t.Errorf("static scene: %+v; want only the first frame and 4 keep-alives", s)
	}
	for i, why := range run.why {
		if why == "keepalive" && i%20 != 0 {
			t.Errorf("keep-alive at frame %d, want every 20th", i)
		}
	}
	maxScore := 0.0
	for _, sc := range run.scores[1:] {
		maxScore = max(maxScore, sc)
	}
	t.Logf("static scene: max score %.5f (threshold %v)", maxScore, capture.DefaultMotionThreshold)

	// Keep-alives off: only the first frame.
	run = runGate(t, spec, frames, capture.MotionConfig{KeepAlive: -1})
	if run.stats.Passed != 1 {
		t.Errorf("static scene without keep-alive: %+v, want only the first frame", run.stats)
	}
}

// oneCar is the empty road with one car in lane (176 = far, top half; 348
// = near, bottom half), crossing in about 4.5 s.
func oneCar(lane int) capturetest.ClipSpec {
	spec := capturetest.DefaultClip()
	spec.Duration = 6 * time.Second
	spec.Cars = []capturetest.CarSpec{{Plate: "YG9X2G", Enter: 500 * time.Millisecond, Speed: 200, Lane: lane, Scale: 0.9}}
	return spec
}

func TestMotionGate_ZoneAndMask(t *testing.T) {
	far := capture.Polygon{{0, 0}, {1, 0}, {1, 0.5}, {0, 0.5}} // the far lane, as a polygon
	near := capture.ZoneRect(0, 0.55, 1, 1)                    // the near lane, as a rectangle
	// A mask of another size than the frames (it is stretched): the top
	// half watched, the near lane (bottom half) masked out.
	topHalf := writeMask(t, 64, 36, func(_, y int) bool { return y < 18 })
	tests := []struct {
		name string
		lane int
		cfg  capture.MotionConfig
		// wantSeen: the car passes on every plate frame; otherwise only
		// the first frame passes.
		wantSeen bool
	}{
		{"FarCarFarZone", 176, capture.MotionConfig{Zone: []capture.Polygon{far}}, true},
		{"NearCarFarZone", 348, capture.MotionConfig{Zone: []capture.Polygon{far}}, false},
		{"NearCarNearZone", 348, capture.MotionConfig{Zone: []capture.Polygon{near}}, true},
		{"FarCarNearZone", 176, capture.MotionConfig{Zone: []capture.Polygon{near}}, false},
		{"NearCarBothZones", 348, capture.MotionConfig{Zone: []capture.Polygon{far, near}}, true},
		{"NearCarMasked", 348, capture.MotionConfig{Mask: topHalf}, false},
		{"FarCarUnmasked", 176, capture.MotionConfig{Mask: topHalf}, true},
	}
	frames := map[int][]gocv.Mat{176: renderClip(t, oneCar(176)), 348: renderClip(t, oneCar(348))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := oneCar(tt.lane)
			tt.cfg.KeepAlive = -1
			checkSeen(t, spec, runGate(t, spec, frames[tt.lane], tt.cfg), tt.wantSeen)
		})
	}
	t.Run("MaskAndZoneDisjoint", func(t *testing.T) {
		// Mask watches the top half, zone the bottom: no pixel is
		// watched, so the gate cannot judge and fails open (every frame
		// passes).
		spec := oneCar(176)
		run := runGate(t, spec, frames[176], capture.MotionConfig{Mask: topHalf, Zone: []capture.Polygon{capture.ZoneRect(0, 0.6, 1, 1)}, KeepAlive: -1})
		if run.stats.Skipped != 0 {
			t.Errorf("no watched pixel: %+v, want every frame passed", run.stats)
		}
	})
}

// checkSeen: a car the gate should see passes on every plate frame; one it
// should not see passes nothing but the first frame.
func checkSeen(t *testing.T, spec capturetest.ClipSpec, run gateRun, wantSeen bool) {
	t.Helper()
	plates := plateFrames(spec)
	if len(plates) < 15 {
		t.Fatalf("only %d plate frames", len(plates))
	}
	if wantSeen {
		for i := range plates {
			if !run.pass[i] {
				t.Errorf("frame %d shows the plate in the watched area, skipped (score %.4f)", i, run.scores[i])
			}
		}
		return
	}
	if run.stats.Passed != 1 || run.stats.Motion != 0 {
		t.Errorf("car outside the watched area: %+v, want only the first frame passed", run.stats)
	}
}

// writeMask writes a w x h PNG, white where watch says.
func writeMask(t *testing.T, w, h int, watch func(x, y int) bool) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if watch(x, y) {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	path := filepath.Join(t.TempDir(), "mask.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewMotionGate_Errors(t *testing.T) {
	dir := t.TempDir()
	black := writeMask(t, 16, 16, func(int, int) bool { return false })
	notImage := filepath.Join(dir, "mask.png")
	if err := os.WriteFile(notImage, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  capture.MotionConfig
		want error
	}{
		{"MissingMask", capture.MotionConfig{Mask: filepath.Join(dir, "nope.png")}, fs.ErrNotExist},
		{"NotAnImage", capture.MotionConfig{Mask: notImage}, capture.ErrInvalidConfig},
		{"AllBlack", capture.MotionConfig{Mask: black}, capture.ErrInvalidConfig},
		{"OnePoint", capture.MotionConfig{Zone: []capture.Polygon{{{0.5, 0.5}}}}, capture.ErrInvalidConfig},
		{"OutOfRange", capture.MotionConfig{Zone: []capture.Polygon{capture.ZoneRect(0, 0, 1.5, 1)}}, capture.ErrInvalidConfig},
		{"NaN", capture.MotionConfig{Zone: []capture.Polygon{capture.ZoneRect(0, 0, math.NaN(), 1)}}, capture.ErrInvalidConfig},
		{"NoArea", capture.MotionConfig{Zone: []capture.Polygon{{{0, 0}, {0.5, 0.5}, {1, 1}}}}, capture.ErrInvalidConfig},
		{"Threshold", capture.MotionConfig{Threshold: 1}, capture.ErrInvalidConfig},
		{"NegativeThreshold", capture.MotionConfig{Threshold: -0.1}, capture.ErrInvalidConfig},
		{"PixelDelta", capture.MotionConfig{PixelDelta: 300}, capture.ErrInvalidConfig},
		{"Downscale", capture.MotionConfig{Downscale: -1}, capture.ErrInvalidConfig},
		{"Learn", capture.MotionConfig{Learn: -time.Second}, capture.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := capture.NewMotionGate(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Errorf("NewMotionGate = %v, want %v", err, tt.want)
			}
			if g != nil {
				g.Close()
			}
		})
	}
}

func TestMotionGate_Frames(t *testing.T) {
	checkLeaks(t)
	g, err := capture.NewMotionGate(capture.MotionConfig{KeepAlive: -1, Hold: -1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 100 * time.Millisecond) }
	check := func(i int, m gocv.Mat) bool {
		defer m.Close()
		pass, _ := g.Check(capture.Frame{Img: m, Seq: uint64(i), Time: at(i)})
		return pass
	}
	grey := func(v float64, w, h int) gocv.Mat {
		return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(v, v, v, 0), h, w, gocv.MatTypeCV8UC3)
	}
	if !check(0, grey(100, 320, 180)) {
		t.Error("first frame skipped")
	}
	if check(1, grey(100, 320, 180)) {
		t.Error("the same frame again passed")
	}
	if !check(2, grey(200, 320, 180)) {
		t.Error("a frame far brighter than the background skipped")
	}
	if !check(3, grey(100, 640, 360)) {
		t.Error("a frame of a new size skipped (the background must restart)")
	}
	if check(4, grey(100, 640, 360)) {
		t.Error("the same new-size frame again passed")
	}
	// Grey and BGRA frames are judged too; a float frame cannot be.
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 0, 0, 0), 360, 640, gocv.MatTypeCV8UC1)
	if check(5, m) {
		t.Error("a grey frame like the background passed")
	}
	m = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 100, 100, 255), 360, 640, gocv.MatTypeCV8UC4)
	if check(6, m) {
		t.Error("a BGRA frame like the background passed")
	}
	if !check(7, gocv.NewMatWithSize(360, 640, gocv.MatTypeCV32FC3)) {
		t.Error("a float frame (cannot judge) skipped")
	}
	if !check(8, gocv.NewMat()) {
		t.Error("an empty frame (cannot judge) skipped")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !check(9, grey(100, 640, 360)) {
		t.Error("Check after Close skipped a frame")
	}
	if s := g.Stats(); s.Checked != 10 || s.Passed != 6 || s.Skipped != 4 {
		t.Errorf("stats %+v, want 10 checked, 6 passed, 4 skipped", s)
	}
}

func TestMotionGate_HoldOver(t *testing.T) {
	// One frame of motion, then still frames: with a 1 s hold, the next
	// 10 frames (at 10 fps) pass, then none.
	g, err := capture.NewMotionGate(capture.MotionConfig{KeepAlive: -1, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	t0 := time.Now()
	bg := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 90, 90, 0), 180, 320, gocv.MatTypeCV8UC3)
	defer bg.Close()
	car := bg.Clone()
	defer car.Close()
	gocv.Rectangle(&car, image.Rect(100, 60, 200, 140), color.RGBA{220, 220, 60, 0}, -1) // grey ~200 on 90
	var pass []bool
	for i := range 30 {
		m := bg
		if i == 5 {
			m = car
		}
		p, _ := g.Check(capture.Frame{Img: m, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * 100 * time.Millisecond)})
		pass = append(pass, p)
	}
	for i, p := range pass {
		want := i == 0 || (i >= 5 && i <= 15)
		if p != want {
			t.Errorf("frame %d: pass %v, want %v", i, p, want)
		}
	}
	if s := g.Stats(); s.Motion != 1 || s.Held != 10 {
		t.Errorf("stats %+v, want 1 motion and 10 held", s)
	}
}

// BenchmarkMotionGate measures one Check on alternating frames of a clip
// rendered at camera sizes (the car moves between them).
func BenchmarkMotionGate(b *testing.B) {
	for _, sz := range []struct {
		name string
		w, h int
	}{{"720p", 1280, 720}, {"1080p", 1920, 1080}} {
		b.Run(sz.name, func(b *testing.B) {
			spec := capturetest.DefaultClip()
			spec.Width, spec.Height = sz.w, sz.h
			spec.Cars = []capturetest.CarSpec{{Plate: "YG9X2G", Speed: 400, Lane: sz.h * 3 / 4, Scale: float64(sz.h) / 360}}
			var frames [2]gocv.Mat
			for i := range frames {
				m, err := spec.FrameMat(10 + i)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				frames[i] = m
			}
			g, err := capture.NewMotionGate(capture.MotionConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			t0 := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g.Check(capture.Frame{Img: frames[i%2], Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * 40 * time.Millisecond)})
			}
		})
	}
}

// A gate watching the lower half of the frame: the first frame passes
// (nothing to compare with yet), the empty road is skipped, a car passes,
// and frames keep passing for the 1 s hold-over after it.
func ExampleMotionGate() {
	g, err := capture.NewMotionGate(capture.MotionConfig{
		Zone: []capture.Polygon{capture.ZoneRect(0, 0.5, 1, 1)},
		Hold: time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	road := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 100, 100, 0), 360, 640, gocv.MatTypeCV8UC3)
	defer road.Close()
	car := road.Clone()
	defer car.Close()
	gocv.Rectangle(&car, image.Rect(200, 220, 440, 350), color.RGBA{230, 230, 230, 0}, -1)

	t0 := time.Now()
	for i, img := range []gocv.Mat{road, road, car, road, road, road} {
		f := capture.Frame{Img: img, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * 500 * time.Millisecond)}
		pass, score := g.Check(f) // the caller still owns f
		fmt.Printf("frame %d: pass %v, score %.2f\n", f.Seq, pass, score)
	}
	s := g.Stats()
	fmt.Printf("checked %d, passed %d (motion %d, held %d), skipped %d\n", s.Checked, s.Passed, s.Motion, s.Held, s.Skipped)
	// Output:
	// frame 1: pass true, score 1.00
	// frame 2: pass false, score 0.00
	// frame 3: pass true, score 0.30
	// frame 4: pass true, score 0.00
	// frame 5: pass true, score 0.00
	// frame 6: pass false, score 0.00
	// checked 6, passed 4 (motion 1, held 2), skipped 2
}
