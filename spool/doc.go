// Package spool is the device's durable store-and-forward queue for reads.
//
// A Spool keeps opaque records (ID, lane, created time, payload bytes) in a
// bbolt file until the uplink confirms them. It does not interpret payloads:
// the wire format belongs to package uplink.
//
// Files, for a spool at path:
//
//	path            the bbolt file
//	path.keys       the key store, when encrypted (see below)
//	path.reserve    256 kB of real blocks, released to delete on a full disk
//	path.corrupt-<UTC time>[.keys]   a damaged spool moved aside by Open
//
// What it owns:
//
//   - Durability. Put returns only once the record is in an fsync'd bbolt
//     commit. Concurrent Puts are group-committed: one goroutine takes every
//     Put waiting at that moment and writes them in a single transaction, so
//     64 producers cost about one fsync, and a lone producer pays no batching
//     delay.
//   - Order. Each lane has its own bucket keyed by a big-endian sequence, so
//     iteration order is put order. Lease hands out the alert lane before any
//     backlog of ordinary reads.
//   - Leases. Lease marks records as in flight for a ttl, in memory only:
//     after a restart every record is free again and will be re-sent, which
//     is safe because the central side deduplicates by ID.
//   - Retention. No record older than Options.MaxAge is kept, sent or not,
//     leased or not: Lease and Get skip it at once, Expire deletes it, and
//     the spool runs Expire on Open and every Options.ExpireEvery (default
//     one minute) by itself; the agent need not call it. A Put of a record
//     already past MaxAge stores nothing (counted in Stats.Expired).
//   - Space. Options.MaxBytes caps the stored bytes; a full filesystem
//     (ENOSPC) is a limit too. Options.FullPolicy decides: FullRefuse (the
//     default) fails new Puts with ErrFull, wrapping the cause, and keeps
//     every older record; FullDropOldest deletes the oldest LaneRead records
//     to make room (Stats.Dropped) and never an alert: when only alerts are
//     left it refuses. Stats.Full, FullCause and Refused tell the agent to
//     say so. The spool recovers by itself when space returns: acks and
//     expiry free pages in the file, freed disk space lets it grow. Because
//     bbolt copies each page it changes, deleting needs a little free space
//     too; the reserve file is released when an Ack or Expire meets a full
//     disk, and recreated once there is room. On a full disk FullDropOldest
//     keeps the stored bytes under the level where the disk filled, so each
//     commit drops as much as it adds.
//   - No freelist in the file. bbolt is opened with NoFreelistSync (as
//     etcd runs it): a commit does not rewrite the list of free pages,
//     which grows with every page a drained backlog frees, and bbolt.Open
//     rebuilds the list by walking the tree instead. Measured with
//     BenchmarkDrain (lease 128, ack them, until a 1 kB spool is empty;
//     busy 2-core machine), the spool's CPU per read fell from 5.3-5.8 to
//     3.3-3.6 us. The cost is at Open: see below.
//   - A damaged file. Open first reads bbolt's meta pages and walks the
//     page tree itself, bounded: garbage, truncation, pointers past the end,
//     a damaged page header, a page reached twice (a loop makes bbolt's
//     cursor spin forever), keys out of order, or a freelist naming a page
//     in use would make bbolt fault, panic, hang or overwrite live data.
//     Key order matters most: bbolt.Open's rebuild of the freelist checks
//     it and panics, in a goroutine where nothing can recover, at the
//     first violation. Then Open reads every record, turning a panic or
//     memory fault into an error. bbolt's consistency check (tx.Check:
//     each page reachable once, freelist sound, keys in order) runs too
//     when the previous run did not Close the spool (a clean-shutdown
//     marker in the file says it did). Measured on a 100 MB spool
//     (BenchmarkOpen, warm page cache, busy 2-core machine): Open+Close
//     takes about 20 ms with 5,000 records of 20 kB and 180 ms with
//     100,000 of 1 kB (115 ms while the freelist was kept in the file);
//     after an unclean end about 20 ms and 145 ms. A damaged file, or a
//     missing or damaged key store of an encrypted spool, is
//     renamed to path.corrupt-<UTC time> (its key store alongside, with
//     .keys appended), never deleted; a fresh spool is created and
//     Stats.MovedAside and MovedAsideReason say what happened, for a loud
//     log line and a diag flag. Options.NoRecover returns ErrCorruptFile
//     instead, for inspection tools. A single record whose bytes do not
//     decode, or do not authenticate, is moved to a set-aside bucket
//     (Stats.SetAside) instead of breaking Lease; retention removes it.
//   - Encryption at rest (Options.Key). Payloads are sealed with AES-256-GCM
//     under a random data key per Options.KeyPeriod of created time (one
//     hour by default), with a random 96-bit nonce per record; the
//     additional data is the lane and the whole clear header (format, ID,
//     created time, period), so a value moved to another lane or given
//     another ID, time or period does not open. IDs and created times stay
//     in clear: they index the queue and drive retention. Data keys are
//     kept, wrapped by the master key (AES-256-GCM, additional data binds
//     the period), in path.keys, never in the bbolt file, because bbolt
//     keeps freed bytes in free pages while path.keys is rewritten whole
//     (temp file, fsync, rename, fsync of the directory), so a destroyed key
//     is gone from the live file. A key is written before any record that
//     uses it. Expire destroys a period's key when its retention is over
//     (the period ended MaxAge ago: every record in it is expired) or when
//     the period has ended and holds no record (all acked). That is the
//     deletion: the ciphertext bbolt leaves in free pages cannot be opened
//     once the key is gone. Opening an encrypted spool without a key or with
//     another one is ErrKey (the file is left alone), as is opening an
//     unencrypted spool with a key: a spool never mixes the two.
//
// The key file (LoadKeyFile) holds 32 raw bytes or 64 hex characters and
// must not be accessible to group or others.
//
// Key store format (integers big-endian):
//
//	"ASPKEYS1"
//	check: 12-byte nonce | AES-GCM(master, 16 zero bytes) (32 bytes)
//	count uint32
//	count × ( start int64 | end int64 (unix ns, period [start, end)) |
//	          12-byte nonce | AES-GCM(master, 32-byte data key) (48 bytes) )
//	CRC-32C (Castagnoli) of all preceding bytes
//
// The check value tells a wrong master key (ErrKey) from a damaged store
// (CRC mismatch: moved aside with the spool).
//
// Stored value format: see the header type in codec.go.
//
// Caveats: MaxBytes counts the bytes of stored records (key and value), not
// the file size; bbolt keeps freed pages in the file for reuse, so the file
// can be larger. Without encryption, deleted payloads stay readable in free
// pages until they are reused. A spool moved aside keeps its key store, so
// its records stay readable until someone deletes both. Created times come
// from the caller and may be wrong on boards without an RTC; retention and
// key periods compare them with Options.Now, so a clock that jumps forward
// expires records early. A page damaged while the spool is open is not
// detected until the next Open.
package spool
