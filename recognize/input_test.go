package recognize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"testing"

	"gocv.io/x/gocv"
)

// testPicture is a w x h colour gradient with a dark bar, so decoders have
// something to compress.
func testPicture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), 90, 255}
			if y > h/3 && y < h/2 {
				c = color.RGBA{10, 10, 10, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gray16 is a w x h 16-bit grey image whose pixel (x, y) is v(x, y).
func gray16(w, h int, v func(x, y int) uint16) *image.Gray16 {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray16(x, y, color.Gray16{Y: v(x, y)})
		}
	}
	return img
}

// pngWithSize rewrites a PNG's IHDR to declare w x h (with a valid CRC),
// keeping its pixel data.
func pngWithSize(t testing.TB, b []byte, w, h uint32) []byte {
	t.Helper()
	out := bytes.Clone(b)
	// Signature (8), length (4), "IHDR" (4), width, height, ...
	if string(out[12:16]) != "IHDR" {
		t.Fatal("no IHDR where expected")
	}
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}

// jpegWithSize rewrites a baseline JPEG's SOF0 to declare w x h.
func jpegWithSize(t testing.TB, b []byte, w, h uint16) []byte {
	t.Helper()
	out := bytes.Clone(b)
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	// FFC0, length (2), precision (1), height (2), width (2).
	binary.BigEndian.PutUint16(out[i+5:], h)
	binary.BigEndian.PutUint16(out[i+7:], w)
	return out
}

// pixel returns the BGR values at (x, y) of an 8UC3 Mat.
func pixel(m gocv.Mat, x, y int) [3]uint8 {
	v := m.GetVecbAt(y, x)
	return [3]uint8{v[0], v[1], v[2]}
}

