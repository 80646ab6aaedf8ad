package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Lane selects the queue a record waits in. Lower lanes are leased first.
type Lane uint8

const (
	// LaneAlert holds hotlist hits; they are leased before any backlog.
	LaneAlert Lane = 0
	// LaneRead holds ordinary reads.
	LaneRead Lane = 1

	numLanes = 2
)

// String returns the lane name used in logs and stats.
func (l Lane) String() string {
	switch l {
	case LaneAlert:
		return "alert"
	case LaneRead:
		return "read"
	default:
		return fmt.Sprintf("lane(%d)", uint8(l))
	}
}

// MaxIDLen is the longest record ID Put accepts.
const MaxIDLen = 255

// Record is one stored item. The spool does not look inside Payload.
type Record struct {
	ID      string
	Lane    Lane
	Created time.Time // set to Options.Now() by Put when zero
	Payload []byte
}

// Options configures a Spool. The zero value is usable.
type Options struct {
	// MaxBytes caps the bytes of stored records; 0 means no cap.
	MaxBytes int64
	// MaxAge is the retention: records created longer ago are deleted by
	// Expire. 0 keeps records until acked.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the wait for the bbolt file lock held by another
	// process, so a stale lock fails fast. 0 means 1s.
	Timeout time.Duration
}

// Stats is a snapshot of the spool's contents.
type Stats struct {
	Count    [numLanes]int // records per lane, indexed by Lane
	Records  int           // all records
	Bytes    int64         // stored record bytes (keys and values)
	MaxBytes int64
	Leased   int       // records under an unexpired lease
	Oldest   time.Time // oldest Created of the first record of each lane; zero when empty
	Full     bool      // a Put was refused with ErrFull and nothing was freed since
	Refused  uint64    // Puts refused with ErrFull since Open
}

var (
	bucketIndex = []byte("index")
	laneBuckets = [numLanes][]byte{[]byte("lane0"), []byte("lane1")}
)

const (
	formatV1  = 1
	keyLen    = 8
	indexLen  = 1 + keyLen
	headerLen = 1 + 8 // format byte, created unix nanoseconds
)

// Spool is a durable queue backed by one bbolt file. All methods are safe for
// concurrent use.
type Spool struct {
	db  *bbolt.DB
	opt Options

	reqs      chan *putReq
	closing   chan struct{}
	committed chan struct{} // closed when the commit goroutine has exited
	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex // guards everything below
	leases   map[string]time.Time
	count    [numLanes]int
	bytes    int64
	full     bool
	refused  uint64
	notify   chan struct{}
	isClosed bool
}

type putReq struct {
	r    Record
	done chan error
}

