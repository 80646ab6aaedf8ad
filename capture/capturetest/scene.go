package capturetest

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// CarSpec is one car crossing the scene.
type CarSpec struct {
	// Plate is the text on its plate, e.g. "YG9X2G".
	Plate string `json:"plate"`
	// Enter is when the car's leading edge reaches the frame edge.
	Enter time.Duration `json:"enter"`
	// Speed in pixels per second: > 0 drives left to right, < 0 right to
	// left.
	Speed float64 `json:"speed"`
	// Lane is the y of the line where the wheels touch the road.
	Lane int `json:"lane"`
	// Scale of the car and its plate (0 = 1: a 240x150 car with a 120x60
	// plate whose characters are 30 px high).
	Scale float64 `json:"scale,omitempty"`
	// Color of the body; zero picks one from a palette.
	Color color.RGBA `json:"-"`
	// Style of the plate; zero is DefaultPlateStyle.
	Style PlateStyle `json:"-"`
}

// ClipSpec is a synthetic scene: a road seen by a fixed camera, cars
// crossing it, and the camera's imperfections. Every frame is a pure
// function of the spec (the Seed drives all randomness), so frames can be
// rendered in any order.
type ClipSpec struct {
	Width, Height int
	FPS           float64
	Duration      time.Duration
	Seed          uint64
	Cars          []CarSpec

	// Blur is the optics' Gaussian blur sigma in pixels, in every frame.
	Blur float64
	// BlurredFraction of the frames (chosen by the seed) are blurred with
	// HeavyBlur instead, so much that their plates are not readable.
	BlurredFraction float64
	// HeavyBlur is the sigma of those frames (0 = 3.5).
	HeavyBlur float64
	// Noise is the sensor noise's standard deviation in 8-bit levels.
	Noise float64
	// Jitter is the brightness jitter: each frame's gain is drawn from
	// 1 ± Jitter.
	Jitter float64
}

// DefaultClip is the demo scene: 640x360 at 10 fps for 14 s (140 frames),
// four cars with distinct plates in two lanes, each plate fully visible for
// at least 2.5 s, about one frame in eight heavily blurred, with sensor noise
// and brightness jitter.
func DefaultClip() ClipSpec {
	return ClipSpec{
		Width: 640, Height: 360, FPS: 10, Duration: 14 * time.Second, Seed: 1,
		Blur: 0.5, BlurredFraction: 0.12, HeavyBlur: 5, Noise: 3.5, Jitter: 0.08,
		Cars: []CarSpec{
			{Plate: "YG9X2G", Enter: 0, Speed: 140, Lane: 176, Scale: 0.9},
			{Plate: "7KMR415", Enter: 3500 * time.Millisecond, Speed: -110, Lane: 348},
			{Plate: "CZH5830", Enter: 6500 * time.Millisecond, Speed: 160, Lane: 176, Scale: 0.9},
			{Plate: "8BDW624", Enter: 9000 * time.Millisecond, Speed: -150, Lane: 348, Color: palette[0]},
		},
	}
}

// Frames is the number of frames in the clip.
func (c ClipSpec) Frames() int {
	if c.FPS <= 0 {
		return 0
	}
	return int(math.Round(c.Duration.Seconds() * c.FPS))
}

// Car geometry at scale 1, in car coordinates (top-left of the car at 0,0).
const (
	carW, carH                       = 240.0, 150.0
	plateX0, plateY0, plateW, plateH = 60.0, 70.0, 120.0, 60.0
)

var palette = []color.RGBA{
	{170, 32, 38, 255},   // red
	{34, 72, 150, 255},   // blue
	{172, 176, 182, 255}, // silver
	{32, 92, 62, 255},    // green
	{222, 222, 216, 255}, // white
	{40, 40, 46, 255},    // black
	{214, 168, 36, 255},  // yellow
}

