package audit

import "errors"

// ErrTampered is wrapped by Verify and Open when an entry is edited,
// missing, reordered or not an entry at all. The message names the line (or
// byte offset) of the first bad entry.
var ErrTampered = errors.New("audit log tampered")

// ErrTruncated is wrapped by Verify when the last line was cut short (a
// power cut during a write) and no recovery entry records it yet; Open
// records it.
var ErrTruncated = errors.New("audit log truncated")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log closed")

// ErrTooLarge is returned by Append for an entry whose detail is over
// MaxDetailBytes.
var ErrTooLarge = errors.New("audit entry too large")
