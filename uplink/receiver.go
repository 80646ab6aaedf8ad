package uplink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/lib/pq"
)

// ReceiverConfig configures the reference receiver. Start from
// DefaultReceiverConfig.
type ReceiverConfig struct {
	// Broker is the broker URL, as Config.Broker (plaintext only with Insecure).
	Broker string
	// ClientID is the receiver's MQTT client ID (clean session off, so reads
	// published while it is down are queued by the broker for it). Each
	// receiver of a ShareGroup needs its own.
	ClientID string

	Username, Password        string
	CAFile, CertFile, KeyFile string
	Insecure                  bool

	// Devices is the device segment subscribed to: "+" (all) or one device ID.
	Devices string
	// ShareGroup, when set, subscribes as a shared subscription
	// ($share/<group>/alpr/v1/<devices>/reads): the broker hands each read
	// to one receiver of the group, so several receivers split the load.
	// Receipts go to the device the read names, whichever receiver stored it.
	ShareGroup string

	// Store is the JSON-lines file reads are appended to (fsync'd before any
	// receipt is sent); empty for none.
	Store string
	// Postgres is a lib/pq DSN (postgres://user@host/db?sslmode=... or
	// key=value pairs; lib/pq's sslmode defaults to require, TLS without
	// verification: use verify-full for a remote database); when set, reads
	// are also stored in its table alpr_reads, created if missing, and
	// receipts wait for the COMMIT.
	// Store, Postgres or both must be set: with both, a receipt waits for
	// both.
	Postgres string

	// FlushInterval is the longest a read waits before being stored and
	// receipted; FlushIDs stores and receipts early once that many are
	// pending.
	FlushInterval time.Duration
	FlushIDs      int
	// StoreTimeout bounds one batch's store (file write and fsync, database
	// transaction); a batch not stored in time gets no receipt.
	StoreTimeout time.Duration

	ConnectTimeout, PublishTimeout time.Duration
	MaxReconnectInterval           time.Duration
}

// DefaultReceiverConfig returns a ReceiverConfig with all but Broker,
// ClientID and the stores (Store, Postgres) set.
func DefaultReceiverConfig() ReceiverConfig {
	return ReceiverConfig{
		Devices:              "+",
		FlushInterval:        100 * time.Millisecond,
		FlushIDs:             64,
		StoreTimeout:         30 * time.Second,
		ConnectTimeout:       10 * time.Second,
		PublishTimeout:       10 * time.Second,
		MaxReconnectInterval: time.Minute,
	}
}

// Validate returns an error wrapping ErrInvalidConfig that names the field.
func (c ReceiverConfig) Validate() error {
	if err := validateBroker("Broker", c.Broker, c.Insecure); err != nil {
		return err
	}
	if err := validateDevice("ClientID", c.ClientID); err != nil {
		return err
	}
	if c.Devices != "+" {
		if err := validateDevice("Devices", c.Devices); err != nil {
			return err
		}
	}
	if c.ShareGroup != "" {
		// The MQTT 5 rule for a share name is the one for a topic level
		// without wildcards: validateDevice checks that and more.
		if err := validateDevice("ShareGroup", c.ShareGroup); err != nil {
			return err
		}
	}
	if err := validateTLSFiles(c.CertFile, c.KeyFile); err != nil {
		return err
	}
	if c.Postgres != "" {
		if _, err := pq.NewConfig(c.Postgres); err != nil {
			// The DSN may hold a password: name the field, not the value.
			return configErr("Postgres", "bad DSN: %v", redactDSNError(err, c.Postgres))
		}
	}
	switch {
	case c.Store == "" && c.Postgres == "":
		return configErr("Store", "empty, and no Postgres: want a file, a database or both")
	case c.FlushInterval <= 0:
		return configErr("FlushInterval", "%v, want > 0", c.FlushInterval)
	case c.FlushIDs < 1:
		return configErr("FlushIDs", "%d, want at least 1", c.FlushIDs)
	case c.StoreTimeout <= 0:
		return configErr("StoreTimeout", "%v, want > 0", c.StoreTimeout)
	case c.ConnectTimeout <= 0:
		return configErr("ConnectTimeout", "%v, want > 0", c.ConnectTimeout)
	case c.PublishTimeout <= 0:
		return configErr("PublishTimeout", "%v, want > 0", c.PublishTimeout)
	case c.MaxReconnectInterval <= 0:
		return configErr("MaxReconnectInterval", "%v, want > 0", c.MaxReconnectInterval)
	}
	return nil
}

