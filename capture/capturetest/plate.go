package capturetest

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// PlateStyle is the look of a plate. Zero colours and sizes take the
// defaults of DefaultPlateStyle; State "" draws no state word.
type PlateStyle struct {
	// Width and Height of the rendered plate in pixels (default 240x120,
	// the 2:1 of a US plate). The scene scales it down into the frame.
	Width, Height int
	Background    color.RGBA // default off-white
	Border        color.RGBA // default near-black
	Ink           color.RGBA // characters; default dark navy
	StateInk      color.RGBA // state word; default dark red
	// State is the small word above the characters, e.g. "WASHINGTON".
	State string
}

// DefaultPlateStyle is a white US-like plate with dark characters and a
// small state word on top.
func DefaultPlateStyle() PlateStyle {
	return PlateStyle{
		Width:      240,
		Height:     120,
		Background: color.RGBA{246, 246, 240, 255},
		Border:     color.RGBA{28, 28, 34, 255},
		Ink:        color.RGBA{18, 24, 64, 255},
		StateInk:   color.RGBA{150, 24, 34, 255},
		State:      "WASHINGTON",
	}
}

func (s PlateStyle) withDefaults() PlateStyle {
	d := DefaultPlateStyle()
	if s.Width <= 0 || s.Height <= 0 {
		s.Width, s.Height = d.Width, d.Height
	}
	if s.Background == (color.RGBA{}) {
		s.Background = d.Background
	}
	if s.Border == (color.RGBA{}) {
		s.Border = d.Border
	}
	if s.Ink == (color.RGBA{}) {
		s.Ink = d.Ink
	}
	if s.StateInk == (color.RGBA{}) {
		s.StateInk = d.StateInk
	}
	return s
}

var (
	fontOnce sync.Once
	fontBold *opentype.Font
	fontErr  error
)

func boldFont() (*opentype.Font, error) {
	fontOnce.Do(func() { fontBold, fontErr = opentype.Parse(gobold.TTF) })
	return fontBold, fontErr
}

// textMask renders text in Go Bold and returns the alpha mask cropped to
// the ink.
func textMask(text string, size float64) (*image.Alpha, error) {
	f, err := boldFont()
	if err != nil {
		return nil, fmt.Errorf("parse go bold font: %w", err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("open font face: %w", err)
	}
	defer face.Close()
	b, _ := font.BoundString(face, text)
	ink := image.Rect(b.Min.X.Floor(), b.Min.Y.Floor(), b.Max.X.Ceil(), b.Max.Y.Ceil())
	if ink.Empty() {
		return image.NewAlpha(image.Rect(0, 0, 1, 1)), nil
	}
	m := image.NewAlpha(image.Rect(0, 0, ink.Dx(), ink.Dy()))
	d := font.Drawer{Dst: m, Src: image.Opaque, Face: face,
		Dot: fixed.Point26_6{X: fixed.I(-ink.Min.X), Y: fixed.I(-ink.Min.Y)}}
	d.DrawString(text)
	return m, nil
}

// drawText draws text in ink colour, scaled so its ink is h pixels high and
// at most maxW wide (squeezed horizontally beyond that, like the condensed
// type of real plates), centred on (cx, cy).
func drawText(dst draw.Image, text string, ink color.RGBA, cx, cy, h, maxW float64) {
	m, err := textMask(text, 4*h)
	if err != nil || m.Bounds().Dx() < 2 {
		return // the embedded font always parses; nothing to draw otherwise
	}
	mw, mh := float64(m.Bounds().Dx()), float64(m.Bounds().Dy())
	w := mw * h / mh
	if w > maxW {
		w = maxW
	}
	r := image.Rect(int(cx-w/2+0.5), int(cy-h/2+0.5), int(cx+w/2+0.5), int(cy+h/2+0.5))
	scaled := image.NewAlpha(image.Rect(0, 0, r.Dx(), r.Dy()))
	xdraw.CatmullRom.Scale(scaled, scaled.Bounds(), m, m.Bounds(), xdraw.Src, nil)
	draw.DrawMask(dst, r, image.NewUniform(ink), image.Point{}, scaled, image.Point{}, draw.Over)
}

// RenderPlate draws a licence plate: a light plate with a dark border, the
// characters of text big and dark, and the state word small on top.
func RenderPlate(text string, style PlateStyle) *image.RGBA {
	s := style.withDefaults()
	w, h := s.Width, s.Height
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fw, fh := float64(w), float64(h)
	radius := fh * 0.07
	fillRoundRect(img, 0, 0, fw, fh, radius, s.Border)
	bw := fh * 0.035
	fillRoundRect(img, bw, bw, fw-bw, fh-bw, radius*0.7, s.Background)
	// A faint vertical gradient so the plate is not a flat synthetic white.
	for y := 0; y < h; y++ {
		k := 1 - 0.06*float64(y)/fh
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			if img.Pix[i] > 200 {
				img.Pix[i] = uint8(float64(img.Pix[i]) * k)
				img.Pix[i+1] = uint8(float64(img.Pix[i+1]) * k)
				img.Pix[i+2] = uint8(float64(img.Pix[i+2]) * k)
			}
		}
	}
	// Bolt holes, as on every real plate.
	bolt := color.RGBA{150, 150, 150, 255}
	for _, bx := range []float64{0.22, 0.78} {
		fillEllipse(img, fw*bx, fh*0.12, fh*0.03, fh*0.03, bolt, 1)
	}
	if s.State != "" {
		drawText(img, s.State, s.StateInk, fw/2, fh*0.16, fh*0.10, fw*0.42)
	}
	drawText(img, text, s.Ink, fw/2, fh*0.58, fh*0.50, fw*0.88)
	return img
}
