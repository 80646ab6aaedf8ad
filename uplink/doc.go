// Package uplink sends spooled reads to an MQTT broker and owns their wire
// format.
//
// What it owns:
//
//   - The payload: Read is the JSON document (version 1) a device publishes
//     for each licence-plate read; its JSON Schema and an example are embedded
//     (ReadSchemaV1, ReadExampleV1, files in schema/).
//   - Topics, per device: alpr/v1/{device}/reads, .../alerts (hotlist hits,
//     leased from the spool before any backlog), .../status (retained; the
//     will sets {"state":"offline"}), .../diag, and .../receipts,
//     subscribed in receipt mode only.
//   - The session: client ID = device ID, clean session off, QoS 1, TLS with
//     client certificates (plaintext tcp:// only with Insecure), automatic
//     reconnect with capped backoff, bounded waits on every token.
//   - The publish loop: Uplink leases a batch from a Queue (the spool),
//     publishes each payload in spool order and keeps the records leased until
//     the central side's receipt names them; only then are they acked
//     (deleted). A record without a receipt after ResendAfter is published
//     again; while no receipt comes at all, the interval doubles each round
//     up to ResendBackoffMax, so a central side that is down does not cost
//     the link a window of reads every ResendAfter. When the connection
//     drops, records acknowledged on the lost connection are released and
//     re-sent in order after reconnecting (paho itself re-sends a PUBLISH
//     whose PUBACK it missed). Duplicates are
//     expected and are removed centrally by read ID; they are only of reads
//     in flight at a fault (TestFault_Chaos checks it read by read).
//   - Flow: batches (Batch) are pipelined within a window (Inflight) of
//     records awaiting PUBACK or receipt; deletions run in their own
//     goroutine so a spool fsync never stalls publishing. In puback mode the
//     window slides by the record as PUBACKs come in, not by the batch: a
//     broker without TCP_NODELAY (mosquitto's default) holds the last
//     PUBACKs of a burst until a TCP ACK reaches it, which a quiet client
//     delays by ~40 ms, so a window that waits for whole batches stalls
//     (half the throughput, measured). The uplink's own connection (see
//     dialBroker) no longer lets the client be quiet: it asks the kernel to
//     ACK at once whatever each socket read took (TCP_QUICKACK), and reads
//     through a buffer (paho reads a packet a field at a time). A
//     batch's payloads are leased into one buffer (spool.LeaseAppend),
//     reused once every record of it is PUBACKed. Every lease takes the alert lane first, and alerts may
//     exceed a full window by one Batch, so a hotlist hit is never held
//     behind a backlog that awaits receipts.
//   - The receipt alarm: when published records get no receipt for
//     ReceiptAlarmAfter (the central receiver is down, or the broker's ACL
//     silently drops the device's publishes yet answers PUBACK), Status.Alarm
//     says so, once at WARN in the log; it clears on the next receipt.
//     Nothing is deleted meanwhile.
//   - A reference receiver (Receiver) for the central side: it stores reads
//     idempotently in an fsync'd JSON-lines file and only then publishes
//     receipts. The demo and tests use it; central systems can copy it.
//
// Why receipts and not PUBACK: on a reconnect paho completes every
// outstanding publish token without error and sends the PUBLISH again from
// its store (a store that never fsyncs), so a token is not even proof of a
// PUBACK; a broker that is not persistent loses what it acknowledged when it
// dies; and a broker answers PUBACK to a publish its ACL silently dropped. A PUBACK
// means "a broker saw it", not "it is stored". ReceiptMode "puback" exists for
// central systems that cannot send receipts and is the weaker promise: a read
// can be lost between broker and storage.
//
// A broker cluster on the central side (EMQX, HiveMQ, VerneMQ): the device
// needs no change, since it speaks plain MQTT 3.1.1 to one address and
// relies on nothing but QoS 1 and its own persistent session (client ID =
// device ID, clean session off; a cluster keeps the session on whichever
// node the device reconnects to, and receipts queued for it while it was
// away are delivered there). The central side scales out by running
// several receivers as one shared-subscription group,
// $share/<group>/alpr/v1/+/reads (and .../alerts): the cluster hands each
// read to one member, any member may publish the receipt to that read's
// device topic alpr/v1/<device>/receipts, so receipts need no affinity
// between a device and a receiver. What makes this safe is the rule the
// reference receiver follows: store idempotently keyed by read ID (a
// primary key or unique index; a re-sent read, possibly landing on another
// member, is a no-op that is receipted again), and publish the receipt
// only after the store's commit. A member that dies after its commit but
// before its receipt, or a cluster that re-delivers to another member,
// costs a duplicate, never a loss, because the device deletes on the
// receipt alone and re-sends after ResendAfter. Size the cluster's
// per-subscriber queue (mosquitto's max_queued_messages and its
// equivalents) above the group's backlog, or it drops and the devices'
// re-sends make up for it, late.
//
// Uplink never buffers reads itself: the spool is the buffer.
package uplink