// subscriptions returns the topic filters of reads and alerts.
func (c ReceiverConfig) subscriptions() []string {
	prefix := ""
	if c.ShareGroup != "" {
		prefix = "$share/" + c.ShareGroup + "/"
	}
	return []string{
		prefix + "alpr/v1/" + c.Devices + "/" + TopicReads,
		prefix + "alpr/v1/" + c.Devices + "/" + TopicAlerts,
	}
}

// ReceiverStats counts what the receiver has seen.
type ReceiverStats struct {
	Subscribed  bool   // connected and subscribed to reads and alerts
	Received    uint64 // valid read messages taken from the broker
	Stored      uint64 // reads new to the stores, made durable
	Duplicates  uint64 // reads already stored (re-sent by a device)
	Invalid     uint64 // payloads that failed to parse or validate
	StoreErrors uint64 // batches not stored (so not receipted)
	Receipts    uint64 // receipt messages published
}

// Store makes received reads durable, idempotently by read ID. The receiver
// calls a store from one goroutine at a time.
type Store interface {
	// Save makes batch durable and reports, for each read of batch, whether
	// its ID was new to the store (false: stored before, or earlier in
	// batch; the first copy is kept). It returns only once the whole batch
	// is durable (written and fsync'd, or committed). On error the batch
	// must be treated as not stored, though part of it may be: saving it
	// again is harmless. Errors of ctx are returned as they are.
	Save(ctx context.Context, batch []Received) (isNew []bool, err error)
	// Close releases the store; Save must not be called after it.
	Close() error
}

var (
	_ Store = (*FileStore)(nil)
	_ Store = (*PGStore)(nil)
)

// Received is a read as it arrived from the network: parsed and validated,
// with its payload compacted to one line of JSON.
type Received struct {
	Read Read
	Raw  []byte
}

// ParseReceived parses the payload of a read published on topic, as the
// receiver does: the topic must be alpr/v1/{device}/reads or .../alerts of
// the device the read names, the read must validate, and the payload must
// be one JSON value in UTF-8 without a NUL character (\u0000) or a lone
// UTF-16 surrogate escape, which PostgreSQL refuses in text and jsonb (one
// such read would fail every batch it is in). Errors wrap ErrInvalidRead.
func ParseReceived(topic string, payload []byte) (Received, error) {
	parts := strings.Split(topic, "/")
	if len(parts) != 4 || parts[0] != "alpr" || parts[1] != "v1" || (parts[3] != TopicReads && parts[3] != TopicAlerts) {
		return Received{}, fmt.Errorf("parse read: topic %q not a reads or alerts topic: %w", topic, ErrInvalidRead)
	}
	if !utf8.Valid(payload) {
		return Received{}, fmt.Errorf("parse read: payload not UTF-8: %w", ErrInvalidRead)
	}
	r, err := ParseRead(payload)
	if err != nil {
		return Received{}, err
	}
	if r.Device != parts[2] {
		return Received{}, fmt.Errorf("parse read: device %q on topic of %q: %w", r.Device, parts[2], ErrInvalidRead)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, payload); err != nil {
		return Received{}, fmt.Errorf("parse read: %w: %w", ErrInvalidRead, err)
	}
	if why := badEscape(buf.Bytes()); why != "" {
		return Received{}, fmt.Errorf("parse read: payload holds %s: %w", why, ErrInvalidRead)
	}
	return Received{Read: r, Raw: buf.Bytes()}, nil
}

// badEscape returns why the JSON text b (valid, as json.Compact left it)
// cannot go into a PostgreSQL text or jsonb value, or "": a string holding
// the escape \u0000 (JSON forbids a raw NUL there), or a \u escape of a
// UTF-16 surrogate that is not one half of a pair. An escaped backslash
// followed by "u0000" is text, not an escape.
func badEscape(b []byte) string {
	inStr := false
	high := false // the previous escape was a high surrogate
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inStr {
			inStr = c == '"'
			continue
		}
		isU := c == '\\' && i+5 < len(b) && b[i+1] == 'u'
		var cp uint64
		if isU {
			cp, _ = strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		}
		switch {
		case high && !(isU && cp >= 0xdc00 && cp <= 0xdfff):
			return "a lone UTF-16 high surrogate escape"
		case c == '"':
			inStr = false
		case isU && cp == 0:
			return "a NUL character (\\u0000)"
		case isU && cp >= 0xdc00 && cp <= 0xdfff && !high:
			return "a lone UTF-16 low surrogate escape"
		}
		high = isU && cp >= 0xd800 && cp <= 0xdbff
		switch {
		case isU:
			i += 5
		case c == '\\':
			i++ // skip the escaped character
		}
	}
	return ""
}

