//go:build matprofile

package capture_test

import "gocv.io/x/gocv"

func openMats() int { return gocv.MatProfile.Count() }
