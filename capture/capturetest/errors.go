package capturetest

import "errors"

// ErrCameraFailed is returned by Camera.Read after Camera.FailAfter frames,
// the way a real camera drops off the bus. It wraps capture.ErrDevice.
var ErrCameraFailed = errors.New("fake camera failed")

// ErrOpenFailed is returned by Opener when told to fail an open.
var ErrOpenFailed = errors.New("fake camera open failed")
