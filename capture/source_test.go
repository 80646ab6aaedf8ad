package capture_test

import (
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		cfg  capture.Config
		want error
	}{
		{"OK", capture.Config{Name: "front", Kind: "file", Path: "a.avi"}, nil},
		{"NoKind", capture.Config{Path: "a.avi"}, capture.ErrInvalidConfig},
		{"UnknownKind", capture.Config{Kind: "rtmp", Path: "x"}, capture.ErrUnknownKind},
		{"NoPath", capture.Config{Kind: "v4l2"}, capture.ErrInvalidConfig},
		{"NegativeFPS", capture.Config{Kind: "images", Path: "d", FPS: -1}, capture.ErrInvalidConfig},
		{"NegativeWidth", capture.Config{Kind: "v4l2", Path: "/dev/video0", Width: -1}, capture.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConfig_Live(t *testing.T) {
	for kind, live := range map[string]bool{"file": false, "images": false, "v4l2": true} {
		if got := (capture.Config{Kind: kind}).Live(); got != live {
			t.Errorf("Config{Kind:%q}.Live() = %v, want %v", kind, got, live)
		}
	}
}

func TestSourceContract(t *testing.T) {
	clip := writeClip(t, 5)
	dir := t.TempDir()
	if err := capturetest.WriteImages(dir, capturetest.SmallClip(4)); err != nil {
		t.Fatal(err)
	}
	open := func(cfg capture.Config) func(t *testing.T) capture.Source {
		return func(t *testing.T) capture.Source {
			src, err := capture.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		}
	}
	t.Run("File", func(t *testing.T) {
		checkLeaks(t)
		capturetest.RunSourceContract(t, open(capture.Config{Kind: "file", Path: clip}))
	})
	t.Run("Images", func(t *testing.T) {
		checkLeaks(t)
		capturetest.RunSourceContract(t, open(capture.Config{Kind: "images", Path: dir}))
	})
	t.Run("FakeCamera", func(t *testing.T) {
		checkLeaks(t)
		capturetest.RunSourceContract(t, func(t *testing.T) capture.Source {
			return capturetest.NewCamera(capturetest.SmallClip(5))
		})
	})
}

func TestFile_Read(t *testing.T) {
	const n = 12
	path := writeClip(t, n)
	tests := []struct {
		name   string
		fps    float64
		period time.Duration
	}{
		{"FileFPS", 0, 100 * time.Millisecond},
		{"ConfigFPS", 25, 40 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			src, err := capture.Open(context.Background(), capture.Config{Name: "front", Kind: "file", Path: path, FPS: tt.fps})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var first time.Time
			for i := range n {
				f, err := src.Read(context.Background())
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if f.Seq != uint64(i+1) || f.Camera != "front" {
					t.Errorf("frame %d: Seq %d Camera %q", i, f.Seq, f.Camera)
				}
				if sz := f.Img.Size(); sz[0] != 90 || sz[1] != 160 {
					t.Errorf("frame %d: size %v, want 90x160", i, sz)
				}
				if i == 0 {
					first = f.Time
				}
				// Timestamps are computed, so they are exact up to rounding.
				if d := f.Time.Sub(first) - time.Duration(i)*tt.period; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("frame %d: %v after the first, want %v", i, f.Time.Sub(first), time.Duration(i)*tt.period)
				}
				f.Close()
			}
			for range 2 {
				if f, err := src.Read(context.Background()); err != io.EOF {
					f.Close()
					t.Fatalf("read past end = %v, want io.EOF", err)
				}
			}
		})
	}
}

