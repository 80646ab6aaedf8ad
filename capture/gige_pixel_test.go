package capture

import (
	"errors"
	"testing"

	"gocv.io/x/gocv"
)

// TestGigEPixelFormats converts a synthetic frame of one colour, laid out
// as each GenICam format would send it, and checks the BGR result. For
// Bayer formats this pins the GenICam-to-OpenCV pattern naming.
func TestGigEPixelFormats(t *testing.T) {
	const b, g, r = 40, 120, 220
	const size = 8
	// mosaic returns the Bayer raw of the colour: top-left 2x2 cell as
	// GenICam names it (e.g. "RG" row then "GB" row for BayerRG8).
	mosaic := func(cell [2][2]byte) []byte {
		raw := make([]byte, size*size)
		for y := range size {
			for x := range size {
				raw[y*size+x] = cell[y%2][x%2]
			}
		}
		return raw
	}
	tests := []struct {
		format string
		raw    []byte
		want   [3]byte // B, G, R
	}{
		{"BayerRG8", mosaic([2][2]byte{{r, g}, {g, b}}), [3]byte{b, g, r}},
		{"BayerGR8", mosaic([2][2]byte{{g, r}, {b, g}}), [3]byte{b, g, r}},
		{"BayerBG8", mosaic([2][2]byte{{b, g}, {g, r}}), [3]byte{b, g, r}},
		{"BayerGB8", mosaic([2][2]byte{{g, b}, {r, g}}), [3]byte{b, g, r}},
		{"Mono8", mosaic([2][2]byte{{g, g}, {g, g}}), [3]byte{g, g, g}},
		{"RGB8Packed", repeat([]byte{r, g, b}, size*size), [3]byte{b, g, r}},
		{"BGR8", repeat([]byte{b, g, r}, size*size), [3]byte{b, g, r}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			f, ok := lookupGigEPixelFormat(tt.format)
			if !ok {
				t.Fatalf("format %s unknown", tt.format)
			}
			raw, err := gocv.NewMatFromBytes(size, size, f.raw, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			out := f.toBGR(raw)
			defer out.Close()
			if out.Type() != gocv.MatTypeCV8UC3 || out.Rows() != size || out.Cols() != size {
				t.Fatalf("got %v %dx%d, want 8UC3 %dx%d", out.Type(), out.Cols(), out.Rows(), size, size)
			}
			v := out.GetVecbAt(size/2, size/2)
			for i := range 3 {
				if d := int(v[i]) - int(tt.want[i]); d < -2 || d > 2 {
					t.Fatalf("centre pixel BGR %v, want %v", v, tt.want)
				}
			}
		})
	}
}

func repeat(px []byte, n int) []byte {
	out := make([]byte, 0, len(px)*n)
	for range n {
		out = append(out, px...)
	}
	return out
}

func TestConfig_ValidateGigE(t *testing.T) {
	ok := Config{Name: "c", Kind: KindGigE, Path: "127.0.0.1", PixelFormat: "bayerrg8", ExposureUS: 5000, GainDB: 3, FPS: 25}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want error
	}{
		{"PixelFormat", func(c *Config) { c.PixelFormat = "YUV422" }, ErrPixelFormat},
		{"Exposure", func(c *Config) { c.ExposureUS = -1 }, ErrInvalidConfig},
		{"Gain", func(c *Config) { c.GainDB = -3 }, ErrInvalidConfig},
		{"Path", func(c *Config) { c.Path = "" }, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			if err := c.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}
