package capturetest

import (
	"image"
	"image/color"
	"math"
)

// blend mixes c over the pixel at (x, y) with coverage a in [0, 1].
func blend(img *image.RGBA, x, y int, c color.RGBA, a float64) {
	if a <= 0 || !(image.Point{x, y}).In(img.Rect) {
		return
	}
	if a > 1 {
		a = 1
	}
	i := img.PixOffset(x, y)
	p := img.Pix[i : i+4 : i+4]
	p[0] = uint8(float64(p[0]) + (float64(c.R)-float64(p[0]))*a + 0.5)
	p[1] = uint8(float64(p[1]) + (float64(c.G)-float64(p[1]))*a + 0.5)
	p[2] = uint8(float64(p[2]) + (float64(c.B)-float64(p[2]))*a + 0.5)
	p[3] = 255
}

// fillRoundRect fills the rectangle (x0,y0)-(x1,y1) with corners of radius
// r, anti-aliased by the signed distance to its edge.
func fillRoundRect(img *image.RGBA, x0, y0, x1, y1, r float64, c color.RGBA) {
	r = math.Min(r, math.Min(x1-x0, y1-y0)/2)
	cx, cy := (x0+x1)/2, (y0+y1)/2
	hx, hy := (x1-x0)/2-r, (y1-y0)/2-r
	b := image.Rect(int(math.Floor(x0)), int(math.Floor(y0)), int(math.Ceil(x1)), int(math.Ceil(y1))).Intersect(img.Rect)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dx := math.Max(math.Abs(float64(x)+0.5-cx)-hx, 0)
			dy := math.Max(math.Abs(float64(y)+0.5-cy)-hy, 0)
			d := math.Hypot(dx, dy) - r
			blend(img, x, y, c, 0.5-d)
		}
	}
}

// fillEllipse fills an anti-aliased ellipse centred on (cx, cy) with
// opacity alpha.
func fillEllipse(img *image.RGBA, cx, cy, rx, ry float64, c color.RGBA, alpha float64) {
	b := image.Rect(int(cx-rx-1), int(cy-ry-1), int(cx+rx+2), int(cy+ry+2)).Intersect(img.Rect)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			nx, ny := (float64(x)+0.5-cx)/rx, (float64(y)+0.5-cy)/ry
			// Distance to the edge in pixels, approximated along the
			// smaller radius.
			d := (math.Sqrt(nx*nx+ny*ny) - 1) * math.Min(rx, ry)
			blend(img, x, y, c, min(0.5-d, 1)*alpha)
		}
	}
}

// homography maps the plane to itself projectively: (x, y) ->
// ((h0 x + h1 y + h2) / w, (h3 x + h4 y + h5) / w), w = h6 x + h7 y + 1.
type homography [8]float64

func (h homography) apply(x, y float64) (float64, float64) {
	w := h[6]*x + h[7]*y + 1
	return (h[0]*x + h[1]*y + h[2]) / w, (h[3]*x + h[4]*y + h[5]) / w
}

