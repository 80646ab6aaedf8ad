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
	*engine
	cfg  Config
	cs   *charset
	fm   formats
	view bool // made by WithMode: Close leaves the sessions alone
}

// engine is the sessions and the lock that serialises their use, shared
// by a Recognizer and its WithMode views.
type engine struct {
	mu     sync.Mutex
	det    *session
	rec    *session
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
	custom, err := compileFormats(cfg.Formats)
	if err != nil {
		return nil, err
	}
	r := &Recognizer{engine: &engine{}, cfg: cfg, cs: cs, fm: formats{region: cfg.Region, custom: custom}}
	if r.det, err = newSession(filepath.Join(cfg.ModelDir, DetModelFile), cfg.Threads); err != nil {
		return nil, fmt.Errorf("load detector: %w", err)
	}
	if r.rec, err = newSession(filepath.Join(cfg.ModelDir, RecModelFile), cfg.Threads); err != nil {
		r.det.close()
		return nil, fmt.Errorf("load recogniser: %w", err)
	}
	return r, nil
}

// WithMode returns a Recognizer that runs pipeline mode (ModeFocused or
// ModePlain) on r's sessions: nothing is loaded again, and memory is that
// of one Recognizer (bench --compare runs both pipelines this way). The
// two share one lock. Closing the view does nothing; closing r closes
// both.
func (r *Recognizer) WithMode(mode string) (*Recognizer, error) {
	if mode != ModeFocused && mode != ModePlain {
		return nil, fmt.Errorf("recognize: Mode: unknown mode %q (want %q or %q)", mode, ModeFocused, ModePlain)
	}
	v := *r
	v.cfg.Mode = mode
	v.view = true
	return &v, nil
}

// Close frees the sessions. It is idempotent; Recognize fails with
// ErrClosed afterwards. On a WithMode view it does nothing.
func (r *Recognizer) Close() error {
	if r.view {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return errors.Join(r.det.close(), r.rec.close())
}

// Recognize finds the plates in img, best first. img is BGR 8UC3; 8UC1
// (grey), 8UC4 (BGRA) and 16-bit 16UC1/3/4 (scaled, see ToBGR8) are
// converted; other types are ErrUnsupportedImage. An empty Mat is
// ErrEmptyImage; an image too small to hold a plate gives no plates and no
// error.
func (r *Recognizer) Recognize(img gocv.Mat) ([]Plate, error) {
	ps, _, err := r.recognize(img, false)
	return ps, err
}

// Trace is what Recognize saw: every text box it read, for debugging
// (bench --failures draws it).
type Trace struct {
	Boxes []TracedBox
}

// TracedBox is one text box read: its corners in image pixels (top-left,
// top-right, bottom-right, bottom-left), the pass that found it (1 the
// whole image, 2 a focused region, 3 a variant crop of the best plate
// read to confirm it) and the reading, A-Z0-9 and spaces.
type TracedBox struct {
	Corners [4]image.Point
	Pass    int
	Text    string
	Conf    float64
}

// RecognizeTrace is Recognize that also returns the text boxes it read.
func (r *Recognizer) RecognizeTrace(img gocv.Mat) ([]Plate, Trace, error) {
	return r.recognize(img, true)
}

func (r *Recognizer) recognize(img gocv.Mat, trace bool) ([]Plate, Trace, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var tr Trace
	if r.closed {
		return nil, tr, ErrClosed
	}
	if img.Ptr() == nil || img.Empty() {
		return nil, tr, ErrEmptyImage
	}
	bgr, owned, err := asBGR(img)
	if err != nil {
		return nil, tr, err
	}
	if owned {
		defer bgr.Close()
	}
	if img.Rows() < minImageIn || img.Cols() < minImageIn {
		return nil, tr, nil
	}
	var t *Trace
	if trace {
		t = &tr
	}
	var ps []Plate
	if r.cfg.Mode == ModePlain {
		ps, err = r.recognizePlain(bgr, t)
	} else {
		ps, err = r.recognizeFocused(bgr, t)
	}
	return ps, tr, err
}

func (t *Trace) add(pass int, reads []textRead) {
	if t == nil {
		return
	}
	for _, rd := range reads {
		var tb TracedBox
		for i, c := range rd.R.corners() {
			tb.Corners[i] = image.Pt(int(math.Round(c.X)), int(math.Round(c.Y)))
		}
		tb.Pass = pass
		tb.Text = textOf(rd.Tokens)
		tb.Conf = meanProb(rd.Tokens)
		t.Boxes = append(t.Boxes, tb)
	}
}

// asBGR returns img as 8UC3 BGR (ToBGR8's conversions: 8-bit grey and
// BGRA, 16-bit scaled); owned says the caller must Close it.
func asBGR(img gocv.Mat) (gocv.Mat, bool, error) {
	return toBGR8(img)
}

// detect runs the text detector on roi of bgr resized to dw x dh and
// returns the boxes in image pixels, largest first.
func (r *Recognizer) detect(bgr gocv.Mat, roi image.Rectangle, dw, dh int, pp dbParams) ([]rotRect, error) {
	src := bgr
	if roi != image.Rect(0, 0, bgr.Cols(), bgr.Rows()) {
		src = bgr.Region(roi)
		defer src.Close()
	}
	in, err := detInput(src, dw, dh)
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
	dbs, err := detBoxes(prob, dw, dh, pp)
	if err != nil {
		return nil, fmt.Errorf("detect text: %w", err)
	}
	sx, sy := float64(roi.Dx())/float64(dw), float64(roi.Dy())/float64(dh)
	off := vec{float64(roi.Min.X), float64(roi.Min.Y)}
	var out []rotRect
	for _, b := range dbs {
		rr := canonical(b.R.scaled(sx, sy))
		rr.C = rr.C.add(off)
		if rr.H < minTextPx || rr.W < minTextPx/2 {
			continue
		}
		out = append(out, rr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].W*out[i].H > out[j].W*out[j].H })
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
	probs, steps, err := r.recProbs(bgr, box)
	if err != nil {
		return nil, err
	}
	return ctcDecode(probs, steps, r.cs), nil
}

// recProbs runs the recogniser on box: steps rows of r.cs.columns
// probabilities.
func (r *Recognizer) recProbs(bgr gocv.Mat, box rotRect) ([]float32, int, error) {
	return r.recProbsStretched(bgr, box, 1)
}

// recProbsStretched is recProbs on a crop stretched sideways by ws (1
// keeps the box's aspect ratio).
func (r *Recognizer) recProbsStretched(bgr gocv.Mat, box rotRect, ws float64) ([]float32, int, error) {
	// No padding beyond the unclip: measured on the us set, 5-10% more
	// on any side reads fewer plates (neighbouring marks become characters).
	c := warpCrop(bgr, box, ws)
	defer c.Close()
	px, err := c.DataPtrUint8()
	if err != nil {
		return nil, 0, fmt.Errorf("read crop: %w", err)
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
		return nil, 0, fmt.Errorf("read text: %w", err)
	}
	if len(shape) != 3 || shape[0] != 1 || shape[2] != int64(r.cs.columns) {
		return nil, 0, fmt.Errorf("read text: output shape %v, want [1 T %d]", shape, r.cs.columns)
	}
	return probs, int(shape[1]), nil
}

// warpCrop cuts box out of bgr with a perspective warp straight to height
// recHeight, keeping the aspect ratio times ws, up to recMaxWidth.
func warpCrop(bgr gocv.Mat, box rotRect, ws float64) gocv.Mat {
	tw := int(math.Ceil(ws * recHeight * box.W / math.Max(box.H, 1)))
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
