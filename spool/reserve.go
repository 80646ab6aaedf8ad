package spool

import (
	"errors"
	"os"

	"go.etcd.io/bbolt"
)

// reserveSize is the room kept in <path>.reserve for deleting on a full
// filesystem. bbolt copies every page it changes, so an Ack or Expire needs
// free pages too; on a full disk without them, nothing could be deleted and
// the spool would stay full for good. A few dozen pages are enough for a
// batch of acks; 256 kB leaves a wide margin.
const reserveSize = 256 << 10

func reservePath(path string) string { return path + ".reserve" }

// makeReserve creates the reserve file if it is missing, writing real
// blocks (a sparse file would reserve nothing). It reports whether the
// reserve is in place.
func (s *Spool) makeReserve() bool {
	p := reservePath(s.path)
	if fi, err := os.Stat(p); err == nil && fi.Size() >= reserveSize {
		return true
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false
	}
	_, err = f.Write(make([]byte, reserveSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(p)
		return false
	}
	return true
}

// releaseReserve deletes the reserve file so a deleting transaction can
// run on a full filesystem. It reports whether there was one to release.
func (s *Spool) releaseReserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reserved {
		return false
	}
	if err := os.Remove(reservePath(s.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false
	}
	s.reserved = false
	return true
}

// restoreReserve recreates a released reserve once there is room again.
// Called after successful commits; cheap when the reserve is in place.
func (s *Spool) restoreReserve() {
	s.liftDiskCap()
	s.mu.Lock()
	ok := s.reserved
	s.mu.Unlock()
	if ok {
		return
	}
	if s.makeReserve() {
		s.mu.Lock()
		s.reserved = true
		s.mu.Unlock()
	}
}

// updateFreeing runs a transaction that frees space (ack, expire, drop, set
// aside). When the filesystem is full it releases the reserve and tries
// once more. fn must reset its results at its start.
func (s *Spool) updateFreeing(fn func(tx *bbolt.Tx) error) error {
	err := s.db.Update(fn)
	if err != nil && isFull(err) && s.releaseReserve() {
		err = s.db.Update(fn)
	}
	return err
}

func isFull(err error) bool { return errors.Is(mapErr(err), ErrFull) }

// liftDiskCap ends FullDropOldest's filesystem cap once the filesystem has
// room for the reserve and as much again.
func (s *Spool) liftDiskCap() {
	s.mu.Lock()
	capped := s.diskCap > 0
	s.mu.Unlock()
	if !capped {
		return
	}
	if free, known := freeBytes(s.path); !known || free >= 2*reserveSize {
		s.mu.Lock()
		s.diskCap = 0
		s.mu.Unlock()
	}
}