// solveHomography returns the homography taking src[i] to dst[i].
func solveHomography(src, dst [4][2]float64) (homography, bool) {
	var a [8][9]float64
	for i := range 4 {
		x, y, u, v := src[i][0], src[i][1], dst[i][0], dst[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for col := range 8 {
		piv := col
		for r := col + 1; r < 8; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return homography{}, false
		}
		a[col], a[piv] = a[piv], a[col]
		for r := range 8 {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for k := col; k < 9; k++ {
				a[r][k] -= f * a[col][k]
			}
		}
	}
	var h homography
	for i := range 8 {
		h[i] = a[i][8] / a[i][i]
	}
	return h, true
}

// warpInto draws src onto dst so that src's corners land on quad (top-left,
// top-right, bottom-right, bottom-left), supersampled 4x4 per pixel so the
// edges and the downscaled characters are smooth.
func warpInto(dst *image.RGBA, src *image.RGBA, quad [4][2]float64) {
	sw, sh := float64(src.Rect.Dx()), float64(src.Rect.Dy())
	inv, ok := solveHomography(quad, [4][2]float64{{0, 0}, {sw, 0}, {sw, sh}, {0, sh}})
	if !ok {
		return
	}
	minX, minY, maxX, maxY := quad[0][0], quad[0][1], quad[0][0], quad[0][1]
	for _, p := range quad[1:] {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	b := image.Rect(int(minX)-1, int(minY)-1, int(maxX)+2, int(maxY)+2).Intersect(dst.Rect)
	const n = 4
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var r, g, bl, cov float64
			for sy := range n {
				for sx := range n {
					u, v := inv.apply(float64(x)+(float64(sx)+0.5)/n, float64(y)+(float64(sy)+0.5)/n)
					if u < 0 || v < 0 || u >= sw || v >= sh {
						continue
					}
					cr, cg, cb := bilinear(src, u, v)
					r, g, bl, cov = r+cr, g+cg, bl+cb, cov+1
				}
			}
			if cov == 0 {
				continue
			}
			blend(dst, x, y, color.RGBA{uint8(r/cov + 0.5), uint8(g/cov + 0.5), uint8(bl/cov + 0.5), 255}, cov/(n*n))
		}
	}
}

func bilinear(img *image.RGBA, u, v float64) (float64, float64, float64) {
	x, y := u-0.5, v-0.5
	x0, y0 := int(math.Floor(x)), int(math.Floor(y))
	fx, fy := x-float64(x0), y-float64(y0)
	clampX := func(i int) int { return min(max(i, 0), img.Rect.Dx()-1) }
	clampY := func(i int) int { return min(max(i, 0), img.Rect.Dy()-1) }
	var out [3]float64
	for _, c := range [4]struct {
		x, y int
		w    float64
	}{{x0, y0, (1 - fx) * (1 - fy)}, {x0 + 1, y0, fx * (1 - fy)}, {x0, y0 + 1, (1 - fx) * fy}, {x0 + 1, y0 + 1, fx * fy}} {
		i := img.PixOffset(img.Rect.Min.X+clampX(c.x), img.Rect.Min.Y+clampY(c.y))
		out[0] += float64(img.Pix[i]) * c.w
		out[1] += float64(img.Pix[i+1]) * c.w
		out[2] += float64(img.Pix[i+2]) * c.w
	}
	return out[0], out[1], out[2]
}

// gaussianBlur blurs img in place with standard deviation sigma (pixels),
// as two separable passes.
func gaussianBlur(img *image.RGBA, sigma float64) {
	if sigma < 0.2 {
		return
	}
	radius := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*radius+1)
	var sum float64
	for i := range k {
		d := float64(i - radius)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	tmp := make([]float64, w*h*3)
	// Horizontal pass into tmp, vertical pass back into img.
	for y := range h {
		row := img.Pix[y*img.Stride:]
		for x := range w {
			var r, g, b float64
			for j, kw := range k {
				xx := min(max(x+j-radius, 0), w-1) * 4
				r += float64(row[xx]) * kw
				g += float64(row[xx+1]) * kw
				b += float64(row[xx+2]) * kw
			}
			o := (y*w + x) * 3
			tmp[o], tmp[o+1], tmp[o+2] = r, g, b
		}
	}
	for y := range h {
		for x := range w {
			var r, g, b float64
			for j, kw := range k {
				o := (min(max(y+j-radius, 0), h-1)*w + x) * 3
				r += tmp[o] * kw
				g += tmp[o+1] * kw
				b += tmp[o+2] * kw
			}
			i := y*img.Stride + x*4
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = clamp8(r), clamp8(g), clamp8(b)
		}
	}
}

func clamp8(v float64) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v + 0.5)
}

// hash2 is a cheap deterministic per-pixel noise in [0, 1).
func hash2(x, y int, seed uint64) float64 {
	h := uint64(x)*0x9E3779B97F4A7C15 ^ uint64(y)*0xC2B2AE3D27D4EB4F ^ seed*0x165667B19E3779F9
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return float64(h>>11) / (1 << 53)
}
