// Package audit keeps an append-only, hash-chained log of security-relevant
// events on the device: hotlist and config changes, diag accesses that
// return plate data, and its own recoveries.
//
// Format: one JSON object per line, fields in this order:
//
//	{"seq":7,"time":"2026-11-27T10:04:05.123456789Z","kind":"hotlist",
//	 "actor":"mqtt:alpr/v1/unit-0042/hotlist","detail":{…},
//	 "prev":"<hash of entry 6>","hash":"<hash of this entry>"}
//
// hash is hex(SHA-256(prev + "\n" + body)), where body is the line's exact
// bytes with the trailing `,"hash":"…"` removed (the line up to and
// including "prev" plus the closing brace): nothing is re-encoded, so what
// is hashed is what is on disk. The first entry's prev is 64 zeros. With
// Options.Key the hash is HMAC-SHA256 under that key instead, so rewriting
// the chain from an edited entry onwards needs the key; without a key the
// chain proves order and integrity only up to the newest hash known
// elsewhere (publish Head() to the central side to anchor it).
//
// Writing: the file is opened O_APPEND, each entry is one write of a whole
// line followed by fsync. Open verifies the tail (the last MiB) and
// continues the chain. A last line cut short by a power cut is not
// rewritten or silently dropped: Open terminates it and appends a
// "recovery" entry naming its byte offset and SHA-256, which Verify accepts
// as a recorded loss. Any other break in the tail makes Open fail with
// ErrTampered: keep the file for investigation and start a new one.
//
// Verify reads a whole log and reports the first entry that is edited,
// missing, reordered or malformed, by line number.
package audit
