package recognize

import "errors"

// ErrMissingFile is returned by Config.Validate and New when a model file
// or the ONNX Runtime library is absent; the message names the file and
// says how to fetch it (run: make setup).
var ErrMissingFile = errors.New("missing file")

// ErrEmptyImage is returned by Recognize for an empty Mat.
var ErrEmptyImage = errors.New("empty image")

// ErrUnsupportedImage is returned by Recognize, CropJPEG and ToBGR8 for a
// Mat that is not 8- or 16-bit unsigned with 1, 3 or 4 channels, and by
// DecodeImage for an image format other than JPEG and PNG.
var ErrUnsupportedImage = errors.New("unsupported image type")

// ErrClosed is returned by Recognize after Close.
var ErrClosed = errors.New("recognizer closed")

// ErrRuntimeMismatch is returned by New when ONNX Runtime was already loaded
// from another library path in this process: the environment is
// process-wide and cannot be loaded twice.
var ErrRuntimeMismatch = errors.New("onnx runtime already loaded from another path")

// ErrEmptyBox is returned by CropJPEG when the box does not overlap the
// image.
var ErrEmptyBox = errors.New("box outside image")

// ErrCorruptImage is returned by DecodeImage for bytes that are not a whole
// JPEG or PNG image: unknown or garbled data, a truncated file, a header
// that does not match the pixels.
var ErrCorruptImage = errors.New("corrupt image")

// ErrImageTooLarge is returned by DecodeImage when the image's header
// declares more than MaxImagePixels pixels. It is checked before any pixel
// is decoded, so a small file declaring a huge image (a decompression bomb)
// costs nothing.
var ErrImageTooLarge = errors.New("image too large")
