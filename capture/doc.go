// Package capture owns the camera side of the agent: the Source
// implementations (V4L2 devices, video files, folders of images), the frame
// timestamps, and the Runner that keeps one source alive (reopen with capped
// exponential backoff) and feeds its frames into a bounded channel.
//
// Ownership: a Frame's Img is a gocv.Mat with exactly one owner. A Source
// hands the Frame to its caller; the Runner hands it to whoever receives it
// from Frames(); the receiver must call Frame.Close. Frames the Runner drops
// or still holds at Close are closed by the Runner.
//
// Time: frames are stamped with the monotonic clock (time.Now()), never with
// a wall clock that may be years off on a board without an RTC. For file and
// image-folder sources, Time = open time + index/FPS, so a recorded clip
// behaves like a live camera; with Config.Realtime the source also sleeps
// until that time.
//
// Back-pressure: a live source (v4l2) must never block the sensor, so the
// Runner drops the oldest queued frame when the consumer is slow; a file or
// image source blocks instead, so no frame of a recording is lost.
//
// Caveats: a VideoCapture read is a cgo call that cannot be interrupted, so a
// V4L2 Read returns on ctx cancellation at once but the in-flight grab still
// finishes (bounded by the driver timeout) before Close releases the device.
// GigE/Aravis and RTSP sources and the motion gate are not written yet.
// The package uses cgo (OpenCV via gocv).
package capture
