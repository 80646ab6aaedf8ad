package spool

import (
	"encoding/binary"
	"fmt"
	"time"
)

const (
	formatPlain     = 1
	formatEncrypted = 2
	keyLen          = 8
	indexLen        = 1 + keyLen
	createdEnd      = 1 + 8 // format byte, created unix nanoseconds
)

// header is the clear part of a stored value.
//
// Layout (integers big-endian):
//
//	plain:     0x01 | created int64 | uvarint len(ID) | ID | payload
//	encrypted: 0x02 | created int64 | uvarint len(ID) | ID | period start int64 |
//	           12-byte nonce | AES-256-GCM(payload) with 16-byte tag
//
// The ID and created time stay in clear for the index and retention; the
// additional data of the seal is the lane and every header byte, so a value
// moved to another lane, ID, time or period does not open.
type header struct {
	format  byte
	created time.Time
	id      []byte // aliases the value: copy it (string(h.id)) to keep it
	period  int64  // encrypted only
	end     int    // offset of the payload (plain) or nonce (encrypted)
}

func decodeHeader(v []byte) (header, error) {
	var h header
	if len(v) < createdEnd || (v[0] != formatPlain && v[0] != formatEncrypted) {
		return h, ErrCorrupt
	}
	h.format = v[0]
	h.created = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:createdEnd])))
	n, w := binary.Uvarint(v[createdEnd:])
	if w <= 0 || n == 0 || n > MaxIDLen || uint64(len(v)-createdEnd-w) < n {
		return h, ErrCorrupt
	}
	start := createdEnd + w
	h.id = v[start : start+int(n)]
	h.end = start + int(n)
	if h.format == formatEncrypted {
		if len(v)-h.end < 8+nonceSize+tagSize {
			return h, ErrCorrupt
		}
		h.period = int64(binary.BigEndian.Uint64(v[h.end:]))
		h.end += 8
	}
	return h, nil
}

func appendHeader(buf []byte, format byte, r Record) []byte {
	buf = append(buf, format)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Created.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(r.ID)))
	return append(buf, r.ID...)
}

func encodePlain(r Record) []byte {
	buf := make([]byte, 0, createdEnd+binary.MaxVarintLen64+len(r.ID)+len(r.Payload))
	buf = appendHeader(buf, formatPlain, r)
	return append(buf, r.Payload...)
}

func encodeEncrypted(k *periodKey, r Record) []byte {
	hdr := make([]byte, 0, createdEnd+binary.MaxVarintLen64+len(r.ID)+8)
	hdr = appendHeader(hdr, formatEncrypted, r)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(k.start))
	return sealValue(k, hdr, r.Lane, r.Payload)
}

// keyFunc finds the data key of a period; nil when it is destroyed or
// unknown.
type keyFunc func(period int64) *periodKey

// decodeValue returns the record stored in v, decrypting with keys when the
// value is encrypted. It copies everything it returns: bbolt memory is only
// valid inside the transaction. A value that cannot be decoded or opened is
// ErrCorrupt, or ErrKey when its period key is gone.
func decodeValue(v []byte, lane Lane, keys keyFunc) (Record, error) {
	h, err := decodeHeader(v)
	if err != nil {
		return Record{}, err
	}
	return openValue(h, v, lane, keys)
}

// openValue is decodeValue for a value whose header h is decoded already.
func openValue(h header, v []byte, lane Lane, keys keyFunc) (Record, error) {
	r := Record{ID: string(h.id), Lane: lane, Created: h.created}
	switch h.format {
	case formatPlain:
		r.Payload = append([]byte(nil), v[h.end:]...)
	case formatEncrypted:
		var k *periodKey
		if keys != nil {
			k = keys(h.period)
		}
		if k == nil {
			return Record{}, fmt.Errorf("%w: no key for period %s", ErrKey, time.Unix(0, h.period).UTC().Format(time.RFC3339))
		}
		nonce, ct := v[h.end:h.end+nonceSize], v[h.end+nonceSize:]
		p, err := k.aead.Open(nil, nonce, ct, valueAD(lane, v[:h.end]))
		if err != nil {
			return Record{}, fmt.Errorf("%w: authentication failed", ErrCorrupt)
		}
		if p == nil {
			p = []byte{}
		}
		r.Payload = p
	}
	return r, nil
}

func decodeIndex(ix []byte) (Lane, []byte, error) {
	if len(ix) != indexLen || ix[0] >= numLanes {
		return 0, nil, ErrCorrupt
	}
	return Lane(ix[0]), ix[1:], nil
}
