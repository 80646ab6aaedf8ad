package spool

import "errors"

// ErrFull is returned by Put when the record does not fit: storing it would
// exceed Options.MaxBytes, or the filesystem is full (the error wraps the
// ENOSPC cause). The record was not stored; the caller must keep it or count
// it as refused. Space returns as records are acked or expire, or as the
// filesystem gets free space; Stats.Full and Stats.Refused say so.
var ErrFull = errors.New("spool full")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("spool closed")

// ErrNotFound is returned when a record looked up by ID is not stored.
var ErrNotFound = errors.New("record not found")

// ErrInvalidRecord is returned by Put for a record that cannot be stored:
// empty or oversized ID, or an unknown lane.
var ErrInvalidRecord = errors.New("invalid record")

// ErrCorrupt is returned when a stored value or the key store cannot be
// decoded, or a value fails authentication.
var ErrCorrupt = errors.New("corrupt record")

// ErrCorruptFile is returned by Open with Options.NoRecover when the spool
// file is damaged; without NoRecover, Open moves such a file aside instead.
var ErrCorruptFile = errors.New("corrupt spool file")

// ErrKey is returned for a key problem: a key file that is unreadable,
// malformed or open to group/others, a master key of the wrong size, an
// encrypted spool opened without its key or with another key, an
// unencrypted spool opened with a key, or a record whose period key was
// destroyed. It is a configuration error: retrying does not help.
var ErrKey = errors.New("spool key")
