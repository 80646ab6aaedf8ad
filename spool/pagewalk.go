package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

// bbolt element layouts (go.etcd.io/bbolt/internal/common): a branch
// element is pos, ksize uint32 and a child pgid; a leaf element is flags,
// pos, ksize, vsize uint32. pos counts from the element itself. A bucket
// value starts with its root pgid and sequence; root 0 means an inline
// page follows.
const (
	boltElemLen      = 16
	boltBucketHdr    = 16
	boltBucketFlag   = 0x01
	boltMaxTreeDepth = 64
)

// pageWalk checks the page tree of a bbolt file before bbolt reads it:
// every branch and leaf page reachable from the root once, inside the
// file, with a known type and elements inside the page, and the freelist
// naming only pages that are not in the tree. bbolt trusts all of this: a
// child pointer that loops makes its cursor spin forever, and a freelist
// entry for a page in use makes it overwrite live data later.
//
// It checks key order too, as bbolt's consistency check does (keys sorted
// on each page, each child's keys between the two parent keys around it):
// the spool does not sync bbolt's freelist (Options.NoFreelistSync), so
// bbolt.Open rebuilds it by that same check of the whole tree, and a
// violation it finds there panics a goroutine of its own, which no recover
// can catch. Whatever the walk lets through, that check must pass.
type pageWalk struct {
	f       *os.File
	ps      int64
	pgid    uint64
	visited []bool
	scratch []byte // the first block of the page being read
}

func walkPages(f *os.File, m boltMeta) string {
	w := &pageWalk{f: f, ps: int64(m.pageSize), pgid: m.pgid, visited: make([]bool, m.pgid)}
	if _, r := w.page(m.root, 0, nil, nil); r != "" {
		return r
	}
	if m.freelist == boltNoFreelist {
		return ""
	}
	return w.freelist(m.freelist)
}

func (w *pageWalk) read(off, n int64) ([]byte, string) {
	b := make([]byte, n)
	if _, err := w.f.ReadAt(b, off); err != nil {
		return nil, fmt.Sprintf("read %d bytes at %d: %v", n, off, err)
	}
	return b, ""
}

// mark records pages id..id+overflow as used and reports a page met twice.
func (w *pageWalk) mark(id uint64, overflow uint32) string {
	if id < 2 || id+uint64(overflow) >= w.pgid {
		return fmt.Sprintf("page %d (+%d overflow) outside the file's %d pages", id, overflow, w.pgid)
	}
	for p := id; p <= id+uint64(overflow); p++ {
		if w.visited[p] {
			return fmt.Sprintf("page %d is reached twice", p)
		}
		w.visited[p] = true
	}
	return ""
}

