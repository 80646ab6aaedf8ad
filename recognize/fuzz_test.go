package recognize

import (
	"errors"
	"image"
	"sync"
	"testing"

	"gocv.io/x/gocv"
)

// fuzzSeeds are the corpus every image fuzzer starts from: small valid
// images of each kind DecodeImage takes, and broken ones.
func fuzzSeeds(t testing.TB) [][]byte {
	pic := testPicture(24, 16)
	jpg := encodeJPEG(t, pic)
	png8 := encodePNG(t, pic)
	png16 := encodePNG(t, gray16(12, 6, func(x, y int) uint16 { return uint16(x*5000 + y*300) }))
	return [][]byte{
		jpg,
		png8,
		png16,
		encodePNG(t, image.NewGray(image.Rect(0, 0, 9, 9))),
		jpg[:len(jpg)*2/3],               // truncated JPEG
		png8[:len(png8)-20],              // truncated PNG
		pngWithSize(t, png8, 9000, 9000), // 81 MP declared
		jpegWithSize(t, jpg, 30000, 30000),
		{},
		[]byte("GIF89a"),
	}
}

// checkDecoded holds DecodeImage to its contract for any input: a BGR 8UC3
// Mat within the size limit, or one of its documented errors and no Mat.
func checkDecoded(t *testing.T, m gocv.Mat, err error, maxPixels int) {
	t.Helper()
	if err != nil {
		if m.Ptr() != nil {
			m.Close()
			t.Fatalf("error %v returned with a Mat", err)
		}
		for _, want := range []error{ErrEmptyImage, ErrCorruptImage, ErrImageTooLarge, ErrUnsupportedImage} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("error %v is none of the documented ones", err)
	}
	if m.Empty() || m.Type() != gocv.MatTypeCV8UC3 || m.Cols()*m.Rows() > maxPixels {
		t.Fatalf("decoded empty=%v type %v %dx%d; want a BGR 8UC3 of at most %d pixels", m.Empty(), m.Type(), m.Cols(), m.Rows(), maxPixels)
	}
}

func FuzzDecodeImage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeImage(b)
		checkDecoded(t, m, err, MaxImagePixels)
		if err == nil {
			m.Close()
		}
	})
}

var (
	fuzzRecMu sync.Mutex
	fuzzRec   *Recognizer
)

// fuzzRecognizer is a us-region Recognizer whose detector works at 320
// pixels instead of 960: about a ninth of the cost per call, so the fuzzers
// try many more inputs, and the same code paths.
func fuzzRecognizer(f *testing.F) *Recognizer {
	f.Helper()
	fuzzRecMu.Lock()
	defer fuzzRecMu.Unlock()
	if fuzzRec == nil {
		c := testConfig(f)
		c.Region, c.DetMaxSide = "us", 320
		r, err := New(c)
		if err != nil {
			f.Fatalf("New: %v", err)
		}
		fuzzRec = r
	}
	return fuzzRec
}

// fuzzMaxPixels bounds the images FuzzDecodeRecognize decodes, so an input
// declaring a large image costs the fuzzer little time. (The recognizer's
// cost hardly depends on the input's size: the detector sees it resized.)
const fuzzMaxPixels = 1 << 20

// FuzzDecodeRecognize feeds random bytes down the whole image path: decode,
// then the real recognizer. Nothing may crash or hang; a plate found on
// fuzz noise is allowed but must be well formed.
func FuzzDecodeRecognize(f *testing.F) {
	r := fuzzRecognizer(f)
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeImage(b, fuzzMaxPixels)
		checkDecoded(t, m, err, fuzzMaxPixels)
		if err != nil {
			return
		}
		defer m.Close()
		plates, err := r.Recognize(m)
		if err != nil {
			t.Fatalf("Recognize of a decoded %dx%d image: %v", m.Cols(), m.Rows(), err)
		}
		for _, p := range plates {
			if p.Text == "" || p.Text != Normalize(p.Text) || !(p.Confidence > 0 && p.Confidence <= 1) {
				t.Errorf("malformed plate %+v", p)
			}
		}
	})
}

// fuzzPixelTypes are the Mat types FuzzRecognizePixels builds.
var fuzzPixelTypes = []gocv.MatType{
	gocv.MatTypeCV8UC1, gocv.MatTypeCV8UC3, gocv.MatTypeCV8UC4,
	gocv.MatTypeCV16UC1, gocv.MatTypeCV16UC3, gocv.MatTypeCV32FC3,
}

// FuzzRecognizePixels gives the real recognizer random pictures: most
// random bytes never decode as an image, so this fuzzer builds the Mat
// itself. The input's first bytes choose the width and height (1 to 256)
// and the type; the rest, repeated, are the pixels. 16-bit pictures go
// through ToBGR8 as a decoded 16-bit PNG does; a float picture must be
// refused with ErrUnsupportedImage (or, when tiny, give nothing); nothing
// may crash, hang or return a malformed plate.
func FuzzRecognizePixels(f *testing.F) {
	r := fuzzRecognizer(f)
	pic := testPicture(64, 40)
	f.Add(append([]byte{63, 39, 1}, pic.Pix...))
	f.Add([]byte{0, 0, 0, 255})
	f.Add([]byte{255, 7, 2, 10, 200, 30, 255})
	f.Add([]byte{31, 31, 3, 0xFF, 0x0F, 0, 0})
	f.Add([]byte{200, 100, 4, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{15, 15, 5, 0, 0, 128, 63})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		w, h, typ := int(b[0])+1, int(b[1])+1, fuzzPixelTypes[int(b[2])%len(fuzzPixelTypes)]
		m := gocv.NewMatWithSize(h, w, typ)
		defer m.Close()
		px, err := m.DataPtrUint8()
		if err != nil {
			t.Fatal(err)
		}
		src := b[3:]
		for i := range px {
			px[i] = src[i%len(src)]
		}
		in := m
		if typ == gocv.MatTypeCV16UC1 || typ == gocv.MatTypeCV16UC3 {
			if in, err = ToBGR8(m); err != nil {
				t.Fatalf("ToBGR8(%v): %v", typ, err)
			}
			defer in.Close()
		}
		plates, err := r.Recognize(in)
		if typ == gocv.MatTypeCV32FC3 {
			// Recognize answers "no plates" for an image too small to
			// hold one before it looks at the type (testdata/fuzz has a
			// 49x1 float image that found this).
			if (err != nil && !errors.Is(err, ErrUnsupportedImage)) || (err == nil && len(plates) > 0) {
				t.Fatalf("Recognize(float %dx%d) = %+v, %v; want ErrUnsupportedImage or nothing", w, h, plates, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Recognize %dx%d %v: %v", w, h, typ, err)
		}
		for _, p := range plates {
			if p.Text == "" || p.Text != Normalize(p.Text) || !(p.Confidence > 0 && p.Confidence <= 1) {
				t.Errorf("malformed plate %+v", p)
			}
		}
	})
}