// Open opens (creating if needed) the spool file at path, rebuilds its
// counters and deletes records past retention.
func Open(path string, opt Options) (*Spool, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opt.Timeout})
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s := &Spool{
		db:        db,
		opt:       opt,
		reqs:      make(chan *putReq),
		closing:   make(chan struct{}),
		committed: make(chan struct{}),
		leases:    make(map[string]time.Time),
		notify:    make(chan struct{}),
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketIndex); err != nil {
			return err
		}
		for lane, name := range laneBuckets {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			err = b.ForEach(func(k, v []byte) error {
				s.count[lane]++
				s.bytes += int64(len(k) + len(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init spool %s: %w", path, err)
	}
	if _, err := s.Expire(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// Put stores r and returns once it is durable. A record whose ID is already
// stored is ignored (nil error). It returns ErrFull when MaxBytes would be
// exceeded, ErrInvalidRecord for a bad ID or lane and ErrClosed after Close.
// ctx bounds only the wait to join a commit: once a record is handed to the
// commit goroutine, Put waits for the outcome so it never reports failure for
// a record that was stored.
func (s *Spool) Put(ctx context.Context, r Record) error {
	if r.ID == "" || len(r.ID) > MaxIDLen {
		return fmt.Errorf("put record %q: %w: id length %d", r.ID, ErrInvalidRecord, len(r.ID))
	}
	if r.Lane >= numLanes {
		return fmt.Errorf("put record %s: %w: %s", r.ID, ErrInvalidRecord, r.Lane)
	}
	if r.Created.IsZero() {
		r.Created = s.opt.Now()
	}
	req := &putReq{r: r, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-s.closing:
		return fmt.Errorf("put record %s: %w", r.ID, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("put record %s: %w", r.ID, ctx.Err())
	}
	if err := <-req.done; err != nil {
		return fmt.Errorf("put record %s: %w", r.ID, err)
	}
	return nil
}

// maxGroup bounds how many Puts share one transaction.
const maxGroup = 1024

// commitLoop is the group commit: it takes one waiting Put, then every other
// Put already waiting, and commits them together.
func (s *Spool) commitLoop() {
	defer close(s.committed)
	group := make([]*putReq, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case <-s.closing:
			return
		case req := <-s.reqs:
			group = append(group, req)
		}
	drain:
		for len(group) < maxGroup {
			select {
			case req := <-s.reqs:
				group = append(group, req)
			default:
				break drain
			}
		}
		s.commit(group)
	}
}

func (s *Spool) commit(group []*putReq) {
	errs := make([]error, len(group))
	var added [numLanes]int
	var addedBytes int64
	var refused uint64

	s.mu.Lock()
	base := s.bytes
	s.mu.Unlock()

	err := s.db.Update(func(tx *bbolt.Tx) error {
		// Reset: Update runs the function once, but keep it self-contained.
		added, addedBytes, refused = [numLanes]int{}, 0, 0
		idx := tx.Bucket(bucketIndex)
		for i, req := range group {
			errs[i] = nil
			r := req.r
			if idx.Get([]byte(r.ID)) != nil {
				continue // duplicate: already stored, nothing to do
			}
			val := encodeValue(r)
			size := int64(keyLen + len(val))
			if s.opt.MaxBytes > 0 && base+addedBytes+size > s.opt.MaxBytes {
				errs[i] = ErrFull
				refused++
				continue
			}
			b := tx.Bucket(laneBuckets[r.Lane])
			seq, err := b.NextSequence()
			if err != nil {
				return fmt.Errorf("next sequence: %w", err)
			}
			var key [keyLen]byte
			binary.BigEndian.PutUint64(key[:], seq)
			if err := b.Put(key[:], val); err != nil {
				return fmt.Errorf("put value: %w", err)
			}
			var ix [indexLen]byte
			ix[0] = byte(r.Lane)
			copy(ix[1:], key[:])
			if err := idx.Put([]byte(r.ID), ix[:]); err != nil {
				return fmt.Errorf("put index: %w", err)
			}
			added[r.Lane]++
			addedBytes += size
		}
		return nil
	})
	if err != nil {
		err = s.mapErr(err)
		for _, req := range group {
			req.done <- err
		}
		return
	}

	s.mu.Lock()
	for lane := range added {
		s.count[lane] += added[lane]
	}
	s.bytes += addedBytes
	if refused > 0 {
		s.full = true
		s.refused += refused
	}
	if addedBytes > 0 {
		close(s.notify)
		s.notify = make(chan struct{})
	}
	s.mu.Unlock()

	for i, req := range group {
		req.done <- errs[i]
	}
}

// Lease returns up to max records that are not under an unexpired lease,
// alert lane first, oldest first within a lane, and leases them for ttl. The
// lease lives in memory only. A nil or empty result means nothing is free.
func (s *Spool) Lease(max int, ttl time.Duration) ([]Record, error) {
	if max <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return nil, fmt.Errorf("lease records: %w", ErrClosed)
	}
	now := s.opt.Now()
	var out []Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		for _, name := range laneBuckets {
			c := tx.Bucket(name).Cursor()
			for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
				r, err := decodeValue(v)
				if err != nil {
					return fmt.Errorf("decode key %x: %w", k, err)
				}
				if until, ok := s.leases[r.ID]; ok && now.Before(until) {
					continue
				}
				r.Lane = laneOf(name)
				out = append(out, r)
			}
			if len(out) >= max {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lease records: %w", s.mapErr(err))
	}
	until := now.Add(ttl)
	for _, r := range out {
		s.leases[r.ID] = until
	}
	return out, nil
}

// Release ends the leases of ids so Lease hands them out again. Unknown or
// unleased IDs are ignored.
func (s *Spool) Release(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.leases, id)
	}
}

// Ack deletes the records with the given IDs in one transaction and returns
// how many were stored. Unknown IDs are ignored.
func (s *Spool) Ack(ids ...string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if s.closed() {
		return 0, fmt.Errorf("ack records: %w", ErrClosed)
	}
	var removed [numLanes]int
	var removedBytes int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		removed, removedBytes = [numLanes]int{}, 0
		idx := tx.Bucket(bucketIndex)
		for _, id := range ids {
			ix := idx.Get([]byte(id))
			if ix == nil {
				continue
			}
			lane, key, err := decodeIndex(ix)
			if err != nil {
				return fmt.Errorf("index %q: %w", id, err)
			}
			b := tx.Bucket(laneBuckets[lane])
			if v := b.Get(key); v != nil {
				removedBytes += int64(len(key) + len(v))
				removed[lane]++
				if err := b.Delete(key); err != nil {
					return fmt.Errorf("delete value: %w", err)
				}
			}
			if err := idx.Delete([]byte(id)); err != nil {
				return fmt.Errorf("delete index: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ack records: %w", s.mapErr(err))
	}
	n := s.forget(removed, removedBytes, ids)
	return n, nil
}

// forget updates counters after a deletion and drops leases of ids.
func (s *Spool) forget(removed [numLanes]int, removedBytes int64, ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for lane := range removed {
		s.count[lane] -= removed[lane]
		n += removed[lane]
	}
	s.bytes -= removedBytes
	if removedBytes > 0 {
		s.full = false
	}
	for _, id := range ids {
		delete(s.leases, id)
	}
	return n
}

// Expire deletes records created more than MaxAge before Now, leased or not,
// and returns how many it deleted. It scans every record because created
// times need not follow put order (clocks without an RTC jump).
func (s *Spool) Expire() (int, error) {
	if s.opt.MaxAge <= 0 {
		return 0, nil
	}
	if s.closed() {
		return 0, fmt.Errorf("expire records: %w", ErrClosed)
	}
	cutoff := s.opt.Now().Add(-s.opt.MaxAge)
	var removed [numLanes]int
	var removedBytes int64
	var ids []string
	err := s.db.Update(func(tx *bbolt.Tx) error {
		removed, removedBytes, ids = [numLanes]int{}, 0, nil
		idx := tx.Bucket(bucketIndex)
		for lane, name := range laneBuckets {
			b := tx.Bucket(name)
			var keys [][]byte
			err := b.ForEach(func(k, v []byte) error {
				created, id, err := decodeHeader(v)
				if err != nil {
					return fmt.Errorf("decode key %x: %w", k, err)
				}
				if created.Before(cutoff) {
					keys = append(keys, append([]byte(nil), k...))
					ids = append(ids, id)
					removedBytes += int64(len(k) + len(v))
					removed[lane]++
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return fmt.Errorf("delete value: %w", err)
				}
			}
		}
		for _, id := range ids {
			if err := idx.Delete([]byte(id)); err != nil {
				return fmt.Errorf("delete index: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire records: %w", s.mapErr(err))
	}
	return s.forget(removed, removedBytes, ids), nil
}

// Get returns the stored record with the given ID or ErrNotFound.
func (s *Spool) Get(id string) (Record, error) {
	if s.closed() {
		return Record{}, fmt.Errorf("get record %s: %w", id, ErrClosed)
	}
	var r Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		ix := tx.Bucket(bucketIndex).Get([]byte(id))
		if ix == nil {
			return ErrNotFound
		}
		lane, key, err := decodeIndex(ix)
		if err != nil {
			return err
		}
		v := tx.Bucket(laneBuckets[lane]).Get(key)
		if v == nil {
			return ErrNotFound
		}
		r, err = decodeValue(v)
		r.Lane = lane
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("get record %s: %w", id, s.mapErr(err))
	}
	return r, nil
}

// Len returns the number of stored records.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.count {
		n += c
	}
	return n
}

// Stats returns a snapshot of counters. Oldest is read from the file; if the
// spool is closed it is left zero.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		Count:    s.count,
		Bytes:    s.bytes,
		MaxBytes: s.opt.MaxBytes,
		Full:     s.full,
		Refused:  s.refused,
	}
	now := s.opt.Now()
	for _, until := range s.leases {
		if now.Before(until) {
			st.Leased++
		}
	}
	closed := s.isClosed
	s.mu.Unlock()
	for _, c := range st.Count {
		st.Records += c
	}
	if closed {
		return st
	}
	_ = s.db.View(func(tx *bbolt.Tx) error {
		for _, name := range laneBuckets {
			_, v := tx.Bucket(name).Cursor().First()
			if v == nil {
				continue
			}
			created, _, err := decodeHeader(v)
			if err != nil {
				continue
			}
			if st.Oldest.IsZero() || created.Before(st.Oldest) {
				st.Oldest = created
			}
		}
		return nil
	})
	return st
}

// Notify returns a channel that is closed on the next Put that stores a
// record. Take a new channel after each wake-up.
func (s *Spool) Notify() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// Close stops accepting Puts, waits for the commit in progress and closes the
// file. It is idempotent.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.committed
		s.mu.Lock()
		s.isClosed = true
		s.mu.Unlock()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close spool: %w", err)
		}
	})
	return s.closeErr
}

