package recognize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/bits"

	"gocv.io/x/gocv"
)

// MaxImagePixels is the largest image DecodeImage decodes: 50 megapixels
// (150 MB as BGR), well above any plate camera's sensor.
const MaxImagePixels = 50_000_000

// DecodeImage decodes a JPEG or PNG image (8 or 16 bits per channel, grey,
// colour, palette or with alpha) into a BGR 8UC3 Mat that the caller owns
// and must Close. A JPEG's EXIF orientation is applied. The header is
// checked before decoding: no bytes is ErrEmptyImage; other formats
// (GIF, BMP, TIFF, WebP) and JPEG features Go's header reader does not
// know (12-bit samples, arithmetic coding) are ErrUnsupportedImage;
// garbage, truncated or inconsistent files are ErrCorruptImage; more than
// MaxImagePixels is ErrImageTooLarge. 16-bit images are scaled to 8 bits
// as ToBGR8 does.
func DecodeImage(b []byte) (gocv.Mat, error) {
	return decodeImage(b, MaxImagePixels)
}

func decodeImage(b []byte, maxPixels int) (gocv.Mat, error) {
	if len(b) == 0 {
		return gocv.Mat{}, fmt.Errorf("decode image: no bytes: %w", ErrEmptyImage)
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
		return gocv.Mat{}, fmt.Errorf("decode image: not a JPEG or PNG image: %w", ErrCorruptImage)
	default:
		return gocv.Mat{}, fmt.Errorf("decode image: %s is not supported (JPEG or PNG): %w", format, ErrUnsupportedImage)
	}
	var jpegUnsupported jpeg.UnsupportedError
	var pngUnsupported png.UnsupportedError
	switch {
	case errors.As(err, &jpegUnsupported) || errors.As(err, &pngUnsupported):
		// e.g. a 12-bit or arithmetic-coded JPEG
		return gocv.Mat{}, fmt.Errorf("decode %s header: %v: %w", format, err, ErrUnsupportedImage)
	case err != nil:
		return gocv.Mat{}, fmt.Errorf("decode %s header: %v: %w", format, err, ErrCorruptImage)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return gocv.Mat{}, fmt.Errorf("decode %s: size %dx%d: %w", format, cfg.Width, cfg.Height, ErrCorruptImage)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return gocv.Mat{}, fmt.Errorf("decode %s: %dx%d is over %d pixels: %w", format, cfg.Width, cfg.Height, maxPixels, ErrImageTooLarge)
	}
	// The decoders below fill in what a truncated file lacks (grey
	// rows) and call it an image: refuse it first.
	if err := structure(b); err != nil {
		return gocv.Mat{}, fmt.Errorf("decode %s: %w: %w", format, err, ErrCorruptImage)
	}
	m, err := gocv.IMDecode(b, gocv.IMReadAnyDepth|gocv.IMReadAnyColor)
	if err != nil || m.Empty() {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("decode %s: the decoder refused it: %w", format, ErrCorruptImage)
	}
	// EXIF orientation may have turned the image a quarter turn.
	if sz := image.Pt(m.Cols(), m.Rows()); sz != image.Pt(cfg.Width, cfg.Height) && sz != image.Pt(cfg.Height, cfg.Width) {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("decode %s: decoded %v, header says %dx%d: %w", format, sz, cfg.Width, cfg.Height, ErrCorruptImage)
	}
	out, owned, err := toBGR8(m)
	if owned {
		m.Close()
	}
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("decode %s: %w", format, err)
	}
	return out, nil
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

// ToBGR8 returns img as a new BGR 8UC3 Mat that the caller owns: 8-bit
// grey, BGR and BGRA are converted; 16-bit (16UC1, 16UC3, 16UC4, as from a
// 16-bit PNG or a machine-vision camera) is scaled to 8 bits by the range
// its brightest value needs, so a 12-bit sensor's 0..4095 in a 16-bit
// container becomes 0..255, not 0..16. An empty Mat is ErrEmptyImage; any
// other type (float, signed, 2 channels) is ErrUnsupportedImage.
func ToBGR8(img gocv.Mat) (gocv.Mat, error) {
	out, owned, err := toBGR8(img)
	if err != nil {
		return gocv.Mat{}, err
	}
	if !owned {
		return img.Clone(), nil
	}
	return out, nil
}

// toBGR8 is ToBGR8 that returns img itself (owned false) when it is BGR
// 8UC3 already; otherwise the caller must Close the result.
func toBGR8(img gocv.Mat) (gocv.Mat, bool, error) {
	if img.Ptr() == nil || img.Empty() {
		return gocv.Mat{}, false, ErrEmptyImage
	}
	src, srcOwned := img, false
	switch img.Type() {
	case gocv.MatTypeCV8UC1, gocv.MatTypeCV8UC3, gocv.MatTypeCV8UC4:
	case gocv.MatTypeCV16UC1, gocv.MatTypeCV16UC3, gocv.MatTypeCV16UC4:
		src, srcOwned = scale16to8(img), true
	default:
		return gocv.Mat{}, false, fmt.Errorf("convert image of type %v to 8-bit BGR: %w", img.Type(), ErrUnsupportedImage)
	}
	var code gocv.ColorConversionCode
	switch src.Channels() {
	case 3:
		return src, srcOwned, nil
	case 1:
		code = gocv.ColorGrayToBGR
	default:
		code = gocv.ColorBGRAToBGR
	}
	out := gocv.NewMat()
	gocv.CvtColor(src, &out, code)
	if srcOwned {
		src.Close()
	}
	return out, true, nil
}

// scale16to8 maps a 16-bit image to 8 bits: the brightest value fixes the
// bit depth the data uses (at least 8), whose full range maps to 0..255.
func scale16to8(img gocv.Mat) gocv.Mat {
	flat := img.Reshape(1, 0) // MinMaxLoc wants one channel
	_, hi, _, _ := gocv.MinMaxLoc(flat)
	flat.Close()
	depth := max(8, bits.Len16(uint16(hi)))
	out := gocv.NewMat()
	img.ConvertToWithParams(&out, gocv.MatTypeCV8U, float32(255/float64(uint32(1)<<depth-1)), 0)
	return out
}
