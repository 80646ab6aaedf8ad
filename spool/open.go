package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// bbolt's on-disk constants (go.etcd.io/bbolt/internal/common), read by
// precheck before bbolt maps the file: bbolt trusts its meta page and faults
// or panics on a file that is shorter than the meta says.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16
	boltMetaLen      = 64 // checksum at 56
	boltNoFreelist   = ^uint64(0)
	boltFreelistFlag = 0x10
	boltBranchFlag   = 0x01
	boltLeafFlag     = 0x02
	boltMetaFlag     = 0x04
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

func readBoltMeta(f *os.File, off int64) (boltMeta, bool) {
	b := make([]byte, boltMetaLen)
	if _, err := f.ReadAt(b, off+boltPageHeader); err != nil {
		return boltMeta{}, false
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != boltMagic || le.Uint32(b[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), freelist: le.Uint64(b[32:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}, true
}

// precheck reads the meta pages and walks the page tree of an existing
// spool file and returns why it is not a usable bbolt file ("" when it looks
// sound or does not exist). It catches what would make bbolt fault, panic
// or loop: garbage, a truncated file, pointers past the end, a damaged page
// header, a page reached twice, a freelist naming a page in use.
func precheck(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	size := fi.Size()
	if size == 0 {
		return "file is empty", nil
	}
	m0, ok0 := readBoltMeta(f, 0)
	ps := int64(os.Getpagesize())
	if ok0 {
		ps = int64(m0.pageSize)
	}
	m1, ok1 := readBoltMeta(f, ps)
	if !ok0 && !ok1 {
		return fmt.Sprintf("no valid bbolt meta page (file of %d bytes)", size), nil
	}
	m := m0
	if !ok0 || (ok1 && m1.txid > m0.txid) {
		m = m1
	}
	ps = int64(m.pageSize)
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return fmt.Sprintf("meta page size %d is invalid", ps), nil
	}
	if size < 2*ps || m.pgid > uint64(size/ps) {
		return fmt.Sprintf("file is truncated: %d bytes, the meta page says %d pages of %d", size, m.pgid, ps), nil
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Sprintf("root page %d outside the file's %d pages", m.root, m.pgid), nil
	}
	flags := func(id uint64) uint16 {
		b := make([]byte, 2)
		if _, err := f.ReadAt(b, int64(id)*ps+8); err != nil && err != io.EOF {
			return 0
		}
		return binary.LittleEndian.Uint16(b)
	}
	// tx.Check asserts, in a goroutine where a panic cannot be recovered,
	// that both meta pages and the freelist page name themselves.
	for _, id := range []uint64{0, 1} {
		b := make([]byte, 10)
		if _, err := f.ReadAt(b, int64(id)*ps); err != nil {
			return fmt.Sprintf("read meta page %d: %v", id, err), nil
		}
		if got, fl := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint16(b[8:]); got != id || fl != boltMetaFlag {
			return fmt.Sprintf("meta page %d has a damaged header (id %d, flags %#x)", id, got, fl), nil
		}
	}
	if m.freelist != boltNoFreelist && m.freelist < m.pgid {
		b := make([]byte, 8)
		if _, err := f.ReadAt(b, int64(m.freelist)*ps); err != nil || binary.LittleEndian.Uint64(b) != m.freelist {
			return fmt.Sprintf("freelist page %d has a damaged header", m.freelist), nil
		}
	}
	if fl := flags(m.root); fl != boltBranchFlag && fl != boltLeafFlag {
		return fmt.Sprintf("root page %d has flags %#x", m.root, fl), nil
	}
	if m.freelist != boltNoFreelist {
		if m.freelist < 2 || m.freelist >= m.pgid {
			return fmt.Sprintf("freelist page %d outside the file's %d pages", m.freelist, m.pgid), nil
		}
		if fl := flags(m.freelist); fl != boltFreelistFlag {
			return fmt.Sprintf("freelist page %d has flags %#x", m.freelist, fl), nil
		}
	}
	return walkPages(f, m), nil
}

// openBolt opens the bbolt file and turns a panic or memory fault inside
// bbolt into a corruption reason.
func openBolt(path string, timeout time.Duration) (db *bbolt.DB, reason string, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			db, reason, err = nil, fmt.Sprintf("bbolt failed opening the file: %v", p), nil
		}
	}()
	// No freelist in the file (see the package doc): Open rebuilds it by
	// walking the tree, which precheck has made safe. The map type keeps
	// the in-memory list cheap to update as a backlog drains.
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err == nil {
		return db, "", nil
	}
	var pe *fs.PathError
	if errors.Is(err, berrors.ErrTimeout) || (errors.As(err, &pe) && pe.Op == "open") {
		return nil, "", err
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) || strings.Contains(err.Error(), "file size too small") {
		return nil, err.Error(), nil
	}
	return nil, "", err
}

