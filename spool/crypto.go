package spool

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// KeySize is the length of the master key and of every period key.
const KeySize = 32

const (
	nonceSize = 12
	tagSize   = 16

	keyStoreMagic = "ASPKEYS1"
	// check value: nonce + sealed 16 zero bytes.
	keyCheckLen = nonceSize + 16 + tagSize
	// entry: start, end, nonce, wrapped key + tag.
	keyEntryLen = 8 + 8 + nonceSize + KeySize + tagSize
	// the count field is a uint32, but a store this large is nonsense: one
	// key per hour for ten years is under 90,000.
	maxKeyEntries = 1 << 20

	// checkAAD and wrapAAD separate the master key's two uses.
	checkAAD = "alpr-agent spool key store check v1"
	wrapAAD  = "alpr-agent spool period key v1"
	// valueAAD prefixes the associated data of every encrypted value.
	valueAAD = "alpr-agent spool value v2"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// LoadKeyFile reads a master key provisioned by the installer. The file holds
// either exactly 32 raw bytes or 64 hexadecimal characters (surrounding
// whitespace, such as a final newline, is ignored). A file that group or
// others may read or write is refused: a key anyone on the device can read
// protects nothing.
func LoadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load key file %s: %w: not a regular file", path, ErrKey)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load key file %s: %w: mode %04o lets group or others access it, want 0600 or 0400 (chmod 600 %s)", path, ErrKey, perm, path)
	}
	data := make([]byte, 256)
	n, err := f.Read(data)
	if err != nil && n == 0 {
		return nil, fmt.Errorf("load key file %s: %w", path, err)
	}
	data = data[:n]
	if len(data) == KeySize {
		return data, nil
	}
	text := bytes.TrimSpace(data)
	if len(text) == 2*KeySize {
		key := make([]byte, KeySize)
		if _, err := hex.Decode(key, text); err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("load key file %s: %w: want 32 raw bytes or 64 hex characters, found %d bytes", path, ErrKey, len(data))
}

// periodKey is the data key of one key period [start, end) of created
// times, in unix nanoseconds.
type periodKey struct {
	start, end int64
	wrapped    []byte // nonce + sealed key, as stored
	aead       cipher.AEAD
}