func TestDecodeImage(t *testing.T) {
	pic := testPicture(64, 40)
	jpg := encodeJPEG(t, pic)
	pngRGB := encodePNG(t, pic)
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, pic, nil); err != nil {
		t.Fatal(err)
	}
	nrgba := image.NewNRGBA(pic.Bounds())
	for i := range nrgba.Pix {
		nrgba.Pix[i] = pic.Pix[i]
	}
	for x := range 64 { // a transparent top row: the PNG keeps its alpha
		nrgba.Pix[4*x+3] = 0
	}
	rgba64 := image.NewRGBA64(pic.Bounds())
	for y := range 40 {
		for x := range 64 {
			r, g, b, _ := pic.At(x, y).RGBA()
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(r), uint16(g), uint16(b), 0xFFFF})
		}
	}
	paletted := image.NewPaletted(image.Rect(0, 0, 20, 10), color.Palette{color.Black, color.RGBA{200, 40, 20, 255}})
	paletted.SetColorIndex(3, 3, 1)

	tests := []struct {
		name    string
		b       []byte
		wantErr error
		size    image.Point
		// check, if set, looks at the decoded pixels.
		check func(t *testing.T, m gocv.Mat)
	}{
		{"JPEG", jpg, nil, image.Pt(64, 40), func(t *testing.T, m gocv.Mat) {
			// A dark bar in the middle rows; JPEG is lossy, so loosely.
			if p := pixel(m, 30, 16); p[0] > 40 || p[1] > 40 || p[2] > 40 {
				t.Errorf("bar pixel %v, want dark", p)
			}
		}},
		{"JPEGTrailingBytes", append(bytes.Clone(jpg), 0, 0, 0, 0), nil, image.Pt(64, 40), nil},
		{"PNG", pngRGB, nil, image.Pt(64, 40), func(t *testing.T, m gocv.Mat) {
			// Lossless: pixel (63, 0) is R 255, G 0, B 90, as BGR.
			if p := pixel(m, 63, 0); p != [3]uint8{90, 0, 255} {
				t.Errorf("pixel %v, want BGR [90 0 255]", p)
			}
		}},
		{"PNGAlpha", encodePNG(t, nrgba), nil, image.Pt(64, 40), nil},
		{"PNGGrey", encodePNG(t, image.NewGray(image.Rect(0, 0, 30, 20))), nil, image.Pt(30, 20), nil},
		{"PNGPalette", encodePNG(t, paletted), nil, image.Pt(20, 10), func(t *testing.T, m gocv.Mat) {
			if p := pixel(m, 3, 3); p != [3]uint8{20, 40, 200} {
				t.Errorf("palette pixel %v, want BGR [20 40 200]", p)
			}
		}},
		{"PNG16Grey", encodePNG(t, gray16(16, 8, func(x, _ int) uint16 { return uint16(x) * 4369 })), nil, image.Pt(16, 8), func(t *testing.T, m gocv.Mat) {
			// 0..65535 in 16 steps of 4369 = 17 x 257: 8-bit 0, 17, ..., 255.
			for x := range 16 {
				if p := pixel(m, x, 0); p != [3]uint8{uint8(17 * x), uint8(17 * x), uint8(17 * x)} {
					t.Errorf("x=%d: %v, want grey %d", x, p, 17*x)
				}
			}
		}},
		{"PNG16Colour", encodePNG(t, rgba64), nil, image.Pt(64, 40), func(t *testing.T, m gocv.Mat) {
			if p := pixel(m, 63, 0); p != [3]uint8{90, 0, 255} {
				t.Errorf("pixel %v, want BGR [90 0 255]", p)
			}
		}},
		{"PNG12BitIn16", encodePNG(t, gray16(2, 1, func(x, _ int) uint16 { return []uint16{4095, 2048}[x] })), nil, image.Pt(2, 1), func(t *testing.T, m gocv.Mat) {
			// A 12-bit sensor's full scale is white, not 4095/65535.
			if a, b := pixel(m, 0, 0)[0], pixel(m, 1, 0)[0]; a != 255 || b != 128 {
				t.Errorf("12-bit values 4095, 2048 became %d, %d; want 255, 128", a, b)
			}
		}},
		{"Nil", nil, ErrEmptyImage, image.Point{}, nil},
		{"Empty", []byte{}, ErrEmptyImage, image.Point{}, nil},
		{"Text", []byte("hello, this is not an image"), ErrCorruptImage, image.Point{}, nil},
		{"JPEGMagicOnly", []byte{0xFF, 0xD8, 0xFF}, ErrCorruptImage, image.Point{}, nil},
		{"PNGMagicOnly", []byte("\x89PNG\r\n\x1a\n"), ErrCorruptImage, image.Point{}, nil},
		{"JPEGTruncatedHalf", jpg[:len(jpg)/2], ErrCorruptImage, image.Point{}, nil},
		{"JPEGNoEOI", jpg[:len(jpg)-2], ErrCorruptImage, image.Point{}, nil},
		{"JPEGHeaderOnly", jpg[:bytes.Index(jpg, []byte{0xFF, 0xDA})+2], ErrCorruptImage, image.Point{}, nil},
		{"PNGTruncatedHalf", pngRGB[:len(pngRGB)/2], ErrCorruptImage, image.Point{}, nil},
		{"PNGNoIEND", pngRGB[:len(pngRGB)-12], ErrCorruptImage, image.Point{}, nil},
		{"PNGBadCRC", func() []byte {
			b := bytes.Clone(pngRGB)
			b[len(b)/2] ^= 0x55 // inside the IDAT data: its CRC no longer matches
			return b
		}(), ErrCorruptImage, image.Point{}, nil},
		{"PNGSizeLies", pngWithSize(t, pngRGB, 65, 40), ErrCorruptImage, image.Point{}, nil},
		{"PNGBomb", pngWithSize(t, pngRGB, 100000, 100000), ErrImageTooLarge, image.Point{}, nil},
		{"PNGJustOverLimit", pngWithSize(t, pngRGB, 10000, 5001), ErrImageTooLarge, image.Point{}, nil},
		{"JPEGBomb", jpegWithSize(t, jpg, 65000, 65000), ErrImageTooLarge, image.Point{}, nil},
		{"JPEGZeroHeight", jpegWithSize(t, jpg, 64, 0), ErrCorruptImage, image.Point{}, nil},
		{"GIF", gifBuf.Bytes(), ErrUnsupportedImage, image.Point{}, nil},
		{"JPEGArithmetic", func() []byte { // SOF0 relabelled SOF9
			b := bytes.Clone(jpg)
			b[bytes.Index(b, []byte{0xFF, 0xC0})+1] = 0xC9
			return b
		}(), ErrUnsupportedImage, image.Point{}, nil},
		{"JPEG12Bit", func() []byte { // SOF0's sample precision
			b := bytes.Clone(jpg)
			b[bytes.Index(b, []byte{0xFF, 0xC0})+4] = 12
			return b
		}(), ErrUnsupportedImage, image.Point{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeImage(tt.b)
			if !errors.Is(err, tt.wantErr) {
				m.Close()
				t.Fatalf("DecodeImage: err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if m.Ptr() != nil {
					t.Errorf("error %v with a Mat", err)
				}
				return
			}
			defer m.Close()
			if m.Type() != gocv.MatTypeCV8UC3 || image.Pt(m.Cols(), m.Rows()) != tt.size {
				t.Fatalf("decoded %v %dx%d, want 8UC3 %v", m.Type(), m.Cols(), m.Rows(), tt.size)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestToBGR8(t *testing.T) {
	mat16 := func(t *testing.T, typ gocv.MatType, cn int, vals ...uint16) gocv.Mat {
		t.Helper()
		b := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		m, err := gocv.NewMatFromBytes(1, len(vals)/cn, typ, b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name    string
		mat     func(t *testing.T) gocv.Mat
		wantErr error
		want    [][3]uint8 // BGR of row 0, left to right
	}{
		{"BGR", func(*testing.T) gocv.Mat {
			return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(1, 2, 3, 0), 1, 2, gocv.MatTypeCV8UC3)
		}, nil, [][3]uint8{{1, 2, 3}, {1, 2, 3}}},
		{"Grey", func(*testing.T) gocv.Mat {
			return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(77, 0, 0, 0), 1, 2, gocv.MatTypeCV8UC1)
		}, nil, [][3]uint8{{77, 77, 77}, {77, 77, 77}}},
		{"BGRA", func(*testing.T) gocv.Mat {
			return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(1, 2, 3, 4), 1, 2, gocv.MatTypeCV8UC4)
		}, nil, [][3]uint8{{1, 2, 3}, {1, 2, 3}}},
		{"Grey16", func(t *testing.T) gocv.Mat { return mat16(t, gocv.MatTypeCV16UC1, 1, 0, 32896, 65535) },
			nil, [][3]uint8{{0, 0, 0}, {128, 128, 128}, {255, 255, 255}}},
		{"Grey16Dim", func(t *testing.T) gocv.Mat { return mat16(t, gocv.MatTypeCV16UC1, 1, 10, 200) },
			nil, [][3]uint8{{10, 10, 10}, {200, 200, 200}}}, // fits in 8 bits: kept
		{"Grey10Bit", func(t *testing.T) gocv.Mat { return mat16(t, gocv.MatTypeCV16UC1, 1, 1023, 512, 0) },
			nil, [][3]uint8{{255, 255, 255}, {128, 128, 128}, {0, 0, 0}}},
		{"BGR16", func(t *testing.T) gocv.Mat { return mat16(t, gocv.MatTypeCV16UC3, 3, 65535, 0, 257*100) },
			nil, [][3]uint8{{255, 0, 100}}},
		{"BGRA16", func(t *testing.T) gocv.Mat { return mat16(t, gocv.MatTypeCV16UC4, 4, 0, 257*50, 65535, 65535) },
			nil, [][3]uint8{{0, 50, 255}}},
		{"Float", func(*testing.T) gocv.Mat { return gocv.NewMatWithSize(2, 2, gocv.MatTypeCV32FC3) }, ErrUnsupportedImage, nil},
		{"Signed16", func(*testing.T) gocv.Mat { return gocv.NewMatWithSize(2, 2, gocv.MatTypeCV16SC1) }, ErrUnsupportedImage, nil},
		{"TwoChannels", func(*testing.T) gocv.Mat { return gocv.NewMatWithSize(2, 2, gocv.MatTypeCV8UC2) }, ErrUnsupportedImage, nil},
		{"Empty", func(*testing.T) gocv.Mat { return gocv.NewMat() }, ErrEmptyImage, nil},
		{"Zero", func(*testing.T) gocv.Mat { return gocv.Mat{} }, ErrEmptyImage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.mat(t)
			defer in.Close()
			out, err := ToBGR8(in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ToBGR8: err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer out.Close()
			if out.Type() != gocv.MatTypeCV8UC3 || out.Cols() != len(tt.want) || out.Rows() != 1 {
				t.Fatalf("got %v %dx%d", out.Type(), out.Cols(), out.Rows())
			}
			if out.Ptr() == in.Ptr() {
				t.Error("ToBGR8 returned its input, want a Mat of its own")
			}
			for x, w := range tt.want {
				if p := pixel(out, x, 0); p != w {
					t.Errorf("x=%d: %v, want %v", x, p, w)
				}
			}
		})
	}
}

// TestRecognize_16Bit reads a dataset photo given as 16 bits per channel:
// through ToBGR8 or straight to Recognize it must read as the 8-bit
// original does.
func TestRecognize_16Bit(t *testing.T) {
	r := testRecognizer(t, "us")
	img, it := datasetImage(t, "us")
	defer img.Close()
	want, err := r.Recognize(img)
	if err != nil || len(want) == 0 {
		t.Fatalf("8-bit %s: %+v, %v; want a plate", it.Path, want, err)
	}
	for _, tc := range []struct {
		name string
		typ  gocv.MatType
		code gocv.ColorConversionCode
	}{{"BGR16", gocv.MatTypeCV16UC3, -1}, {"Grey16", gocv.MatTypeCV16UC1, gocv.ColorBGRToGray}} {
		t.Run(tc.name, func(t *testing.T) {
			src := img.Clone()
			defer src.Close()
			wantText := want[0].Text
			if tc.code >= 0 {
				gocv.CvtColor(img, &src, tc.code)
				g, err := r.Recognize(src)
				if err != nil || len(g) == 0 {
					t.Fatalf("8-bit grey: %+v, %v", g, err)
				}
				wantText = g[0].Text
			}
			m16 := gocv.NewMat()
			defer m16.Close()
			src.ConvertToWithParams(&m16, tc.typ, 257, 0)
			if m16.Type() != tc.typ {
				t.Fatalf("made %v, want %v", m16.Type(), tc.typ)
			}
			m8, err := ToBGR8(m16)
			if err != nil {
				t.Fatalf("ToBGR8: %v", err)
			}
			defer m8.Close()
			got, err := r.Recognize(m8)
			if err != nil || len(got) == 0 || got[0].Text != wantText {
				t.Errorf("16-bit through ToBGR8: %+v, %v; want %q", got, err, wantText)
			}
			direct, err := r.Recognize(m16)
			if err != nil || len(direct) == 0 || direct[0].Text != wantText {
				t.Errorf("Recognize(16-bit) = %+v, %v; want %q", direct, err, wantText)
			}
		})
	}
}

// TestDecodeImage_Dataset reads a dataset JPEG from its bytes and gets the
// plate the file path gets.
func TestDecodeImage_Dataset(t *testing.T) {
	r := testRecognizer(t, "us")
	img, it := datasetImage(t, "us")
	defer img.Close()
	want, err := r.Recognize(img)
	if err != nil || len(want) == 0 {
		t.Fatalf("IMRead path: %+v, %v", want, err)
	}
	b, err := os.ReadFile(it.Path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeImage(b)
	if err != nil {
		t.Fatalf("DecodeImage(%s): %v", it.Path, err)
	}
	defer m.Close()
	if m.Cols() != img.Cols() || m.Rows() != img.Rows() {
		t.Errorf("decoded %dx%d, IMRead %dx%d", m.Cols(), m.Rows(), img.Cols(), img.Rows())
	}
	got, err := r.Recognize(m)
	if err != nil || len(got) == 0 || got[0].Text != want[0].Text {
		t.Errorf("from bytes: %+v, %v; want %q", got, err, want[0].Text)
	}
	// The same photo cut short: a clear error, not a half-grey picture.
	if _, err := DecodeImage(b[:len(b)*2/3]); !errors.Is(err, ErrCorruptImage) {
		t.Errorf("truncated %s: %v, want ErrCorruptImage", it.Path, err)
	}
}
