package uplink

import "errors"

// ErrInvalidRead is wrapped by Read.Validate; the message names the field.
var ErrInvalidRead = errors.New("invalid read")

// ErrInvalidReceipt is wrapped by ParseReceipt for a receipt that is too
// large, not JSON, of an unknown version or with bad IDs.
var ErrInvalidReceipt = errors.New("invalid receipt")

// ErrInvalidConfig is wrapped by Config.Validate and
// ReceiverConfig.Validate; the message names the field.
var ErrInvalidConfig = errors.New("invalid config")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("uplink closed")

// ErrNotConnected is returned when an operation needs a broker connection
// that is not up.
var ErrNotConnected = errors.New("not connected")
