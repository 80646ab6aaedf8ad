package gnss

import "time"

// SetBackoffForTest shortens the reopen backoff and returns a func restoring it.
func SetBackoffForTest(lo, hi time.Duration) (restore func()) {
	oldLo, oldHi := backoffMin, backoffMax
	backoffMin, backoffMax = lo, hi
	return func() { backoffMin, backoffMax = oldLo, oldHi }
}

// SetGarbageLimitForTest sets how many bytes without a good sentence make an
// auto-baud session detect again, and returns a func restoring it.
func SetGarbageLimitForTest(n int) (restore func()) {
	old := garbageLimit
	garbageLimit = n
	return func() { garbageLimit = old }
}
