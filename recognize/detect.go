package recognize

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"
)

// DB post-processing limits.
const (
	detMinSide    = 3   // smallest box side in detector pixels
	detMaxBoxes   = 200 // contours examined per image
	maxCropsImage = 12  // text boxes recognised per image, largest first
)

// dbParams are the DB post-processing thresholds.
type dbParams struct {
	Thresh    float32 // pixel is text when its probability is above
	BoxThresh float64 // mean probability inside a box to keep it
	Unclip    float64 // DB unclip ratio
}

// Our thresholds: PaddleOCR's, with a lower box threshold (faint plates)
// and the unclip a little larger so the crop keeps the characters' edges.
// Measured on the us set: unclip 1.5-1.6 read best; 2.0 lets neighbouring
// marks into the crop.
var ourDB = dbParams{Thresh: 0.3, BoxThresh: 0.5, Unclip: 1.6}

// plainDB are PaddleOCR's defaults (det_db_thresh, det_db_box_thresh,
// det_db_unclip_ratio), used by ModePlain.
var plainDB = dbParams{Thresh: 0.3, BoxThresh: 0.6, Unclip: 1.5}

var (
	imagenetMean = [3]float32{0.485, 0.456, 0.406}
	imagenetStd  = [3]float32{0.229, 0.224, 0.225}
)

// detBox is one text region found by the detector.
type detBox struct {
	R     rotRect
	Score float64
}

// detSize is the detector input size for an image of w x h: the long side
// becomes maxSide, both sides multiples of 32. ModeFocused's first pass
// uses firstPassSize, which also caps the pixel count.
func detSize(w, h, maxSide int) (int, int) {
	s := float64(maxSide) / float64(max(w, h))
	dw := max(32, int(math.Round(float64(w)*s/32))*32)
	dh := max(32, int(math.Round(float64(h)*s/32))*32)
	return dw, dh
}

// detInput resizes bgr (8UC3) to dw x dh and returns the normalised RGB
// planes, 3*dh*dw floats in NCHW order.
func detInput(bgr gocv.Mat, dw, dh int) ([]float32, error) {
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(bgr, &small, image.Pt(dw, dh), 0, 0, gocv.InterpolationLinear)
	px, err := small.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("read resized image: %w", err)
	}
	n := dw * dh
	if len(px) < 3*n {
		return nil, fmt.Errorf("read resized image: %d bytes, want %d", len(px), 3*n)
	}
	out := make([]float32, 3*n)
	for c := 0; c < 3; c++ {
		src := 2 - c // BGR to RGB (BGR reads the same on the us set)
		scale := 1 / (255 * imagenetStd[c])
		off := imagenetMean[c] / imagenetStd[c]
		plane := out[c*n : (c+1)*n]
		for i := range plane {
			plane[i] = float32(px[3*i+src])*scale - off
		}
	}
	return out, nil
}

// detBoxes turns the probability map (h x w) into scored, unclipped boxes in
// map coordinates.
func detBoxes(prob []float32, w, h int, pp dbParams) ([]detBox, error) {
	bits := make([]byte, w*h)
	for i, p := range prob[:w*h] {
		if p > pp.Thresh {
			bits[i] = 255
		}
	}
	bm, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, bits)
	if err != nil {
		return nil, fmt.Errorf("make bitmap: %w", err)
	}
	defer bm.Close()
	contours := gocv.FindContours(bm, gocv.RetrievalList, gocv.ChainApproxSimple)
	defer contours.Close()

	var out []detBox
	for i := 0; i < contours.Size() && i < detMaxBoxes; i++ {
		cpts := contours.At(i).ToPoints()
		if len(cpts) < 4 {
			continue
		}
		pts := make([]vec, len(cpts))
		for j, p := range cpts {
			pts[j] = vec{float64(p.X), float64(p.Y)}
		}
		r := minAreaRect(pts)
		if math.Min(r.W, r.H) < detMinSide {
			continue
		}
		score := meanInside(prob, w, h, r)
		if score < pp.BoxThresh {
			continue
		}
		// DB unclip: grow by area*ratio/perimeter on every side. The
		// contour hugs the shrunk text kernel, so the rectangle of the
		// contour pixels is half a pixel short on each side too.
		d := (r.W+1)*(r.H+1)*pp.Unclip/(2*(r.W+r.H+2)) + 0.5
		r = r.grow(2*d, 2*d)
		if math.Min(r.W, r.H) < detMinSide+2 {
			continue
		}
		out = append(out, detBox{R: r, Score: score})
	}
	return out, nil
}

// meanInside is the mean of prob over the pixels whose centres lie inside r.
func meanInside(prob []float32, w, h int, r rotRect) float64 {
	b := r.bounds().Intersect(image.Rect(0, 0, w, h))
	var sum float64
	var n int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r.grow(1, 1).contains(vec{float64(x), float64(y)}) {
				sum += float64(prob[y*w+x])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}
