package recognize

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"gocv.io/x/gocv"
)

// Recogniser input geometry.
const (
	recHeight   = 48
	recMaxWidth = 320
	recMinWidth = 64
	minTextPx   = 6 // text boxes lower than this (input pixels) are not read
	minImageIn  = 8 // images smaller than this on a side have no plates
)

// Candidate is one possible reading of a plate.
type Candidate struct {
	Text       string  `json:"plate"`
	Confidence float64 `json:"confidence"`
}

// Plate is a plate found in an image.
type Plate struct {
	// Text is the best reading, A-Z and 0-9 only.
	Text string
	// Confidence is 0..1: mean character probability times how well Text
	// fits the configured region's formats.
	Confidence float64
	// Box encloses the plate's text in input image pixels.
	Box image.Rectangle
	// Candidates are the readings considered, best first; the first is
	// Text.
	Candidates []Candidate
}

// Recognizer finds and reads plates. Its sessions are created once by New
// and reused. It is safe for use by one goroutine at a time: concurrent
// calls are serialised.
type Recognizer struct {
	mu     sync.Mutex
	cfg    Config
	det    *session
	rec    *session
	cs     *charset
	closed bool
}

// New loads ONNX Runtime (once per process) and both models.
func New(cfg Config) (*Recognizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	keys, err := os.ReadFile(filepath.Join(cfg.ModelDir, KeysFile))
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	cs := newCharset(parseKeys(keys))
	if err := cs.validate(); err != nil {
		return nil, fmt.Errorf("load %s: %w", KeysFile, err)
	}
	if err := ensureORT(cfg.LibPath); err != nil {
		return nil, err
	}
	r := &Recognizer{cfg: cfg, cs: cs}
	if r.det, err = newSession(filepath.Join(cfg.ModelDir, DetModelFile), cfg.Threads); err != nil {
		return nil, fmt.Errorf("load detector: %w", err)
	}
	if r.rec, err = newSession(filepath.Join(cfg.ModelDir, RecModelFile), cfg.Threads); err != nil {
		r.det.close()
		return nil, fmt.Errorf("load recogniser: %w", err)
	}
	return r, nil
}

// Close frees the sessions. It is idempotent; Recognize fails with
// ErrClosed afterwards.
func (r *Recognizer) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return errors.Join(r.det.close(), r.rec.close())
}

// Recognize finds the plates in img, best first. img is BGR 8UC3; 8UC1
// (grey) and 8UC4 (BGRA) are converted. An empty Mat is ErrEmptyImage; an
// image too small to hold a plate gives no plates and no error.
func (r *Recognizer) Recognize(img gocv.Mat) ([]Plate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if img.Ptr() == nil || img.Empty() {
		return nil, ErrEmptyImage
	}
	if img.Rows() < minImageIn || img.Cols() < minImageIn {
		return nil, nil
	}
	bgr, owned, err := asBGR(img)
	if err != nil {
		return nil, err
	}
	if owned {
		defer bgr.Close()
	}
	boxes, err := r.detect(bgr)
	if err != nil {
		return nil, err
	}
	reads, err := r.read(bgr, boxes)
	if err != nil {
		return nil, err
	}
	return platesFrom(reads, r.cfg.Region), nil
}

// asBGR returns img as 8UC3 BGR; owned says the caller must Close it.
func asBGR(img gocv.Mat) (gocv.Mat, bool, error) {
	var code gocv.ColorConversionCode
	switch img.Type() {
	case gocv.MatTypeCV8UC3:
		return img, false, nil
	case gocv.MatTypeCV8UC1:
		code = gocv.ColorGrayToBGR
	case gocv.MatTypeCV8UC4:
		code = gocv.ColorBGRAToBGR
	default:
		return gocv.Mat{}, false, fmt.Errorf("convert image of type %v: %w", img.Type(), ErrUnsupportedImage)
	}
	out := gocv.NewMat()
	gocv.CvtColor(img, &out, code)
	return out, true, nil
}