func TestFile_Loop(t *testing.T) {
	checkLeaks(t)
	path := writeClip(t, 4)
	src, err := capture.Open(context.Background(), capture.Config{Kind: "file", Path: path, Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var prev time.Time
	for i := range 10 {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if f.Seq != uint64(i+1) || (i > 0 && !f.Time.After(prev)) {
			t.Errorf("frame %d: Seq %d, time not increasing across the loop", i, f.Seq)
		}
		prev = f.Time
		f.Close()
	}
}

func TestFile_Realtime(t *testing.T) {
	checkLeaks(t)
	path := writeClip(t, 3)
	src, err := capture.Open(context.Background(), capture.Config{Kind: "file", Path: path, FPS: 200, Realtime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := range 3 {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// A paced source never hands out a frame before its time.
		if now := time.Now(); now.Before(f.Time) {
			t.Errorf("frame %d returned at %v, before its timestamp %v", i, now, f.Time)
		}
		f.Close()
	}

	// At 0.01 fps the second frame is 100 s away: cancellation must end
	// the wait.
	slow, err := capture.Open(context.Background(), capture.Config{Kind: "file", Path: path, FPS: 0.01, Realtime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	f, err := slow.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if f, err := slow.Read(ctx); !errors.Is(err, context.Canceled) {
		f.Close()
		t.Errorf("Read = %v, want context.Canceled", err)
	}
}

func TestFile_OpenErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.avi")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a video ", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.avi")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"Missing", filepath.Join(dir, "nope.avi"), fs.ErrNotExist},
		{"Corrupt", junk, capture.ErrNoFrames},
		{"Empty", empty, capture.ErrNoFrames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := capture.Open(context.Background(), capture.Config{Kind: "file", Path: tt.path})
			if err == nil {
				src.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Open error %q: want %v and the path", err, tt.want)
			}
		})
	}
}

func TestImages_Read(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	if err := capturetest.WriteImages(dir, capturetest.SmallClip(3)); err != nil {
		t.Fatal(err)
	}
	// A PNG that sorts last, a file that is not an image by name, a folder,
	// and a .jpg that does not decode.
	pngFile, err := os.Create(filepath.Join(dir, "frame-0005.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(pngFile, image.NewRGBA(image.Rect(0, 0, 32, 16))); err != nil {
		t.Fatal(err)
	}
	pngFile.Close()
	for name, data := range map[string]string{"notes.txt": "hello", "frame-0004.jpg": "garbage"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A JPEG cut short (a copy interrupted): the decoder would fill the
	// missing rows with grey and call it a frame.
	whole, err := os.ReadFile(filepath.Join(dir, "frame-0003.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "frame-0003b.jpg"), whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	src, err := capture.Open(context.Background(), capture.Config{Name: "rear", Kind: "images", Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	imgs := src.(*capture.Images)
	if imgs.Len() != 6 || !slices.Equal(imgs.Skipped(), []string{"notes.txt"}) {
		t.Errorf("Len %d Skipped %v, want 6 and [notes.txt]", imgs.Len(), imgs.Skipped())
	}
	var got []uint64
	var bad []string
	var first time.Time
	for {
		f, err := src.Read(context.Background())
		if errors.Is(err, capture.ErrBadFrame) {
			if !strings.Contains(err.Error(), "frame-0004.jpg") && !strings.Contains(err.Error(), "frame-0003b.jpg") {
				t.Errorf("bad frame error %q does not name the file", err)
			}
			bad = append(bad, strings.TrimSuffix(filepath.Base(strings.Fields(err.Error())[2]), ":"))
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq == 1 {
			first = f.Time
		}
		// Default 10 fps: frame Seq is due (Seq-1)*100ms after the first.
		if d := f.Time.Sub(first) - time.Duration(f.Seq-1)*100*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("Seq %d at %v after the first", f.Seq, f.Time.Sub(first))
		}
		got = append(got, f.Seq)
		f.Close()
	}
	if want := []uint64{1, 2, 3, 6}; !slices.Equal(got, want) {
		t.Errorf("Seqs %v, want %v (4 is the truncated JPEG, 5 the garbage one)", got, want)
	}
	if want := []string{"frame-0003b.jpg", "frame-0004.jpg"}; !slices.Equal(bad, want) {
		t.Errorf("bad frames %v, want %v", bad, want)
	}
}

func TestImages_OpenErrors(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "readme.md"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	tests := []struct {
		name, path string
		want       error
	}{
		{"NoImages", empty, capture.ErrNoImages},
		{"Missing", missing, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := capture.Open(context.Background(), capture.Config{Kind: "images", Path: tt.path})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Open error %v: want %v and the path", err, tt.want)
			}
		})
	}
}

func TestV4L2_MissingDevice(t *testing.T) {
	const dev = "/dev/video99"
	src, err := capture.Open(context.Background(), capture.Config{Name: "front", Kind: "v4l2", Path: dev, Width: 1280, Height: 720, FPS: 30})
	if err == nil {
		src.Close()
		t.Skipf("%s exists on this machine", dev)
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dev) || !strings.Contains(err.Error(), "v4l2") {
		t.Errorf("Open error %q: want fs.ErrNotExist naming v4l2 and %s", err, dev)
	}
}

func TestV4L2_NotADevice(t *testing.T) {
	// A regular file is not a V4L2 device: OpenCV refuses it.
	path := filepath.Join(t.TempDir(), "video0")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := capture.Open(context.Background(), capture.Config{Kind: "v4l2", Path: path})
	if !errors.Is(err, capture.ErrDevice) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open error %v: want ErrDevice naming the path", err)
	}
}
