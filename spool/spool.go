package spool

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Lane selects the queue a record waits in. Lower lanes are leased first.
type Lane uint8

const (
	// LaneAlert holds hotlist hits; they are leased before any backlog and
	// never dropped to make room.
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

// FullPolicy says what Put does when the spool is full.
type FullPolicy string

const (
	// FullRefuse refuses new records with ErrFull (the default).
	FullRefuse FullPolicy = "refuse"
	// FullDropOldest deletes the oldest LaneRead records to make room.
	// LaneAlert records are never dropped: when only alerts are left, Put
	// refuses as with FullRefuse.
	FullDropOldest FullPolicy = "drop_oldest"
)

// ParseFullPolicy accepts "refuse", "drop_oldest" and "" (refuse).
func ParseFullPolicy(s string) (FullPolicy, error) {
	switch FullPolicy(s) {
	case "", FullRefuse:
		return FullRefuse, nil
	case FullDropOldest:
		return FullDropOldest, nil
	}
	return "", fmt.Errorf("parse full policy %q: want %q or %q", s, FullRefuse, FullDropOldest)
}

// Options configures a Spool. The zero value is usable: no cap, no
// retention, no encryption.
type Options struct {
	// MaxBytes caps the bytes of stored records; 0 means no cap.
	MaxBytes int64
	// FullPolicy applies when a Put does not fit under MaxBytes or the
	// filesystem is full. "" means FullRefuse.
	FullPolicy FullPolicy
	// MaxAge is the retention: a record created longer ago is never
	// leased or returned, is deleted by the periodic Expire, and a Put of
	// such a record stores nothing. 0 keeps records until acked.
	MaxAge time.Duration
	// ExpireEvery is how often the spool runs Expire by itself (when
	// MaxAge is set or the spool is encrypted). 0 means one minute; a
	// negative value turns the background run off.
	ExpireEvery time.Duration
	// Key is the 32-byte master key (see LoadKeyFile). When set, payloads
	// are encrypted with AES-256-GCM under per-period data keys kept,
	// wrapped by Key, in <path>.keys. nil means no encryption.
	Key []byte
	// KeyPeriod is the span of created times one data key covers. 0 means
	// one hour. A shorter period shreds sooner and writes the key store
	// more often.
	KeyPeriod time.Duration
	// NoRecover makes Open return ErrCorruptFile for a damaged file instead
	// of moving it aside and starting a fresh spool (for tools that inspect
	// a spool and must not change it).
	NoRecover bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the wait for the bbolt file lock held by another
	// process, so a stale lock fails fast. 0 means 1s.
	Timeout time.Duration
}

// Stats is a snapshot of the spool's state. Counters marked "since Open"
// start at zero in each process.
type Stats struct {
	Count    [numLanes]int // records per lane, indexed by Lane
	Records  int           // all records (not counting SetAside)
	Bytes    int64         // stored bytes (keys and values), set-aside records included
	MaxBytes int64
	Leased   int       // records under an unexpired lease
	Oldest   time.Time // oldest Created of the first record of each lane; zero when empty

	// Full is set when a Put is refused for lack of space (MaxBytes or a
	// full filesystem) and cleared when records are freed or a later Put
	// is stored. FullCause says which limit was hit.
	Full      bool
	FullCause string
	Refused   uint64 // Puts refused with ErrFull since Open
	Dropped   uint64 // LaneRead records dropped by FullDropOldest since Open
	Expired   uint64 // records removed by retention since Open

	// SetAside counts records that could not be decoded or decrypted:
	// moved out of the lanes, kept until retention removes them.
	SetAside int

	Encrypted bool
	Keys      int    // period keys in the key store
	Shredded  uint64 // period keys destroyed since Open

	// MovedAside is the path a damaged spool file was renamed to by Open
	// (its key store, if any, is MovedAside + ".keys"); empty when the
	// file was sound. MovedAsideReason says what was wrong.
	MovedAside       string
	MovedAsideReason string
	// PurgedAside lists the damaged spool files (with their key stores)
	// deleted since Open because retention had ended for everything in
	// them.
	PurgedAside []string

	// LastError is the last error of the background Expire, "" if none.
	LastError string
}

var (
	bucketIndex = []byte("index")
	laneBuckets = [numLanes][]byte{[]byte("lane0"), []byte("lane1")}
)

// Spool is a durable queue backed by one bbolt file. All methods are safe for
// concurrent use.
type Spool struct {
	db   *bbolt.DB
	opt  Options
	path string
	ks   *keyStore // nil when not encrypted

	// writeMu makes commits and Expire exclusive, so retention and key
	// destruction never interleave with a commit that uses a key.
	writeMu sync.Mutex

	reqs      chan *putReq
	closing   chan struct{}
	loops     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex // guards everything below
	leases map[string]lease
	// scanFrom is, per lane, the sequence Lease starts looking at: every
	// record below it was leased, past retention or set aside when Lease
	// last looked. Release lowers it; once a lease may have run out
	// (leaseMin) Lease starts from the beginning again.
	scanFrom [numLanes]uint64
	// leaseMin is at or before the earliest end of a lease in leases;
	// zero when there is none.
	leaseMin   time.Time
	count      [numLanes]int
	laneBytes  [numLanes]int64
	asideN     int
	asideBytes int64
	full       bool
	fullCause  string
	refused    uint64
	dropped    uint64
	expired    uint64
	shredded   uint64
	lastErr    string
	movedAside string
	// purgedAside: moved-aside files deleted at the end of retention.
	purgedAside []string
	movedWhy    string
	notify      chan struct{}
	isClosed    bool
	reserved    bool  // <path>.reserve is in place
	diskCap     int64 // FullDropOldest on a full filesystem: bytes to stay under
}

type putReq struct {
	r      Record
	val    []byte
	period int64 // data key period when encrypted
	done   chan error
}

func (o Options) withDefaults() (Options, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.ExpireEvery == 0 {
		o.ExpireEvery = time.Minute
	}
	if o.KeyPeriod <= 0 {
		o.KeyPeriod = time.Hour
	}
	p, err := ParseFullPolicy(string(o.FullPolicy))
	if err != nil {
		return o, err
	}
	o.FullPolicy = p
	if o.Key != nil && len(o.Key) != KeySize {
		return o, fmt.Errorf("%w: master key is %d bytes, want %d", ErrKey, len(o.Key), KeySize)
	}
	return o, nil
}

// Open opens (creating if needed) the spool file at path, checks it,
// rebuilds its counters and deletes records past retention.
//
// A file that is not a sound bbolt file (garbage, truncated, damaged pages,
// a failed consistency check after an unclean shutdown, a missing or
// damaged key store) is renamed to <path>.corrupt-<UTC time> and a fresh
// spool is created; Stats().MovedAside says so and the caller should log it
// loudly. With Options.NoRecover, Open returns ErrCorruptFile instead.
// An encrypted spool opened without its key or with another key, and an
// unencrypted one opened with a key, are ErrKey.
func Open(path string, opt Options) (*Spool, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s, reason, err := open(path, opt)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	if reason == "" {
		return s, nil
	}
	if opt.NoRecover {
		return nil, fmt.Errorf("open spool %s: %w: %s", path, ErrCorruptFile, reason)
	}
	aside, err := moveAside(path, opt.Now())
	if err != nil {
		return nil, fmt.Errorf("open spool %s (%s): %w", path, reason, err)
	}
	s, again, err := open(path, opt)
	if err != nil {
		return nil, fmt.Errorf("open fresh spool %s: %w", path, err)
	}
	if again != "" {
		return nil, fmt.Errorf("open fresh spool %s: %w: %s", path, ErrCorruptFile, again)
	}
	s.movedAside, s.movedWhy = aside, reason
	return s, nil
}

// open returns the spool, or a reason the file is corrupt, or an error that
// is not about the file's content.
func open(path string, opt Options) (*Spool, string, error) {
	reason, err := precheck(path)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	db, reason, err := openBolt(path, opt.Timeout)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	fail := func(reason string, err error) (*Spool, string, error) {
		_ = db.Close()
		return nil, reason, err
	}
	// precheck has walked the page tree. scan reads every record (for the
	// counters) and adds bbolt's consistency check only when the last run
	// did not close the spool (crash, power cut).
	res, reason := scan(db, false)
	if reason != "" {
		return fail(reason, nil)
	}
	enc := opt.Key != nil
	switch {
	case res.isNew:
	case res.enc == encAES && !enc:
		return fail("", fmt.Errorf("%w: the spool is encrypted and no key is configured", ErrKey))
	case res.enc == encNone && enc:
		return fail("", fmt.Errorf("%w: the spool is not encrypted but a key is configured (move the old spool aside to start an encrypted one)", ErrKey))
	case res.enc != encAES && res.enc != encNone:
		return fail(fmt.Sprintf("unknown encryption %q in the meta bucket", res.enc), nil)
	}
	s := &Spool{
		db:        db,
		opt:       opt,
		path:      path,
		reqs:      make(chan *putReq),
		closing:   make(chan struct{}),
		leases:    make(map[string]lease),
		notify:    make(chan struct{}),
		count:     res.count,
		laneBytes: res.laneBytes,
		asideN:    res.asideN,
	}
	s.asideBytes = res.asideSize
	if enc {
		ks, err := openKeyStore(keyStorePath(path), opt.Key, res.isNew)
		switch {
		case errors.Is(err, ErrKey):
			return fail("", err)
		case errors.Is(err, ErrCorrupt):
			return fail(fmt.Sprintf("key store %s: %v", keyStorePath(path), err), nil)
		case err != nil && res.count[0]+res.count[1]+res.asideN == 0 && !res.isNew:
			// An encrypted spool with no records lost nothing with its
			// key store: start a new store.
			if ks, err = openKeyStore(keyStorePath(path), opt.Key, true); err != nil {
				return fail("", err)
			}
		case err != nil:
			return fail(fmt.Sprintf("key store %s: %v", keyStorePath(path), err), nil)
		}
		for p, n := range res.periods {
			ks.count[p] = n
		}
		s.ks = ks
	}
	s.reserved = s.makeReserve()
	err = s.updateFreeing(func(tx *bbolt.Tx) error {
		for _, name := range append([][]byte{bucketIndex, bucketAside, bucketMeta}, laneBuckets[:]...) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if res.isNew {
			e := encNone
			if enc {
				e = encAES
			}
			if err := m.Put(metaEnc, []byte(e)); err != nil {
				return err
			}
		} else if m.Get(metaEnc) == nil {
			if err := m.Put(metaEnc, []byte(encNone)); err != nil {
				return err
			}
		}
		// Removed now, written back by Close: its absence at the next
		// Open means this run did not end cleanly.
		return m.Delete(metaClean)
	})
	if err != nil {
		err = mapErr(err)
		if res.isNew || !errors.Is(err, ErrFull) {
			return fail("", fmt.Errorf("init spool: %w", err))
		}
		// A full filesystem: the buckets exist, only the clean-shutdown
		// marker could not be removed. Run; Put reports ErrFull.
		s.full, s.fullCause = true, err.Error()
	}
	if len(res.bad) > 0 {
		if err := s.setAside(res.bad); err != nil {
			return fail("", err)
		}
	}
	if _, err := s.Expire(); err != nil {
		return fail("", err)
	}
	s.loops.Add(1)
	go s.commitLoop()
	if opt.ExpireEvery > 0 && (opt.MaxAge > 0 || s.ks != nil) {
		s.loops.Add(1)
		go s.expireLoop()
	}
	return s, "", nil
}

// Put stores r and returns once it is durable. A record whose ID is already
// stored is ignored (nil error), and so is a record already older than
// MaxAge (retention would delete it at once). When the record does not fit
// (MaxBytes, or the filesystem is full) it returns an error wrapping
// ErrFull, unless FullDropOldest makes room. ErrInvalidRecord is for a bad
// ID or lane and ErrClosed after Close. ctx bounds only the wait to join a
// commit: once a record is handed to the commit goroutine, Put waits for the
// outcome so it never reports failure for a record that was stored.
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
	if s.pastRetention(r.Created, s.opt.Now()) {
		s.mu.Lock()
		s.expired++
		s.mu.Unlock()
		return nil
	}
	req := &putReq{r: r, done: make(chan error, 1)}
	if s.ks != nil {
		// Encrypt here, in the producer's goroutine, so producers seal in
		// parallel and the commit goroutine only writes.
		k, err := s.ks.acquire(r.Created.UnixNano(), int64(s.opt.KeyPeriod))
		if err != nil {
			err = mapErr(err)
			if errors.Is(err, ErrFull) {
				s.refuse(1, err.Error())
			}
			return fmt.Errorf("put record %s: %w", r.ID, err)
		}
		req.period = k.start
		req.val = encodeEncrypted(k, r)
	} else {
		req.val = encodePlain(r)
	}
	select {
	case s.reqs <- req:
	case <-s.closing:
		s.settle(req, false)
		return fmt.Errorf("put record %s: %w", r.ID, ErrClosed)
	case <-ctx.Done():
		s.settle(req, false)
		return fmt.Errorf("put record %s: %w", r.ID, ctx.Err())
	}
	if err := <-req.done; err != nil {
		return fmt.Errorf("put record %s: %w", r.ID, err)
	}
	return nil
}

