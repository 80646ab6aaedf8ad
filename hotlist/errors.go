package hotlist

import "errors"

// ErrTooLarge is returned for a message longer than the configured limit.
// The size is checked before any parsing.
var ErrTooLarge = errors.New("message too large")

// ErrMalformed is returned for an envelope or document that is not the
// expected JSON: syntax, unknown fields, wrong version or kind, bad base64,
// missing required fields.
var ErrMalformed = errors.New("malformed message")

// ErrUnknownKey is returned when the envelope's key_id names no key of the
// device's keyring.
var ErrUnknownKey = errors.New("unknown signing key")

// ErrBadSignature is returned when the Ed25519 signature does not verify
// over the payload with the named key.
var ErrBadSignature = errors.New("bad signature")

// ErrReplay is returned for a document whose sequence number is lower than
// the one in use, or equal to it with different content.
var ErrReplay = errors.New("replayed or stale sequence number")

// ErrFuture is returned for a document issued later than now plus the
// allowed clock skew.
var ErrFuture = errors.New("issued in the future")

// ErrInvalidEntry is returned for a hotlist with an invalid or duplicate
// plate, or an entry field out of bounds. The message names the entry.
var ErrInvalidEntry = errors.New("invalid hotlist entry")

// ErrWrongDevice is returned for a config patch addressed to other devices.
var ErrWrongDevice = errors.New("addressed to another device")

// ErrInvalidKey is returned when a key file cannot be parsed.
var ErrInvalidKey = errors.New("invalid key")

// ErrInvalidConfig is returned by Config.Validate; the message names the
// field.
var ErrInvalidConfig = errors.New("invalid config")

// ErrPersist is returned by Apply when an accepted document could not be
// written to disk. The document is in use anyway; it will be missing after a
// restart until the retained message is received again.
var ErrPersist = errors.New("persist accepted document")
