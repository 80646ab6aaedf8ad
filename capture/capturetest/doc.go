// Package capturetest is the project's own picture data and camera fakes:
// a deterministic synthetic scene generator (a road, cars crossing it, each
// with a licence plate that OCR can read), writers for MJPEG clips and image
// folders with a JSON ground truth, a fake Camera implementing
// capture.Source with failure knobs, and a contract suite that every
// capture.Source must pass.
//
// Rendering is pure Go (image/draw and the Go fonts); only WriteClip and the
// Camera's Mats use gocv. Everything is a function of the ClipSpec and its
// Seed: the same spec gives the same pixels (up to the JPEG encoder).
//
// Caveats: the cars are stylised rear views and the plates are larger than
// life relative to the car (an ALPR camera is zoomed on the plate; a whole
// car in a 640x360 frame would leave a plate too small to read). There is no
// motion blur, night IR look, or glare yet.
package capturetest