// carState is where one car is in one frame.
type carState struct {
	idx      int
	spec     CarSpec
	scale    float64
	x, y     float64 // top-left of the car
	quad     [4][2]float64
	plateBox image.Rectangle
}

func (c ClipSpec) carsAt(i int) []carState {
	t := float64(i) / c.FPS
	var out []carState
	for k, car := range c.Cars {
		s := car.Scale
		if s <= 0 {
			s = 1
		}
		w, h := carW*s, carH*s
		dt := t - car.Enter.Seconds()
		if dt < 0 || car.Speed == 0 {
			continue
		}
		x := -w + car.Speed*dt
		if car.Speed < 0 {
			x = float64(c.Width) + car.Speed*dt
		}
		if x >= float64(c.Width) || x+w <= 0 {
			continue
		}
		st := carState{idx: k, spec: car, scale: s, x: x, y: float64(car.Lane) - h}
		st.quad = c.plateQuad(st)
		st.plateBox = quadBounds(st.quad)
		out = append(out, st)
	}
	// Far lanes (smaller y) first, so nearer cars cover them.
	slices.SortStableFunc(out, func(a, b carState) int { return a.spec.Lane - b.spec.Lane })
	return out
}

// plateQuad is where the plate's corners land: a little keystone that
// follows the car across the frame (the plate turns away from the camera
// off-centre) and a fixed mounting roll per car.
func (c ClipSpec) plateQuad(st carState) [4][2]float64 {
	s := st.scale
	cx := st.x + (plateX0+plateW/2)*s
	cy := st.y + (plateY0+plateH/2)*s
	u := math.Max(-1, math.Min(1, (cx-float64(c.Width)/2)/(float64(c.Width)/2)))
	k := 0.07 * u
	hw := plateW * s / 2 * (1 - 0.05*math.Abs(u))
	hh := plateH * s / 2
	roll := (hash2(st.idx, 7, c.Seed) - 0.5) * 5 * math.Pi / 180
	sin, cos := math.Sincos(roll)
	corners := [4][2]float64{{-hw, -hh * (1 + k)}, {hw, -hh * (1 - k)}, {hw, hh * (1 - k)}, {-hw, hh * (1 + k)}}
	for i, p := range corners {
		corners[i] = [2]float64{cx + p[0]*cos - p[1]*sin, cy + p[0]*sin + p[1]*cos}
	}
	return corners
}

func quadBounds(q [4][2]float64) image.Rectangle {
	minX, minY, maxX, maxY := q[0][0], q[0][1], q[0][0], q[0][1]
	for _, p := range q[1:] {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	return image.Rect(int(math.Floor(minX)), int(math.Floor(minY)), int(math.Ceil(maxX)), int(math.Ceil(maxY)))
}

func (st carState) bounds() image.Rectangle {
	return image.Rect(int(st.x), int(st.y), int(math.Ceil(st.x+carW*st.scale)), int(math.Ceil(st.y+carH*st.scale)))
}

// frameLook is the per-frame camera randomness.
type frameLook struct {
	rng   *rand.Rand
	blur  float64
	heavy bool
	gain  float64
}

func (c ClipSpec) look(i int) frameLook {
	rng := rand.New(rand.NewPCG(c.Seed, uint64(i)))
	l := frameLook{rng: rng, blur: c.Blur, gain: 1}
	if rng.Float64() < c.BlurredFraction {
		hb := c.HeavyBlur
		if hb <= 0 {
			hb = 3.5
		}
		l.heavy = true
		l.blur = hb * (0.85 + 0.3*rng.Float64())
	}
	l.gain = 1 + c.Jitter*(2*rng.Float64()-1)
	return l
}

// Frame renders frame i (from 0). Out-of-range i still renders (the road,
// and the cars where they would be then).
func (c ClipSpec) Frame(i int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, max(c.Width, 1), max(c.Height, 1)))
	c.drawRoad(img)
	for _, st := range c.carsAt(i) {
		c.drawCar(img, st)
	}
	l := c.look(i)
	gaussianBlur(img, l.blur)
	if l.gain != 1 || c.Noise > 0 {
		for p := 0; p < len(img.Pix); p += 4 {
			for ch := range 3 {
				v := float64(img.Pix[p+ch]) * l.gain
				if c.Noise > 0 {
					v += l.rng.NormFloat64() * c.Noise
				}
				img.Pix[p+ch] = clamp8(v)
			}
		}
	}
	return img
}