func (s *Spool) settle(req *putReq, stored bool) {
	if s.ks != nil {
		s.ks.settle(req.period, stored)
	}
}

func (s *Spool) pastRetention(created, now time.Time) bool {
	return s.opt.MaxAge > 0 && created.Before(now.Add(-s.opt.MaxAge))
}

// dropCushion is the room FullDropOldest keeps free inside the file on a
// full filesystem, for the pages the next transaction copies.
const dropCushion = 64 << 10

// maxGroup bounds how many Puts share one transaction.
const maxGroup = 1024

// commitLoop is the group commit: it takes one waiting Put, then every other
// Put already waiting, and commits them together.
func (s *Spool) commitLoop() {
	defer s.loops.Done()
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

func (s *Spool) expireLoop() {
	defer s.loops.Done()
	t := time.NewTicker(s.opt.ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		_, err := s.Expire()
		s.restoreReserve()
		s.mu.Lock()
		if err != nil {
			s.lastErr = err.Error()
		} else {
			s.lastErr = ""
		}
		s.mu.Unlock()
	}
}

// removal is what one transaction deleted, applied to the counters once
// it has committed.
type removal struct {
	noIDs   bool // do not collect ids (the caller knows them)
	lanes   [numLanes]int
	bytes   [numLanes]int64
	asideN  int
	asideB  int64
	ids     []string
	periods []int64
}

func (m *removal) record(lane Lane, k, v []byte) {
	m.lanes[lane]++
	m.bytes[lane] += int64(len(k) + len(v))
	if m.noIDs && !(len(v) > 0 && v[0] == formatEncrypted) {
		return
	}
	if h, err := decodeHeader(v); err == nil {
		if !m.noIDs {
			m.ids = append(m.ids, string(h.id))
		}
		if h.format == formatEncrypted {
			m.periods = append(m.periods, h.period)
		}
	}
}

func (m *removal) total() int64 {
	var n int64
	for _, b := range m.bytes {
		n += b
	}
	return n + m.asideB
}

// commitResult is the outcome of one group transaction.
type commitResult struct {
	errs    []error
	stored  []bool
	added   [numLanes]int
	addedB  [numLanes]int64
	expired int
	refused int
	dropped removal
}

func (s *Spool) commit(group []*putReq) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.liftDiskCap()
	res, err := s.commitTx(group)
	if err != nil && isFull(err) && s.opt.FullPolicy == FullDropOldest {
		// The filesystem is full: free at least twice what the group
		// needs from the oldest reads (bbolt copies pages on write), try
		// once more, and from now on keep the stored bytes under what
		// they are now, as with MaxBytes, so every later commit drops as
		// much as it adds, in the same transaction, and the file does not
		// grow again until the filesystem has room (restoreReserve).
		var need int64
		for _, req := range group {
			need += int64(keyLen + len(req.val))
		}
		s.mu.Lock()
		s.diskCap = max(s.laneBytes[LaneAlert]+s.laneBytes[LaneRead]+s.asideBytes-dropCushion, 1)
		s.mu.Unlock()
		if derr := s.dropForSpace(2*need + dropCushion); derr == nil {
			res, err = s.commitTx(group)
		}
	}
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrFull) {
			s.refuse(len(group), err.Error())
		}
		for _, req := range group {
			s.settle(req, false)
			req.done <- err
		}
		return
	}

	s.mu.Lock()
	var addedBytes int64
	for lane := range res.added {
		s.count[lane] += res.added[lane]
		s.laneBytes[lane] += res.addedB[lane]
		addedBytes += res.addedB[lane]
	}
	s.expired += uint64(res.expired)
	if res.refused > 0 {
		s.full = true
		s.fullCause = res.errs[slices.IndexFunc(res.errs, func(e error) bool { return e != nil })].Error()
		s.refused += uint64(res.refused)
	} else if addedBytes > 0 {
		s.full = false
		s.fullCause = ""
	}
	s.applyRemovalLocked(&res.dropped)
	s.dropped += uint64(res.dropped.lanes[LaneRead])
	if addedBytes > 0 {
		close(s.notify)
		s.notify = make(chan struct{})
	}
	s.mu.Unlock()
	if s.ks != nil {
		s.ks.forget(res.dropped.periods)
	}
	for i, req := range group {
		s.settle(req, res.stored[i])
		req.done <- res.errs[i]
	}
	s.restoreReserve()
}

