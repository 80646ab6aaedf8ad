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
//     will sets {"state":"offline"}), .../diag, and the subscribed
//     .../receipts.
//   - The session: client ID = device ID, clean session off, QoS 1, TLS with
//     client certificates (plaintext tcp:// only with Insecure), automatic
//     reconnect with capped backoff, bounded waits on every token.
//   - The publish loop: Uplink leases a batch from a Queue (the spool),
//     publishes each payload in spool order and keeps the records leased until
//     the central side's receipt names them; only then are they acked
//     (deleted). A record without a receipt after ResendAfter is published
//     again; when the connection drops, in-flight records are released and
//     re-sent in order after reconnecting. Duplicates are expected and are
//     removed centrally by read ID.
//   - A reference receiver (Receiver) for the central side: it stores reads
//     idempotently in an fsync'd JSON-lines file and only then publishes
//     receipts. The demo and tests use it; central systems can copy it.
//
// Why receipts and not PUBACK: paho completes publish tokens without error
// when the connection drops and auto-reconnects, its stores never fsync, and
// a broker answers PUBACK to a publish its ACL silently dropped. A PUBACK
// means "a broker saw it", not "it is stored". ReceiptMode "puback" exists for
// central systems that cannot send receipts and is the weaker promise: a read
// can be lost between broker and storage.
//
// Uplink never buffers reads itself: the spool is the buffer.
package uplink