// detect runs the text detector and returns boxes in image pixels, largest
// first, at most maxCropsImage.
func (r *Recognizer) detect(bgr gocv.Mat) ([]rotRect, error) {
	w, h := bgr.Cols(), bgr.Rows()
	dw, dh := detSize(w, h, r.cfg.DetMaxSide)
	in, err := detInput(bgr, dw, dh)
	if err != nil {
		return nil, fmt.Errorf("prepare detector input: %w", err)
	}
	prob, shape, err := r.det.run([]int64{1, 3, int64(dh), int64(dw)}, in)
	if err != nil {
		return nil, fmt.Errorf("detect text: %w", err)
	}
	if len(shape) != 4 || shape[2] != int64(dh) || shape[3] != int64(dw) {
		return nil, fmt.Errorf("detect text: output shape %v, want [1 1 %d %d]", shape, dh, dw)
	}
	dbs, err := detBoxes(prob, dw, dh)
	if err != nil {
		return nil, fmt.Errorf("detect text: %w", err)
	}
	sx, sy := float64(w)/float64(dw), float64(h)/float64(dh)
	var out []rotRect
	for _, b := range dbs {
		rr := canonical(b.R.scaled(sx, sy))
		if rr.H < minTextPx || rr.W < minTextPx/2 {
			continue
		}
		out = append(out, rr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].W*out[i].H > out[j].W*out[j].H })
	if len(out) > maxCropsImage {
		out = out[:maxCropsImage]
	}
	return out, nil
}

// textRead is the recogniser's reading of one text box.
type textRead struct {
	R      rotRect
	Tokens []token
}

// read crops every box to height recHeight and reads them. Crops are run
// one by one at their own width: padding a batch to its widest crop costs
// more than the per-run overhead.
func (r *Recognizer) read(bgr gocv.Mat, boxes []rotRect) ([]textRead, error) {
	out := make([]textRead, 0, len(boxes))
	for _, b := range boxes {
		toks, err := r.readOne(bgr, b)
		if err != nil {
			return nil, err
		}
		out = append(out, textRead{R: b, Tokens: toks})
	}
	return out, nil
}

func (r *Recognizer) readOne(bgr gocv.Mat, box rotRect) ([]token, error) {
	// No padding beyond the unclip: measured on the us set, 5-10% more
	// on any side reads fewer plates (neighbouring marks become characters).
	c := warpCrop(bgr, box)
	defer c.Close()
	px, err := c.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("read crop: %w", err)
	}
	cw := c.Cols()
	width := (max(cw, recMinWidth) + 7) / 8 * 8
	plane := recHeight * width
	data := make([]float32, 3*plane)
	for y := 0; y < recHeight; y++ {
		for x := 0; x < cw; x++ {
			p := px[(y*cw+x)*3:]
			o := y*width + x
			// Planes in BGR order, as PaddleOCR feeds its recogniser
			// (OpenCV decodes to BGR and it was trained that way): RGB
			// reads 4% fewer us plates.
			data[o] = float32(p[0])/127.5 - 1
			data[plane+o] = float32(p[1])/127.5 - 1
			data[2*plane+o] = float32(p[2])/127.5 - 1
		}
	}
	probs, shape, err := r.rec.run([]int64{1, 3, recHeight, int64(width)}, data)
	if err != nil {
		return nil, fmt.Errorf("read text: %w", err)
	}
	if len(shape) != 3 || shape[0] != 1 || shape[2] != int64(r.cs.columns) {
		return nil, fmt.Errorf("read text: output shape %v, want [1 T %d]", shape, r.cs.columns)
	}
	return ctcDecode(probs, int(shape[1]), r.cs), nil
}

// warpCrop cuts box out of bgr with a perspective warp straight to height
// recHeight, keeping the aspect ratio up to recMaxWidth.
func warpCrop(bgr gocv.Mat, box rotRect) gocv.Mat {
	tw := int(math.Ceil(recHeight * box.W / math.Max(box.H, 1)))
	tw = min(max(tw, 8), recMaxWidth)
	cs := box.corners()
	src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{
		{X: float32(cs[0].X), Y: float32(cs[0].Y)},
		{X: float32(cs[1].X), Y: float32(cs[1].Y)},
		{X: float32(cs[2].X), Y: float32(cs[2].Y)},
		{X: float32(cs[3].X), Y: float32(cs[3].Y)},
	})
	defer src.Close()
	dst := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{
		{X: 0, Y: 0}, {X: float32(tw), Y: 0}, {X: float32(tw), Y: recHeight}, {X: 0, Y: recHeight},
	})
	defer dst.Close()
	m := gocv.GetPerspectiveTransform2f(src, dst)
	defer m.Close()
	out := gocv.NewMat()
	gocv.WarpPerspectiveWithParams(bgr, &out, m, image.Pt(tw, recHeight), gocv.InterpolationCubic, gocv.BorderReplicate, color.RGBA{})
	return out
}