// Receiver is the reference central-side consumer: it stores reads
// idempotently by ID in its stores (a JSON-lines file, a PostgreSQL table or
// both) and, only after every store has made a batch durable, publishes
// receipts to each device.
type Receiver struct {
	cfg    ReceiverConfig
	log    *slog.Logger
	onRead func(raw []byte, r Read)
	client mqtt.Client

	wake chan struct{}

	// Set by Start (under mu), then used by the flush goroutine alone and,
	// once it has ended, by Close.
	stores []Store
	errLog rateLimit

	mu      sync.Mutex // guards everything below
	file    *FileStore // also in stores; nil without a file
	started bool
	pending []Received // not yet durable
	pendIDs map[string]struct{}
	ack     map[string][]string // device -> durable IDs awaiting a receipt
	stats   ReceiverStats
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewReceiver returns a receiver. onRead, if not nil, is called once per
// read new to the receiver's stores after it is durable, from one
// goroutine, in arrival order. (With both a file and a database, a read is
// new if either store lacked it.)
func NewReceiver(cfg ReceiverConfig, logger *slog.Logger, onRead func(raw []byte, r Read)) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := tlsConfig(cfg.Broker, cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("new receiver: %w", err)
	}
	rv := &Receiver{
		cfg:     cfg,
		log:     logger.With("subsystem", "receiver"),
		onRead:  onRead,
		wake:    make(chan struct{}, 1),
		pendIDs: make(map[string]struct{}),
		ack:     make(map[string][]string),
		errLog:  rateLimit{every: 10 * time.Second},
	}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(cfg.PublishTimeout).
		SetDefaultPublishHandler(rv.onMessage).
		SetOnConnectHandler(rv.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			rv.mu.Lock()
			rv.stats.Subscribed = false
			rv.mu.Unlock()
			rv.log.Warn("connection lost; reconnecting", "err", err)
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	if !usePahoDialer() {
		opts.SetCustomOpenConnectionFn(dialBroker)
	}
	rv.client = mqtt.NewClient(opts)
	return rv, nil
}

// Start opens the stores (the file, rebuilding its set of stored IDs; the
// database, creating its table if missing) and connects in the background.
// It returns an error only for the stores: a bad or unreachable database
// fails here, before any read is taken from the broker.
func (rv *Receiver) Start(ctx context.Context) error {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.closed {
		return fmt.Errorf("start receiver: %w", ErrClosed)
	}
	if rv.started {
		return nil
	}
	var stores []Store
	if rv.cfg.Store != "" {
		fs, err := OpenFileStore(rv.cfg.Store)
		if err != nil {
			return err
		}
		rv.file = fs
		stores = append(stores, fs)
	}
	if rv.cfg.Postgres != "" {
		octx, cancel := context.WithTimeout(ctx, rv.cfg.ConnectTimeout)
		pg, err := OpenPGStore(octx, rv.cfg.Postgres)
		cancel()
		if err != nil {
			for _, s := range stores {
				s.Close()
			}
			rv.file = nil
			return err
		}
		stores = append(stores, pg)
	}
	rv.stores = stores
	rv.started = true
	ctx, rv.cancel = context.WithCancel(ctx)
	rv.client.Connect() // ConnectRetry: keeps trying in the background
	rv.wg.Add(1)
	go func() { defer rv.wg.Done(); rv.flushLoop(ctx) }()
	return nil
}

// Close stores and receipts what is pending, disconnects and closes the
// stores. A receiver of a ShareGroup first leaves the group
// (unsubscribes), so the broker hands the group's reads to the others
// instead of queueing a share for this session; a receiver that dies
// without Close stays in the group until its session expires, and the
// reads queued for it are re-sent by their devices after resend_after
// (mosquitto 2.0 still routes a share to an offline session). It is
// idempotent.
func (rv *Receiver) Close(ctx context.Context) error {
	rv.mu.Lock()
	if rv.closed {
		rv.mu.Unlock()
		return nil
	}
	rv.closed = true
	started, cancel := rv.started, rv.cancel
	rv.mu.Unlock()
	if !started {
		return nil
	}
	if rv.cfg.ShareGroup != "" && rv.client.IsConnectionOpen() {
		if err := waitToken(ctx, rv.client.Unsubscribe(rv.cfg.subscriptions()...), rv.cfg.PublishTimeout); err != nil {
			rv.log.Warn("leave share group", "group", rv.cfg.ShareGroup, "err", err)
		}
	}
	cancel()
	done := make(chan struct{})
	go func() { rv.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close receiver: wait for flush: %w", ctx.Err())
	}
	rv.client.Disconnect(250)
	rv.mu.Lock()
	rv.stats.Subscribed = false
	rv.mu.Unlock()
	<-done // the flush loop has no unbounded wait: store and publish waits are capped
	for _, s := range rv.stores {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close receiver: %w", cerr)
		}
	}
	return err
}

