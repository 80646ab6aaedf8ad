package capture

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/internal/imagefile"
)

// maxImagePixels bounds a file's declared size (50 MP, as
// recognize.MaxImagePixels): larger is a bad frame, not a decode.
const maxImagePixels = 50_000_000

// Images is a Source that plays a folder of .jpg, .jpeg and .png files in
// name order. Other files are skipped (see Skipped); an image file that does
// not decode makes Read return an error wrapping ErrBadFrame for that frame.
type Images struct {
	cfg     Config
	files   []string
	skipped []string
	pace    pacer
	next    uint64 // index of the next frame (counts up across loops)
	closed  bool
}

var _ Source = (*Images)(nil)

func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

func openImages(cfg Config) (*Images, error) {
	entries, err := os.ReadDir(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open image folder: %w", err)
	}
	s := &Images{cfg: cfg}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if !isImageName(e.Name()) {
			s.skipped = append(s.skipped, e.Name())
			continue
		}
		s.files = append(s.files, filepath.Join(cfg.Path, e.Name()))
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("open image folder %s: %w", cfg.Path, ErrNoImages)
	}
	slices.Sort(s.files) // ReadDir sorts already; say so explicitly.
	fps := cfg.FPS
	if fps <= 0 {
		fps = DefaultImagesFPS
	}
	s.pace = newPacer(fps, cfg.Realtime)
	return s, nil
}

// Len is the number of image files found.
func (s *Images) Len() int { return len(s.files) }

// Skipped names the files of the folder that are not images by extension.
func (s *Images) Skipped() []string { return slices.Clone(s.skipped) }

// Read returns the next image, io.EOF after the last one (unless
// Config.Loop), or ctx.Err().
func (s *Images) Read(ctx context.Context) (Frame, error) {
	if s.closed {
		return Frame{}, fmt.Errorf("read image folder %s: %w", s.cfg.Path, ErrClosed)
	}
	if !s.cfg.Loop && s.next >= uint64(len(s.files)) {
		return Frame{}, io.EOF
	}
	t := s.pace.stamp(s.next)
	if err := s.pace.wait(ctx, t); err != nil {
		return Frame{}, err
	}
	name := s.files[s.next%uint64(len(s.files))]
	s.next++
	// Check the bytes before the decoder: it turns a truncated file into a
	// frame with grey rows and no error.
	b, err := os.ReadFile(name)
	if err != nil {
		return Frame{}, fmt.Errorf("read image %s: %w: %w", name, err, ErrBadFrame)
	}
	if _, err := imagefile.Check(b, maxImagePixels); err != nil {
		return Frame{}, fmt.Errorf("decode image %s: %w: %w", name, err, ErrBadFrame)
	}
	img, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil || img.Empty() {
		img.Close()
		return Frame{}, fmt.Errorf("decode image %s: the decoder refused it: %w", name, ErrBadFrame)
	}
	return Frame{Img: img, Seq: s.next, Time: t, Camera: s.cfg.Name}, nil
}

// Close is idempotent; Read after Close returns ErrClosed.
func (s *Images) Close() error {
	s.closed = true
	return nil
}
