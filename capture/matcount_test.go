//go:build !matprofile

package capture_test

// openMats is the number of live gocv Mats, or -1 when the tests run
// without -tags matprofile and cannot know.
func openMats() int { return -1 }
