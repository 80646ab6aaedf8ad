package capture_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/alpr-agent/alpr-agent/capture"
	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

// A Runner plays a recorded clip; the consumer owns and closes each frame.
func ExampleRunner() {
	dir, err := os.MkdirTemp("", "capture-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	clip := filepath.Join(dir, "clip.avi")
	if err := capturetest.WriteClip(clip, capturetest.SmallClip(5)); err != nil {
		fmt.Println(err)
		return
	}

	cfg := capture.Config{Name: "front", Kind: capture.KindFile, Path: clip}
	r := capture.NewRunner(cfg, 4, slog.New(slog.DiscardHandler))
	if err := r.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(context.Background())
	for f := range r.Frames() { // closed at the end of the file
		fmt.Println(f.Camera, f.Seq, f.Img.Cols(), f.Img.Rows())
		f.Close()
	}
	fmt.Println("dropped:", r.Stats().Dropped)
	// Output:
	// front 1 160 90
	// front 2 160 90
	// front 3 160 90
	// front 4 160 90
	// front 5 160 90
	// dropped: 0
}

// Open a source directly and read until io.EOF.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "capture-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := capturetest.WriteImages(dir, capturetest.SmallClip(3)); err != nil {
		fmt.Println(err)
		return
	}
	src, err := capture.Open(context.Background(), capture.Config{Name: "rear", Kind: capture.KindImages, Path: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	var first capture.Frame
	for {
		f, err := src.Read(context.Background())
		if err != nil {
			fmt.Println(err) // io.EOF
			break
		}
		if f.Seq == 1 {
			first = f
			continue // keep the first frame's time; its Mat is closed below
		}
		fmt.Println(f.Seq, f.Time.Sub(first.Time))
		f.Close()
	}
	first.Close()
	// Output:
	// 2 100ms
	// 3 200ms
	// EOF
}
