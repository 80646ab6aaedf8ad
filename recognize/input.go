package recognize

import (
	"errors"
	"fmt"
	"image"
	"math/bits"

	"gocv.io/x/gocv"

	"github.com/alpr-agent/alpr-agent/internal/imagefile"
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
	info, err := imagefile.Check(b, maxPixels)
	switch {
	case errors.Is(err, imagefile.ErrEmpty):
		return gocv.Mat{}, fmt.Errorf("decode image: %w: %w", err, ErrEmptyImage)
	case errors.Is(err, imagefile.ErrUnsupported):
		return gocv.Mat{}, fmt.Errorf("decode image: %w: %w", err, ErrUnsupportedImage)
	case errors.Is(err, imagefile.ErrTooLarge):
		return gocv.Mat{}, fmt.Errorf("decode image: %w: %w", err, ErrImageTooLarge)
	case err != nil:
		return gocv.Mat{}, fmt.Errorf("decode image: %w: %w", err, ErrCorruptImage)
	}
	format := info.Format
	m, err := gocv.IMDecode(b, gocv.IMReadAnyDepth|gocv.IMReadAnyColor)
	if err != nil || m.Empty() {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("decode %s: the decoder refused it: %w", format, ErrCorruptImage)
	}
	// EXIF orientation may have turned the image a quarter turn.
	if sz := image.Pt(m.Cols(), m.Rows()); sz != image.Pt(info.Width, info.Height) && sz != image.Pt(info.Height, info.Width) {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("decode %s: decoded %v, header says %dx%d: %w", format, sz, info.Width, info.Height, ErrCorruptImage)
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
