package pgtest

import "errors"

// ErrNotInstalled is returned when the PostgreSQL server binaries cannot be
// found.
var ErrNotInstalled = errors.New("postgresql server not installed")
