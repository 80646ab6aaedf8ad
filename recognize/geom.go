package recognize

import (
	"image"
	"math"
	"sort"
)

// vec is a point or direction in pixel coordinates (y down).
type vec struct{ X, Y float64 }

func (a vec) add(b vec) vec       { return vec{a.X + b.X, a.Y + b.Y} }
func (a vec) sub(b vec) vec       { return vec{a.X - b.X, a.Y - b.Y} }
func (a vec) scale(k float64) vec { return vec{a.X * k, a.Y * k} }
func (a vec) dot(b vec) float64   { return a.X*b.X + a.Y*b.Y }
func (a vec) cross(b vec) float64 { return a.X*b.Y - a.Y*b.X }
func (a vec) norm() float64       { return math.Hypot(a.X, a.Y) }
func (a vec) perp() vec           { return vec{-a.Y, a.X} }

// rotRect is a rotated rectangle: centre C, unit axis U along its width
// (the more horizontal side, U.X > 0), V = U.perp() pointing down, W along
// U and H along V.
type rotRect struct {
	C    vec
	U    vec
	W, H float64
}

// corners returns top-left, top-right, bottom-right, bottom-left.
func (r rotRect) corners() [4]vec {
	a, b := r.U.scale(r.W/2), r.U.perp().scale(r.H/2)
	return [4]vec{
		r.C.sub(a).sub(b),
		r.C.add(a).sub(b),
		r.C.add(a).add(b),
		r.C.sub(a).add(b),
	}
}

// bounds is the axis-aligned rectangle enclosing r, rounded outwards.
func (r rotRect) bounds() image.Rectangle {
	cs := r.corners()
	minX, minY, maxX, maxY := cs[0].X, cs[0].Y, cs[0].X, cs[0].Y
	for _, c := range cs[1:] {
		minX, maxX = math.Min(minX, c.X), math.Max(maxX, c.X)
		minY, maxY = math.Min(minY, c.Y), math.Max(maxY, c.Y)
	}
	return image.Rect(int(math.Floor(minX)), int(math.Floor(minY)), int(math.Ceil(maxX)), int(math.Ceil(maxY)))
}

// contains reports whether p lies inside r.
func (r rotRect) contains(p vec) bool {
	d := p.sub(r.C)
	return math.Abs(d.dot(r.U)) <= r.W/2 && math.Abs(d.dot(r.U.perp())) <= r.H/2
}

// grow adds dw to the width and dh to the height.
func (r rotRect) grow(dw, dh float64) rotRect {
	r.W += dw
	r.H += dh
	return r
}

// scaled maps r by independent x and y scale factors (detector input to
// image pixels). The axes stay orthogonal only when sx == sy; for the small
// aspect changes rounding to /32 causes the error is below a pixel.
func (r rotRect) scaled(sx, sy float64) rotRect {
	u := vec{r.U.X * sx, r.U.Y * sy}
	v := r.U.perp()
	v = vec{v.X * sx, v.Y * sy}
	n := u.norm()
	return rotRect{
		C: vec{r.C.X * sx, r.C.Y * sy},
		U: u.scale(1 / n),
		W: r.W * n,
		H: r.H * v.norm(),
	}
}

// convexHull returns the hull of pts counter-clockwise (Andrew's monotone
// chain); collinear points are dropped.
func convexHull(pts []vec) []vec {
	p := append([]vec(nil), pts...)
	sort.Slice(p, func(i, j int) bool {
		if p[i].X != p[j].X {
			return p[i].X < p[j].X
		}
		return p[i].Y < p[j].Y
	})
	if len(p) < 3 {
		return p
	}
	h := make([]vec, 0, 2*len(p))
	for _, q := range p {
		for len(h) >= 2 && h[len(h)-1].sub(h[len(h)-2]).cross(q.sub(h[len(h)-2])) <= 0 {
			h = h[:len(h)-1]
		}
		h = append(h, q)
	}
	lower := len(h) + 1
	for i := len(p) - 2; i >= 0; i-- {
		q := p[i]
		for len(h) >= lower && h[len(h)-1].sub(h[len(h)-2]).cross(q.sub(h[len(h)-2])) <= 0 {
			h = h[:len(h)-1]
		}
		h = append(h, q)
	}
	return h[:len(h)-1]
}

// minAreaRect is the smallest rotated rectangle around pts: one of its
// sides lies on a hull edge, so every edge is tried.
func minAreaRect(pts []vec) rotRect {
	h := convexHull(pts)
	switch len(h) {
	case 0:
		return rotRect{U: vec{1, 0}}
	case 1:
		return rotRect{C: h[0], U: vec{1, 0}}
	}
	best := rotRect{}
	bestArea := math.Inf(1)
	for i := range h {
		e := h[(i+1)%len(h)].sub(h[i])
		n := e.norm()
		if n == 0 {
			continue
		}
		u := e.scale(1 / n)
		v := u.perp()
		minU, maxU, minV, maxV := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, q := range h {
			a, b := q.dot(u), q.dot(v)
			minU, maxU = math.Min(minU, a), math.Max(maxU, a)
			minV, maxV = math.Min(minV, b), math.Max(maxV, b)
		}
		if area := (maxU - minU) * (maxV - minV); area < bestArea {
			bestArea = area
			c := u.scale((minU + maxU) / 2).add(v.scale((minV + maxV) / 2))
			best = rotRect{C: c, U: u, W: maxU - minU, H: maxV - minV}
		}
	}
	return canonical(best)
}

// canonical turns r so that U is its more horizontal axis, pointing right.
func canonical(r rotRect) rotRect {
	if math.Abs(r.U.Y) > math.Abs(r.U.X) {
		r.U = r.U.perp()
		r.W, r.H = r.H, r.W
	}
	if r.U.X < 0 {
		r.U = r.U.scale(-1)
	}
	return r
}

// rectOverlap is the intersection area over the smaller area.
func rectOverlap(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	s := min(a.Dx()*a.Dy(), b.Dx()*b.Dy())
	if s <= 0 {
		return 0
	}
	return float64(in.Dx()*in.Dy()) / float64(s)
}
