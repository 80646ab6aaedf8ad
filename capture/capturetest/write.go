package capturetest

import (
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"
)

// FrameMat renders frame i as a BGR 8UC3 Mat; the caller owns and closes it.
func (c ClipSpec) FrameMat(i int) (gocv.Mat, error) {
	return toMat(c.Frame(i))
}

func toMat(img *image.RGBA) (gocv.Mat, error) {
	m, err := gocv.ImageToMatRGB(img) // RGBA in, BGR 8UC3 out
	if err != nil {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("convert frame to mat: %w", err)
	}
	return m, nil
}

// WriteClip writes the clip as an MJPEG .avi (OpenCV's VideoWriter, codec
// MJPG) at spec.FPS.
func WriteClip(path string, spec ClipSpec) error {
	n := spec.Frames()
	if n == 0 || spec.Width <= 0 || spec.Height <= 0 {
		return fmt.Errorf("write clip %s: empty spec (%dx%d, %d frames)", path, spec.Width, spec.Height, n)
	}
	vw, err := gocv.VideoWriterFile(path, "MJPG", spec.FPS, spec.Width, spec.Height, true)
	if err != nil {
		return fmt.Errorf("write clip %s: %w", path, err)
	}
	if !vw.IsOpened() {
		vw.Close()
		return fmt.Errorf("write clip %s: opencv cannot open an MJPG writer there", path)
	}
	for i := range n {
		m, err := spec.FrameMat(i)
		if err != nil {
			vw.Close()
			return fmt.Errorf("write clip %s: %w", path, err)
		}
		err = vw.Write(m)
		m.Close()
		if err != nil {
			vw.Close()
			return fmt.Errorf("write clip %s frame %d: %w", path, i, err)
		}
	}
	if err := vw.Close(); err != nil {
		return fmt.Errorf("write clip %s: %w", path, err)
	}
	// OpenCV reports write failures only by leaving no file behind.
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return fmt.Errorf("write clip %s: opencv wrote nothing", path)
	}
	return nil
}

// WriteImages writes the clip's frames into dir (created if needed) as
// frame-0001.jpg, frame-0002.jpg, ... (JPEG quality 92; the number is the
// Seq a capture source gives the frame).
func WriteImages(dir string, spec ClipSpec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write images: %w", err)
	}
	for i := range spec.Frames() {
		name := filepath.Join(dir, fmt.Sprintf("frame-%04d.jpg", i+1))
		if err := writeJPEG(name, spec.Frame(i)); err != nil {
			return fmt.Errorf("write images: %w", err)
		}
	}
	return nil
}

func writeJPEG(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 92}); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return f.Close()
}

// WriteTruth writes spec.GroundTruth() as indented JSON.
func WriteTruth(path string, spec ClipSpec) error {
	b, err := json.MarshalIndent(spec.GroundTruth(), "", "  ")
	if err != nil {
		return fmt.Errorf("write ground truth %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write ground truth: %w", err)
	}
	return nil
}
