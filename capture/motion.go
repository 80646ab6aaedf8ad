package capture

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"math"
	"os"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// Motion gate defaults, used where a MotionConfig field is zero.
const (
	DefaultMotionThreshold  = 0.005
	DefaultMotionPixelDelta = 18
	DefaultMotionKeepAlive  = 2 * time.Second
	DefaultMotionHold       = time.Second
	DefaultMotionLearn      = 2 * time.Second
	// motionTargetSide is the long side of the grey image the gate compares
	// when Downscale is 0: a car or a plate covers dozens of its pixels
	// while sensor noise averages out.
	motionTargetSide = 160
	// motionRelDelta is the share of the background's own level added to
	// PixelDelta: an auto-exposure step or flicker brightens every pixel
	// by a proportion, which must not count as motion.
	motionRelDelta = 0.1
	// motionForegroundSlowdown: pixels that differ from the background
	// adapt this many times slower than still ones, so a passing car
	// leaves no ghost while a car that parks joins the background after
	// about this many Learn periods.
	motionForegroundSlowdown = 10
	motionMaskLevel          = 128 // mask pixels at or above are watched
)

// Polygon is a closed polygon in normalised frame coordinates: x from 0
// (left) to 1 (right), y from 0 (top) to 1 (bottom). A polygon of exactly
// two points is the rectangle with those opposite corners.
type Polygon [][2]float64

// ZoneRect is the rectangle from (x0, y0) to (x1, y1), in normalised
// coordinates, as a Polygon.
func ZoneRect(x0, y0, x1, y1 float64) Polygon { return Polygon{{x0, y0}, {x1, y1}} }

// MotionConfig tunes a MotionGate. The zero value is the whole frame with
// the defaults.
type MotionConfig struct {
	// Zone is where motion counts (the detection zone): the union of these
	// polygons. Empty watches the whole frame.
	Zone []Polygon `yaml:"zone" json:"zone,omitempty"`
	// Mask is an image file (PNG, JPEG, ...) stretched over the frame whose
	// white pixels (grey >= 128) are watched. With both Zone and Mask a
	// pixel is watched when both say so.
	Mask string `yaml:"mask" json:"mask,omitempty"`
	// Threshold is the fraction (0..1) of watched pixels that must differ
	// from the background for a frame to show motion; 0 means
	// DefaultMotionThreshold.
	Threshold float64 `yaml:"threshold" json:"threshold,omitempty"`
	// PixelDelta is how many grey levels (of 255) a pixel must differ from
	// the background, plus a tenth of the background's level, to count as
	// changed; 0 means DefaultMotionPixelDelta.
	PixelDelta float64 `yaml:"pixel_delta" json:"pixel_delta,omitempty"`
	// Downscale shrinks the frame by this factor before it is compared; 0
	// picks the factor that brings the long side to about 160 pixels.
	Downscale int `yaml:"downscale" json:"downscale,omitempty"`
	// KeepAlive lets a frame through at least this often without motion,
	// so a parked car or a gate that misses something is still re-checked;
	// 0 means DefaultMotionKeepAlive, a negative value never.
	KeepAlive time.Duration `yaml:"keepalive" json:"keepalive,omitempty"`
	// Hold keeps letting frames through for this long after the last
	// frame with motion, so the tracker sees the plate leave; 0 means
	// DefaultMotionHold, a negative value no hold.
	Hold time.Duration `yaml:"hold" json:"hold,omitempty"`
	// Learn is the time constant with which the background follows still
	// pixels (light changing through the day); changed pixels follow ten
	// times slower, so a car that stops becomes background after about
	// 10 x Learn. 0 means DefaultMotionLearn.
	Learn time.Duration `yaml:"learn" json:"learn,omitempty"`
}