// Stats returns counters.
func (rv *Receiver) Stats() ReceiverStats {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.stats
}

// Len returns how many distinct reads the file store holds (0 without a
// file store; count the database's table for it).
func (rv *Receiver) Len() int {
	rv.mu.Lock()
	f := rv.file
	rv.mu.Unlock()
	if f == nil {
		return 0
	}
	return f.Len()
}

func (rv *Receiver) onConnect(c mqtt.Client) {
	filters := make(map[string]byte)
	for _, f := range rv.cfg.subscriptions() {
		filters[f] = 1
	}
	if err := waitToken(context.Background(), c.SubscribeMultiple(filters, rv.onMessage), rv.cfg.PublishTimeout); err != nil {
		rv.log.Error("subscribe reads", "err", err)
		return
	}
	rv.mu.Lock()
	rv.stats.Subscribed = true
	rv.mu.Unlock()
	rv.log.Info("connected", "broker", rv.cfg.Broker, "share_group", rv.cfg.ShareGroup)
}

// onMessage runs on paho's router goroutine: it only queues work.
func (rv *Receiver) onMessage(_ mqtt.Client, m mqtt.Message) {
	rc, err := ParseReceived(m.Topic(), m.Payload())
	if err != nil {
		rv.mu.Lock()
		rv.stats.Invalid++
		rv.mu.Unlock()
		rv.log.Warn("invalid read dropped", "topic", m.Topic(), "err", err)
		return
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.stats.Received++
	if _, ok := rv.pendIDs[rc.Read.ID]; ok {
		rv.stats.Duplicates++
		return // its receipt follows the pending flush
	}
	rv.pendIDs[rc.Read.ID] = struct{}{}
	rv.pending = append(rv.pending, rc)
	if len(rv.pending) >= rv.cfg.FlushIDs {
		rv.pokeLocked()
	}
}

func (rv *Receiver) pokeLocked() {
	select {
	case rv.wake <- struct{}{}:
	default:
	}
}

func (rv *Receiver) flushLoop(ctx context.Context) {
	t := time.NewTicker(rv.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rv.flush(context.Background())
			return
		case <-t.C:
		case <-rv.wake:
		}
		rv.flush(ctx)
	}
}

// flush stores pending reads in every store and only then publishes
// receipts. Re-sent reads go through the stores too: they are idempotent,
// and a read one store has may be missing from another (a batch that
// failed half-way).
func (rv *Receiver) flush(ctx context.Context) {
	rv.mu.Lock()
	batch := rv.pending
	rv.pending = nil
	rv.mu.Unlock()
	if len(batch) == 0 {
		return
	}

	isNew, err := rv.save(ctx, batch)
	rv.mu.Lock()
	for _, p := range batch {
		delete(rv.pendIDs, p.Read.ID)
	}
	if err != nil {
		rv.stats.StoreErrors++
		rv.mu.Unlock()
		// Not durable, so no receipts: the devices will re-send.
		if ctx.Err() == nil {
			if n, ok := rv.errLog.allow(time.Now()); ok {
				rv.log.Error("store reads; no receipts for them, devices will re-send", "err", err, "reads", len(batch), "suppressed", n)
			}
		}
		return
	}
	var fresh []Received
	for i, p := range batch {
		if isNew[i] {
			fresh = append(fresh, p)
		}
		rv.ack[p.Read.Device] = append(rv.ack[p.Read.Device], p.Read.ID)
	}
	rv.stats.Stored += uint64(len(fresh))
	rv.stats.Duplicates += uint64(len(batch) - len(fresh))
	acks := rv.ack
	rv.ack = make(map[string][]string)
	rv.mu.Unlock()
	if n, ok := rv.errLog.recovered(); ok {
		rv.log.Info("store recovered", "failed_batches_suppressed", n)
	}

	if rv.onRead != nil {
		for _, p := range fresh {
			rv.onRead(p.Raw, p.Read)
		}
	}
	for device, ids := range acks {
		for len(ids) > 0 {
			n := min(len(ids), 1024)
			rv.sendReceipt(ctx, device, ids[:n])
			ids = ids[n:]
		}
	}
}

