// Package spool is the device's durable store-and-forward queue for reads.
//
// A Spool keeps opaque records (ID, lane, created time, payload bytes) in a
// bbolt file until the uplink confirms them. It does not interpret payloads:
// the wire format belongs to package uplink.
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
//   - Retention and size. Expire deletes records older than Options.MaxAge
//     (on Open and whenever called); Put refuses new records with ErrFull once
//     the stored record bytes would exceed Options.MaxBytes. The spool never
//     drops a record it has accepted for lack of space.
//
// Caveats: MaxBytes counts the bytes of stored records (key and value), not
// the file size; bbolt keeps freed pages in the file for reuse, so the file
// can be larger, and deleted bytes stay in free pages until they are reused
// (encryption at rest with per-period keys is the planned answer, not here
// yet). Created times come from the caller and may be wrong on boards without
// an RTC; Expire compares them with Options.Now.
package spool