// scanResult is what Open learns from reading every record once.
type scanResult struct {
	isNew     bool // no index bucket yet
	enc       string
	clean     bool
	count     [numLanes]int
	laneBytes [numLanes]int64
	asideN    int
	asideSize int64
	periods   map[int64]int
	bad       []badRef
}

const (
	encNone = "none"
	encAES  = "aes-256-gcm/v1"
)

var (
	bucketMeta  = []byte("meta")
	bucketAside = []byte("aside")
	metaEnc     = []byte("encryption")
	metaClean   = []byte("clean-shutdown")
)

// scan reads the whole spool once, counting records, and returns a
// corruption reason when reading fails. It adds bbolt's consistency check
// (every page reachable once, freelist sound, keys in order) when forceDeep
// is set or the previous run did not close the spool.
func scan(db *bbolt.DB, forceDeep bool) (res scanResult, reason string) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			res, reason = scanResult{}, fmt.Sprintf("reading the file failed: %v", p)
		}
	}()
	res.periods = map[int64]int{}
	err := db.View(func(tx *bbolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			res.enc = string(m.Get(metaEnc))
			res.clean = m.Get(metaClean) != nil
		}
		res.isNew = tx.Bucket(bucketIndex) == nil
		if res.enc == "" && !res.isNew {
			res.enc = encNone
		}
		for lane, name := range laneBuckets {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			err := b.ForEach(func(k, v []byte) error {
				// Undecodable values are counted like the rest: setAside
				// takes them out of the counts as it moves them.
				res.count[lane]++
				res.laneBytes[lane] += int64(len(k) + len(v))
				h, err := decodeHeader(v)
				if err != nil || len(k) != keyLen {
					res.bad = append(res.bad, badRef{Lane(lane), string(k)})
					return nil
				}
				if h.format == formatEncrypted {
					res.periods[h.period]++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketAside); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				res.asideN++
				res.asideSize += int64(len(k) + len(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		// Walk every bucket (the index, unknown ones), so every branch
		// and leaf page in use is read once, here, where a fault on a
		// damaged page is recovered: tx.Check runs in a goroutine of its
		// own and a damaged page type panics it beyond recovery.
		err := tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { return nil })
		})
		if err != nil {
			return err
		}
		if forceDeep || !res.clean {
			// Drain the channel: the check goroutine must finish with
			// the transaction before it closes.
			var first error
			for err := range tx.Check() {
				if first == nil {
					first = fmt.Errorf("consistency check: %w", err)
				}
			}
			return first
		}
		return nil
	})
	if err != nil {
		return scanResult{}, err.Error()
	}
	return res, ""
}

// moveAside renames a corrupt spool file, and its key store if any, to
// <path>.corrupt-<UTC time> (plus .keys), never overwriting an earlier one.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, name); err != nil {
		return "", fmt.Errorf("move corrupt spool aside: %w", err)
	}
	if _, err := os.Stat(keyStorePath(path)); err == nil {
		if err := os.Rename(keyStorePath(path), keyStorePath(name)); err != nil {
			return name, fmt.Errorf("move key store aside: %w", err)
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return name, fmt.Errorf("move corrupt spool aside: %w", err)
	}
	return name, nil
}

func keyStorePath(path string) string { return path + ".keys" }

// purgeAside deletes the damaged spool files moveAside left beside path
// (and their key stores) that were last written before cutoff: every
// record in them is past retention. Retention binds those reads as much as
// the live spool's. It returns what it deleted.
func purgeAside(path string, cutoff time.Time) ([]string, error) {
	names, err := filepath.Glob(globEscape(path) + ".corrupt-*")
	if err != nil {
		return nil, fmt.Errorf("purge moved-aside spools: %w", err)
	}
	var purged []string
	var errs []error
	for _, name := range names {
		if strings.HasSuffix(name, ".keys") {
			continue // goes with its spool file
		}
		fi, err := os.Lstat(name)
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			continue
		}
		// The key store first: without it an encrypted file is noise
		// even if removing the file itself fails.
		if err := os.Remove(keyStorePath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(name); err != nil {
			errs = append(errs, err)
			continue
		}
		purged = append(purged, name)
	}
	if len(purged) > 0 {
		if err := syncDir(filepath.Dir(path)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return purged, fmt.Errorf("purge moved-aside spools: %w", err)
	}
	return purged, nil
}

// globEscape quotes the characters filepath.Match treats as patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
