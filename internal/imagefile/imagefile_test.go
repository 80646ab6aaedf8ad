package imagefile

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"testing"
)

func encoded(t *testing.T, format string, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheck(t *testing.T) {
	jpg, pngb := encoded(t, "jpeg", 64, 48), encoded(t, "png", 64, 48)
	for _, c := range []struct {
		name    string
		b       []byte
		max     int
		want    error
		wantFmt string
	}{
		{"jpeg", jpg, 1 << 20, nil, "jpeg"},
		{"png", pngb, 1 << 20, nil, "png"},
		{"empty", nil, 1 << 20, ErrEmpty, ""},
		{"garbage", []byte("hello, world"), 1 << 20, ErrCorrupt, ""},
		{"truncated jpeg", jpg[:len(jpg)/2], 1 << 20, ErrCorrupt, ""},
		{"truncated png", pngb[:len(pngb)-13], 1 << 20, ErrCorrupt, ""},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), 1 << 20, ErrUnsupported, ""},
		{"over the pixel budget", jpg, 64*48 - 1, ErrTooLarge, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := Check(c.b, c.max)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Check = %+v, %v; want %v", info, err, c.want)
			}
			if c.want == nil && (info.Format != c.wantFmt || info.Width != 64 || info.Height != 48) {
				t.Errorf("info = %+v", info)
			}
		})
	}
}
