package gnss

import "errors"

// ErrClosed is returned by Receiver.Start after Close has been called.
var ErrClosed = errors.New("gnss receiver closed")

// ErrStarted is returned by Receiver.Start when the receiver already runs.
var ErrStarted = errors.New("gnss receiver already started")

// ErrNoPort is returned by ReadPort when no port path is given.
var ErrNoPort = errors.New("no gnss port configured")

// ErrInvalidConfig wraps every error returned by Config.Validate.
var ErrInvalidConfig = errors.New("invalid gnss config")

// ErrNoBaud is reported (Status.LastError, logs) when baud auto-detection
// heard no checksummed NMEA at any rate; detection is retried with backoff.
var ErrNoBaud = errors.New("no nmea at any baud rate")
