// Command gensample writes the demo's synthetic camera clip and its ground
// truth: DIR/clip.avi (MJPEG, capturetest.DefaultClip: 640x360, 10 fps,
// 14 s, four cars with plates) and DIR/clip.json (for each plate, the frames
// where it is fully visible, its box [x,y,w,h] and whether the frame is
// sharp enough to read). Output is deterministic for a given -seed.
//
//	go run ./scripts/gensample -out testdata/sample [-seed 1] [-images]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alpr-agent/alpr-agent/capture/capturetest"
)

func main() {
	out := flag.String("out", "", "output folder (created if needed)")
	seed := flag.Uint64("seed", 1, "scene seed")
	images := flag.Bool("images", false, "also write the frames as DIR/frames/frame-NNNN.jpg")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gensample: -out DIR is required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *seed, *images); err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(1)
	}
}

func run(out string, seed uint64, images bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	spec := capturetest.DefaultClip()
	spec.Seed = seed
	clip := filepath.Join(out, "clip.avi")
	if err := capturetest.WriteClip(clip, spec); err != nil {
		return err
	}
	truth := filepath.Join(out, "clip.json")
	if err := capturetest.WriteTruth(truth, spec); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%dx%d, %g fps, %d frames) and %s\n", clip, spec.Width, spec.Height, spec.FPS, spec.Frames(), truth)
	if images {
		dir := filepath.Join(out, "frames")
		if err := capturetest.WriteImages(dir, spec); err != nil {
			return err
		}
		fmt.Printf("wrote %s/frame-0001.jpg..frame-%04d.jpg\n", dir, spec.Frames())
	}
	return nil
}
