package recognize

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"testing"

	"gocv.io/x/gocv"
)

func TestRecognize_BadInputs(t *testing.T) {
	r := testRecognizer(t, "")
	tests := []struct {
		name    string
		mat     func() gocv.Mat
		wantErr error
	}{
		{"empty", func() gocv.Mat { return gocv.NewMat() }, ErrEmptyImage},
		{"zero value", func() gocv.Mat { return gocv.Mat{} }, ErrEmptyImage},
		{"1x1", func() gocv.Mat { return gocv.NewMatWithSize(1, 1, gocv.MatTypeCV8UC3) }, nil},
		{"7x500", func() gocv.Mat { return gocv.NewMatWithSize(7, 500, gocv.MatTypeCV8UC3) }, nil},
		{"grey", func() gocv.Mat { return gocv.NewMatWithSize(120, 200, gocv.MatTypeCV8UC1) }, nil},
		{"bgra", func() gocv.Mat { return gocv.NewMatWithSize(120, 200, gocv.MatTypeCV8UC4) }, nil},
		{"float", func() gocv.Mat { return gocv.NewMatWithSize(120, 200, gocv.MatTypeCV32FC3) }, ErrUnsupportedImage},
		{"long strip", func() gocv.Mat { return gocv.NewMatWithSize(9, 6000, gocv.MatTypeCV8UC3) }, nil},
		{"huge", func() gocv.Mat {
			return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 200, 200, 0), 4000, 6000, gocv.MatTypeCV8UC3)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.mat()
			defer m.Close()
			plates, err := r.Recognize(m)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Recognize: err %v, want %v", err, tt.wantErr)
			}
			if len(plates) != 0 {
				t.Errorf("plates on a blank image: %+v", plates)
			}
		})
	}
}

// datasetImage decodes the first labelled image of a region.
func datasetImage(t testing.TB, region string) (gocv.Mat, labelled) {
	t.Helper()
	it := loadDataset(t, region)[0]
	img := gocv.IMRead(it.Path, gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		t.Fatalf("decode %s: empty", it.Path)
	}
	return img, it
}

func TestRecognize_ColourForms(t *testing.T) {
	r := testRecognizer(t, "us")
	img, _ := datasetImage(t, "us")
	defer img.Close()
	want, err := r.Recognize(img)
	if err != nil {
		t.Fatalf("Recognize: %v", err)
	}
	if len(want) == 0 {
		t.Fatal("no plate on the first us image")
	}
	b := want[0].Box
	if b.Empty() || !b.In(image.Rect(0, 0, img.Cols(), img.Rows()).Inset(-50)) {
		t.Errorf("box %v not inside the %dx%d image", b, img.Cols(), img.Rows())
	}
	bgra := gocv.NewMat()
	defer bgra.Close()
	gocv.CvtColor(img, &bgra, gocv.ColorBGRToBGRA)
	got, err := r.Recognize(bgra)
	if err != nil || len(got) == 0 || got[0].Text != want[0].Text {
		t.Errorf("BGRA: %+v, %v; want %q", got, err, want[0].Text)
	}
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(img, &grey, gocv.ColorBGRToGray)
	if _, err := r.Recognize(grey); err != nil {
		t.Errorf("grey: %v", err)
	}
}