// Validate returns an error wrapping ErrInvalidConfig that names the bad
// field. It does not open Mask.
func (c MotionConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("motion config: "+format+": %w", append(args, ErrInvalidConfig)...)
	}
	for i, p := range c.Zone {
		if len(p) < 2 {
			return bad("zone[%d]: %d points, want 2 (a rectangle) or at least 3", i, len(p))
		}
		for j, pt := range p {
			for _, v := range pt {
				if !(v >= 0 && v <= 1) { // also rejects NaN
					return bad("zone[%d][%d]: %v outside 0..1", i, j, pt)
				}
			}
		}
		if p.area() <= 0 {
			return bad("zone[%d]: polygon %v has no area", i, p)
		}
	}
	if !(c.Threshold >= 0 && c.Threshold < 1) {
		return bad("threshold %v outside 0..1", c.Threshold)
	}
	if !(c.PixelDelta >= 0 && c.PixelDelta < 255) {
		return bad("pixel_delta %v outside 0..255", c.PixelDelta)
	}
	if c.Downscale < 0 || c.Downscale > 64 {
		return bad("downscale %d outside 0..64", c.Downscale)
	}
	if c.Learn < 0 {
		return bad("learn %v is negative", c.Learn)
	}
	return nil
}

func (c MotionConfig) withDefaults() MotionConfig {
	if c.Threshold == 0 {
		c.Threshold = DefaultMotionThreshold
	}
	if c.PixelDelta == 0 {
		c.PixelDelta = DefaultMotionPixelDelta
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultMotionKeepAlive
	}
	if c.Hold == 0 {
		c.Hold = DefaultMotionHold
	}
	if c.Learn == 0 {
		c.Learn = DefaultMotionLearn
	}
	return c
}

// MotionStats counts a MotionGate's decisions. Passed is Motion + Held +
// KeepAlive + the frames passed because the gate could not judge them (the
// first frame, a new frame size, an unsupported image type).
type MotionStats struct {
	Checked   uint64 `json:"checked"`    // frames given to Check
	Passed    uint64 `json:"passed"`     // frames let through
	Skipped   uint64 `json:"skipped"`    // frames held back: Checked - Passed
	Motion    uint64 `json:"motion"`     // passed because they showed motion
	Held      uint64 `json:"held"`       // passed within Hold after motion
	KeepAlive uint64 `json:"keep_alive"` // passed as keep-alives
}

// MotionGate decides which frames are worth running through the plate
// detector: those where the watched part of the frame differs from a
// slowly updated background, plus a hold-over after motion and a periodic
// keep-alive. It works on a small blurred grey copy of each frame, so a
// check costs a small fraction of a detection.
//
// Check is meant for one camera's frames in order, from one goroutine;
// Stats may be called from any goroutine. Frames of another size restart
// the background.
type MotionGate struct {
	cfg MotionConfig

	mu     sync.Mutex
	closed bool
	mask   gocv.Mat // the Mask file, grey, full size; zero without Mask
	small  gocv.Mat // the frame shrunk, reused
	grey   gocv.Mat // small as grey, reused

	frame   image.Point // size of the frames the state below is for
	size    image.Point // size of the compared image
	watched []bool      // per compared pixel
	nWatch  int
	bg      []float32 // background, grey levels
	cur     []float32 // the current frame, blurred
	row     []float32 // scratch for the blur

	lastTime   time.Time // previous frame
	lastPass   time.Time
	lastMotion time.Time
	motionSeen bool

	stats MotionStats
}

// NewMotionGate validates cfg and loads its mask. Close releases it.
func NewMotionGate(cfg MotionConfig) (*MotionGate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &MotionGate{cfg: cfg.withDefaults(), small: gocv.NewMat(), grey: gocv.NewMat()}
	if cfg.Mask != "" {
		if _, err := os.Stat(cfg.Mask); err != nil {
			g.Close()
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("load motion mask %s: %w", cfg.Mask, fs.ErrNotExist)
			}
			return nil, fmt.Errorf("load motion mask: %w", err)
		}
		g.mask = gocv.IMRead(cfg.Mask, gocv.IMReadGrayScale)
		if g.mask.Empty() {
			g.Close()
			return nil, fmt.Errorf("load motion mask %s: not a readable image: %w", cfg.Mask, ErrInvalidConfig)
		}
		bin := gocv.NewMat()
		gocv.Threshold(g.mask, &bin, motionMaskLevel-1, 255, gocv.ThresholdBinary)
		n := gocv.CountNonZero(bin)
		bin.Close()
		if n == 0 {
			g.Close()
			return nil, fmt.Errorf("load motion mask %s: no white pixel, nothing to watch: %w", cfg.Mask, ErrInvalidConfig)
		}
	}
	return g, nil
}