func (c ClipSpec) drawRoad(img *image.RGBA) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	fh := float64(h)
	kerb := int(0.09 * fh)
	for y := range h {
		// Farther road is lighter (haze, low sun on the far lane).
		base := 116 - 24*float64(y)/fh
		if y < kerb {
			base = 150 // pavement
		}
		for x := range w {
			// Fine grain plus soft blotches (value noise on a 24 px grid).
			gx, gy := float64(x)/24, float64(y)/24
			x0, y0 := int(gx), int(gy)
			fx, fy := gx-float64(x0), gy-float64(y0)
			n00, n10 := hash2(x0, y0, c.Seed+11), hash2(x0+1, y0, c.Seed+11)
			n01, n11 := hash2(x0, y0+1, c.Seed+11), hash2(x0+1, y0+1, c.Seed+11)
			blot := (n00*(1-fx)+n10*fx)*(1-fy) + (n01*(1-fx)+n11*fx)*fy
			v := base + 14*(hash2(x, y, c.Seed)-0.5) + 12*(blot-0.5)
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp8(v), clamp8(v), clamp8(v+3), 255
		}
	}
	dark := color.RGBA{60, 60, 62, 255}
	fillRoundRect(img, 0, float64(kerb), float64(w), float64(kerb)+3, 0, dark)
	paint := color.RGBA{228, 226, 210, 255}
	// Solid edge line near the kerb, dashed line between the lanes.
	fillRoundRect(img, 0, 0.125*fh, float64(w), 0.125*fh+3, 0, paint)
	for x := -20.0; x < float64(w); x += 80 {
		fillRoundRect(img, x, 0.515*fh, x+48, 0.515*fh+4, 1, paint)
	}
	fillRoundRect(img, 0, 0.985*fh, float64(w), 0.985*fh+3, 0, paint)
	// Worn paint: let the asphalt grain show through the markings.
	for y := range h {
		for x := range w {
			i := img.PixOffset(x, y)
			if img.Pix[i] > 180 && hash2(x, y, c.Seed+5) < 0.12 {
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = 150, 150, 145
			}
		}
	}
}

func scaleColor(c color.RGBA, k float64) color.RGBA {
	return color.RGBA{clamp8(float64(c.R) * k), clamp8(float64(c.G) * k), clamp8(float64(c.B) * k), 255}
}

func (c ClipSpec) drawCar(img *image.RGBA, st carState) {
	s, x0, y0 := st.scale, st.x, st.y
	rect := func(ax, ay, bx, by, r float64, col color.RGBA) {
		fillRoundRect(img, x0+ax*s, y0+ay*s, x0+bx*s, y0+by*s, r*s, col)
	}
	body := st.spec.Color
	if body == (color.RGBA{}) {
		body = palette[(uint64(st.idx)+c.Seed)%uint64(len(palette))]
	}
	// Shadow, wheels, cabin, body, then the details on the body.
	fillEllipse(img, x0+carW*s/2, y0+carH*s-2*s, carW*s*0.55, 9*s, color.RGBA{20, 20, 22, 255}, 0.55)
	tyre := color.RGBA{22, 22, 24, 255}
	rect(18, 112, 62, 150, 6, tyre)
	rect(178, 112, 222, 150, 6, tyre)
	rect(30, 0, 210, 60, 20, scaleColor(body, 0.82))
	rect(42, 8, 198, 54, 10, color.RGBA{38, 48, 62, 255})
	rect(60, 12, 120, 24, 6, color.RGBA{72, 86, 104, 255}) // sky reflection
	rect(0, 48, 240, 138, 16, body)
	rect(4, 60, 236, 63, 1, scaleColor(body, 0.7)) // crease line
	rect(8, 66, 52, 88, 5, color.RGBA{196, 28, 30, 255})
	rect(188, 66, 232, 88, 5, color.RGBA{196, 28, 30, 255})
	rect(12, 70, 30, 80, 3, color.RGBA{240, 120, 110, 255})
	rect(210, 70, 228, 80, 3, color.RGBA{240, 120, 110, 255})
	rect(54, 66, 186, 134, 6, scaleColor(body, 0.55)) // plate recess
	rect(4, 134, 236, 146, 5, color.RGBA{44, 44, 48, 255})
	warpInto(img, plateImage(st.spec.Plate, st.spec.Style), st.quad)
}