func (s *Spool) refuse(n int, cause string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.full = true
	s.fullCause = cause
	s.refused += uint64(n)
}

func (s *Spool) commitTx(group []*putReq) (commitResult, error) {
	var res commitResult
	cutoff := time.Time{}
	if s.opt.MaxAge > 0 {
		cutoff = s.opt.Now().Add(-s.opt.MaxAge)
	}
	s.mu.Lock()
	base := s.laneBytes[LaneAlert] + s.laneBytes[LaneRead] + s.asideBytes
	droppableAside, droppableReads := s.asideBytes, s.laneBytes[LaneRead]
	limit, limitName := s.opt.MaxBytes, fmt.Sprintf("max_bytes %d reached", s.opt.MaxBytes)
	if s.diskCap > 0 && (limit == 0 || s.diskCap < limit) {
		limit, limitName = s.diskCap, "filesystem full"
	}
	s.mu.Unlock()

	err := s.db.Update(func(tx *bbolt.Tx) error {
		res = commitResult{errs: make([]error, len(group)), stored: make([]bool, len(group))}
		idx := tx.Bucket(bucketIndex)
		reads := tx.Bucket(laneBuckets[LaneRead])
		// Reads with a sequence above this were added by this transaction
		// and are not dropped for its own later records.
		oldReads := reads.Sequence()
		cur := base
		for i, req := range group {
			r := req.r
			if !cutoff.IsZero() && r.Created.Before(cutoff) {
				res.expired++ // aged out while waiting: not stored
				continue
			}
			if idx.Get([]byte(r.ID)) != nil {
				continue // duplicate: already stored, nothing to do
			}
			size := int64(keyLen + len(req.val))
			if limit > 0 && cur+size > limit {
				need := cur + size - limit
				avail := droppableAside + droppableReads - res.dropped.total()
				if s.opt.FullPolicy != FullDropOldest || need > avail {
					res.errs[i] = fmt.Errorf("%w: %s", ErrFull, limitName)
					res.refused++
					continue
				}
				freed, err := dropOldest(tx, need, oldReads, &res.dropped)
				if err != nil {
					return err
				}
				cur -= freed
			}
			b := tx.Bucket(laneBuckets[r.Lane])
			seq, err := b.NextSequence()
			if err != nil {
				return fmt.Errorf("next sequence: %w", err)
			}
			var key [keyLen]byte
			binary.BigEndian.PutUint64(key[:], seq)
			if err := b.Put(key[:], req.val); err != nil {
				return fmt.Errorf("put value: %w", err)
			}
			var ix [indexLen]byte
			ix[0] = byte(r.Lane)
			copy(ix[1:], key[:])
			if err := idx.Put([]byte(r.ID), ix[:]); err != nil {
				return fmt.Errorf("put index: %w", err)
			}
			res.added[r.Lane]++
			res.addedB[r.Lane] += size
			res.stored[i] = true
			cur += size
		}
		return nil
	})
	return res, err
}