// Close releases the gate's images. It is idempotent; after Close, Check
// lets every frame through.
func (g *MotionGate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	var errs []error
	for _, m := range []*gocv.Mat{&g.mask, &g.small, &g.grey} {
		if m.Ptr() != nil {
			errs = append(errs, m.Close())
			*m = gocv.Mat{}
		}
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the counters.
func (g *MotionGate) Stats() MotionStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats
}

// Check reports whether f should go to the detector, and its motion score:
// the fraction of watched pixels that differ from the background (0..1).
// It also updates the background, so call it for every frame of the camera
// in order, including those the caller then drops. Frames the gate cannot
// judge (the first one, a new size, an image type other than 8-bit grey,
// BGR or BGRA, any frame when Zone and Mask leave no pixel to watch) pass
// with score 1. Check does not keep or close f.
func (g *MotionGate) Check(f Frame) (pass bool, score float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats.Checked++
	pass, score, why := g.check(f)
	if pass {
		g.stats.Passed++
		switch why {
		case passMotion:
			g.stats.Motion++
		case passHeld:
			g.stats.Held++
		case passKeepAlive:
			g.stats.KeepAlive++
		}
	} else {
		g.stats.Skipped++
	}
	return pass, score
}

type passReason int

const (
	passNone passReason = iota
	passMotion
	passHeld
	passKeepAlive
	passUnjudged
)

func (g *MotionGate) check(f Frame) (bool, float64, passReason) {
	now := f.Time
	if now.IsZero() {
		now = time.Now()
	}
	if g.closed || f.Img.Ptr() == nil || f.Img.Empty() {
		return true, 1, passUnjudged
	}
	fresh := g.frame != image.Pt(f.Img.Cols(), f.Img.Rows())
	if fresh {
		g.resize(f.Img.Cols(), f.Img.Rows())
	}
	if !g.shrink(f.Img) {
		return true, 1, passUnjudged
	}
	if fresh || g.nWatch == 0 {
		copy(g.bg, g.cur)
		g.lastTime, g.lastPass, g.motionSeen = now, now, false
		return true, 1, passUnjudged
	}

	dt := now.Sub(g.lastTime)
	if dt < 0 { // a source restarted its clock: restart the timers
		g.lastPass, g.motionSeen = now, false
		dt = 0
	}
	g.lastTime = now
	aStill := float32(-math.Expm1(-dt.Seconds() / g.cfg.Learn.Seconds()))
	aMoving := float32(-math.Expm1(-dt.Seconds() / (motionForegroundSlowdown * g.cfg.Learn.Seconds())))
	delta := float32(g.cfg.PixelDelta)
	changed := 0
	for i, c := range g.cur {
		b := g.bg[i]
		d := c - b
		a := aStill
		if d > delta+motionRelDelta*b || -d > delta+motionRelDelta*b {
			a = aMoving
			if g.watched[i] {
				changed++
			}
		}
		g.bg[i] = b + a*d
	}
	score := float64(changed) / float64(g.nWatch)

	why := passNone
	switch {
	case score >= g.cfg.Threshold:
		why = passMotion
		g.lastMotion, g.motionSeen = now, true
	case g.motionSeen && g.cfg.Hold > 0 && now.Sub(g.lastMotion) <= g.cfg.Hold:
		why = passHeld
	case g.cfg.KeepAlive > 0 && now.Sub(g.lastPass) >= g.cfg.KeepAlive:
		why = passKeepAlive
	}
	if why == passNone {
		return false, score, why
	}
	g.lastPass = now
	return true, score, why
}

// resize sets the compared image's size for w x h frames and rebuilds the
// watched pixels.
func (g *MotionGate) resize(w, h int) {
	g.frame = image.Pt(w, h)
	k := g.cfg.Downscale
	if k == 0 {
		k = max(1, int(math.Round(float64(max(w, h))/motionTargetSide)))
	}
	g.size = image.Pt(max(1, w/k), max(1, h/k))
	n := g.size.X * g.size.Y
	g.watched = make([]bool, n)
	g.bg = make([]float32, n)
	g.cur = make([]float32, n)
	g.row = make([]float32, n)

	var maskPix []byte
	if g.mask.Ptr() != nil {
		m := gocv.NewMat()
		defer m.Close()
		gocv.Resize(g.mask, &m, g.size, 0, 0, gocv.InterpolationArea)
		if b, err := m.DataPtrUint8(); err == nil && len(b) >= n {
			maskPix = b
		}
	}
	g.nWatch = 0
	for y := range g.size.Y {
		for x := range g.size.X {
			i := y*g.size.X + x
			if maskPix != nil && maskPix[i] < motionMaskLevel {
				continue
			}
			if len(g.cfg.Zone) > 0 {
				px := (float64(x) + 0.5) / float64(g.size.X)
				py := (float64(y) + 0.5) / float64(g.size.Y)
				in := false
				for _, p := range g.cfg.Zone {
					if p.contains(px, py) {
						in = true
						break
					}
				}
				if !in {
					continue
				}
			}
			g.watched[i] = true
			g.nWatch++
		}
	}
}

// shrink makes g.cur the 3x3 box-blurred grey of img at g.size.
func (g *MotionGate) shrink(img gocv.Mat) bool {
	var code gocv.ColorConversionCode
	switch img.Type() {
	case gocv.MatTypeCV8UC3:
		code = gocv.ColorBGRToGray
	case gocv.MatTypeCV8UC4:
		code = gocv.ColorBGRAToGray
	case gocv.MatTypeCV8UC1:
		code = -1
	default:
		return false
	}
	if code < 0 {
		gocv.Resize(img, &g.grey, g.size, 0, 0, gocv.InterpolationArea)
	} else {
		gocv.Resize(img, &g.small, g.size, 0, 0, gocv.InterpolationArea)
		gocv.CvtColor(g.small, &g.grey, code)
	}
	px, err := g.grey.DataPtrUint8()
	w, h := g.size.X, g.size.Y
	if err != nil || len(px) < w*h || g.grey.Cols() != w || g.grey.Rows() != h {
		return false
	}
	// Separable box blur, edges clamped: horizontal into row, vertical
	// into cur.
	for y := range h {
		r := px[y*w : (y+1)*w]
		for x := range w {
			l, c, rr := r[max(x-1, 0)], r[x], r[min(x+1, w-1)]
			g.row[y*w+x] = float32(int(l) + int(c) + int(rr))
		}
	}
	for y := range h {
		up, dn := max(y-1, 0), min(y+1, h-1)
		for x := range w {
			g.cur[y*w+x] = (g.row[up*w+x] + g.row[y*w+x] + g.row[dn*w+x]) / 9
		}
	}
	return true
}

// corners is p as a list of vertices (a two-point rectangle expanded).
func (p Polygon) corners() [][2]float64 {
	if len(p) == 2 {
		a, b := p[0], p[1]
		return [][2]float64{{a[0], a[1]}, {b[0], a[1]}, {b[0], b[1]}, {a[0], b[1]}}
	}
	return p
}

func (p Polygon) area() float64 {
	vs := p.corners()
	var s float64
	for i := range vs {
		j := (i + 1) % len(vs)
		s += vs[i][0]*vs[j][1] - vs[j][0]*vs[i][1]
	}
	return math.Abs(s) / 2
}

// contains is the even-odd rule.
func (p Polygon) contains(x, y float64) bool {
	vs := p.corners()
	in := false
	for i, j := 0, len(vs)-1; i < len(vs); j, i = i, i+1 {
		xi, yi, xj, yj := vs[i][0], vs[i][1], vs[j][0], vs[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}
