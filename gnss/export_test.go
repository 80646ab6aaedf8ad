package gnss

import "time"

// SetBackoffForTest shortens the reopen backoff and returns a func restoring it.
func SetBackoffForTest(lo, hi time.Duration) (restore func()) {
	oldLo, oldHi := backoffMin, backoffMax
	backoffMin, backoffMax = lo, hi
	return func() { backoffMin, backoffMax = oldLo, oldHi }
}
