package recognize

import (
	"image"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

// clipStep: the test recognizes every clipStep-th frame of the 10 fps clip.
const clipStep = 2

// clipFrame is what the real recognizer read on one frame of the clip.
type clipFrame struct {
	idx    int // frame index in the clip
	at     time.Time
	plates []Plate
	gate   bool // the motion gate let the frame through
}

// TestClip_OneReadPerCar plays the demo's synthetic clip (four cars in two
// lanes, optics blur, sensor noise, brightness jitter) through the real
// recognizer and the real Tracker, at 5 fps (every other frame of the
// 10 fps clip) to bound the test's time. A quarter of the frames are
// blurred with a sigma of 2.7 to 3.7 px, where (measured) single-frame
// reads go wrong or come back empty, instead of the demo's one in eight
// at 4.3 to 5.8 px, which only ever read empty. Each car must give exactly
// one pass, read right; and the clip must hold frames where a car's
// single-frame read is wrong or empty while its pass is right, which is
// what the vote is for. The clip starts with 3 s of empty road, so the
// motion gate has frames to skip; with the gate in front (skipped frames
// are not recognized, and tell the tracker only that time went by) the
// passes must be the same.
func TestClip_OneReadPerCar(t *testing.T) {
	r := testRecognizer(t, "us")
	spec := capturetest.DefaultClip()
	spec.BlurredFraction, spec.HeavyBlur = 0.25, 3.2
	const lead = 3 * time.Second
	spec.Duration += lead
	for i := range spec.Cars {
		spec.Cars[i].Enter += lead
	}
	truth := spec.GroundTruth()

	gate, err := capture.NewMotionGate(capture.MotionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	t0 := time.Now()
	var frames []clipFrame
	start := time.Now()
	for i := 0; i < spec.Frames(); i += clipStep {
		m, err := spec.FrameMat(i)
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(float64(time.Second) * float64(i) / spec.FPS))
		pass, _ := gate.Check(capture.Frame{Img: m, Seq: uint64(i + 1), Time: at})
		// Every frame is recognized, so the same reads can be tracked with
		// and without the gate; what the gate skips is simply not used.
		plates, err := r.Recognize(m)
		m.Close()
		if err != nil {
			t.Fatalf("Recognize frame %d: %v", i, err)
		}
		frames = append(frames, clipFrame{idx: i, at: at, plates: plates, gate: pass})
	}
	t.Logf("recognized %d frames in %v", len(frames), time.Since(start).Round(time.Millisecond))

	var voted []Pass // without the gate
	for _, gated := range []bool{false, true} {
		name := "NoGate"
		if gated {
			name = "MotionGate"
		}
		t.Run(name, func(t *testing.T) {
			passes, skipped := trackClip(frames, gated)
			checkPasses(t, truth, passes)
			if !gated {
				voted = passes
			}
			if gated {
				t.Logf("the gate skipped %d of %d frames", skipped, len(frames))
				if skipped < 10 {
					t.Errorf("the gate skipped %d frames, want most of the %v of empty road", skipped, lead)
				}
			}
		})
	}

	// Single-frame reads of each car where its plate is whole in view,
	// and of those wrong or empty, how many the car's right pass outvoted.
	var right, wrong, empty, blurred, outvoted int
	for _, p := range truth.Plates {
		passRight := false
		for _, v := range voted {
			passRight = passRight || Match(v.Plate.Text, p.Plate)
		}
		var pr, pw, pe int
		for _, pf := range p.Frames {
			if pf.Frame%clipStep != 0 {
				continue
			}
			f := frames[pf.Frame/clipStep]
			box := image.Rect(pf.Box[0], pf.Box[1], pf.Box[0]+pf.Box[2], pf.Box[1]+pf.Box[3])
			got := readAt(f.plates, box)
			switch {
			case Match(got, p.Plate):
				pr++
			case got == "":
				pe++
			default:
				pw++
				t.Logf("frame %d: %s read as %q (blurred %v)", pf.Frame, p.Plate, got, !pf.Readable)
			}
			if !pf.Readable {
				blurred++
			}
		}
		t.Logf("%s: single-frame reads right %d, wrong %d, empty %d; pass right %v", p.Plate, pr, pw, pe, passRight)
		right, wrong, empty = right+pr, wrong+pw, empty+pe
		if passRight {
			outvoted += pw + pe
		}
	}
	t.Logf("all cars: %d frames with a whole plate (%d blurred): single-frame reads right %d, wrong %d, empty %d; %d wrong or empty on cars whose pass is right",
		right+wrong+empty, blurred, right, wrong, empty, outvoted)
	if outvoted == 0 {
		t.Error("no frame where a single-frame read is wrong or empty and the pass right: the clip does not show what the vote is for")
	}
	if right == 0 {
		t.Error("no single-frame read is right")
	}
}

// trackClip runs the tracker over the recognized frames; with gated, the
// frames the gate skipped are observed as frames with nothing on them.
func trackClip(frames []clipFrame, gated bool) (passes []Pass, skipped int) {
	tr := NewTracker(DefaultTrackerConfig())
	for _, f := range frames {
		var seen []Sighting
		if !gated || f.gate {
			for _, p := range f.plates {
				seen = append(seen, Sighting{Plate: p})
			}
		} else {
			skipped++
		}
		passes = append(passes, tr.Observe(f.at, uint64(f.idx+1), seen)...)
	}
	return append(passes, tr.Flush()...), skipped
}

// checkPasses wants exactly one pass per car of the clip, read right.
func checkPasses(t *testing.T, truth capturetest.Truth, passes []Pass) {
	t.Helper()
	for _, p := range passes {
		t.Logf("pass %q conf %.2f frames %d candidates %v", p.Plate.Text, p.Plate.Confidence, p.Frames, p.Plate.Candidates)
	}
	if len(passes) != len(truth.Plates) {
		t.Errorf("%d passes, want one per car (%d)", len(passes), len(truth.Plates))
	}
	for _, car := range truth.Plates {
		n := 0
		for _, p := range passes {
			if Match(p.Plate.Text, car.Plate) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("car %s: %d passes read right, want exactly 1", car.Plate, n)
		}
	}
}

// readAt is the text of the plate read over box (the read whose box
// overlaps it most), or "".
func readAt(plates []Plate, box image.Rectangle) string {
	best, bestOv := "", 0.0
	for _, p := range plates {
		in := p.Box.Intersect(box)
		if in.Empty() {
			continue
		}
		// Share of the read's box inside the plate: a read of the text
		// lies inside the plate, which is larger.
		ov := float64(in.Dx()*in.Dy()) / float64(max(1, p.Box.Dx()*p.Box.Dy()))
		if ov > 0.5 && ov > bestOv {
			best, bestOv = p.Text, ov
		}
	}
	return best
}