// keyStore holds the period keys, wrapped by the master key, in a file of
// its own: bbolt keeps freed bytes in free pages, a file rewritten by
// rename does not keep a destroyed key in the live file.
type keyStore struct {
	path   string
	master cipher.AEAD
	check  []byte

	mu      sync.Mutex // guards keys, count, pending
	keys    []*periodKey
	count   map[int64]int // stored records per period start
	pending map[int64]int // records encrypted but not yet committed
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// keyStoreFile is the parsed form of the key store file, before the master
// key is applied.
type keyStoreFile struct {
	check   []byte
	entries []keyEntry
}

type keyEntry struct {
	start, end int64
	wrapped    []byte
}

// parseKeyStore decodes the key store file layout (all integers big-endian):
//
//	"ASPKEYS1" | check (12-byte nonce, 32-byte sealed zeros) | count uint32 |
//	count × (start int64 | end int64 | 12-byte nonce | 48-byte sealed key) |
//	CRC-32C of all preceding bytes
func parseKeyStore(b []byte) (keyStoreFile, error) {
	var f keyStoreFile
	min := len(keyStoreMagic) + keyCheckLen + 4 + 4
	if len(b) < min {
		return f, fmt.Errorf("%w: key store is %d bytes, shorter than its header", ErrCorrupt, len(b))
	}
	if string(b[:len(keyStoreMagic)]) != keyStoreMagic {
		return f, fmt.Errorf("%w: key store has no %s header", ErrCorrupt, keyStoreMagic)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return f, fmt.Errorf("%w: key store checksum mismatch", ErrCorrupt)
	}
	p := body[len(keyStoreMagic):]
	f.check = slices.Clone(p[:keyCheckLen])
	p = p[keyCheckLen:]
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if n > maxKeyEntries || uint64(len(p)) != uint64(n)*keyEntryLen {
		return keyStoreFile{}, fmt.Errorf("%w: key store says %d keys in %d bytes", ErrCorrupt, n, len(p))
	}
	for range n {
		e := keyEntry{
			start:   int64(binary.BigEndian.Uint64(p)),
			end:     int64(binary.BigEndian.Uint64(p[8:])),
			wrapped: slices.Clone(p[16:keyEntryLen]),
		}
		if e.end <= e.start {
			return keyStoreFile{}, fmt.Errorf("%w: key store period [%d, %d) is empty", ErrCorrupt, e.start, e.end)
		}
		f.entries = append(f.entries, e)
		p = p[keyEntryLen:]
	}
	return f, nil
}

func (f keyStoreFile) marshal() []byte {
	b := make([]byte, 0, len(keyStoreMagic)+keyCheckLen+4+len(f.entries)*keyEntryLen+4)
	b = append(b, keyStoreMagic...)
	b = append(b, f.check...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.entries)))
	for _, e := range f.entries {
		b = binary.BigEndian.AppendUint64(b, uint64(e.start))
		b = binary.BigEndian.AppendUint64(b, uint64(e.end))
		b = append(b, e.wrapped...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func wrapAD(start, end int64) []byte {
	b := append([]byte(wrapAAD), make([]byte, 16)...)
	binary.BigEndian.PutUint64(b[len(wrapAAD):], uint64(start))
	binary.BigEndian.PutUint64(b[len(wrapAAD)+8:], uint64(end))
	return b
}

// openKeyStore loads the key store at path with the master key, or creates
// an empty one when create is set and the file does not exist. A wrong
// master key is ErrKey; a damaged file is ErrCorrupt.
func openKeyStore(path string, master []byte, create bool) (*keyStore, error) {
	m, err := newAEAD(master)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	ks := &keyStore{path: path, master: m, count: map[int64]int{}, pending: map[int64]int{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		nonce := make([]byte, nonceSize)
		_, _ = rand.Read(nonce)
		ks.check = m.Seal(nonce, nonce, make([]byte, 16), []byte(checkAAD))
		if err := ks.persist(ks.keys); err != nil {
			return nil, err
		}
		return ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key store: %w", err)
	}
	f, err := parseKeyStore(b)
	if err != nil {
		return nil, err
	}
	if _, err := m.Open(nil, f.check[:nonceSize], f.check[nonceSize:], []byte(checkAAD)); err != nil {
		return nil, fmt.Errorf("%w: the key does not open key store %s (wrong key file?)", ErrKey, path)
	}
	ks.check = f.check
	for _, e := range f.entries {
		k, err := m.Open(nil, e.wrapped[:nonceSize], e.wrapped[nonceSize:], wrapAD(e.start, e.end))
		if err != nil {
			return nil, fmt.Errorf("%w: key store period %s cannot be unwrapped", ErrCorrupt, time.Unix(0, e.start).UTC().Format(time.RFC3339))
		}
		a, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		ks.keys = append(ks.keys, &periodKey{start: e.start, end: e.end, wrapped: e.wrapped, aead: a})
	}
	slices.SortFunc(ks.keys, func(a, b *periodKey) int { return cmpInt64(a.start, b.start) })
	return ks, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// persist writes keys as the new key store: temp file, fsync, rename, fsync
// of the directory, so a crash leaves either the old or the new store.
func (ks *keyStore) persist(keys []*periodKey) error {
	f := keyStoreFile{check: ks.check}
	for _, k := range keys {
		f.entries = append(f.entries, keyEntry{start: k.start, end: k.end, wrapped: k.wrapped})
	}
	if err := writeFileAtomic(ks.path, f.marshal()); err != nil {
		return fmt.Errorf("write key store: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// periodStart is the start of the KeyPeriod-aligned period holding t.
func periodStart(t, period int64) int64 {
	q := t / period
	if t%period != 0 && t < 0 {
		q--
	}
	return q * period
}

// acquire returns the key for records created at t (unix nanoseconds),
// creating and persisting a new one when no period covers t, and counts one
// pending record for it so the key is not destroyed before the record is
// committed or given up (settle).
func (ks *keyStore) acquire(t, period int64) (*periodKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range ks.keys {
		if k.start <= t && t < k.end {
			ks.pending[k.start]++
			return k, nil
		}
	}
	// A new period, clipped so periods never overlap (KeyPeriod may have
	// changed since the neighbours were made).
	start := periodStart(t, period)
	end := start + period
	for _, k := range ks.keys {
		if k.end > start && k.end <= t {
			start = k.end
		}
		if k.start < end && k.start > t {
			end = k.start
		}
	}
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw)
	a, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce)
	k := &periodKey{start: start, end: end, aead: a, wrapped: ks.master.Seal(nonce, nonce, raw, wrapAD(start, end))}
	clear(raw)
	keys := append(slices.Clone(ks.keys), k)
	slices.SortFunc(keys, func(a, b *periodKey) int { return cmpInt64(a.start, b.start) })
	// The key is on disk before any record that needs it.
	if err := ks.persist(keys); err != nil {
		return nil, err
	}
	ks.keys = keys
	ks.pending[k.start]++
	return k, nil
}

// settle moves one pending record of period start to stored (stored) or
// drops it (not stored).
func (ks *keyStore) settle(start int64, stored bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.pending[start]--; ks.pending[start] <= 0 {
		delete(ks.pending, start)
	}
	if stored {
		ks.count[start]++
	}
}

// forget counts stored records of the given periods as gone.
func (ks *keyStore) forget(periods []int64) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, p := range periods {
		if ks.count[p]--; ks.count[p] <= 0 {
			delete(ks.count, p)
		}
	}
}

func (ks *keyStore) lookup(start int64) *periodKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range ks.keys {
		if k.start == start {
			return k
		}
	}
	return nil
}

func (ks *keyStore) len() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return len(ks.keys)
}

// shred destroys the keys of periods that ended at or before cutoff
// (retention over: any record left in them is past MaxAge) and of periods
// that ended before now and hold no record, and rewrites the store. It
// returns the start of every destroyed period.
func (ks *keyStore) shred(cutoff, now int64, retention bool) ([]int64, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var keep []*periodKey
	var gone []int64
	for _, k := range ks.keys {
		busy := ks.count[k.start] > 0 || ks.pending[k.start] > 0
		if (retention && k.end <= cutoff && ks.pending[k.start] == 0) || (k.end <= now && !busy) {
			gone = append(gone, k.start)
			continue
		}
		keep = append(keep, k)
	}
	if len(gone) == 0 {
		return nil, nil
	}
	if err := ks.persist(keep); err != nil {
		return nil, err
	}
	ks.keys = keep
	for _, p := range gone {
		delete(ks.count, p)
	}
	return gone, nil
}

// sealValue encrypts payload for the record with the given value header
// (format byte through period start); ad binds it to the lane and header.
func sealValue(k *periodKey, header []byte, lane Lane, payload []byte) []byte {
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce)
	out := make([]byte, 0, len(header)+nonceSize+len(payload)+tagSize)
	out = append(out, header...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, payload, valueAD(lane, header))
}

func valueAD(lane Lane, header []byte) []byte {
	ad := make([]byte, 0, len(valueAAD)+1+len(header))
	ad = append(ad, valueAAD...)
	ad = append(ad, byte(lane))
	return append(ad, header...)
}