type plateKey struct {
	text  string
	style PlateStyle
}

// plateCache keeps rendered plates; they are read-only once made.
var plateCache sync.Map

func plateImage(text string, style PlateStyle) *image.RGBA {
	k := plateKey{text, style}
	if v, ok := plateCache.Load(k); ok {
		return v.(*image.RGBA)
	}
	v, _ := plateCache.LoadOrStore(k, RenderPlate(text, style))
	return v.(*image.RGBA)
}

// Truth is the ground truth of a clip: which plate is readable where.
type Truth struct {
	Width  int          `json:"width"`
	Height int          `json:"height"`
	FPS    float64      `json:"fps"`
	Frames int          `json:"frames"`
	Seed   uint64       `json:"seed"`
	Plates []PlateTruth `json:"plates"`
}

// PlateTruth is one car's plate through the clip.
type PlateTruth struct {
	Plate string `json:"plate"`
	// FirstFrame and LastFrame bound the frames where the plate is wholly
	// in the frame and not covered (-1 if never).
	FirstFrame int `json:"first_frame"`
	LastFrame  int `json:"last_frame"`
	// Readable counts those frames that are not heavily blurred.
	Readable int          `json:"readable_frames"`
	Frames   []PlateFrame `json:"frames"`
}

// PlateFrame is the plate in one frame. Frame is the 0-based index; a
// capture.Source playing the clip gives it Seq Frame+1.
type PlateFrame struct {
	Frame int `json:"frame"`
	// Box is the plate's bounding box [x, y, w, h], as in a read's "box".
	Box [4]int `json:"box"`
	// Readable is false in heavily blurred frames.
	Readable bool `json:"readable"`
}

// GroundTruth lists, for each car in spec order, the frames where its
// plate is fully visible, with its box.
func (c ClipSpec) GroundTruth() Truth {
	t := Truth{Width: c.Width, Height: c.Height, FPS: c.FPS, Frames: c.Frames(), Seed: c.Seed,
		Plates: make([]PlateTruth, len(c.Cars))}
	for k, car := range c.Cars {
		t.Plates[k] = PlateTruth{Plate: car.Plate, FirstFrame: -1, LastFrame: -1, Frames: []PlateFrame{}}
	}
	frame := image.Rect(0, 0, c.Width, c.Height)
	for i := range t.Frames {
		cars := c.carsAt(i)
		heavy := c.look(i).heavy
		for j, st := range cars {
			if !st.plateBox.In(frame) {
				continue
			}
			covered := false
			for _, o := range cars[j+1:] {
				if o.bounds().Overlaps(st.plateBox) {
					covered = true
				}
			}
			if covered {
				continue
			}
			p := &t.Plates[st.idx]
			b := st.plateBox
			p.Frames = append(p.Frames, PlateFrame{Frame: i, Box: [4]int{b.Min.X, b.Min.Y, b.Dx(), b.Dy()}, Readable: !heavy})
			if p.FirstFrame < 0 {
				p.FirstFrame = i
			}
			p.LastFrame = i
			if !heavy {
				p.Readable++
			}
		}
	}
	return t
}
