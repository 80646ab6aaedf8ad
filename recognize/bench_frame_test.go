package recognize

import (
	"fmt"
	"image"
	"sync"
	"testing"

	"gocv.io/x/gocv"
)

// Camera frame sizes and ONNX Runtime intra-op thread counts the frame
// benchmarks run at.
var (
	benchSizes = []struct {
		name string
		w, h int
	}{{"720p", 1280, 720}, {"1080p", 1920, 1080}}
	benchThreads = []int{1, 2}
)

var (
	benchRecMu sync.Mutex
	benchRec   = map[int]*Recognizer{}
)

// benchRecognizer is one us-region Recognizer per thread count for the
// whole test binary.
func benchRecognizer(b *testing.B, threads int) *Recognizer {
	b.Helper()
	benchRecMu.Lock()
	defer benchRecMu.Unlock()
	if r, ok := benchRec[threads]; ok {
		return r
	}
	c := testConfig(b)
	c.Region, c.Threads = "us", threads
	r, err := New(c)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	benchRec[threads] = r
	return r
}

// benchFrame is the first us dataset photo as a camera frame of w x h: scaled
// to fit and centred on grey (letterboxed), BGR 8UC3. It returns the
// photo's label too.
func benchFrame(b *testing.B, w, h int) (gocv.Mat, labelled) {
	b.Helper()
	img, it := datasetImage(b, "us")
	defer img.Close()
	s := min(float64(w)/float64(img.Cols()), float64(h)/float64(img.Rows()))
	sw, sh := int(float64(img.Cols())*s), int(float64(img.Rows())*s)
	scaled := gocv.NewMat()
	defer scaled.Close()
	gocv.Resize(img, &scaled, image.Pt(sw, sh), 0, 0, gocv.InterpolationLinear)
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(110, 110, 110, 0), h, w, gocv.MatTypeCV8UC3)
	roi := frame.Region(image.Rect((w-sw)/2, (h-sh)/2, (w-sw)/2+sw, (h-sh)/2+sh))
	scaled.CopyTo(&roi)
	roi.Close()
	return frame, it
}

// eachFrameBench runs fn for every frame size and thread count, on a frame
// whose plate the recognizer reads; fn gets the plates of one Recognize.
func eachFrameBench(b *testing.B, fn func(b *testing.B, r *Recognizer, frame gocv.Mat, plates []Plate)) {
	for _, sz := range benchSizes {
		for _, th := range benchThreads {
			b.Run(fmt.Sprintf("%s/threads=%d", sz.name, th), func(b *testing.B) {
				r := benchRecognizer(b, th)
				frame, it := benchFrame(b, sz.w, sz.h)
				defer frame.Close()
				plates, err := r.Recognize(frame)
				if err != nil {
					b.Fatal(err)
				}
				if len(plates) == 0 || !Match(plates[0].Text, it.Plate) {
					// Still a valid cost figure, but say the frame is not read.
					b.Logf("%s frame of %s read as %+v, labelled %s", sz.name, it.Path, plates, it.Plate)
				}
				b.ResetTimer()
				fn(b, r, frame, plates)
			})
		}
	}
}

// BenchmarkFrame is Recognize on a whole camera frame: detection and the
// reading of every text box found.
func BenchmarkFrame(b *testing.B) {
	eachFrameBench(b, func(b *testing.B, r *Recognizer, frame gocv.Mat, _ []Plate) {
		for i := 0; i < b.N; i++ {
			if _, err := r.Recognize(frame); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	})
}

// BenchmarkDetect is the text detector alone (resize, normalise, model, box
// extraction) on a whole camera frame.
func BenchmarkDetect(b *testing.B) {
	eachFrameBench(b, func(b *testing.B, r *Recognizer, frame gocv.Mat, _ []Plate) {
		var boxes int
		for i := 0; i < b.N; i++ {
			bs, err := benchDetect(r, frame)
			if err != nil {
				b.Fatal(err)
			}
			boxes = len(bs)
		}
		b.ReportMetric(float64(boxes), "boxes")
	})
}

// BenchmarkRead is the recogniser alone on the text box of the frame's
// plate: the cost each extra box found on a frame adds.
func BenchmarkRead(b *testing.B) {
	eachFrameBench(b, func(b *testing.B, r *Recognizer, frame gocv.Mat, plates []Plate) {
		if len(plates) == 0 {
			b.Fatal("no plate on the frame")
		}
		boxes, err := benchDetect(r, frame)
		if err != nil {
			b.Fatal(err)
		}
		// The detector's box that overlaps the plate most.
		best, bestOv := -1, 0.0
		for i, bx := range boxes {
			if ov := overlap(bx.bounds(), plates[0].Box); ov > bestOv {
				best, bestOv = i, ov
			}
		}
		if best < 0 {
			b.Fatalf("no detected box overlaps the plate %v", plates[0].Box)
		}
		one := boxes[best : best+1]
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := benchRead(r, frame, one); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchDetect and benchRead are the recognizer's two stages as Recognize
// runs them on a whole BGR frame (its first, whole-image pass). They are
// the only calls of the recognizer's internals in these benchmarks: when
// detect or read change their signature, follow them here.

// benchDetect is the whole-frame text detection.
func benchDetect(r *Recognizer, bgr gocv.Mat) ([]rotRect, error) {
	w, h := bgr.Cols(), bgr.Rows()
	dw, dh := firstPassSize(w, h, r.cfg.DetMaxSide)
	return r.detect(bgr, image.Rect(0, 0, w, h), dw, dh, ourDB)
}

// benchRead reads boxes.
func benchRead(r *Recognizer, bgr gocv.Mat, boxes []rotRect) error {
	_, err := r.read(bgr, boxes)
	return err
}
