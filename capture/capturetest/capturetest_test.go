package capturetest

import (
	"context"
	"errors"
	"image"
	"io"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/capture"
)

func TestDefaultClip_GroundTruth(t *testing.T) {
	c := DefaultClip()
	gt := c.GroundTruth()
	if gt.Frames != 140 || len(gt.Plates) != 4 {
		t.Fatalf("frames %d plates %d, want 140 and 4", gt.Frames, len(gt.Plates))
	}
	seen := map[string]bool{}
	perFrame := make([]int, gt.Frames)
	for _, p := range gt.Plates {
		if seen[p.Plate] {
			t.Errorf("plate %s twice", p.Plate)
		}
		seen[p.Plate] = true
		if n := len(p.Frames); float64(n) < 2*c.FPS || p.Readable < 15 {
			t.Errorf("plate %s: %d frames fully visible, %d readable; want >= 2 s and >= 15", p.Plate, n, p.Readable)
		}
		for _, f := range p.Frames {
			perFrame[f.Frame]++
			b := image.Rect(f.Box[0], f.Box[1], f.Box[0]+f.Box[2], f.Box[1]+f.Box[3])
			if !b.In(image.Rect(0, 0, c.Width, c.Height)) {
				t.Errorf("plate %s frame %d: box %v outside the frame", p.Plate, f.Frame, f.Box)
			}
			// Characters are half the plate's height: >= 24 px wanted.
			if f.Box[3] < 50 {
				t.Errorf("plate %s frame %d: box %v too small to read", p.Plate, f.Frame, f.Box)
			}
		}
	}
	for i, n := range perFrame {
		if n > 2 {
			t.Errorf("frame %d shows %d plates, want at most 2", i, n)
		}
	}
}

func TestClipSpec_Frame(t *testing.T) {
	c := DefaultClip()
	a, b := c.Frame(40), c.Frame(40)
	if a.Bounds() != image.Rect(0, 0, 640, 360) {
		t.Fatalf("bounds %v", a.Bounds())
	}
	if string(a.Pix) != string(b.Pix) {
		t.Error("the same frame rendered twice differs: not deterministic")
	}
	c.Seed++
	if string(c.Frame(40).Pix) == string(a.Pix) {
		t.Error("another seed gives the same frame")
	}
}

// meanLuma of the box in img.
func meanLuma(img *image.RGBA, r image.Rectangle) float64 {
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := img.PixOffset(x, y)
			sum += 0.299*float64(img.Pix[p]) + 0.587*float64(img.Pix[p+1]) + 0.114*float64(img.Pix[p+2])
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

func TestClipSpec_PlateInFrame(t *testing.T) {
	// Where the ground truth puts a plate, a sharp frame shows dark strokes
	// on white (a large luma spread); a heavily blurred one smears them.
	c := DefaultClip()
	var sharp, blurred []float64
	for _, p := range c.GroundTruth().Plates {
		var gotSharp, gotBlurred bool
		for _, f := range p.Frames {
			if (f.Readable && gotSharp) || (!f.Readable && gotBlurred) {
				continue
			}
			img := c.Frame(f.Frame)
			r := image.Rect(f.Box[0]+6, f.Box[1]+f.Box[3]/3, f.Box[0]+f.Box[2]-6, f.Box[1]+f.Box[3]*5/6)
			mean := meanLuma(img, r)
			var v float64
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					d := meanLuma(img, image.Rect(x, y, x+1, y+1)) - mean
					v += d * d
				}
			}
			sd := math.Sqrt(v / float64(r.Dx()*r.Dy()))
			if f.Readable {
				sharp, gotSharp = append(sharp, sd), true
			} else {
				blurred, gotBlurred = append(blurred, sd), true
			}
		}
	}
	if len(sharp) != 4 || len(blurred) == 0 {
		t.Fatalf("%d sharp and %d blurred samples, want 4 and some", len(sharp), len(blurred))
	}
	for _, s := range sharp {
		if s < 60 {
			t.Errorf("sharp plate luma spread %.1f, want >= 60", s)
		}
	}
	for _, b := range blurred {
		if b >= slices.Min(sharp) {
			t.Errorf("blurred plate luma spread %.1f not below the sharp ones %v", b, sharp)
		}
	}
}

func TestRenderPlate(t *testing.T) {
	p := RenderPlate("YG9X2G", PlateStyle{})
	if p.Bounds() != image.Rect(0, 0, 240, 120) {
		t.Fatalf("bounds %v", p.Bounds())
	}
	// Background bright, characters dark, border dark.
	if l := meanLuma(p, image.Rect(10, 110, 230, 114)); l < 200 {
		t.Errorf("background luma %.0f, want light", l)
	}
	if l := meanLuma(p, image.Rect(0, 0, 240, 2)); l > 80 {
		t.Errorf("border luma %.0f, want dark", l)
	}
	if l := meanLuma(p, image.Rect(15, 45, 225, 100)); l > 190 {
		t.Errorf("text area luma %.0f, want dark characters in it", l)
	}
}

func TestSolveHomography(t *testing.T) {
	src := [4][2]float64{{0, 0}, {240, 0}, {240, 120}, {0, 120}}
	dst := [4][2]float64{{10, 12}, {130, 8}, {128, 70}, {12, 66}}
	h, ok := solveHomography(src, dst)
	if !ok {
		t.Fatal("singular")
	}
	for i := range src {
		x, y := h.apply(src[i][0], src[i][1])
		if math.Abs(x-dst[i][0]) > 1e-6 || math.Abs(y-dst[i][1]) > 1e-6 {
			t.Errorf("corner %d -> (%v, %v), want %v", i, x, y, dst[i])
		}
	}
}

func TestWriteClip(t *testing.T) {
	spec := SmallClip(7)
	path := filepath.Join(t.TempDir(), "c.avi")
	if err := WriteClip(path, spec); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if n := vc.Get(gocv.VideoCaptureFrameCount); n != 7 {
		t.Errorf("frame count %v, want 7", n)
	}
	if w, h := vc.Get(gocv.VideoCaptureFrameWidth), vc.Get(gocv.VideoCaptureFrameHeight); w != 160 || h != 90 {
		t.Errorf("size %vx%v", w, h)
	}
	if err := WriteClip(filepath.Join(t.TempDir(), "nodir", "c.avi"), spec); err == nil {
		t.Error("WriteClip into a missing folder succeeded")
	}
}

func TestCamera(t *testing.T) {
	RunSourceContract(t, func(t *testing.T) capture.Source { return NewCamera(SmallClip(3)) })
}

func TestCamera_FailAfter(t *testing.T) {
	tests := []struct {
		name      string
		cam       *Camera
		wantN     int
		wantErrIs error
	}{
		{"Fails", &Camera{Spec: SmallClip(10), FailAfter: 3}, 3, capture.ErrDevice},
		{"LiveFails", &Camera{Spec: SmallClip(2), Live: true, FailAfter: 5}, 5, ErrCameraFailed},
		{"EOF", NewCamera(SmallClip(4)), 4, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			for {
				f, err := tt.cam.Read(context.Background())
				if err != nil {
					if !errors.Is(err, tt.wantErrIs) {
						t.Errorf("err %v, want %v", err, tt.wantErrIs)
					}
					break
				}
				n++
				f.Close()
			}
			if n != tt.wantN {
				t.Errorf("%d frames, want %d", n, tt.wantN)
			}
		})
	}
}