// page checks page id and the tree below it, whose keys must lie in
// [minKey, maxKey) (nil: unbounded), and returns the greatest key in it
// (nil for an empty leaf), as bbolt's check computes it. It reads the
// page's first block whole, once; of an overflow page only what lies
// beyond it and is needed (element headers, keys), not the values.
func (w *pageWalk) page(id uint64, depth int, minKey, maxKey []byte) ([]byte, string) {
	if depth > boltMaxTreeDepth {
		return nil, "page tree deeper than any real one"
	}
	if id < 2 || id >= w.pgid {
		return nil, fmt.Sprintf("page %d outside the file's %d pages", id, w.pgid)
	}
	if w.scratch == nil {
		w.scratch = make([]byte, w.ps)
	}
	first := w.scratch // reused by the next page read: clone what must last
	if _, err := w.f.ReadAt(first, int64(id)*w.ps); err != nil {
		return nil, fmt.Sprintf("read page %d: %v", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(first); got != id {
		return nil, fmt.Sprintf("page %d says it is page %d", id, got)
	}
	flags, count, overflow := le.Uint16(first[8:]), le.Uint16(first[10:]), le.Uint32(first[12:])
	if r := w.mark(id, overflow); r != "" {
		return nil, r
	}
	size := (int64(overflow) + 1) * w.ps
	elems := int64(count) * boltElemLen
	if boltPageHeader+elems > size {
		return nil, fmt.Sprintf("page %d: %d elements do not fit", id, count)
	}
	pg := pageBytes{w: w, id: id, first: first}
	body, r := pg.at(boltPageHeader, elems)
	if r != "" {
		return nil, r
	}
	switch flags {
	case boltBranchFlag:
		if count == 0 {
			return nil, fmt.Sprintf("branch page %d is empty", id)
		}
		// The keys bound the children's keys while they are walked.
		pg.first, body = bytes.Clone(first), bytes.Clone(body)
		keys := make([][]byte, count)
		for i := range int64(count) {
			e := body[i*boltElemLen:]
			pos, ksize := int64(le.Uint32(e)), int64(le.Uint32(e[4:]))
			if boltPageHeader+i*boltElemLen+pos+ksize > size {
				return nil, fmt.Sprintf("branch page %d: element %d outside the page", id, i)
			}
			if keys[i], r = pg.at(boltPageHeader+i*boltElemLen+pos, ksize); r != "" {
				return nil, r
			}
		}
		// As bbolt: element i's key is at least the greatest key left of
		// it, and its subtree lies between it and the next key.
		running := minKey
		for i := range int64(count) {
			if r := keyInOrder(id, i, keys[i], running, maxKey); r != "" {
				return nil, r
			}
			next := maxKey
			if i+1 < int64(count) {
				next = keys[i+1]
			}
			if running, r = w.page(le.Uint64(body[i*boltElemLen+8:]), depth+1, keys[i], next); r != "" {
				return nil, r
			}
		}
		return running, ""
	case boltLeafFlag:
		return w.leaf(pg, body, count, size, depth, minKey, maxKey)
	default:
		return nil, fmt.Sprintf("page %d has type flags %#x", id, flags)
	}
}

// pageBytes reads parts of a page whose first block is already in memory.
type pageBytes struct {
	w     *pageWalk
	id    uint64
	first []byte
}

// at returns n bytes at offset off of the page (checked by the caller to
// lie inside it), from the first block or else from the file.
func (p pageBytes) at(off, n int64) ([]byte, string) {
	if off+n <= int64(len(p.first)) {
		return p.first[off : off+n], ""
	}
	return p.w.read(int64(p.id)*p.w.ps+off, n)
}

// keyInOrder is bbolt's key order rule for element i of page id: the
// first key at least prev (the bound from the parent), every later one
// above prev (the key or subtree before it), all below maxKey.
func keyInOrder(id uint64, i int64, key, prev, maxKey []byte) string {
	if i == 0 && prev != nil && bytes.Compare(prev, key) > 0 {
		return fmt.Sprintf("page %d: key 0 out of order (before its parent's key)", id)
	}
	if i > 0 && bytes.Compare(prev, key) >= 0 {
		return fmt.Sprintf("page %d: key %d out of order", id, i)
	}
	if maxKey != nil && bytes.Compare(key, maxKey) >= 0 {
		return fmt.Sprintf("page %d: key %d out of order (not before its parent's next key)", id, i)
	}
	return ""
}

// leaf checks the elements of a leaf page (pg, element headers body):
// inside the page, keys in order and in [minKey, maxKey); walks the
// buckets it holds and returns its last key.
func (w *pageWalk) leaf(pg pageBytes, body []byte, count uint16, size int64, depth int, minKey, maxKey []byte) ([]byte, string) {
	le := binary.LittleEndian
	base := int64(pg.id) * w.ps
	running := minKey
	type span struct{ off, n int64 }
	var buckets []span // bucket values, walked after the loop: a walk reuses the scratch page the keys are in
	for i := range int64(count) {
		e := body[i*boltElemLen:]
		flags, pos, ksize, vsize := le.Uint32(e), int64(le.Uint32(e[4:])), int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		at := boltPageHeader + i*boltElemLen + pos
		if at+ksize+vsize > size {
			return nil, fmt.Sprintf("leaf at %d: element %d outside the page", base, i)
		}
		key, r := pg.at(at, ksize)
		if r != "" {
			return nil, r
		}
		if r := keyInOrder(pg.id, i, key, running, maxKey); r != "" {
			return nil, r
		}
		running = key
		if flags&boltBucketFlag != 0 {
			if vsize < boltBucketHdr {
				return nil, fmt.Sprintf("leaf at %d: bucket value of %d bytes", base, vsize)
			}
			buckets = append(buckets, span{at + ksize, vsize})
		}
	}
	last := bytes.Clone(running) // the page's bytes are reused below
	if count == 0 {
		last = nil
	}
	for _, b := range buckets {
		v, r := w.read(base+b.off, b.n)
		if r != "" {
			return nil, r
		}
		if root := le.Uint64(v); root != 0 {
			// A bucket's own tree: bbolt checks its keys without bounds.
			if _, r := w.page(root, depth+1, nil, nil); r != "" {
				return nil, r
			}
			continue
		}
		// Inline bucket: a leaf page inside the value.
		in := v[boltBucketHdr:]
		if int64(len(in)) < boltPageHeader {
			return nil, fmt.Sprintf("leaf at %d: inline bucket too short", base)
		}
		if le.Uint16(in[8:]) != boltLeafFlag {
			return nil, fmt.Sprintf("leaf at %d: inline bucket is not a leaf", base)
		}
		n := le.Uint16(in[10:])
		if boltPageHeader+int64(n)*boltElemLen > int64(len(in)) {
			return nil, fmt.Sprintf("leaf at %d: inline bucket elements do not fit", base)
		}
		if depth+1 > boltMaxTreeDepth {
			return nil, "page tree deeper than any real one"
		}
		if r := w.inline(in, n, depth+1); r != "" {
			return nil, r
		}
	}
	return last, ""
}

// inline checks an inline bucket's page, held in memory.
func (w *pageWalk) inline(p []byte, count uint16, depth int) string {
	le := binary.LittleEndian
	for i := range int64(count) {
		e := p[boltPageHeader+i*boltElemLen:]
		flags, pos, ksize, vsize := le.Uint32(e), int64(le.Uint32(e[4:])), int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		at := boltPageHeader + i*boltElemLen + pos
		if at+ksize+vsize > int64(len(p)) {
			return "inline bucket element outside its value"
		}
		if flags&boltBucketFlag != 0 {
			// Nested buckets: the spool makes none; refuse rather than
			// follow pointers it does not expect.
			return "nested bucket inside an inline bucket"
		}
	}
	return ""
}

func (w *pageWalk) freelist(id uint64) string {
	hdr, r := w.read(int64(id)*w.ps, boltPageHeader)
	if r != "" {
		return r
	}
	le := binary.LittleEndian
	count, overflow := int64(le.Uint16(hdr[10:])), le.Uint32(hdr[12:])
	if r := w.mark(id, overflow); r != "" {
		return "freelist: " + r
	}
	size := (int64(overflow) + 1) * w.ps
	off := int64(boltPageHeader)
	if count == 0xFFFF {
		b, r := w.read(int64(id)*w.ps+off, 8)
		if r != "" {
			return r
		}
		count = int64(le.Uint64(b))
		off += 8
	}
	if count < 0 || off+count*8 > size {
		return fmt.Sprintf("freelist page %d: %d ids do not fit", id, count)
	}
	ids, r := w.read(int64(id)*w.ps+off, count*8)
	if r != "" {
		return r
	}
	for i := range count {
		p := le.Uint64(ids[i*8:])
		if p < 2 || p >= w.pgid {
			return fmt.Sprintf("freelist names page %d outside the file's %d pages", p, w.pgid)
		}
		if w.visited[p] {
			return fmt.Sprintf("freelist names page %d, which is in use", p)
		}
	}
	return ""
}
