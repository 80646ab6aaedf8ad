// Package capture owns the camera side of the agent: the Source
// implementations (V4L2 devices, GigE Vision cameras through Aravis, RTSP
// streams and GStreamer pipelines, video files, folders of images), the frame
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
// Back-pressure: a live source (v4l2, gige, rtsp, gstreamer) must never
// block the sensor, so the Runner drops the oldest queued frame when the consumer is slow; a file or
// image source blocks instead, so no frame of a recording is lost.
//
// Caveats: a VideoCapture read is a cgo call that cannot be interrupted, so a
// V4L2 Read returns on ctx cancellation at once but the in-flight grab still
// finishes (bounded by the driver timeout) before Close releases the device.
// A stream (rtsp, gstreamer) can block in OpenCV for ever (a silent UDP
// pipeline, even in open): Open and Read give up after the stall timeout,
// and Close leaves the pipeline to the blocked call, which releases it when
// the stream sends again; until then the same stream cannot be reopened.
// A GigE camera that vanishes is released in the background (Aravis blocks
// about 10 s on a dead control channel).
//
// Motion: a MotionGate in front of the recognizer lets through only frames
// where the watched zone (polygons and/or a mask image) differs from a
// slowly updated background, plus a hold-over after motion and a periodic
// keep-alive. It compares a blurred grey copy about 160 pixels wide, so a
// check costs about 1% of a detection. It cannot tell a car from a shadow
// or rain: it saves work on an empty road and never judges plates.
// The package uses cgo (OpenCV via gocv, libaravis-0.8).
package capture
