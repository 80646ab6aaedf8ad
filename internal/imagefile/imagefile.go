// Package imagefile checks JPEG and PNG bytes before a decoder sees them:
// the format by its magic bytes, the size the header declares (against a
// pixel budget, so a decompression bomb is refused unread), and the
// structure to the end marker, which a truncated file lacks (decoders fill
// the missing rows with grey and call it an image). Pure Go, for every
// package that decodes outside images (recognize, capture).
package imagefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
)

// Errors of Check.
var (
	// ErrEmpty: no bytes.
	ErrEmpty = errors.New("empty image")
	// ErrCorrupt: not an image, a damaged header or a truncated file.
	ErrCorrupt = errors.New("corrupt image")
	// ErrUnsupported: a real image in a format other than JPEG or PNG, or
	// a JPEG/PNG variant the decoders refuse (12-bit, arithmetic coding).
	ErrUnsupported = errors.New("unsupported image format")
	// ErrTooLarge: the header declares more pixels than allowed.
	ErrTooLarge = errors.New("image too large")
)

// Info is what the header says.
type Info struct {
	Format        string // "jpeg" or "png"
	Width, Height int
}

// Check checks b as a whole JPEG or PNG file of at most maxPixels pixels.
func Check(b []byte, maxPixels int) (Info, error) {
	if len(b) == 0 {
		return Info{}, ErrEmpty
	}
	var cfg image.Config
	var err error
	var structure func([]byte) error
	format := sniffFormat(b)
	switch format {
	case "jpeg":
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
		structure = checkJPEG
	case "png":
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
		structure = checkPNG
	case "":
		return Info{}, fmt.Errorf("not a JPEG or PNG image: %w", ErrCorrupt)
	default:
		return Info{}, fmt.Errorf("%s is not supported (JPEG or PNG): %w", format, ErrUnsupported)
	}
	var jpegUnsupported jpeg.UnsupportedError
	var pngUnsupported png.UnsupportedError
	switch {
	case errors.As(err, &jpegUnsupported) || errors.As(err, &pngUnsupported):
		// e.g. a 12-bit or arithmetic-coded JPEG
		return Info{}, fmt.Errorf("%s header: %v: %w", format, err, ErrUnsupported)
	case err != nil:
		return Info{}, fmt.Errorf("%s header: %v: %w", format, err, ErrCorrupt)
	}
	info := Info{Format: format, Width: cfg.Width, Height: cfg.Height}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return info, fmt.Errorf("%s: size %dx%d: %w", format, cfg.Width, cfg.Height, ErrCorrupt)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return info, fmt.Errorf("%s: %dx%d is over %d pixels: %w", format, cfg.Width, cfg.Height, maxPixels, ErrTooLarge)
	}
	if err := structure(b); err != nil {
		return info, fmt.Errorf("%s: %w: %w", format, err, ErrCorrupt)
	}
	return info, nil
}

// sniffFormat names the image format by its magic bytes ("" if unknown).
func sniffFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "gif"
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 26:
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case len(b) >= 12 && bytes.HasPrefix(b, []byte("RIFF")) && string(b[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

var errTruncated = errors.New("truncated")

// checkJPEG walks the JPEG's marker segments and entropy-coded scans to the
// end-of-image marker, which a truncated file lacks. Segments are skipped
// by their length, so an EXIF thumbnail's own end marker does not count.
// Stray bytes between segments are skipped, as libjpeg does.
func checkJPEG(b []byte) error {
	i := 2 // after SOI
	for {
		j := bytes.IndexByte(b[i:], 0xFF)
		if j < 0 {
			return errTruncated
		}
		i += j
		for i < len(b) && b[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(b) {
			return errTruncated
		}
		marker := b[i]
		i++
		switch {
		case marker == 0xD9: // EOI
			return nil
		case marker == 0x00, marker == 0x01, marker >= 0xD0 && marker <= 0xD8:
			continue // stuffed byte, TEM, RSTn, SOI: no length
		}
		if i+2 > len(b) {
			return errTruncated
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 {
			return fmt.Errorf("segment %#x of length %d", marker, n)
		}
		if i+n > len(b) {
			return errTruncated
		}
		i += n
		if marker != 0xDA { // SOS: entropy-coded data up to the next marker
			continue
		}
		for {
			j := bytes.IndexByte(b[i:], 0xFF)
			if j < 0 || i+j+1 >= len(b) {
				return errTruncated
			}
			i += j
			if next := b[i+1]; next == 0x00 || (next >= 0xD0 && next <= 0xD7) {
				i += 2
				continue
			}
			break
		}
	}
}

// checkPNG walks the PNG's chunks to IEND, which a truncated file lacks.
// The decoder checks the CRCs.
func checkPNG(b []byte) error {
	i := 8 // after the signature
	for {
		if i+8 > len(b) {
			return errTruncated
		}
		n := binary.BigEndian.Uint32(b[i:])
		if n > math.MaxInt32 {
			return fmt.Errorf("chunk of length %d", n)
		}
		typ := string(b[i+4 : i+8])
		end := int64(i) + 12 + int64(n)
		if end > int64(len(b)) {
			return errTruncated
		}
		if typ == "IEND" {
			return nil
		}
		i = int(end)
	}
}