func TestRecognize_Modes(t *testing.T) {
	img, it := datasetImage(t, "us")
	defer img.Close()
	t.Run("focused", func(t *testing.T) {
		r := testRecognizer(t, "us")
		ps, tr, err := r.RecognizeTrace(img)
		if err != nil {
			t.Fatalf("RecognizeTrace: %v", err)
		}
		passes := map[int]int{}
		for _, b := range tr.Boxes {
			passes[b.Pass]++
		}
		if passes[1] == 0 || passes[2] == 0 {
			t.Errorf("trace has %d first-pass and %d focused boxes, want both", passes[1], passes[2])
		}
		plain, err := r.Recognize(img)
		if err != nil || len(plain) != len(ps) || len(ps) > 0 && ps[0].Text != plain[0].Text {
			t.Errorf("Recognize %+v, %v differs from RecognizeTrace %+v", plain, err, ps)
		}
	})
	t.Run("plain", func(t *testing.T) {
		c := testConfig(t)
		c.Mode = ModePlain
		c.Region = "us"
		r, err := New(c)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer r.Close()
		ps, tr, err := r.RecognizeTrace(img)
		if err != nil {
			t.Fatalf("RecognizeTrace: %v", err)
		}
		if len(ps) > 1 {
			t.Errorf("plain pipeline returned %d plates, want at most 1", len(ps))
		}
		longest := 0
		for _, b := range tr.Boxes {
			if b.Pass != 1 {
				t.Errorf("plain pipeline box of pass %d", b.Pass)
			}
			if n := len(b.Text); n >= 4 && n <= 8 && hasDigit(b.Text) {
				longest = max(longest, n)
			}
		}
		if len(ps) == 0 {
			if longest > 0 {
				t.Errorf("no plate though a box read a %d character string with a digit", longest)
			}
			return
		}
		if p := ps[0].Text; len(p) != longest || !hasDigit(p) {
			t.Errorf("plate %q is not the longest 4-8 character string with a digit (%d) of %+v", p, longest, tr.Boxes)
		}
		t.Logf("plain read %q (label %s)", ps[0].Text, it.Plate)
		// A WithMode view runs the same pipeline on shared sessions, and
		// closing it leaves them open.
		focused := testRecognizer(t, "us")
		v, err := focused.WithMode(ModePlain)
		if err != nil {
			t.Fatalf("WithMode: %v", err)
		}
		vp, err := v.Recognize(img)
		if err != nil || len(vp) != 1 || vp[0].Text != ps[0].Text {
			t.Errorf("view read %+v, %v; want %q", vp, err, ps[0].Text)
		}
		if err := v.Close(); err != nil {
			t.Errorf("close view: %v", err)
		}
		if _, err := focused.Recognize(img); err != nil {
			t.Errorf("Recognize after closing a view: %v", err)
		}
		if _, err := focused.WithMode("fast"); err == nil {
			t.Error("WithMode(\"fast\"): nil error")
		}
	})
}

func TestCropJPEG(t *testing.T) {
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(10, 120, 240, 0), 200, 300, gocv.MatTypeCV8UC3)
	defer img.Close()
	tests := []struct {
		name    string
		box     image.Rectangle
		wantErr error
		size    image.Point
	}{
		{"inside", image.Rect(100, 80, 180, 100), nil, image.Pt(88, 28)},
		{"at edge", image.Rect(280, 190, 320, 210), nil, image.Pt(24, 14)},
		{"outside", image.Rect(400, 300, 450, 320), ErrEmptyBox, image.Point{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := CropJPEG(img, tt.box)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CropJPEG: err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("decode crop: %v", err)
			}
			if got := image.Pt(cfg.Width, cfg.Height); got != tt.size {
				t.Errorf("crop size %v, want %v", got, tt.size)
			}
		})
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := CropJPEG(empty, image.Rect(0, 0, 10, 10)); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("CropJPEG(empty) = %v, want ErrEmptyImage", err)
	}
}

func TestRecognizer_Close(t *testing.T) {
	r, err := New(testConfig(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	m := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8UC3)
	defer m.Close()
	if _, err := r.Recognize(m); !errors.Is(err, ErrClosed) {
		t.Errorf("Recognize after Close = %v, want ErrClosed", err)
	}
}

func TestNew_OtherRuntime(t *testing.T) {
	testRecognizer(t, "") // loads the runtime from the checkout
	c := testConfig(t)
	c.LibPath = t.TempDir() + "/libonnxruntime.so.1"
	if err := copyFile(testConfig(t).LibPath, c.LibPath); err != nil {
		t.Fatalf("copy runtime: %v", err)
	}
	if _, err := New(c); !errors.Is(err, ErrRuntimeMismatch) {
		t.Errorf("New with another runtime = %v, want ErrRuntimeMismatch", err)
	}
}

// BenchmarkRecognize reads the first us image (decoded once) with the
// default configuration: one intra-op thread.
func BenchmarkRecognize(b *testing.B) {
	r := testRecognizer(b, "us")
	img, _ := datasetImage(b, "us")
	defer img.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Recognize(img); err != nil {
			b.Fatal(err)
		}
	}
}
