package boards

import "errors"

// ErrUnknownProfile is returned by Config.Validate for a profile name this
// build does not know.
var ErrUnknownProfile = errors.New("unknown board profile")

// ErrInvalidConfig wraps Config.Validate errors other than an unknown profile.
var ErrInvalidConfig = errors.New("invalid board config")

// ErrPinNotFound is the reason of a broken peripheral whose pin name the
// GPIO registry does not know (a wrong name, or not the board the profile
// says).
var ErrPinNotFound = errors.New("gpio pin not found")

// ErrStarted is returned by Board.Start when the board already runs.
var ErrStarted = errors.New("board already started")

// ErrClosed is returned by Board.Start after Close.
var ErrClosed = errors.New("board closed")