// save saves batch in every store, in order, within StoreTimeout. A read is
// new if any store lacked it.
func (rv *Receiver) save(ctx context.Context, batch []Received) ([]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, rv.cfg.StoreTimeout)
	defer cancel()
	isNew := make([]bool, len(batch))
	for _, s := range rv.stores {
		got, err := s.Save(ctx, batch)
		if err != nil {
			return nil, err
		}
		if len(got) != len(batch) {
			return nil, fmt.Errorf("save reads: store answered %d flags for %d reads", len(got), len(batch))
		}
		for i, n := range got {
			isNew[i] = isNew[i] || n
		}
	}
	return isNew, nil
}

// sendReceipt publishes one receipt. A receipt that cannot be sent is
// dropped: the device re-sends the reads and gets a receipt for the
// duplicates.
func (rv *Receiver) sendReceipt(ctx context.Context, device string, ids []string) {
	b, err := MarshalReceipt(ids)
	if err != nil {
		return
	}
	if !rv.client.IsConnectionOpen() {
		rv.log.Debug("receipt not sent: not connected", "device", device, "ids", len(ids))
		return
	}
	if err := waitToken(ctx, rv.client.Publish(Topic(device, TopicReceipts), 1, false, b), rv.cfg.PublishTimeout); err != nil {
		if ctx.Err() == nil {
			rv.log.Warn("publish receipt", "device", device, "ids", len(ids), "err", err)
		}
		return
	}
	rv.mu.Lock()
	rv.stats.Receipts++
	rv.mu.Unlock()
}

// rateLimit lets a repeating error be logged once per period, counting the
// ones it holds back. Used from one goroutine.
type rateLimit struct {
	every      time.Duration
	last       time.Time
	suppressed int
	failing    bool
}

// allow reports whether to log now, and how many were held back since the
// last one logged.
func (l *rateLimit) allow(now time.Time) (int, bool) {
	l.failing = true
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// recovered reports, once after a run of failures, that they ended and how
// many were never logged.
func (l *rateLimit) recovered() (int, bool) {
	if !l.failing {
		return 0, false
	}
	n := l.suppressed
	*l = rateLimit{every: l.every}
	return n, true
}

// FileStore is a Store in a JSON-lines file: one compact read per line,
// appended and fsync'd per batch. The set of stored IDs is rebuilt from the
// file when it is opened.
type FileStore struct {
	path string

	mu   sync.Mutex // guards below; Save holds it for the whole write
	f    *os.File
	size int64
	seen map[string]struct{} // durable IDs
}

// OpenFileStore opens (creating) the JSON-lines file at path.
func OpenFileStore(path string) (*FileStore, error) {
	seen := make(map[string]struct{})
	f, err := openStore(path, seen)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seek store %s: %w", path, err)
	}
	return &FileStore{path: path, f: f, size: size, seen: seen}, nil
}

// Save appends the reads of batch that the file lacks and fsyncs. If the
// write or the fsync fails, the file is cut back to where it was, so a
// re-sent read is not appended twice.
func (s *FileStore) Save(ctx context.Context, batch []Received) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil, fmt.Errorf("save reads to %s: %w", s.path, ErrClosed)
	}
	isNew := make([]bool, len(batch))
	var buf bytes.Buffer
	added := make(map[string]struct{})
	for i, p := range batch {
		if _, ok := s.seen[p.Read.ID]; ok {
			continue
		}
		if _, ok := added[p.Read.ID]; ok {
			continue
		}
		added[p.Read.ID] = struct{}{}
		isNew[i] = true
		buf.Write(p.Raw)
		buf.WriteByte('\n')
	}
	if buf.Len() == 0 {
		return isNew, nil
	}
	_, err := s.f.Write(buf.Bytes())
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Best effort: a torn tail is also cut off at the next open.
		if terr := s.f.Truncate(s.size); terr == nil {
			_, _ = s.f.Seek(s.size, io.SeekStart)
		}
		return nil, fmt.Errorf("append reads to %s: %w", s.path, err)
	}
	s.size += int64(buf.Len())
	for id := range added {
		s.seen[id] = struct{}{}
	}
	return isNew, nil
}

// Len returns how many distinct reads the file holds.
func (s *FileStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Close closes the file. It is idempotent.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// openStore opens the JSON-lines file for appending and loads its IDs. A
// torn last line (crash mid-append) is cut off so the next append starts on
// a fresh line; its read was never receipted, so the device sends it again.
func openStore(path string, seen map[string]struct{}) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var good int64
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a partial line without '\n' is not counted
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read store %s: %w", path, err)
		}
		good += int64(len(line))
		var v struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(line, &v) == nil && v.ID != "" {
			seen[v.ID] = struct{}{}
		}
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncate store %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek store %s: %w", path, err)
	}
	return f, nil
}
