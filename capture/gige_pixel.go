package capture

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gocv.io/x/gocv"
)

// ErrPixelFormat is returned by Config.Validate for a GigE pixel format the
// source cannot convert to BGR, and by Open when the camera can deliver none
// that it can. Retrying does not help: the config or the camera must change.
var ErrPixelFormat = errors.New("unsupported pixel format")

// gigePixelFormat is a GenICam (PFNC) pixel format that a GigE source can
// turn into the BGR 8UC3 Mat of a Frame.
type gigePixelFormat struct {
	name string // PFNC name, as in the camera's PixelFormat enumeration
	code uint32 // PFNC value, what the camera and ArvBuffer report
	// raw is the Mat type of the payload as it comes off the wire.
	raw gocv.MatType
	// conv turns raw into BGR; convNone means raw is BGR already.
	conv gocv.ColorConversionCode
}

const convNone gocv.ColorConversionCode = -1

// gigePixelFormats lists the formats a GigE source converts.
//
// OpenCV names a Bayer pattern by the second row's second and third pixels,
// not by the first row as GenICam does, so GenICam RGGB (BayerRG8) is
// OpenCV's "BG" and so on (OpenCV 4 spells the same codes
// COLOR_BayerRGGB2BGR etc.; gocv 0.31 lacks those aliases).
// TestGigEPixelFormats checks the mapping on a synthetic mosaic.
var gigePixelFormats = []gigePixelFormat{
	{"Mono8", 0x01080001, gocv.MatTypeCV8UC1, gocv.ColorGrayToBGR},
	{"BayerGR8", 0x01080008, gocv.MatTypeCV8UC1, gocv.ColorBayerGBToBGR},
	{"BayerRG8", 0x01080009, gocv.MatTypeCV8UC1, gocv.ColorBayerBGToBGR},
	{"BayerGB8", 0x0108000A, gocv.MatTypeCV8UC1, gocv.ColorBayerGRToBGR},
	{"BayerBG8", 0x0108000B, gocv.MatTypeCV8UC1, gocv.ColorBayerRGToBGR},
	{"RGB8", 0x02180014, gocv.MatTypeCV8UC3, gocv.ColorBGRToRGB}, // the same swap,
	{"BGR8", 0x02180015, gocv.MatTypeCV8UC3, convNone},
}

// GigEPixelFormats returns the names Config.PixelFormat accepts for a GigE
// source ("RGB8Packed" and "BGR8Packed", the pre-PFNC names, are accepted
// too).
func GigEPixelFormats() []string {
	names := make([]string, len(gigePixelFormats))
	for i, f := range gigePixelFormats {
		names[i] = f.name
	}
	return names
}

// lookupGigEPixelFormat finds a format by name, case-insensitively.
func lookupGigEPixelFormat(name string) (gigePixelFormat, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), "packed")
	for _, f := range gigePixelFormats {
		if strings.ToLower(f.name) == name {
			return f, true
		}
	}
	return gigePixelFormat{}, false
}

func gigePixelFormatByCode(code uint32) (gigePixelFormat, bool) {
	for _, f := range gigePixelFormats {
		if f.code == code {
			return f, true
		}
	}
	return gigePixelFormat{}, false
}

// bytesPerPixel of the raw payload.
func (f gigePixelFormat) bytesPerPixel() int {
	if f.raw == gocv.MatTypeCV8UC3 {
		return 3
	}
	return 1
}

// toBGR converts raw (which it does not close) to a new BGR Mat. For BGR8
// it returns a clone.
func (f gigePixelFormat) toBGR(raw gocv.Mat) gocv.Mat {
	if f.conv == convNone {
		return raw.Clone()
	}
	out := gocv.NewMat()
	gocv.CvtColor(raw, &out, f.conv)
	return out
}

// validateGigE checks the GigE-only fields of c.
func (c Config) validateGigE() error {
	if c.PixelFormat != "" {
		if _, ok := lookupGigEPixelFormat(c.PixelFormat); !ok {
			return fmt.Errorf("capture config %q: pixel_format %q (want one of %s): %w",
				c.Name, c.PixelFormat, strings.Join(GigEPixelFormats(), ", "), ErrPixelFormat)
		}
	}
	if c.ExposureUS < 0 || math.IsNaN(c.ExposureUS) || math.IsInf(c.ExposureUS, 0) {
		return fmt.Errorf("capture config %q: exposure_us %v: %w", c.Name, c.ExposureUS, ErrInvalidConfig)
	}
	if c.GainDB < 0 || math.IsNaN(c.GainDB) || math.IsInf(c.GainDB, 0) {
		return fmt.Errorf("capture config %q: gain_db %v: %w", c.Name, c.GainDB, ErrInvalidConfig)
	}
	return nil
}
