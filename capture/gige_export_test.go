//go:build !noaravis

package capture

// WaitGigEReleased waits until the lost cameras that GigE.Close handed to
// the background are released.
func WaitGigEReleased() { gigeReleasing.Wait() }