// dropOldest deletes set-aside records, then the oldest reads with a
// sequence up to maxSeq, until at least need bytes are freed. Alerts are
// never touched. It returns the bytes freed.
func dropOldest(tx *bbolt.Tx, need int64, maxSeq uint64, rm *removal) (int64, error) {
	var freed int64
	aside := tx.Bucket(bucketAside)
	c := aside.Cursor()
	for k, v := c.First(); k != nil && freed < need; k, v = c.First() {
		freed += int64(len(k) + len(v))
		rm.asideN++
		rm.asideB += int64(len(k) + len(v))
		if err := c.Delete(); err != nil {
			return freed, fmt.Errorf("drop set-aside record: %w", err)
		}
	}
	idx := tx.Bucket(bucketIndex)
	c = tx.Bucket(laneBuckets[LaneRead]).Cursor()
	for k, v := c.First(); k != nil && freed < need; k, v = c.First() {
		if binary.BigEndian.Uint64(k) > maxSeq {
			break
		}
		freed += int64(len(k) + len(v))
		n := len(rm.ids)
		rm.record(LaneRead, k, v)
		if len(rm.ids) > n {
			if err := idx.Delete([]byte(rm.ids[n])); err != nil {
				return freed, fmt.Errorf("drop index: %w", err)
			}
		}
		if err := c.Delete(); err != nil {
			return freed, fmt.Errorf("drop record: %w", err)
		}
	}
	return freed, nil
}

