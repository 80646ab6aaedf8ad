package recognize

import "errors"

// ErrMissingFile is returned by Config.Validate and New when a model file
// or the ONNX Runtime library is absent; the message names the file and
// says how to fetch it (run: make setup).
var ErrMissingFile = errors.New("missing file")

// ErrEmptyImage is returned by Recognize for an empty Mat.
var ErrEmptyImage = errors.New("empty image")

// ErrUnsupportedImage is returned by Recognize and CropJPEG for a Mat that
// is not 8-bit with 1, 3 or 4 channels.
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