func (s *Spool) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isClosed
}

func (s *Spool) mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) || errors.Is(err, berrors.ErrTxClosed) {
		return ErrClosed
	}
	return err
}

func laneOf(bucket []byte) Lane {
	// Bucket names are "lane0", "lane1".
	return Lane(bucket[len(bucket)-1] - '0')
}

// encodeValue lays out: format byte, created unix nanos (BE int64),
// uvarint ID length, ID, payload.
func encodeValue(r Record) []byte {
	buf := make([]byte, 0, headerLen+binary.MaxVarintLen64+len(r.ID)+len(r.Payload))
	buf = append(buf, formatV1)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Created.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(r.ID)))
	buf = append(buf, r.ID...)
	buf = append(buf, r.Payload...)
	return buf
}

func decodeHeader(v []byte) (created time.Time, id string, err error) {
	if len(v) < headerLen || v[0] != formatV1 {
		return time.Time{}, "", ErrCorrupt
	}
	created = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:headerLen])))
	n, w := binary.Uvarint(v[headerLen:])
	if w <= 0 || n > MaxIDLen || uint64(len(v)-headerLen-w) < n {
		return time.Time{}, "", ErrCorrupt
	}
	start := headerLen + w
	return created, string(v[start : start+int(n)]), nil
}

// decodeValue copies everything it returns: bbolt memory is only valid
// inside the transaction.
func decodeValue(v []byte) (Record, error) {
	created, id, err := decodeHeader(v)
	if err != nil {
		return Record{}, err
	}
	_, w := binary.Uvarint(v[headerLen:])
	payload := v[headerLen+w+len(id):]
	return Record{ID: id, Created: created, Payload: append([]byte(nil), payload...)}, nil
}

func decodeIndex(ix []byte) (Lane, []byte, error) {
	if len(ix) != indexLen || ix[0] >= numLanes {
		return 0, nil, ErrCorrupt
	}
	return Lane(ix[0]), ix[1:], nil
}
