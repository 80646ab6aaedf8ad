package capture

import (
	"time"

	"gocv.io/x/gocv"
)

// Frame is one image from a camera. The receiver of a Frame owns Img and
// must Close it (Frame.Close) exactly once; copies of a Frame share the Mat,
// so only one of them may be closed.
type Frame struct {
	// Img is the picture, BGR 8UC3.
	Img gocv.Mat
	// Seq is the per-source sequence number, from 1; a gap means frames were
	// dropped or could not be decoded.
	Seq uint64
	// Time is the capture time. It carries a monotonic reading (it derives
	// from time.Now()), so differences between frames are exact even when
	// the wall clock is wrong or steps.
	Time time.Time
	// Camera is Config.Name of the source.
	Camera string
}

// Close releases the frame's Mat. Closing a zero Frame, or the same Frame
// value twice, is safe.
func (f *Frame) Close() error {
	if f.Img.Ptr() == nil {
		return nil
	}
	err := f.Img.Close()
	f.Img = gocv.Mat{}
	return err
}