// dropForSpace drops the oldest reads (and set-aside records) worth need
// bytes in a transaction of its own, for a filesystem that is full.
func (s *Spool) dropForSpace(need int64) error {
	var rm removal
	err := s.updateFreeing(func(tx *bbolt.Tx) error {
		rm = removal{}
		_, err := dropOldest(tx, need, ^uint64(0), &rm)
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.applyRemovalLocked(&rm)
	s.dropped += uint64(rm.lanes[LaneRead])
	s.mu.Unlock()
	if s.ks != nil {
		s.ks.forget(rm.periods)
	}
	return nil
}

// applyRemovalLocked updates counters after a committed deletion. s.mu held.
func (s *Spool) applyRemovalLocked(rm *removal) {
	for lane := range rm.lanes {
		s.count[lane] -= rm.lanes[lane]
		s.laneBytes[lane] -= rm.bytes[lane]
	}
	s.asideN -= rm.asideN
	s.asideBytes -= rm.asideB
	if rm.total() > 0 {
		s.full = false
		s.fullCause = ""
	}
	for _, id := range rm.ids {
		delete(s.leases, id)
	}
}

// badRef names a stored value that cannot be decoded or decrypted.
type badRef struct {
	lane Lane
	key  string
}

// setAside moves undecodable values out of their lane into the aside
// bucket, keyed by lane and sequence, prefixed by the time they were set
// aside, so the lease loop never meets them again.
func (s *Spool) setAside(bad []badRef) error {
	now := s.opt.Now()
	var rm removal
	var addN int
	var addB int64
	err := s.updateFreeing(func(tx *bbolt.Tx) error {
		rm, addN, addB = removal{}, 0, 0
		idx, aside := tx.Bucket(bucketIndex), tx.Bucket(bucketAside)
		for _, ref := range bad {
			b := tx.Bucket(laneBuckets[ref.lane])
			k := []byte(ref.key)
			v := b.Get(k)
			if v == nil {
				continue
			}
			ak := append([]byte{byte(ref.lane)}, k...)
			av := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
			av = append(av, v...)
			if err := aside.Put(ak, av); err != nil {
				return fmt.Errorf("set aside: %w", err)
			}
			n := len(rm.ids)
			rm.record(ref.lane, k, v)
			if len(rm.ids) > n {
				// Only remove the index entry if it points here.
				if ix := idx.Get([]byte(rm.ids[n])); ix != nil && ix[0] == byte(ref.lane) && string(ix[1:]) == ref.key {
					if err := idx.Delete([]byte(rm.ids[n])); err != nil {
						return fmt.Errorf("set aside: %w", err)
					}
				}
			}
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("set aside: %w", err)
			}
			addN++
			addB += int64(len(ak) + len(av))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set aside records: %w", mapErr(err))
	}
	s.mu.Lock()
	for lane := range rm.lanes {
		s.count[lane] -= rm.lanes[lane]
		s.laneBytes[lane] -= rm.bytes[lane]
	}
	for _, id := range rm.ids {
		delete(s.leases, id)
	}
	s.asideN += addN
	s.asideBytes += addB
	s.mu.Unlock()
	if s.ks != nil {
		s.ks.forget(rm.periods)
	}
	return nil
}

func (s *Spool) keyFor(period int64) *periodKey {
	if s.ks == nil {
		return nil
	}
	return s.ks.lookup(period)
}

// lease is a record handed out by Lease: until when, and where it is.
type lease struct {
	until time.Time
	lane  Lane
	seq   uint64
}

// Lease returns up to max records that are not under an unexpired lease,
// alert lane first, oldest first within a lane, and leases them for ttl. The
// lease lives in memory only. A nil or empty result means nothing is free.
// Records past MaxAge are skipped. A record that cannot be decoded or
// decrypted is set aside (Stats.SetAside), not returned and not an error.
//
// Lease does not walk the leased records at the head of a lane again on
// every call: it starts where the last call stopped (scanFrom), unless a
// release or a lease running out may have freed a record before it.
func (s *Spool) Lease(max int, ttl time.Duration) ([]Record, error) {
	recs, _, err := s.lease(nil, max, ttl)
	return recs, err
}

// LeaseAppend is Lease with the payloads of plain (unencrypted) records
// appended to buf, grown as needed, rather than each in an allocation of
// its own. A caller that hands buf back once it is done with the records
// (say, once they are published and acknowledged) saves the garbage
// collector most of the bytes of a busy uplink. The records' payloads
// alias the returned buffer.
func (s *Spool) LeaseAppend(buf []byte, max int, ttl time.Duration) ([]Record, []byte, error) {
	if buf == nil {
		buf = []byte{}
	}
	return s.lease(buf, max, ttl)
}

// lease is Lease, and LeaseAppend when buf is not nil.
func (s *Spool) lease(buf []byte, max int, ttl time.Duration) ([]Record, []byte, error) {
	if max <= 0 {
		return nil, buf, nil
	}
	s.mu.Lock()
	if s.isClosed {
		s.mu.Unlock()
		return nil, buf, fmt.Errorf("lease records: %w", ErrClosed)
	}
	now := s.opt.Now()
	if !s.leaseMin.IsZero() && !now.Before(s.leaseMin) {
		s.pruneLeasesLocked(now)
	}
	out := make([]Record, 0, min(max, 1024))
	seqs := make([]uint64, 0, cap(out))
	var bad []badRef
	err := s.db.View(func(tx *bbolt.Tx) error {
		for lane, name := range laneBuckets {
			c := tx.Bucket(name).Cursor()
			var from [keyLen]byte
			binary.BigEndian.PutUint64(from[:], s.scanFrom[lane])
			for k, v := c.Seek(from[:]); k != nil && len(out) < max; k, v = c.Next() {
				if len(k) == keyLen {
					s.scanFrom[lane] = binary.BigEndian.Uint64(k) + 1
				}
				h, err := decodeHeader(v)
				if err != nil || len(k) != keyLen {
					bad = append(bad, badRef{Lane(lane), string(k)})
					continue
				}
				if l, ok := s.leases[string(h.id)]; ok && now.Before(l.until) {
					continue
				}
				if s.pastRetention(h.created, now) {
					continue
				}
				var r Record
				if buf != nil && h.format == formatPlain {
					n := len(buf)
					buf = append(buf, v[h.end:]...)
					r = Record{ID: string(h.id), Lane: Lane(lane), Created: h.created, Payload: buf[n:len(buf):len(buf)]}
				} else if r, err = openValue(h, v, Lane(lane), s.keyFor); err != nil {
					bad = append(bad, badRef{Lane(lane), string(k)})
					continue
				}
				out = append(out, r)
				seqs = append(seqs, binary.BigEndian.Uint64(k))
			}
			if len(out) >= max {
				break
			}
		}
		return nil
	})
	if err != nil {
		// Nothing was leased: look from the start next time.
		s.scanFrom = [numLanes]uint64{}
		s.mu.Unlock()
		return nil, buf, fmt.Errorf("lease records: %w", mapErr(err))
	}
	until := now.Add(ttl)
	for i, r := range out {
		s.leases[r.ID] = lease{until: until, lane: r.Lane, seq: seqs[i]}
	}
	if len(out) > 0 && (s.leaseMin.IsZero() || until.Before(s.leaseMin)) {
		s.leaseMin = until
	}
	s.mu.Unlock()
	if len(bad) > 0 {
		if err := s.setAside(bad); err != nil {
			return out, buf, err
		}
	}
	return out, buf, nil
}

// pruneLeasesLocked forgets the leases that ran out by now, finds the
// earliest end among the rest, and makes Lease look at every record again.
// s.mu held.
func (s *Spool) pruneLeasesLocked(now time.Time) {
	s.leaseMin = time.Time{}
	for id, l := range s.leases {
		switch {
		case !now.Before(l.until):
			delete(s.leases, id)
		case s.leaseMin.IsZero() || l.until.Before(s.leaseMin):
			s.leaseMin = l.until
		}
	}
	s.scanFrom = [numLanes]uint64{}
}

// Release ends the leases of ids so Lease hands them out again. Unknown or
// unleased IDs are ignored.
func (s *Spool) Release(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if l, ok := s.leases[id]; ok {
			s.scanFrom[l.lane] = min(s.scanFrom[l.lane], l.seq)
			delete(s.leases, id)
		}
	}
}

// Ack deletes the records with the given IDs in one transaction and returns
// how many were stored. Unknown IDs are ignored. A leased record is found
// by where Lease found it; any other through the index.
func (s *Spool) Ack(ids ...string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	if s.isClosed {
		s.mu.Unlock()
		return 0, fmt.Errorf("ack records: %w", ErrClosed)
	}
	refs := make([]ackRef, len(ids))
	for i, id := range ids {
		refs[i].id = id
		if l, ok := s.leases[id]; ok {
			refs[i].lane, refs[i].seq, refs[i].known = l.lane, l.seq, true
		}
	}
	s.mu.Unlock()
	// In key order: neighbouring deletes touch the same pages.
	slices.SortFunc(refs, func(a, b ackRef) int {
		if a.lane != b.lane {
			return int(a.lane) - int(b.lane)
		}
		return cmp.Compare(a.seq, b.seq)
	})
	var rm removal
	err := s.updateFreeing(func(tx *bbolt.Tx) error {
		rm = removal{noIDs: true} // Ack ends the leases of ids itself
		// One cursor per bucket: a Seek finds the value and Delete removes
		// it where the cursor stands, one walk down the tree instead of a
		// Get and a Delete.
		ic := tx.Bucket(bucketIndex).Cursor()
		var lc [numLanes]*bbolt.Cursor
		for lane, name := range laneBuckets {
			lc[lane] = tx.Bucket(name).Cursor()
		}
		var key [keyLen]byte
		for _, ref := range refs {
			lane, k, v := ref.lane, key[:], []byte(nil)
			if ref.known {
				binary.BigEndian.PutUint64(k, ref.seq)
				if fk, fv := lc[lane].Seek(k); bytes.Equal(fk, k) {
					if h, err := decodeHeader(fv); err == nil && string(h.id) == ref.id {
						v = fv
					} // else not its value (never expected): ask the index
				}
			}
			if v == nil {
				fk, ix := ic.Seek([]byte(ref.id))
				if fk == nil || string(fk) != ref.id {
					continue
				}
				var err error
				if lane, k, err = decodeIndex(ix); err != nil {
					return fmt.Errorf("index %q: %w", ref.id, err)
				}
				if fk, fv := lc[lane].Seek(k); bytes.Equal(fk, k) {
					v = fv
				}
			}
			if v != nil {
				rm.record(lane, k, v)
				if err := lc[lane].Delete(); err != nil {
					return fmt.Errorf("delete value: %w", err)
				}
			}
			if fk, _ := ic.Seek([]byte(ref.id)); fk != nil && string(fk) == ref.id {
				if err := ic.Delete(); err != nil {
					return fmt.Errorf("delete index: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ack records: %w", mapErr(err))
	}
	s.mu.Lock()
	s.applyRemovalLocked(&rm)
	for _, id := range ids {
		delete(s.leases, id)
	}
	s.mu.Unlock()
	if s.ks != nil {
		s.ks.forget(rm.periods)
	}
	return rm.lanes[0] + rm.lanes[1], nil
}

// ackRef is an ID to delete and, when leased, where its value is.
type ackRef struct {
	id    string
	lane  Lane
	seq   uint64
	known bool
}

// Expire deletes records created more than MaxAge before Now, leased or not,
// and set-aside records past MaxAge, then destroys the data keys of periods
// whose retention has ended or that ended and hold no record
// (crypto-shredding). It returns how many records it deleted. The spool
// runs it on Open and every Options.ExpireEvery; calling it is only needed
// to force a run. It scans every record because created times need not
// follow put order (clocks without an RTC jump).
func (s *Spool) Expire() (int, error) {
	if s.opt.MaxAge <= 0 && s.ks == nil {
		return 0, nil
	}
	if s.closed() {
		return 0, fmt.Errorf("expire records: %w", ErrClosed)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.opt.Now()
	var cutoff time.Time
	var rm removal
	if s.opt.MaxAge > 0 {
		cutoff = now.Add(-s.opt.MaxAge)
		err := s.updateFreeing(func(tx *bbolt.Tx) error {
			rm = removal{}
			idx := tx.Bucket(bucketIndex)
			for lane, name := range laneBuckets {
				b := tx.Bucket(name)
				var keys [][]byte
				err := b.ForEach(func(k, v []byte) error {
					h, err := decodeHeader(v)
					if err == nil && h.created.Before(cutoff) {
						keys = append(keys, append([]byte(nil), k...))
						rm.record(Lane(lane), k, v)
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
			for _, id := range rm.ids {
				if err := idx.Delete([]byte(id)); err != nil {
					return fmt.Errorf("delete index: %w", err)
				}
			}
			aside := tx.Bucket(bucketAside)
			var keys [][]byte
			err := aside.ForEach(func(k, v []byte) error {
				old := len(v) < 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(cutoff)
				if h, err := decodeHeader(v[min(8, len(v)):]); err == nil && h.created.Before(cutoff) {
					old = true
				}
				if old {
					keys = append(keys, append([]byte(nil), k...))
					rm.asideN++
					rm.asideB += int64(len(k) + len(v))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := aside.Delete(k); err != nil {
					return fmt.Errorf("delete set-aside value: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("expire records: %w", mapErr(err))
		}
		s.mu.Lock()
		s.applyRemovalLocked(&rm)
		s.expired += uint64(rm.lanes[0] + rm.lanes[1] + rm.asideN)
		s.mu.Unlock()
		purged, err := purgeAside(s.path, cutoff)
		s.mu.Lock()
		s.purgedAside = append(s.purgedAside, purged...)
		s.mu.Unlock()
		if err != nil {
			return rm.lanes[0] + rm.lanes[1] + rm.asideN, fmt.Errorf("expire records: %w", err)
		}
	}
	n := rm.lanes[0] + rm.lanes[1] + rm.asideN
	if s.ks != nil {
		s.ks.forget(rm.periods)
		gone, err := s.ks.shred(cutoff.UnixNano(), now.UnixNano(), s.opt.MaxAge > 0)
		if err != nil && isFull(err) && s.releaseReserve() {
			gone, err = s.ks.shred(cutoff.UnixNano(), now.UnixNano(), s.opt.MaxAge > 0)
		}
		if err != nil {
			return n, fmt.Errorf("shred period keys: %w", mapErr(err))
		}
		s.mu.Lock()
		s.shredded += uint64(len(gone))
		s.mu.Unlock()
	}
	return n, nil
}

// Get returns the stored record with the given ID or ErrNotFound. A record
// past MaxAge is not found.
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
		r, err = decodeValue(v, lane, s.keyFor)
		if err == nil && s.pastRetention(r.Created, s.opt.Now()) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("get record %s: %w", id, mapErr(err))
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

// LaneLen returns how many records lane holds, leased or not; cheap.
func (s *Spool) LaneLen(lane Lane) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(lane) >= len(s.count) {
		return 0
	}
	return s.count[lane]
}

// Stats returns a snapshot of counters. Oldest is read from the file; if the
// spool is closed it is left zero.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		Count:            s.count,
		Bytes:            s.laneBytes[0] + s.laneBytes[1] + s.asideBytes,
		MaxBytes:         s.opt.MaxBytes,
		Full:             s.full,
		FullCause:        s.fullCause,
		Refused:          s.refused,
		Dropped:          s.dropped,
		Expired:          s.expired,
		SetAside:         s.asideN,
		Encrypted:        s.ks != nil,
		Shredded:         s.shredded,
		MovedAside:       s.movedAside,
		PurgedAside:      slices.Clone(s.purgedAside),
		MovedAsideReason: s.movedWhy,
		LastError:        s.lastErr,
	}
	now := s.opt.Now()
	for _, l := range s.leases {
		if now.Before(l.until) {
			st.Leased++
		}
	}
	closed := s.isClosed
	s.mu.Unlock()
	if s.ks != nil {
		st.Keys = s.ks.len()
	}
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
			h, err := decodeHeader(v)
			if err != nil {
				continue
			}
			if st.Oldest.IsZero() || h.created.Before(st.Oldest) {
				st.Oldest = h.created
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

// Close stops accepting Puts, waits for the commit in progress and the
// background expiry, marks the file as cleanly closed and closes it. It is
// idempotent.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.loops.Wait()
		s.writeMu.Lock()
		s.mu.Lock()
		s.isClosed = true
		s.mu.Unlock()
		s.writeMu.Unlock()
		// Best effort: without the marker (full disk), the next Open runs
		// the deep check, which is the safe side.
		_ = s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(metaClean, []byte{1})
		})
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

// mapErr turns bbolt's closed errors into ErrClosed and a full filesystem
// into ErrFull wrapping the cause.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, berrors.ErrDatabaseNotOpen) || errors.Is(err, berrors.ErrTxClosed) {
		return ErrClosed
	}
	if errors.Is(err, ErrFull) {
		return err
	}
	// bbolt formats some I/O errors with %s, so match the text as well.
	msg := err.Error()
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error()) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}
