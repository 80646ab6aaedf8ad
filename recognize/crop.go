package recognize

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

const cropQuality = 85

// CropJPEG encodes the plate region of img, box padded by a fifth of its
// height on every side and clipped to the image, as a JPEG of quality 85.
// img is BGR 8UC3, grey 8UC1 or BGRA 8UC4. A box that misses the image is
// ErrEmptyBox.
func CropJPEG(img gocv.Mat, box image.Rectangle) ([]byte, error) {
	if img.Ptr() == nil || img.Empty() {
		return nil, ErrEmptyImage
	}
	box = box.Canon()
	pad := max(2, box.Dy()/5)
	r := box.Inset(-pad).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Empty() {
		return nil, fmt.Errorf("crop %v of %dx%d image: %w", box, img.Cols(), img.Rows(), ErrEmptyBox)
	}
	src, owned, err := asBGR(img)
	if err != nil {
		return nil, fmt.Errorf("crop plate: %w", err)
	}
	if owned {
		defer src.Close()
	}
	roi := src.Region(r)
	defer roi.Close()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, roi, []int{gocv.IMWriteJpegQuality, cropQuality})
	if err != nil {
		return nil, fmt.Errorf("encode crop: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
