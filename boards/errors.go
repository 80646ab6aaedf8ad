package boards

import "errors"

// ErrUnknownProfile is returned by Config.Validate for a profile name this
// build does not know.
var ErrUnknownProfile = errors.New("unknown board profile")
