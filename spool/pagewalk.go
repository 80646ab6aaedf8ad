package spool

import (
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
type pageWalk struct {
	f       *os.File
	ps      int64
	pgid    uint64
	visited []bool
}

func walkPages(f *os.File, m boltMeta) string {
	w := &pageWalk{f: f, ps: int64(m.pageSize), pgid: m.pgid, visited: make([]bool, m.pgid)}
	if r := w.page(m.root, 0); r != "" {
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

func (w *pageWalk) page(id uint64, depth int) string {
	if depth > boltMaxTreeDepth {
		return "page tree deeper than any real one"
	}
	if id < 2 || id >= w.pgid {
		return fmt.Sprintf("page %d outside the file's %d pages", id, w.pgid)
	}
	hdr, r := w.read(int64(id)*w.ps, boltPageHeader)
	if r != "" {
		return r
	}
	le := binary.LittleEndian
	if got := le.Uint64(hdr); got != id {
		return fmt.Sprintf("page %d says it is page %d", id, got)
	}
	flags, count, overflow := le.Uint16(hdr[8:]), le.Uint16(hdr[10:]), le.Uint32(hdr[12:])
	if r := w.mark(id, overflow); r != "" {
		return r
	}
	size := (int64(overflow) + 1) * w.ps
	elems := int64(count) * boltElemLen
	if boltPageHeader+elems > size {
		return fmt.Sprintf("page %d: %d elements do not fit", id, count)
	}
	body, r := w.read(int64(id)*w.ps+boltPageHeader, elems)
	if r != "" {
		return r
	}
	switch flags {
	case boltBranchFlag:
		if count == 0 {
			return fmt.Sprintf("branch page %d is empty", id)
		}
		for i := range int64(count) {
			e := body[i*boltElemLen:]
			pos, ksize := int64(le.Uint32(e)), int64(le.Uint32(e[4:]))
			if boltPageHeader+i*boltElemLen+pos+ksize > size {
				return fmt.Sprintf("branch page %d: element %d outside the page", id, i)
			}
			if r := w.page(le.Uint64(e[8:]), depth+1); r != "" {
				return r
			}
		}
	case boltLeafFlag:
		return w.leaf(int64(id)*w.ps, body, count, size, depth)
	default:
		return fmt.Sprintf("page %d has type flags %#x", id, flags)
	}
	return ""
}

// leaf checks the elements of a leaf page whose element headers are body,
// starting at file offset base, and walks the buckets it holds.
func (w *pageWalk) leaf(base int64, body []byte, count uint16, size int64, depth int) string {
	le := binary.LittleEndian
	for i := range int64(count) {
		e := body[i*boltElemLen:]
		flags, pos, ksize, vsize := le.Uint32(e), int64(le.Uint32(e[4:])), int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		at := boltPageHeader + i*boltElemLen + pos
		if at+ksize+vsize > size {
			return fmt.Sprintf("leaf at %d: element %d outside the page", base, i)
		}
		if flags&boltBucketFlag == 0 {
			continue
		}
		if vsize < boltBucketHdr {
			return fmt.Sprintf("leaf at %d: bucket value of %d bytes", base, vsize)
		}
		v, r := w.read(base+at+ksize, vsize)
		if r != "" {
			return r
		}
		if root := le.Uint64(v); root != 0 {
			if r := w.page(root, depth+1); r != "" {
				return r
			}
			continue
		}
		// Inline bucket: a leaf page inside the value.
		in := v[boltBucketHdr:]
		if int64(len(in)) < boltPageHeader {
			return fmt.Sprintf("leaf at %d: inline bucket too short", base)
		}
		if le.Uint16(in[8:]) != boltLeafFlag {
			return fmt.Sprintf("leaf at %d: inline bucket is not a leaf", base)
		}
		n := le.Uint16(in[10:])
		if boltPageHeader+int64(n)*boltElemLen > int64(len(in)) {
			return fmt.Sprintf("leaf at %d: inline bucket elements do not fit", base)
		}
		if depth+1 > boltMaxTreeDepth {
			return "page tree deeper than any real one"
		}
		if r := w.inline(in, n, depth+1); r != "" {
			return r
		}
	}
	return ""
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
