package capture

import "errors"

// ErrUnknownKind is returned by Open and Config.Validate for a Config.Kind
// that is not one of the Kind constants (file, images, v4l2, gige, rtsp,
// gstreamer).
var ErrUnknownKind = errors.New("unknown source kind")

// ErrInvalidConfig is wrapped by Config.Validate errors; the message names
// the field.
var ErrInvalidConfig = errors.New("invalid capture config")

// ErrNoFrames is returned by Open when a video file opens but yields no
// frame (a corrupt file or one that is not a video), and by Read when a
// looping file cannot be rewound.
var ErrNoFrames = errors.New("no decodable frames")

// ErrNoImages is returned by Open for an image folder with no .jpg, .jpeg or
// .png file.
var ErrNoImages = errors.New("no images")

// ErrBadFrame is wrapped by Read when one frame cannot be decoded (an image
// file that is not an image). The source stays usable: the next Read goes on
// with the next frame, and the bad frame's Seq is skipped. The Runner counts
// and skips such frames instead of reopening the source.
var ErrBadFrame = errors.New("bad frame")

// ErrDevice is wrapped when a camera device cannot be opened or stops
// delivering frames. The Runner reopens the source after a backoff.
var ErrDevice = errors.New("camera device failed")

// ErrClosed is returned by Read on a closed source and by Runner.Start after
// Runner.Close.
var ErrClosed = errors.New("capture closed")

// ErrStarted is returned by Runner.Start when the runner is already started.
var ErrStarted = errors.New("runner already started")
