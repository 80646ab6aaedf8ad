package spool

import "errors"

// ErrFull is returned by Put when storing the record would exceed
// Options.MaxBytes. The record was not stored; the caller must keep it or
// count it as refused. Space returns as records are acked or expire.
var ErrFull = errors.New("spool full")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("spool closed")

// ErrNotFound is returned when a record looked up by ID is not stored.
var ErrNotFound = errors.New("record not found")

// ErrInvalidRecord is returned by Put for a record that cannot be stored:
// empty or oversized ID, or an unknown lane.
var ErrInvalidRecord = errors.New("invalid record")

// ErrCorrupt is returned when a stored value cannot be decoded.
var ErrCorrupt = errors.New("corrupt record")
